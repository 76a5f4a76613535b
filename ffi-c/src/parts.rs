//! `zcopy_send_parts`: a whole response (bytes and file ranges) in one call.

use std::ffi::c_int;

use zcopy_core::{PartsOptions, RawPart};

use crate::status::{Failure, catch, timeout_from_ms};
use crate::transfer::{CACHE_FLAGS, cache_of, outcome};
use crate::types::{zcopy_part, zcopy_report, zcopy_status};

/// The parts as core takes them; the checks the C struct needs that core cannot make.
///
/// # Safety
/// Each bytes part's `data` points to `len` readable bytes (the caller's promise).
unsafe fn raw_parts(parts: &[zcopy_part]) -> Result<Vec<RawPart<'_>>, Failure> {
    parts
        .iter()
        .map(|p| {
            if p.reserved != 0 {
                return Err(Failure::invalid());
            }
            match p.fd {
                -1 => {
                    if p.offset != 0 {
                        return Err(Failure::invalid());
                    }
                    let len = usize::try_from(p.len).map_err(|_| Failure::invalid())?;
                    if len == 0 {
                        return Ok(RawPart::Bytes(&[]));
                    }
                    if p.data.is_null() {
                        return Err(Failure::null());
                    }
                    // SAFETY: non-NULL, and the caller promises `len` readable bytes that stay
                    // valid and unchanged for the call.
                    Ok(RawPart::Bytes(unsafe {
                        std::slice::from_raw_parts(p.data, len)
                    }))
                }
                fd if fd >= 0 => Ok(RawPart::File {
                    fd,
                    offset: u64::try_from(p.offset).map_err(|_| Failure::invalid())?,
                    len: p.len,
                }),
                _ => Err(Failure::invalid()),
            }
        })
        .collect()
}

/// The safe body of `zcopy_send_parts` once the parts are read.
fn send(
    dst: c_int,
    parts: &[RawPart<'_>],
    skip: u64,
    timeout_ms: i64,
    flags: u32,
) -> (zcopy_status, zcopy_report) {
    let cache = match cache_of(flags) {
        Ok(c) if flags & !CACHE_FLAGS == 0 => c,
        _ => return (zcopy_status::InvalidArgument, zcopy_report::EMPTY),
    };
    let timeout = match timeout_from_ms(timeout_ms) {
        Ok(t) => t,
        Err(f) => return (f.status, zcopy_report::EMPTY),
    };
    // SIGPIPE stays guarded: a C host may well leave it at its default (kill).
    let opts = PartsOptions {
        timeout,
        skip,
        cache,
        ..PartsOptions::default()
    };
    outcome(zcopy_core::send_parts_fds(dst, parts, &opts))
}

/// Sends `nparts` parts in order to `dst_fd` (a stream socket; a pipe or a file works too):
/// a whole response — status line and headers, file ranges, boundaries, trailers — in one call.
///
/// Consecutive bytes parts go out in one `sendmsg`; every part but the last is sent with
/// MSG_MORE (on TCP a file part followed by more parts is sent inside one TCP_CORK window, and
/// the socket's own cork state is what it was after the call), so a 200-byte header and a
/// 4 KiB file leave as one TCP segment. File parts use the same methods and fallbacks as
/// `zcopy_transfer`. All descriptors are borrowed (duplicated for the call, never closed; their
/// status flags are unchanged afterwards).
///
/// One deadline (`timeout_ms`: -1 waits, 0 never waits) covers the whole response, and
/// `report->bytes` counts the bytes of the response that reached `dst_fd` on every status: after
/// `ZCOPY_STATUS_WOULD_BLOCK`, `ZCOPY_STATUS_TIMED_OUT` or an error, call again with
/// `skip` = the sum of the earlier calls' `bytes` to send the rest. A signal that cuts a file
/// part's send short ends the call with `ZCOPY_STATUS_OS` / EINTR and the bytes so far (the
/// library does not look a descriptor number up again after a short send); resume the same way.
///
/// Checked before any byte moves: `ZCOPY_STATUS_INVALID_ARGUMENT` for a negative `dst_fd`, a
/// part with `fd < -1`, `offset < 0`, a bytes part with a non-zero `offset`, a non-zero
/// `reserved`, unknown or contradictory `flags`, a file range past its file's end (the response would be malformed),
/// `skip` past the response's end; `ZCOPY_STATUS_UNSUPPORTED` for a file part that is not a
/// regular file; `ZCOPY_STATUS_OS` with EBADF for a descriptor that is not open;
/// `ZCOPY_STATUS_NULL_PARAMETER` for `parts` NULL with `nparts` > 0, or a bytes part with
/// `data` NULL and `len` > 0. A file that shrinks during the call ends it with
/// `ZCOPY_STATUS_INVALID_ARGUMENT` and the bytes sent. `flags`: 0, or one of the cache bits
/// `ZCOPY_FLAG_CACHE_DROP_BEHIND`, `ZCOPY_FLAG_CACHE_DIRECT` for the file parts. A closed peer is `ZCOPY_STATUS_OS`
/// (EPIPE or ECONNRESET) and never kills the process with SIGPIPE.
///
/// Threading: any thread, many at once (on different destinations).
///
/// # Safety
/// `parts` is NULL (with `nparts` 0) or points to `nparts` readable `zcopy_part`s; each bytes
/// part's `data` points to `len` readable bytes; all stay valid and unchanged for the call.
/// `report` is NULL or points to writable memory for one `zcopy_report`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_send_parts(
    dst_fd: c_int,
    parts: *const zcopy_part,
    nparts: usize,
    skip: u64,
    timeout_ms: i64,
    flags: u32,
    report: *mut zcopy_report,
) -> zcopy_status {
    let (status, out) = catch(|| {
        let parts: &[zcopy_part] = match (parts.is_null(), nparts) {
            (_, 0) => &[],
            (true, _) => return (zcopy_status::NullParameter, zcopy_report::EMPTY),
            // SAFETY: non-NULL, and the caller promises `nparts` readable, aligned parts; every
            // field is a plain integer or pointer, so any bit pattern is a valid value.
            (false, n) => unsafe { std::slice::from_raw_parts(parts, n) },
        };
        // SAFETY: the caller promises each bytes part's data is readable for its length.
        match unsafe { raw_parts(parts) } {
            Ok(raw) => send(dst_fd, &raw, skip, timeout_ms, flags),
            Err(f) => (f.status, zcopy_report::EMPTY),
        }
    })
    .unwrap_or_else(|f| (f.status, zcopy_report::EMPTY));
    if !report.is_null() {
        // SAFETY: non-NULL, and the caller promises it points to a writable, aligned
        // zcopy_report; `write` does not read the old value.
        unsafe { report.write(out) };
    }
    status
}
