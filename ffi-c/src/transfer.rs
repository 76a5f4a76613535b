//! `zcopy_transfer` and its options.

use std::ffi::c_int;
use std::mem::offset_of;

use zcopy_core::{Cache, Method, Options, Report};

use crate::status::{Failure, catch, timeout_from_ms};
use crate::types::{
    ZCOPY_FLAG_ALLOW_FALLBACK, ZCOPY_FLAG_CACHE_DIRECT, ZCOPY_FLAG_CACHE_DROP_BEHIND, ZCOPY_TO_EOF,
    zcopy_method, zcopy_options, zcopy_report, zcopy_status,
};

/// `zcopy_options` as read from C: the method as a plain integer, because a C caller can store
/// any int in an enum field and an out-of-range Rust enum would be undefined behaviour.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawOptions {
    method: i32,
    offset: i64,
    count: u64,
    timeout_ms: i64,
    flags: u32,
}

// RawOptions must be zcopy_options field for field.
const _: () = {
    assert!(size_of::<RawOptions>() == size_of::<zcopy_options>());
    assert!(align_of::<RawOptions>() == align_of::<zcopy_options>());
    assert!(size_of::<zcopy_method>() == size_of::<i32>());
    assert!(offset_of!(RawOptions, method) == offset_of!(zcopy_options, method));
    assert!(offset_of!(RawOptions, offset) == offset_of!(zcopy_options, offset));
    assert!(offset_of!(RawOptions, count) == offset_of!(zcopy_options, count));
    assert!(offset_of!(RawOptions, timeout_ms) == offset_of!(zcopy_options, timeout_ms));
    assert!(offset_of!(RawOptions, flags) == offset_of!(zcopy_options, flags));
};

impl From<zcopy_options> for RawOptions {
    fn from(o: zcopy_options) -> RawOptions {
        RawOptions {
            method: o.method as i32,
            offset: o.offset,
            count: o.count,
            timeout_ms: o.timeout_ms,
            flags: o.flags,
        }
    }
}

fn options(raw: &RawOptions) -> Result<Options, Failure> {
    let method = Method::from_i32(raw.method).ok_or_else(Failure::invalid)?;
    let offset = match raw.offset {
        -1 => None,
        off => Some(u64::try_from(off).map_err(|_| Failure::invalid())?),
    };
    let count = (raw.count != ZCOPY_TO_EOF).then_some(raw.count);
    let timeout = timeout_from_ms(raw.timeout_ms)?;
    if raw.flags & !(ZCOPY_FLAG_ALLOW_FALLBACK | CACHE_FLAGS) != 0 {
        return Err(Failure::invalid());
    }
    let fallback = raw.flags & ZCOPY_FLAG_ALLOW_FALLBACK != 0;
    let cache = cache_of(raw.flags)?;
    // C has no destination offset: the destination is written at its position, which advances.
    // SIGPIPE stays guarded: a C host may well leave it at its default (kill).
    Ok(Options {
        method,
        offset,
        count,
        timeout,
        fallback,
        cache,
        ..Options::default()
    })
}

/// The cache-policy bits of `flags`.
pub(crate) const CACHE_FLAGS: u32 = ZCOPY_FLAG_CACHE_DROP_BEHIND | ZCOPY_FLAG_CACHE_DIRECT;

/// The page-cache policy the flags ask for; both bits at once is INVALID_ARGUMENT.
pub(crate) fn cache_of(flags: u32) -> Result<Cache, Failure> {
    match flags & CACHE_FLAGS {
        0 => Ok(Cache::Keep),
        ZCOPY_FLAG_CACHE_DROP_BEHIND => Ok(Cache::DropBehind),
        ZCOPY_FLAG_CACHE_DIRECT => Ok(Cache::Direct),
        _ => Err(Failure::invalid()),
    }
}

/// The C report of a core report (`os_errno` for `ZCOPY_STATUS_OS`, else 0).
pub(crate) fn report_of(r: &Report, os_errno: i32) -> zcopy_report {
    zcopy_report {
        bytes: r.bytes,
        method: r.method.into(),
        syscalls: r.syscalls,
        fallbacks: u32::try_from(r.fallbacks.len()).unwrap_or(u32::MAX),
        zc_sends: r.zc_sends,
        zc_copied: r.zc_copied,
        os_errno,
        undelivered: r.undelivered,
        zc_pending: r.zc_pending,
    }
}

/// The safe body of `zcopy_transfer`: a status and the report to write.
fn transfer(src: c_int, dst: c_int, raw: &RawOptions) -> (zcopy_status, zcopy_report) {
    let opts = match options(raw) {
        Ok(o) => o,
        Err(f) => return (f.status, zcopy_report::EMPTY),
    };
    outcome(zcopy_core::transfer_fds(src, dst, &opts))
}

/// A core result as C sees it: the status and the report (with the errno of an OS status).
pub(crate) fn outcome(r: zcopy_core::Result<Report>) -> (zcopy_status, zcopy_report) {
    match r {
        Ok(r) => (zcopy_status::Ok, report_of(&r, 0)),
        Err(e) => {
            let f = Failure::from(&e);
            (f.status, report_of(&e.report, f.errno))
        }
    }
}

/// Writes the defaults into `*opts`: `ZCOPY_METHOD_AUTO`, offset -1 (the source's file
/// position), count `ZCOPY_TO_EOF`, timeout_ms -1 (wait), flags 0. Does nothing when `opts`
/// is NULL.
///
/// Threading: any thread.
///
/// # Safety
/// `opts` is NULL or points to writable memory for one `zcopy_options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_options_init(opts: *mut zcopy_options) {
    if !opts.is_null() {
        // SAFETY: non-NULL, and the caller promises it points to a writable, aligned
        // zcopy_options; `write` does not read the (possibly uninitialised) old value.
        unsafe { opts.write(zcopy_options::DEFAULT) };
    }
}

/// Moves bytes from `src_fd` to `dst_fd` with the cheapest correct kernel path.
///
/// Both descriptors are borrowed for the call: never closed, and their file status flags
/// (O_NONBLOCK, ...) are the same after the call as before. The library works on duplicates,
/// so another thread closing a number during the call cannot redirect it to another file.
/// The destination is written at its current position, which advances (O_APPEND appends).
/// With a seekable source and offset -1, the source position ends at start + `report.bytes`
/// on every status, so a caller can resume after an error, WOULD_BLOCK or TIMED_OUT. With a
/// socket or pipe source, bytes taken but not delivered are never silently dropped: they are
/// counted in `report.undelivered`, so `bytes` + `undelivered` + what is still in the source is
/// everything the source had.
///
/// `opts` NULL means the defaults (see `zcopy_options_init`). `report` NULL means not wanted;
/// otherwise it is written on every status (`bytes` counts what reached `dst_fd`, `os_errno`
/// is set when the status is `ZCOPY_STATUS_OS`, `undelivered` is 0 on success and for file
/// sources). A closed peer is `ZCOPY_STATUS_OS` with EPIPE, and never kills the process with
/// SIGPIPE.
///
/// Pages, not bytes, are shared: after `sendfile`, `splice` or `MSG_ZEROCOPY`, later writes to
/// the source file may still reach the peer.
///
/// Returns `ZCOPY_STATUS_INVALID_ARGUMENT` for a negative descriptor, `offset < -1`,
/// `timeout_ms < -1`, an unknown method or flag, both cache flags, or
/// `ZCOPY_FLAG_CACHE_DIRECT` with a method other than Auto or read_write;
/// `ZCOPY_STATUS_UNSUPPORTED` when an explicit method cannot work (nothing consumed from a pipe
/// or socket source) unless `ZCOPY_FLAG_ALLOW_FALLBACK` is set.
///
/// Threading: any thread, many at once (on different descriptor pairs).
///
/// # Safety
/// `opts` is NULL or points to a `zcopy_options` initialised by `zcopy_options_init` (and
/// then changed); `report` is NULL or points to writable memory for one `zcopy_report`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_transfer(
    src_fd: c_int,
    dst_fd: c_int,
    opts: *const zcopy_options,
    report: *mut zcopy_report,
) -> zcopy_status {
    let raw = if opts.is_null() {
        RawOptions::from(zcopy_options::DEFAULT)
    } else {
        // SAFETY: non-NULL, and the caller promises an aligned, initialised zcopy_options,
        // which RawOptions mirrors field for field (checked at compile time) with the method as
        // a plain i32, so any value the caller stored in it is read without UB.
        unsafe { opts.cast::<RawOptions>().read() }
    };
    let (status, out) = catch(|| transfer(src_fd, dst_fd, &raw))
        .unwrap_or_else(|f| (f.status, zcopy_report::EMPTY));
    if !report.is_null() {
        // SAFETY: non-NULL, and the caller promises it points to a writable, aligned
        // zcopy_report; `write` does not read the old value.
        unsafe { report.write(out) };
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawOptions {
        RawOptions::from(zcopy_options::DEFAULT)
    }

    #[test]
    fn defaults() {
        let o = options(&raw()).expect("defaults are valid");
        assert_eq!(o.method, Method::Auto);
        assert_eq!(
            (o.offset, o.count, o.timeout, o.fallback),
            (None, None, None, false)
        );
    }

    #[test]
    fn bad_options_are_invalid() {
        let bad = [
            RawOptions { method: 7, ..raw() },
            RawOptions {
                method: -1,
                ..raw()
            },
            RawOptions {
                offset: -2,
                ..raw()
            },
            RawOptions {
                timeout_ms: -2,
                ..raw()
            },
            RawOptions { flags: 8, ..raw() },
            RawOptions { flags: 6, ..raw() },
        ];
        for b in bad {
            assert_eq!(options(&b).err(), Some(Failure::invalid()));
        }
        let o = options(&RawOptions {
            method: 6,
            offset: 5,
            count: 0,
            timeout_ms: 0,
            flags: 1,
        })
        .expect("valid options");
        assert_eq!(o.method, Method::MsgZerocopy);
        assert_eq!(o.offset, Some(5));
        assert_eq!(o.count, Some(0));
        assert_eq!(o.timeout, Some(std::time::Duration::ZERO));
        assert!(o.fallback);
    }

    #[test]
    fn report_written_on_invalid() {
        let mut rep = zcopy_report {
            bytes: 9,
            os_errno: 9,
            ..zcopy_report::EMPTY
        };
        let opts = zcopy_options {
            offset: -5,
            ..zcopy_options::DEFAULT
        };
        // SAFETY: valid pointers to live locals.
        let st = unsafe { zcopy_transfer(0, 1, &opts, &mut rep) };
        assert_eq!(st, zcopy_status::InvalidArgument);
        assert_eq!(rep, zcopy_report::EMPTY);
        // SAFETY: NULL options and report are allowed.
        let st = unsafe { zcopy_transfer(-1, 1, std::ptr::null(), std::ptr::null_mut()) };
        assert_eq!(st, zcopy_status::InvalidArgument);
    }
}
