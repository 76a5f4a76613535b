//! zcopy-python: the private native module `zcopy._zcopy`.
//!
//! This is the bridge, not the API (see DESIGN.md, "libsignal"): it parses arguments, releases
//! the GIL around every call into `zcopy-core`, and maps the engine's errors onto the Python
//! exceptions of the error table. The public, idiomatic API (file objects, `socket.sendfile`
//! drop-in, asyncio) is written in Python in `python/zcopy/`.
//!
//! Rules every entry point follows:
//! - descriptors are borrowed: an int, or an object whose `fileno()` returns one; core works on
//!   duplicates, so a concurrent close cannot redirect a call to another file;
//! - the GIL is released around every blocking call; EINTR runs Python's signal handlers
//!   (`PyErr_CheckSignals`), and an exception from one (Ctrl-C's `KeyboardInterrupt`) stops the
//!   call and is raised with the progress attached;
//! - every exception raised by a transfer carries `.bytes_transferred`;
//! - numbers out of range are `ValueError`, never `OverflowError`;
//! - a panic never unwinds into Python: it becomes `zcopy.PanicError`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use pyo3::buffer::PyUntypedBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyBlockingIOError, PyBufferError, PyInterruptedError, PyOSError, PyOverflowError,
    PyRuntimeError, PyTimeoutError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple};
use zcopy_core::{Cache, ErrorCode, InterruptHook, Method, Options, RelayOptions};

mod parts;

create_exception!(
    zcopy,
    UnsupportedError,
    PyOSError,
    "The method cannot work for this pair of descriptors or on this kernel (errno EOPNOTSUPP)."
);
create_exception!(
    zcopy,
    PanicError,
    PyRuntimeError,
    "A bug: the native engine panicked. The call was abandoned; please report it."
);

/// What a transfer did.
#[pyclass(frozen, module = "zcopy", name = "Report")]
struct Report {
    /// Bytes that reached the destination.
    #[pyo3(get)]
    bytes: u64,
    /// Name of the method that moved the last bytes (the requested one when nothing moved).
    #[pyo3(get)]
    method: &'static str,
    /// Syscalls the call issued, classification and bookkeeping included.
    #[pyo3(get)]
    syscalls: u64,
    /// How many times the call gave up on a method and tried the next one.
    #[pyo3(get)]
    fallbacks: usize,
    /// Each fallback as (from method, to method, reason).
    #[pyo3(get)]
    fallback_details: Vec<(&'static str, &'static str, String)>,
    /// MSG_ZEROCOPY sends whose completion arrived.
    #[pyo3(get)]
    zc_sends: u64,
    /// ... of which the kernel copied the data anyway (always all of them on loopback).
    #[pyo3(get)]
    zc_copied: u64,
}

impl Report {
    fn from_core(r: &zcopy_core::Report) -> Report {
        Report {
            bytes: r.bytes,
            method: r.method.name(),
            syscalls: r.syscalls,
            fallbacks: r.fallbacks.len(),
            fallback_details: r
                .fallbacks
                .iter()
                .map(|f| (f.from.name(), f.to.name(), f.reason.clone()))
                .collect(),
            zc_sends: r.zc_sends,
            zc_copied: r.zc_copied,
        }
    }
}

#[pymethods]
impl Report {
    fn __repr__(&self) -> String {
        format!(
            "Report(bytes={}, method={:?}, syscalls={}, fallbacks={}, zc_sends={}, zc_copied={})",
            self.bytes, self.method, self.syscalls, self.fallbacks, self.zc_sends, self.zc_copied
        )
    }
}

/// The engine's message for an errno, as `os.strerror` gives it (no "(os error N)" suffix).
fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Maps an engine error onto the Python exception of the error table, with
/// `.bytes_transferred` set. `interrupt` is the exception a signal handler raised, if the call
/// stopped because of one.
fn to_pyerr(py: Python<'_>, e: &zcopy_core::Error, bytes: u64, interrupt: Option<PyErr>) -> PyErr {
    let err = error_table(e, bytes, interrupt);
    // Bytes taken from a pipe or socket source that did not reach the destination.
    let _ = err.value(py).setattr("bytes_lost", e.report.undelivered);
    with_bytes(py, err, bytes)
}

/// The exception of the error table for an engine error.
fn error_table(e: &zcopy_core::Error, bytes: u64, interrupt: Option<PyErr>) -> PyErr {
    match e.code() {
        // An Ok code inside an error is a bug in the engine.
        ErrorCode::Ok => PanicError::new_err(format!("engine returned an error with code OK: {e}")),
        ErrorCode::Os => match e.errno() {
            Some(libc::EINTR) => interrupt.unwrap_or_else(|| {
                PyInterruptedError::new_err((libc::EINTR, strerror(libc::EINTR)))
            }),
            Some(errno) => PyOSError::new_err((errno, strerror(errno))),
            None => PyOSError::new_err(e.kind.to_string()),
        },
        ErrorCode::Unsupported => UnsupportedError::new_err((libc::EOPNOTSUPP, e.kind.to_string())),
        ErrorCode::InvalidArgument => PyValueError::new_err(e.kind.to_string()),
        ErrorCode::WouldBlock => {
            PyBlockingIOError::new_err((libc::EAGAIN, strerror(libc::EAGAIN), bytes))
        }
        ErrorCode::TimedOut => PyTimeoutError::new_err((libc::ETIMEDOUT, "timed out".to_string())),
        ErrorCode::NullParameter => PyValueError::new_err(e.kind.to_string()),
        ErrorCode::Panic => PanicError::new_err(e.kind.to_string()),
    }
}

/// Attaches `.bytes_transferred` to an exception (every exception instance has a `__dict__`
/// except a few built-in singletons; failing to set it must not hide the real error).
fn with_bytes(py: Python<'_>, err: PyErr, bytes: u64) -> PyErr {
    let _ = err.value(py).setattr("bytes_transferred", bytes);
    err
}

/// A panic payload as text.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs `f` with the GIL released, turning a panic into `PanicError`.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|p| PanicError::new_err(panic_message(p.as_ref())))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The thread on which CPython runs signal handlers, when `zcopy` was imported on it (the usual
/// case). Elsewhere `PyErr_CheckSignals` does nothing, so the hook need not take the GIL there.
static MAIN_THREAD: OnceLock<std::thread::ThreadId> = OnceLock::new();

thread_local! {
    /// The exception a Python signal handler raised while this thread's call had the GIL
    /// released. The engine calls the hook on the calling thread, so a thread-local carries it
    /// back without a per-call allocation.
    static PENDING: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// The EINTR hook, shared by every call: runs Python's signal handlers; an exception from one
/// (KeyboardInterrupt) is kept for the caller and stops the call.
fn interrupt_hook() -> InterruptHook {
    static HOOK: OnceLock<InterruptHook> = OnceLock::new();
    HOOK.get_or_init(|| {
        Arc::new(|| {
            if MAIN_THREAD
                .get()
                .is_some_and(|t| *t != std::thread::current().id())
            {
                return false;
            }
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    PENDING.with(|p| *p.borrow_mut() = Some(e));
                    true
                }
            })
        })
    })
    .clone()
}

/// The exception a signal handler raised during this thread's last call, if any.
fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// An integer argument as i128: `TypeError` for non-integers, `ValueError` (not
/// `OverflowError`) for integers too large to be meaningful.
fn int_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<i128> {
    // i64 first: it is one C call, where i128 takes several under the limited API.
    let overflow = match obj.extract::<i64>() {
        Ok(n) => return Ok(n.into()),
        Err(e) => e.is_instance_of::<PyOverflowError>(obj.py()),
    };
    if overflow && let Ok(n) = obj.extract::<u64>() {
        return Ok(n.into());
    }
    Err(if overflow {
        PyValueError::new_err(format!("{name} is out of range"))
    } else {
        PyTypeError::new_err(format!("{name} must be an integer, not {}", type_name(obj)))
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// An optional non-negative 64-bit argument (offset, count).
fn u64_arg(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let n = int_arg(obj, name)?;
    u64::try_from(n).map(Some).map_err(|_| {
        PyValueError::new_err(format!("{name} must be between 0 and 2**64-1, got {n}"))
    })
}

/// `ssl.SSLSocket`, whose descriptor carries TLS records the kernel knows nothing of.
fn is_tls_socket(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    static SSLSOCKET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = obj.py();
    let cls = SSLSOCKET.get_or_try_init(py, || {
        py.import("ssl")
            .and_then(|m| m.getattr("SSLSocket"))
            .map(Bound::unbind)
    })?;
    obj.is_instance(cls.bind(py))
}

/// A descriptor: an int, or an object whose `fileno()` returns one. A TLS socket is refused
/// before its descriptor is touched: the engine writes below TLS, in plaintext.
fn fd_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<i32> {
    if !obj.is_instance_of::<PyInt>() && is_tls_socket(obj)? {
        return Err(PyTypeError::new_err(format!(
            "{name} is a TLS socket (ssl.SSLSocket): the engine writes to the descriptor below \
             TLS and would send plaintext; use zcopy.socket_sendfile (encrypted sends) instead"
        )));
    }
    let n = if obj.is_instance_of::<PyInt>() {
        int_arg(obj, name)?
    } else if obj.hasattr("fileno")? {
        int_arg(&obj.call_method0("fileno")?, name)?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a file descriptor (int) or an object with fileno(), not {}",
            type_name(obj)
        )));
    };
    i32::try_from(n)
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} is not a valid file descriptor: {n}")))
}

/// A timeout in seconds: None waits, 0 does not wait; negative or NaN is `ValueError`.
fn timeout_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let secs: f64 = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "timeout must be a number of seconds or None, not {}",
            type_name(obj)
        ))
    })?;
    secs_timeout(Some(secs))
}

/// [`timeout_arg`] for an already extracted number.
fn secs_timeout(secs: Option<f64>) -> PyResult<Option<Duration>> {
    let Some(secs) = secs else { return Ok(None) };
    if secs.is_nan() || secs < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout must be None or a non-negative number, got {secs}"
        )));
    }
    // Beyond what a Duration holds (inf included) is as good as waiting forever.
    Ok(Duration::try_from_secs_f64(secs).ok())
}

fn method_arg(obj: &Bound<'_, PyAny>) -> PyResult<Method> {
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    named_arg(
        obj,
        "method",
        "zcopy.Method",
        &names.join(", "),
        Method::from_name,
    )
}

/// A value given by its stable name (a str, or a member of the matching `enum.StrEnum`):
/// `TypeError` for other types, `ValueError` for unknown names.
fn named_arg<T>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    enum_name: &str,
    expected: &str,
    from_name: fn(&str) -> Option<T>,
) -> PyResult<T> {
    let name = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a str or {enum_name}, not {}",
            type_name(obj)
        ))
    })?;
    let name = name.to_cow()?;
    from_name(&name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown {what} {name:?} (expected one of {expected})"
        ))
    })
}

/// Whether SIGPIPE is ignored or handled in this process as far as Python knows: CPython
/// ignores it at start-up, but a program may restore the default (`signal.signal(SIGPIPE,
/// SIG_DFL)`), and then the engine must block it around writes so a closed peer is EPIPE, not
/// death. `None` (set outside Python, unknown) counts as not handled.
fn sigpipe_handled(py: Python<'_>) -> bool {
    // `_signal.getsignal` (C) rather than `signal.getsignal`, which wraps it in Python code;
    // its argument tuple is made once (this runs on every transfer).
    static GETSIGNAL: PyOnceLock<(Py<PyAny>, Py<PyTuple>)> = PyOnceLock::new();
    let Ok((getsignal, args)) = GETSIGNAL.get_or_try_init(py, || {
        let f = py.import("_signal")?.getattr("getsignal")?.unbind();
        let args = PyTuple::new(py, [libc::SIGPIPE])?.unbind();
        Ok::<_, PyErr>((f, args))
    }) else {
        return false;
    };
    match getsignal.bind(py).call(args.bind(py), None) {
        Ok(h) if h.is_none() => false,
        // SIG_DFL is 0 (SIG_IGN 1; a Python handler is a callable, not an int).
        Ok(h) => h
            .extract::<i64>()
            .map_or(true, |n| n != libc::SIG_DFL as i64),
        Err(_) => false,
    }
}

/// transfer(src, dst, *, offset=None, count=None, method="auto", timeout=None, fallback=False)
///
/// Move bytes from ``src`` to ``dst`` in the kernel; return a ``Report``.
///
/// - ``offset``: given, read from there and leave the source's position alone; None, read
///   from the source's position and advance it by the bytes delivered, on every outcome (so a
///   caller can resume after ``BlockingIOError``, ``TimeoutError`` or an error). A Python file
///   object is read from its ``tell()`` (its read-ahead buffer does not matter) and left at
///   ``tell()`` + bytes.
/// - ``count``: at most that many bytes; None, until the source's EOF (``/dev/zero`` never
///   ends). EOF before ``count`` is not an error. 0 returns at once.
/// - The destination is written at its position, which advances (O_APPEND appends). A Python
///   file object as destination is flushed first.
/// - ``method``: a ``Method`` or its name. An explicit method that does not apply to the pair
///   raises ``UnsupportedError`` unless ``fallback=True``.
/// - ``timeout``: seconds, one deadline for the whole call covering every wait on either
///   descriptor; 0 does not wait (``BlockingIOError`` with ``.characters_written``); None waits.
///   A socket object's own ``settimeout`` is not consulted.
/// - ``cache``: what happens to a regular-file source's page cache, a ``Cache`` or its name:
///   ``"keep"`` (None: the kernel's default), ``"drop_behind"`` (pages released behind the
///   transfer), ``"direct"`` (O_DIRECT reads, Auto and read_write only; falls back to
///   drop-behind where the file system refuses O_DIRECT, and the report's fallbacks say so).
///
/// - A TLS socket (``ssl.SSLSocket``) on either side is ``TypeError``: the engine writes below
///   TLS. ``socket_sendfile`` sends through one encrypted.
/// - A non-seekable buffered source (``sock.makefile("rb")`` after ``readline()``) delivers
///   what it has read ahead first, then the rest from its descriptor.
///
/// Raises ``OSError`` (the errno's subclass, e.g. ``BrokenPipeError``), ``UnsupportedError``,
/// ``ValueError`` for bad values, ``TypeError`` for bad types, ``BlockingIOError``,
/// ``TimeoutError``; each with ``.bytes_transferred`` (what reached ``dst``) and
/// ``.bytes_lost`` (bytes taken from a pipe or socket source that did not reach it).
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the Python signature, one parameter per option
#[pyo3(signature = (src, dst, *, offset=None, count=None, method=None, timeout=None, fallback=false, cache=None))]
fn transfer(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    offset: Option<&Bound<'_, PyAny>>,
    count: Option<&Bound<'_, PyAny>>,
    method: Option<&Bound<'_, PyAny>>,
    timeout: Option<&Bound<'_, PyAny>>,
    fallback: bool,
    cache: Option<&Bound<'_, PyAny>>,
) -> PyResult<Report> {
    let cache = cache_arg(cache)?;
    transfer_objects(
        py, src, dst, offset, count, method, timeout, fallback, cache,
    )
}

/// A page-cache policy: a `zcopy.Cache` or its name; None is Keep.
fn cache_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Cache> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(Cache::Keep),
        Some(o) => named_arg(
            o,
            "cache policy",
            "zcopy.Cache",
            "keep, drop_behind, direct",
            Cache::from_name,
        ),
    }
}

/// `io.IOBase`, the base of every Python file object.
fn is_file_object(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    static IOBASE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    if obj.is_instance_of::<PyInt>() {
        return Ok(false);
    }
    let base = IOBASE.get_or_try_init(obj.py(), || {
        obj.py()
            .import("io")
            .and_then(|m| m.getattr("IOBase"))
            .map(Bound::unbind)
    })?;
    obj.is_instance(base.bind(obj.py()))
}

/// The transfer with Python file objects handled: a destination object is flushed first; a
/// seekable source object with no offset is read from its `tell()` (its read-ahead buffer does
/// not matter) and left at `tell()` + the bytes delivered, on every outcome; a non-seekable
/// buffered source (`sock.makefile("rb")` after `readline()`) has its read-ahead delivered
/// first, then the rest from its descriptor.
#[allow(clippy::too_many_arguments)] // one parameter per option, as in the Python signature
fn transfer_objects(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    offset: Option<&Bound<'_, PyAny>>,
    count: Option<&Bound<'_, PyAny>>,
    method: Option<&Bound<'_, PyAny>>,
    timeout: Option<&Bound<'_, PyAny>>,
    fallback: bool,
    cache: Cache,
) -> PyResult<Report> {
    if is_file_object(dst)? {
        dst.call_method0("flush")?;
    }
    let mut opts = Options {
        method: match method {
            Some(m) if !m.is_none() => method_arg(m)?,
            _ => Method::Auto,
        },
        offset: u64_arg(offset, "offset")?,
        count: u64_arg(count, "count")?,
        timeout: timeout_arg(timeout)?,
        fallback,
        on_interrupt: Some(interrupt_hook()),
        host_ignores_sigpipe: sigpipe_handled(py),
        cache,
        ..Options::default()
    };
    let (src_fd, dst_fd) = (fd_arg(src, "src")?, fd_arg(dst, "dst")?);
    let source_object = opts.offset.is_none() && is_file_object(src)?;
    let seekable = source_object && src.call_method0("seekable")?.is_truthy()?;
    if seekable {
        let pos = int_arg(&src.call_method0("tell")?, "src.tell()")?;
        let pos = u64::try_from(pos)
            .map_err(|_| PyValueError::new_err(format!("src.tell() returned {pos}")))?;
        opts.offset = Some(pos);
        let result = run(py, src_fd, dst_fd, opts)?;
        let moved = match &result {
            Ok(r) => r.bytes,
            Err(f) => f.bytes,
        };
        let sought = src.call_method1("seek", (pos + moved,));
        let r = result.map_err(|f| f.into_pyerr(py))?;
        sought?;
        return Ok(Report::from_core(&r));
    }
    let mut head = 0;
    if source_object && src.hasattr("peek")? {
        let started = std::time::Instant::now();
        head = deliver_read_ahead(py, src, dst_fd, &opts)?;
        opts.count = opts.count.map(|c| c - head);
        opts.timeout = opts.timeout.map(|t| t.saturating_sub(started.elapsed()));
    }
    match run(py, src_fd, dst_fd, opts)? {
        Ok(mut r) => {
            r.bytes += head;
            Ok(Report::from_core(&r))
        }
        Err(mut f) => {
            f.bytes += head;
            Err(f.into_pyerr(py))
        }
    }
}

/// Delivers the bytes a non-seekable buffered reader has read ahead of its descriptor (at most
/// the count), then takes them off the reader. Returns how many. The peek never blocks: the
/// descriptor is non-blocking for it.
fn deliver_read_ahead(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: i32,
    opts: &Options,
) -> PyResult<u64> {
    let os = py.import("os")?;
    let fd = src.call_method0("fileno")?;
    let blocking = os.call_method1("get_blocking", (&fd,))?;
    os.call_method1("set_blocking", (&fd, false))?;
    let peeked = src.call_method1("peek", (0,));
    os.call_method1("set_blocking", (&fd, blocking))?;
    let peeked: Vec<u8> = match peeked {
        Ok(b) => b.extract()?,
        Err(e) if e.is_instance_of::<PyBlockingIOError>(py) => Vec::new(),
        Err(e) => return Err(e),
    };
    let n = (peeked.len() as u64).min(opts.count.unwrap_or(u64::MAX));
    if n == 0 {
        return Ok(0);
    }
    // The bytes go out through the engine from a memfd, with the call's deadline and waits.
    let memfd: i32 = os
        .call_method1("memfd_create", ("zcopy-read-ahead",))?
        .extract()?;
    let written = (|| -> PyResult<()> {
        let mut at = 0usize;
        while (at as u64) < n {
            let k: usize = os
                .call_method1("write", (memfd, &peeked[at..n as usize]))?
                .extract()?;
            at += k;
        }
        Ok(())
    })();
    let head_opts = Options {
        method: Method::Auto,
        offset: Some(0),
        count: Some(n),
        fallback: true,
        ..opts.clone()
    };
    let sent = written.and_then(|()| run(py, memfd, dst, head_opts));
    os.call_method1("close", (memfd,))?;
    let delivered = match &sent {
        Ok(Ok(r)) => r.bytes,
        Ok(Err(f)) => f.bytes,
        Err(_) => 0,
    };
    // Only what reached the destination leaves the reader's buffer.
    src.call_method1("read", (delivered,))?;
    match sent? {
        Ok(_) => Ok(n),
        Err(f) => Err(f.into_pyerr(py)),
    }
}

/// A failed engine call: the error, the bytes delivered across its retries, and the exception
/// a signal handler raised meanwhile.
struct Failed {
    err: zcopy_core::Error,
    bytes: u64,
    pending: Option<PyErr>,
}

impl Failed {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        to_pyerr(py, &self.err, self.bytes, self.pending)
    }
}

/// One engine transfer with the GIL released. A signal whose handler did not raise may cut a
/// send short (a small counted transfer is one sendfile, which the engine does not repeat on
/// the same numbers): as PEP 475 asks, the rest goes on in a new call.
/// The outer error is a panic (PanicError).
fn run(
    py: Python<'_>,
    src: i32,
    dst: i32,
    mut opts: Options,
) -> PyResult<Result<zcopy_core::Report, Failed>> {
    let mut before = zcopy_core::Report::default();
    loop {
        let e = match detached(py, || zcopy_core::transfer_fds(src, dst, &opts))? {
            Ok(mut r) => {
                r.bytes += before.bytes;
                r.syscalls += before.syscalls;
                return Ok(Ok(r));
            }
            Err(e) => e,
        };
        let pending = take_pending();
        if pending.is_none() && e.errno() == Some(libc::EINTR) && e.bytes() > 0 {
            before.bytes += e.bytes();
            before.syscalls += e.report.syscalls;
            opts.count = opts.count.map(|c| c - e.bytes());
            opts.offset = opts.offset.map(|o| o + e.bytes());
            continue;
        }
        let bytes = before.bytes + e.bytes();
        return Ok(Err(Failed {
            err: e,
            bytes,
            pending,
        }));
    }
}

/// relay(a, b, timeout=None) -> (bytes a->b, bytes b->a, buffered)
///
/// The engine's stream-socket relay; `buffered`: a direction found no pipe in the budget and
/// used recv/send (`zcopy.relay` makes the triple its two-int `Relayed`). An exception carries
/// `.bytes_transferred` (both ways together) and `.relayed`, the pair.
#[pyfunction]
#[pyo3(signature = (a, b, timeout=None))]
fn relay(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    timeout: Option<&Bound<'_, PyAny>>,
) -> PyResult<(u64, u64, bool)> {
    let a = fd_arg(a, "a")?;
    let b = fd_arg(b, "b")?;
    let opts = RelayOptions {
        timeout: timeout_arg(timeout)?,
        on_interrupt: Some(interrupt_hook()),
    };
    match detached(py, || zcopy_core::relay_fds(a, b, &opts).map_err(Box::new))? {
        Ok(r) => Ok((r.a_to_b, r.b_to_a, r.buffered)),
        Err(e) => {
            let err = to_pyerr(
                py,
                &e.error,
                e.report.a_to_b + e.report.b_to_a,
                take_pending(),
            );
            let _ = err
                .value(py)
                .setattr("relayed", (e.report.a_to_b, e.report.b_to_a));
            Err(err)
        }
    }
}

/// capabilities() -> {method name: supported}, for every explicit method.
#[pyfunction]
fn capabilities(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let caps = detached(py, zcopy_core::capabilities)?;
    let d = PyDict::new(py);
    for m in Method::EXPLICIT {
        d.set_item(m.name(), caps.supports(m))?;
    }
    Ok(d)
}

/// Raises PanicError from a real panic inside the engine boundary (for tests of the mapping).
#[pyfunction]
fn _panic(py: Python<'_>, message: String) -> PyResult<()> {
    detached(py, move || -> () { panic!("{message}") })
}

/// A Python buffer held (exported) until the kernel's completion for it arrives.
struct HeldBuffer(PyUntypedBuffer);

impl AsRef<[u8]> for HeldBuffer {
    fn as_ref(&self) -> &[u8] {
        let len = self.0.len_bytes();
        if len == 0 {
            return &[];
        }
        // SAFETY: the buffer was checked C-contiguous when taken; the export keeps the memory
        // alive (and a bytearray unresizable) until this value is dropped, and `len_bytes` is
        // its size in bytes. Its contents may still be changed by Python code: that changes
        // what is sent, never memory safety for us (the kernel only reads it).
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr().cast::<u8>(), len) }
    }
}

/// Streams buffers to a TCP socket with MSG_ZEROCOPY, keeping each alive until the kernel's
/// completion for it arrives.
#[pyclass(module = "zcopy", name = "ZeroCopySender")]
struct Sender {
    inner: Mutex<Option<zcopy_core::ZeroCopySender>>,
}

impl Sender {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut zcopy_core::ZeroCopySender) -> zcopy_core::Result<T> + Send,
    ) -> PyResult<T> {
        let r = detached(py, || lock(&self.inner).as_mut().map(f))?;
        match r {
            None => Err(PyValueError::new_err(
                "I/O operation on a closed ZeroCopySender",
            )),
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(to_pyerr(py, &e, e.bytes(), take_pending())),
        }
    }

    /// The counters, and whether the sender is closed. The mutex is waited for with the GIL
    /// released: a `send` holds it while it may need the GIL (to release a sent buffer), so
    /// waiting for it with the GIL held would deadlock.
    fn stats(&self, py: Python<'_>) -> (zcopy_core::SenderStats, bool) {
        py.detach(|| {
            let inner = lock(&self.inner);
            (
                inner.as_ref().map(|s| s.stats()).unwrap_or_default(),
                inner.is_none(),
            )
        })
    }
}

#[pymethods]
impl Sender {
    /// ZeroCopySender(sock): `sock` is a connected TCP socket (an int fd or an object with
    /// fileno()); the sender works on its own duplicate of it.
    #[new]
    fn new(py: Python<'_>, sock: &Bound<'_, PyAny>) -> PyResult<Sender> {
        let fd = fd_arg(sock, "sock")?;
        let made = detached(py, || {
            zcopy_core::ZeroCopySender::from_raw(fd).map(|mut s| {
                // Ctrl-C reaches a send blocked on a full socket or a wait for completions.
                s.set_interrupt_hook(Some(interrupt_hook()));
                s
            })
        })?;
        match made {
            Ok(s) => Ok(Sender {
                inner: Mutex::new(Some(s)),
            }),
            Err(e) => Err(to_pyerr(py, &e, 0, None)),
        }
    }

    /// Sends all of `buf` (any C-contiguous buffer) and keeps it until the kernel is done with
    /// it. Returns its id (0, 1, 2, ...).
    fn send(&self, py: Python<'_>, buf: &Bound<'_, PyAny>) -> PyResult<u64> {
        let held = PyUntypedBuffer::get(buf)?;
        if !held.is_c_contiguous() {
            return Err(PyBufferError::new_err(
                "ZeroCopySender.send needs a C-contiguous buffer",
            ));
        }
        let held = HeldBuffer(held);
        self.with(py, move |s| s.send(held))
    }

    /// Reads completions, waiting up to `timeout` seconds (None: until every send completed).
    /// Returns the id below which every send has completed.
    #[pyo3(signature = (timeout=Some(0.0)), text_signature = "($self, timeout=0.0)")]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<u64> {
        let t = secs_timeout(timeout)?;
        self.with(py, move |s| s.poll(t))
    }

    /// Sends not yet completed.
    #[getter]
    fn pending(&self, py: Python<'_>) -> u64 {
        self.stats(py).0.pending
    }

    /// Ids handed out so far.
    #[getter]
    fn sent(&self, py: Python<'_>) -> u64 {
        self.stats(py).0.sent
    }

    /// Kernel completions received.
    #[getter]
    fn completions(&self, py: Python<'_>) -> u64 {
        self.stats(py).0.completions
    }

    /// Completions for which the kernel copied the data instead of sharing pages.
    #[getter]
    fn copied(&self, py: Python<'_>) -> u64 {
        self.stats(py).0.copied
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        self.stats(py).1
    }

    /// Waits up to `timeout` seconds (None: as long as it takes) for outstanding completions,
    /// then closes the sender's descriptor (the caller's socket stays open). TimeoutError if some
    /// never arrived (their buffers are then kept forever, never released early).
    #[pyo3(signature = (timeout=None))]
    fn close(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let t = timeout_arg(timeout)?;
        let r = detached(py, || lock(&self.inner).take().map(|s| s.close(t)))?;
        match r {
            None | Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(to_pyerr(py, &e, 0, None)),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py, None)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (st, closed) = self.stats(py);
        let state = if closed { "closed" } else { "open" };
        format!(
            "<zcopy.ZeroCopySender {state} sent={} pending={} copied={}>",
            st.sent, st.pending, st.copied
        )
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // The engine's drop waits (bounded) for outstanding completions: do not hold the GIL
        // meanwhile. Releasing a held buffer re-attaches by itself.
        let inner = lock(&self.inner).take();
        if inner.is_some() {
            let _ = Python::try_attach(|py| py.detach(|| drop(inner)));
        }
    }
}

/// The private native module of the `zcopy` package.
#[pymodule]
fn _zcopy(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let threading = py.import("threading")?;
    if threading
        .call_method0("current_thread")?
        .is(&threading.call_method0("main_thread")?)
    {
        let _ = MAIN_THREAD.set(std::thread::current().id());
    }
    m.add("__version__", zcopy_core::VERSION)?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("PanicError", py.get_type::<PanicError>())?;
    m.add_class::<Report>()?;
    m.add_class::<Sender>()?;
    m.add_function(wrap_pyfunction!(transfer, m)?)?;
    m.add_function(wrap_pyfunction!(relay, m)?)?;
    m.add_function(wrap_pyfunction!(parts::send_parts, m)?)?;
    m.add_function(wrap_pyfunction!(capabilities, m)?)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    Ok(())
}
