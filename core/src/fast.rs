//! The one-syscall path for the commonest call: a counted transfer under
//! [`crate::plan::SPLICE_AT_LEAST`] (a broker or file server sending a record or a chunk).
//!
//! Classifying both descriptors, duplicating them and guarding SIGPIPE costs about ten
//! syscalls, more than the `sendfile` itself for a 4 KiB transfer. Auto's choice for a small
//! counted transfer from a file is `sendfile` whatever the destination (stream socket, pipe,
//! device, file: one syscall; copy_file_range's reflinks and server-side copies pay off on large
//! ranges, which take the general path), so no classification is needed: `sendfile` goes
//! straight to the kernel, which refuses what it cannot do (a socket source, an O_APPEND file,
//! a directory...) before moving a byte. Any error or short count leaves the rest to the general
//! path, which has not been skipped, only deferred: an error costs nothing here (no byte moved),
//! and a short count continues from exactly what was sent.
//!
//! A single syscall resolves each fd number once, atomically, so the first call needs no
//! duplicate to be safe against a concurrent close; the general path pins the files (dups)
//! before its own, later syscalls.

use std::os::fd::BorrowedFd;

use crate::method::Method;
use crate::options::Options;
use crate::report::Report;
use crate::sigpipe::SigpipeGuard;
use crate::sys;

/// What the fast path did.
pub(crate) enum Fast {
    /// Not applicable, or nothing moved: run the general path from the start.
    Skip,
    /// Everything asked for was sent (or the source was at EOF).
    Done(Report),
    /// `sent` bytes moved in `syscalls` syscalls; the general path continues from there.
    Partial { sent: u64, syscalls: u64 },
}

/// Tries the one-syscall path.
pub(crate) fn try_sendfile(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, opts: &Options) -> Fast {
    let Some(count) = opts.count else {
        return Fast::Skip;
    };
    // Auto only: into a pipe the kernel desugars sendfile to splice from any source, which an
    // explicit `sendfile` must refuse (the general path checks the source first).
    let applicable = opts.method == Method::Auto
        && opts.timeout.is_none()
        && opts.dst_offset.is_none()
        && count > 0
        // Bulk Auto transfers take the general path (splice to sockets, copy_file_range).
        && count < crate::plan::SPLICE_AT_LEAST
        && opts.offset.is_none_or(|o| o <= i64::MAX as u64);
    if !applicable {
        return Fast::Skip;
    }
    let start = sys::syscalls();
    let mut guard = (!opts.host_ignores_sigpipe).then(SigpipeGuard::new);
    let mut off = opts.offset;
    let r = sys::sendfile(dst, src, off.as_mut(), count as usize);
    if let (Some(g), Err(e)) = (guard.as_mut(), &r) {
        g.saw_epipe = e.raw_os_error() == Some(libc::EPIPE);
    }
    drop(guard);
    let syscalls = sys::syscalls() - start;
    match r {
        Ok(n) if n as u64 == count => Fast::Done(Report {
            bytes: n as u64,
            method: Method::Sendfile,
            syscalls,
            ..Report::default()
        }),
        Ok(0) => Fast::Skip,
        Ok(n) => Fast::Partial {
            sent: n as u64,
            syscalls,
        },
        Err(_) => Fast::Skip,
    }
}
