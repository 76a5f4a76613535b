//! The one-syscall path for the commonest call: a counted transfer under
//! [`crate::plan::SPLICE_AT_LEAST`] (a broker or file server sending a record or a chunk).
//!
//! Classifying both descriptors, duplicating them and guarding SIGPIPE costs about ten
//! syscalls, more than the `sendfile` itself for a 4 KiB transfer. Auto's choice for a small
//! counted transfer from a file is `sendfile` whatever the destination (stream socket, pipe,
//! device, file: one syscall; copy_file_range's reflinks and server-side copies pay off on large
//! ranges, which take the general path), so no classification is needed: `sendfile` goes
//! straight to the kernel, which refuses what it cannot do (a socket source, an O_APPEND file,
//! a directory...) before moving a byte. An error leaves the whole call to the general path
//! (no byte moved).
//!
//! A single syscall resolves each fd number once, atomically, so it needs no duplicate to be
//! safe against a concurrent close. A short count is where that ends: `transfer` (borrowed
//! descriptors, which cannot change during the borrow) continues in the general path from
//! exactly what was sent; `transfer_fds` (raw numbers) never resolves the numbers a second
//! time and ends the call with what was sent (see [`end_short`]).

use std::os::fd::BorrowedFd;

use crate::error::{Error, ErrorKind, Result};
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
    /// `sent` bytes moved in `syscalls` syscalls, fewer than the count.
    Partial { sent: u64, syscalls: u64 },
    /// A signal interrupted the call before any byte moved and the host's hook said stop.
    Failed(Error),
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
        // A page-cache policy needs the general path's bookkeeping of offsets.
        && opts.cache == crate::options::Cache::Keep
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
        // A signal before any byte moved: the host hears it now, or the general path would
        // block again with its Ctrl-C already consumed.
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => match host_check(opts, 0, syscalls) {
            Ok(()) => Fast::Skip,
            Err(e) => Fast::Failed(e),
        },
        Err(_) => Fast::Skip,
    }
}

/// A short count from a blocking sendfile may mean a signal arrived mid-call (no EINTR then):
/// the host's hook runs now, and its "stop" becomes Os(EINTR) with the bytes sent.
pub(crate) fn host_check(opts: &Options, sent: u64, syscalls: u64) -> Result<()> {
    if opts.on_interrupt.as_ref().is_some_and(|h| h()) {
        return Err(short_error(libc::EINTR, sent, syscalls));
    }
    Ok(())
}

/// Ends a call whose fast-path sendfile on raw numbers moved `sent` of its count: the numbers
/// are not resolved again to move more (another thread may have closed and reused them), so
/// the outcome is told from syscalls that move nothing. At the source's end the call is done;
/// a non-blocking destination is WouldBlock; anything else was a signal (Os(EINTR)). Each
/// carries the bytes moved, from which the caller resumes.
pub(crate) fn end_short(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    opts: &Options,
    sent: u64,
    syscalls: u64,
) -> Result<Report> {
    let start = sys::syscalls();
    host_check(opts, sent, syscalls)?;
    let at_end = sys::fstat(src).is_ok_and(|st| {
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return false;
        }
        let size = st.st_size.max(0) as u64;
        let pos = match opts.offset {
            Some(o) => Ok(o + sent),
            None => sys::lseek(src, 0, libc::SEEK_CUR),
        };
        pos.is_ok_and(|p| p >= size)
    });
    let nonblocking = sys::get_fl(dst).is_ok_and(|f| f & libc::O_NONBLOCK != 0);
    let syscalls = syscalls + (sys::syscalls() - start);
    if at_end {
        return Ok(Report {
            bytes: sent,
            method: Method::Sendfile,
            syscalls,
            ..Report::default()
        });
    }
    let mut e = if nonblocking {
        Error::new(ErrorKind::WouldBlock)
    } else {
        Error::from_errno(libc::EINTR)
    };
    e.report = short_report(sent, syscalls);
    Err(e)
}

fn short_error(errno: i32, sent: u64, syscalls: u64) -> Error {
    let mut e = Error::from_errno(errno);
    e.report = short_report(sent, syscalls);
    e
}

fn short_report(sent: u64, syscalls: u64) -> Report {
    Report {
        bytes: sent,
        method: Method::Sendfile,
        syscalls,
        ..Report::default()
    }
}
