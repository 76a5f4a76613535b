//! `send_parts`: a whole response (bytes and file ranges) in one call.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use zcopy_core::{PartsOptions, RawPart};

use crate::{
    HeldBuffer, Report, cache_arg, detached, fd_arg, interrupt_hook, sigpipe_handled, take_pending,
    timeout_arg, to_pyerr, type_name, u64_arg,
};

/// One part as parsed under the GIL. Bytes stay owned by their Python object (a `bytes` is
/// immutable; any other buffer is exported, which pins its memory) for the whole call.
enum Parsed<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(HeldBuffer),
    File { fd: i32, offset: u64, len: u64 },
}

impl Parsed<'_> {
    fn raw(&self) -> RawPart<'_> {
        match self {
            Parsed::Bytes(b) => RawPart::Bytes(b.as_bytes()),
            Parsed::Buffer(b) => RawPart::Bytes(b.as_ref()),
            Parsed::File { fd, offset, len } => RawPart::File {
                fd: *fd,
                offset: *offset,
                len: *len,
            },
        }
    }
}

fn parse<'py>(item: &Bound<'py, PyAny>, i: usize) -> PyResult<Parsed<'py>> {
    if let Ok(b) = item.cast::<PyBytes>() {
        return Ok(Parsed::Bytes(b.clone()));
    }
    if let Ok(t) = item.cast::<PyTuple>() {
        if t.len() != 3 {
            return Err(PyValueError::new_err(format!(
                "parts[{i}]: a file part is (file, offset, length), got {} items",
                t.len()
            )));
        }
        let fd = fd_arg(&t.get_item(0)?, &format!("parts[{i}] file"))?;
        let number = |k: usize, name: &str| -> PyResult<u64> {
            let v = t.get_item(k)?;
            u64_arg(Some(&v), &format!("parts[{i}] {name}"))?
                .ok_or_else(|| PyTypeError::new_err(format!("parts[{i}] {name} must be an int")))
        };
        return Ok(Parsed::File {
            fd,
            offset: number(1, "offset")?,
            len: number(2, "length")?,
        });
    }
    let held = PyUntypedBuffer::get(item).map_err(|_| {
        PyTypeError::new_err(format!(
            "parts[{i}] must be a bytes-like object or a (file, offset, length) tuple, not {}",
            type_name(item)
        ))
    })?;
    if !held.is_c_contiguous() {
        return Err(PyBufferError::new_err(format!(
            "parts[{i}] must be a C-contiguous buffer"
        )));
    }
    Ok(Parsed::Buffer(HeldBuffer(held)))
}

/// send_parts(sock, parts, *, timeout=None, skip=0)
///
/// Send a whole response in one call: ``parts`` is a sequence of bytes-like objects (a
/// header, a boundary, a trailer) and ``(file, offset, length)`` tuples (a file object or a
/// descriptor; its position is neither used nor moved), sent in order to ``sock``. Return a
/// ``Report``.
///
/// Consecutive bytes parts go out in one ``sendmsg``, and every part but the last is sent with
/// MSG_MORE (or inside one TCP_CORK window; the socket's own cork state is kept), so a small
/// header and a 4 KiB file leave as one TCP segment. File ranges use the engine's method
/// choice (``sendfile``, ``splice``).
///
/// - ``timeout``: seconds, one deadline for the whole response; 0 does not wait; None waits.
/// - ``cache``: the page-cache policy for the file parts (see ``transfer``).
/// - ``skip``: bytes of this response an earlier call delivered. Every exception carries
///   ``.bytes_transferred``: resume with ``skip`` + that to send exactly the rest.
///
/// Raises, before any byte is sent, ``ValueError`` for a file range past its file's end or
/// ``skip`` past the response's end, ``UnsupportedError`` for a file part that is not a regular
/// file, ``TypeError`` for a TLS socket (``ssl.SSLSocket``) or a bad part; during the call
/// ``BlockingIOError``, ``TimeoutError``, ``OSError`` (``BrokenPipeError``,
/// ``ConnectionResetError``), ``ValueError`` when a file shrank under its range.
#[pyfunction]
#[pyo3(signature = (sock, parts, *, timeout=None, skip=None, cache=None))]
pub(crate) fn send_parts(
    py: Python<'_>,
    sock: &Bound<'_, PyAny>,
    parts: &Bound<'_, PyAny>,
    timeout: Option<&Bound<'_, PyAny>>,
    skip: Option<&Bound<'_, PyAny>>,
    cache: Option<&Bound<'_, PyAny>>,
) -> PyResult<Report> {
    let dst = fd_arg(sock, "sock")?;
    let parsed = parts
        .try_iter()?
        .enumerate()
        .map(|(i, item)| parse(&item?, i))
        .collect::<PyResult<Vec<_>>>()?;
    let raw: Vec<RawPart<'_>> = parsed.iter().map(Parsed::raw).collect();
    let mut opts = PartsOptions {
        timeout: timeout_arg(timeout)?,
        on_interrupt: Some(interrupt_hook()),
        host_ignores_sigpipe: sigpipe_handled(py),
        skip: u64_arg(skip, "skip")?.unwrap_or(0),
        cache: cache_arg(cache)?,
    };
    // A signal whose handler did not raise may cut a file part's single sendfile short (the
    // engine does not resolve the numbers again): as PEP 475 asks, the rest goes on in a new
    // call from where it stopped.
    let mut moved = 0;
    loop {
        match detached(py, || zcopy_core::send_parts_fds(dst, &raw, &opts))? {
            Ok(mut r) => {
                r.bytes += moved;
                return Ok(Report::from_core(&r));
            }
            Err(e) => {
                let pending = take_pending();
                if pending.is_none() && e.errno() == Some(libc::EINTR) && e.bytes() > 0 {
                    moved += e.bytes();
                    opts.skip += e.bytes();
                    continue;
                }
                return Err(to_pyerr(py, &e, moved + e.bytes(), pending));
            }
        }
    }
}
