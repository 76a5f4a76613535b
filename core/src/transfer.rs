//! The transfer entry points: the fast path, descriptor pinning, validation, the method chain
//! and the report. One transfer's state lives in `job.rs`, the wait rule in `wait.rs`, the
//! mechanisms in `mechanism/`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::check;
use crate::error::{Error, Result};
use crate::fast::{self, Fast};
use crate::fd::{self, FdKind};
use crate::job::{Job, Stop};
use crate::mechanism;
use crate::method::Method;
use crate::options::{Cache, Options};
use crate::plan;
use crate::report::{Fallback, Report};
use crate::sigpipe::SigpipeGuard;
use crate::sys;
use crate::wait::{NonblockGuard, Waiter};

/// Moves bytes from `src` to `dst` with the cheapest correct method and reports what it did.
///
/// Both descriptors are borrowed for the call and keep their file status flags. See
/// [`Options`] for offset, count, timeout and fallback, and README.md for the method matrix.
/// On error, [`Error::report`] says how many bytes reached `dst`; with a seekable source and no
/// offset, the source position is left at its start plus those bytes, so the caller can resume.
pub fn transfer(src: impl AsFd, dst: impl AsFd, opts: &Options) -> Result<Report> {
    let (src, dst) = (src.as_fd(), dst.as_fd());
    match fast::try_sendfile(src, dst, opts) {
        Fast::Done(r) => Ok(r),
        Fast::Skip => general(src, dst, opts),
        Fast::Partial { sent, syscalls } => {
            // The borrow keeps both descriptors what they were: the general path goes on.
            fast::host_check(opts, sent, syscalls)?;
            continue_after(sent, syscalls, opts, |o| general(src, dst, o))
        }
        Fast::Failed(e) => Err(e),
    }
}

/// [`transfer`] on raw descriptor numbers, for the bindings.
///
/// Negative numbers are InvalidArgument and a number that is not open is Os(EBADF). Each
/// number is resolved once: either by the fast path's single syscall, or by duplicating it
/// before the general path's first syscall, so another thread closing a number during the
/// call (and a file reusing it) can never receive or supply bytes of this call.
///
/// A fast-path `sendfile` that moves only part of its count (a full non-blocking socket, a
/// signal) therefore ends the call: the numbers are not looked up again to send the rest.
/// The result is then OK at the source's end, WouldBlock for a non-blocking destination, and
/// Os(EINTR) otherwise, each with the bytes moved, so the caller resumes from there.
pub fn transfer_fds(src: RawFd, dst: RawFd, opts: &Options) -> Result<Report> {
    if src < 0 || dst < 0 {
        return Err(Error::invalid(format!(
            "negative file descriptor ({src}, {dst})"
        )));
    }
    if opts.count == Some(0) {
        return Ok(Report {
            method: opts.method,
            ..Report::default()
        });
    }
    // Unpinned numbers, for the fast path's single syscall on each (see `fast.rs`).
    let (s, d) = (sys::borrow_raw(src), sys::borrow_raw(dst));
    match fast::try_sendfile(s, d, opts) {
        Fast::Done(r) => Ok(r),
        Fast::Skip => {
            let (s, d) = pin(src, dst)?;
            general(s.as_fd(), d.as_fd(), opts)
        }
        Fast::Partial { sent, syscalls } => fast::end_short(s, d, opts, sent, syscalls),
        Fast::Failed(e) => Err(e),
    }
}

/// Duplicates two caller numbers so the call works on files that cannot change under it.
///
/// The source's duplicate takes the lowest free number, which is the destination's when the
/// destination is not open: that is EBADF for the destination, not a borrowed copy of the
/// source. No minimum number is asked for, so a descriptor at RLIMIT_NOFILE - 1 works.
pub(crate) fn pin(src: RawFd, dst: RawFd) -> Result<(OwnedFd, OwnedFd)> {
    let s = sys::dup(src)?;
    if s.as_raw_fd() == dst {
        return Err(Error::from_errno(libc::EBADF));
    }
    let d = sys::dup(dst)?;
    Ok((s, d))
}

/// Runs the general path for what is left after the fast path sent `sent` bytes, and merges
/// the two reports.
fn continue_after(
    sent: u64,
    syscalls: u64,
    opts: &Options,
    rest: impl FnOnce(&Options) -> Result<Report>,
) -> Result<Report> {
    let mut o = opts.clone();
    o.count = opts.count.map(|c| c - sent);
    o.offset = opts.offset.map(|off| off + sent);
    let merge = |r: &mut Report| {
        r.bytes += sent;
        r.syscalls += syscalls;
        if r.bytes == sent {
            r.method = Method::Sendfile;
        }
    };
    match rest(&o) {
        Ok(mut r) => {
            merge(&mut r);
            Ok(r)
        }
        Err(mut e) => {
            merge(&mut e.report);
            Err(e)
        }
    }
}

/// Everything but the fast path: classify, plan, run the chain, fill in the report.
fn general(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, opts: &Options) -> Result<Report> {
    let start = sys::syscalls();
    let finish = |mut r: Report| {
        r.syscalls = sys::syscalls() - start;
        r
    };
    match run(src, dst, opts) {
        Ok(r) => Ok(finish(r)),
        Err(mut e) => {
            e.report = finish(std::mem::take(&mut e.report));
            Err(e)
        }
    }
}

fn run(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, opts: &Options) -> Result<Report> {
    if opts.count == Some(0) {
        return Ok(Report {
            method: opts.method,
            ..Report::default()
        });
    }
    check::source_offset(opts)?;
    let si = fd::classify(src)?;
    let di = fd::classify(dst)?;
    check::pair(src, dst, &si, &di, opts)?;
    let expected = opts
        .count
        .unwrap_or(u64::MAX)
        .min(match (si.kind, opts.offset) {
            (FdKind::Regular, Some(o)) => si.size.saturating_sub(o),
            (FdKind::Regular, None) => si.size,
            _ => u64::MAX,
        });
    // O_DIRECT reads happen in read_write: Auto means read_write then; an explicit method that
    // reads through the page cache cannot honour the policy.
    let direct = opts.cache == Cache::Direct && si.kind == FdKind::Regular;
    let method = match (direct, opts.method) {
        (true, Method::Auto | Method::ReadWrite) => Method::ReadWrite,
        (true, m) => {
            return Err(Error::invalid(format!(
                "cache Direct reads the source with O_DIRECT, which only Auto and read_write \
                 do; {m} reads through the page cache (use DropBehind with it)"
            )));
        }
        (false, m) => m,
    };
    let ask = plan::Ask {
        method,
        fallback: opts.fallback,
        dst_offset: opts.dst_offset.is_some(),
        bulk: expected >= plan::SPLICE_AT_LEAST,
        bounded: opts.timeout.is_some(),
    };
    let (chain, skipped) = plan::chain(&si, &di, ask)?;
    let waiter = Waiter::new(opts.timeout, opts.on_interrupt.clone());
    let _src_nb = NonblockGuard::for_call(src, &si, &waiter)?;
    let _dst_nb = NonblockGuard::for_call(dst, &di, &waiter)?;
    let sigpipe = (matches!(di.kind, FdKind::Pipe | FdKind::Stream(_))
        && !opts.host_ignores_sigpipe)
        .then(SigpipeGuard::new);
    let mut job = Job::new(src, dst, si, di, opts, waiter);
    job.start_cache_policy()?;
    if let (Some(why), Some(first)) = (skipped, chain.first()) {
        job.report.fallbacks.push(Fallback {
            from: opts.method,
            to: *first,
            reason: why,
            errno: None,
        });
    }
    let result = run_chain(&mut job, &chain, opts);
    job.finish_cache_policy();
    job.restore_position();
    if let Some(mut g) = sigpipe {
        g.saw_epipe = job.saw_epipe;
    }
    match result {
        Ok(()) => Ok(job.report),
        Err(e) => Err(e.with_report(job.report)),
    }
}

/// Runs the methods of the chain in order until one finishes; a fallback goes on from exactly
/// the bytes delivered so far.
fn run_chain(job: &mut Job<'_>, chain: &[Method], opts: &Options) -> Result<()> {
    let explicit = opts.method != Method::Auto;
    let mut last_mover = None;
    for (i, &m) in chain.iter().enumerate() {
        let before = job.report.bytes;
        job.report.method = m;
        let r = mechanism::run(m, job);
        if job.report.bytes > before {
            last_mover = Some(job.report.method);
        }
        if let Some(mover) = last_mover {
            job.report.method = mover;
        }
        match r {
            Ok(()) | Err(Stop::Eof) => return Ok(()),
            Err(Stop::Fail(e)) => return Err(e),
            Err(Stop::Fallback { errno, reason }) => {
                if let Some(&next) = chain.get(i + 1) {
                    job.report.fallbacks.push(Fallback {
                        from: m,
                        to: next,
                        reason,
                        errno,
                    });
                    continue;
                }
                if explicit && !opts.fallback {
                    return Err(Error::unsupported(format!("{m}: {reason}")));
                }
                return Err(match errno {
                    Some(e) => Error::from_errno(e),
                    None => Error::unsupported(reason),
                });
            }
        }
    }
    Err(Error::unsupported(
        "no method can move bytes between these descriptors",
    ))
}
