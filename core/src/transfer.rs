//! The transfer loop: validation, the method chain, positions, counts, waits, EINTR and the
//! report. The mechanisms themselves live in `mechanism/`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Instant;

use crate::deadline;
use crate::error::{Error, ErrorKind, Result};
use crate::fast::{self, Fast};
use crate::fd::{self, FdInfo, FdKind};
use crate::mechanism;
use crate::method::Method;
use crate::options::{InterruptHook, Options};
use crate::plan;
use crate::report::{Fallback, Report};
use crate::sigpipe::SigpipeGuard;
use crate::sys;

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
            continue_after(sent, syscalls, opts, |o| general(src, dst, o))
        }
    }
}

/// [`transfer`] on raw descriptor numbers, for the bindings.
///
/// Negative numbers are InvalidArgument and a number that is not open is Os(EBADF). Beyond a
/// first syscall (which resolves each number once, atomically) the engine works on duplicates
/// of both descriptors, so another thread closing a number during the call cannot make the
/// engine read from or write into a file that reused it.
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
    let pinned = |o: &Options| {
        let above = src.max(dst).saturating_add(1);
        let s = sys::dup_above(src, above)?;
        let d = sys::dup_above(dst, above)?;
        general(s.as_fd(), d.as_fd(), o)
    };
    // Unpinned numbers, for the fast path's single syscall on each (see `fast.rs`).
    let (s, d) = (sys::borrow_raw(src), sys::borrow_raw(dst));
    match fast::try_sendfile(s, d, opts) {
        Fast::Done(r) => Ok(r),
        Fast::Skip => pinned(opts),
        Fast::Partial { sent, syscalls } => continue_after(sent, syscalls, opts, pinned),
    }
}

/// Runs the general path for what is left after the fast path sent `sent` bytes, and merges
/// the two reports.
fn continue_after(
    sent: u64,
    syscalls: u64,
    opts: &Options,
    rest: impl FnOnce(&Options) -> Result<Report>,
) -> Result<Report> {
    // A short count from a blocking sendfile may mean a signal arrived mid-call (no EINTR
    // then): let the host see it before the general path blocks again.
    if opts.on_interrupt.as_ref().is_some_and(|h| h()) {
        let mut e = Error::from(io::Error::from_raw_os_error(libc::EINTR));
        e.report = Report {
            bytes: sent,
            method: Method::Sendfile,
            syscalls,
            ..Report::default()
        };
        return Err(e);
    }
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
    if opts.offset.is_some_and(|o| o > i64::MAX as u64) {
        return Err(Error::invalid(
            "offset is larger than the largest file offset (2^63 - 1)",
        ));
    }
    let si = fd::classify(src)?;
    let di = fd::classify(dst)?;
    fd::check_readable(&si, "the source")?;
    fd::check_writable(&di, "the destination")?;
    if di.kind == FdKind::Datagram && !(opts.count.is_some() && si.seekable()) {
        return Err(Error::unsupported(
            "the destination is a datagram socket: it takes only counted transfers from a file, \
             sent as one datagram by one sendfile call (a byte stream would be cut into \
             arbitrary datagrams)",
        ));
    }
    if opts.offset.is_some() && !si.seekable() {
        return Err(Error::invalid(format!(
            "an offset was given but the source ({}) has no file position",
            kind_name(si.kind)
        )));
    }
    if let Some(o) = opts.dst_offset {
        if !di.seekable() {
            return Err(Error::invalid(format!(
                "a destination offset was given but the destination ({}) has no file position",
                kind_name(di.kind)
            )));
        }
        if di.append() {
            return Err(Error::invalid(
                "a destination offset cannot be honoured on an O_APPEND destination",
            ));
        }
        if o > i64::MAX as u64 {
            return Err(Error::invalid(
                "destination offset is larger than the largest file offset (2^63 - 1)",
            ));
        }
    }
    let expected = opts
        .count
        .unwrap_or(u64::MAX)
        .min(match (si.kind, opts.offset) {
            (FdKind::Regular, Some(o)) => si.size.saturating_sub(o),
            (FdKind::Regular, None) => si.size,
            _ => u64::MAX,
        });
    let ask = plan::Ask {
        method: opts.method,
        fallback: opts.fallback,
        dst_offset: opts.dst_offset.is_some(),
        bulk: expected >= plan::SPLICE_AT_LEAST,
    };
    let (chain, skipped) = plan::chain(&si, &di, ask)?;
    let _src_nb = blocking_guard(src, &si, opts)?;
    let _dst_nb = blocking_guard(dst, &di, opts)?;
    let sigpipe = (matches!(di.kind, FdKind::Pipe | FdKind::Stream(_))
        && !opts.host_ignores_sigpipe)
        .then(SigpipeGuard::new);
    let mut job = Job::new(src, dst, si, di, opts);
    if let (Some(why), Some(first)) = (skipped, chain.first()) {
        job.report.fallbacks.push(Fallback {
            from: opts.method,
            to: *first,
            reason: why,
            errno: None,
        });
    }
    let result = job.run_chain(&chain, opts);
    job.restore_position();
    if let Some(mut g) = sigpipe {
        g.saw_epipe = job.saw_epipe;
    }
    match result {
        Ok(()) => Ok(job.report),
        Err(e) => Err(e.with_report(job.report)),
    }
}

fn kind_name(kind: FdKind) -> &'static str {
    match kind {
        FdKind::Regular => "a regular file",
        FdKind::Block => "a block device",
        FdKind::Char => "a character device",
        FdKind::Pipe => "a pipe",
        FdKind::Stream(_) => "a stream socket",
        FdKind::Datagram => "a datagram socket",
        FdKind::Directory => "a directory",
        FdKind::Other => "not a file",
    }
}

/// With a deadline, an fd that can block is made non-blocking for the call (and restored), so
/// every wait goes through poll and honours the deadline.
fn blocking_guard<'a>(
    fd: BorrowedFd<'a>,
    info: &FdInfo,
    opts: &Options,
) -> Result<Option<NonblockGuard<'a>>> {
    if opts.timeout.is_some() && info.may_block() && !info.nonblocking() {
        return NonblockGuard::set(fd, info).map(Some);
    }
    Ok(None)
}

/// Where the next source byte comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pos {
    /// A pipe, socket or device: no position; bytes read are gone from the source.
    Stream,
    /// The source's own file position, advanced by the kernel (sendfile / copy_file_range
    /// with a NULL offset move it by exactly the bytes delivered).
    Kernel,
    /// An explicit offset: the next byte to deliver.
    At(u64),
}

/// Which side to wait for on EAGAIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The source must become readable.
    Src,
    /// The destination must become writable.
    Dst,
    /// Either may be the one that blocked (splice between a user pipe and another fd).
    Both,
}

/// How a mechanism stopped before finishing.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The method cannot go on here (ENOSYS, EINVAL, ...): try the next one, from exactly the
    /// bytes delivered so far.
    Fallback { errno: Option<i32>, reason: String },
    /// A real error.
    Fail(Error),
    /// The source offset is past anything the file system can hold (EOVERFLOW): that is EOF.
    Eof,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Fail(e)
    }
}

/// A mechanism's result: `Ok` when the count is reached or the source hit EOF.
pub(crate) type Step = std::result::Result<(), Stop>;

/// The state of one transfer, shared by the mechanisms.
pub(crate) struct Job<'a> {
    pub src: BorrowedFd<'a>,
    pub dst: BorrowedFd<'a>,
    pub si: FdInfo,
    pub di: FdInfo,
    pub pos: Pos,
    /// Where the next byte goes in the destination when writing at explicit offsets.
    pub dst_pos: Option<u64>,
    /// Bytes still wanted; `None` until EOF.
    pub remaining: Option<u64>,
    pub report: Report,
    pub deadline: Option<Instant>,
    zero_timeout: bool,
    hook: Option<InterruptHook>,
    /// A write returned EPIPE: a pending SIGPIPE is the engine's own.
    pub saw_epipe: bool,
    /// The source position was read at the start and must be set back at the end.
    restore_pos: bool,
}

impl<'a> Job<'a> {
    fn new(
        src: BorrowedFd<'a>,
        dst: BorrowedFd<'a>,
        si: FdInfo,
        di: FdInfo,
        opts: &Options,
    ) -> Job<'a> {
        let pos = match (si.seekable(), opts.offset) {
            (false, _) => Pos::Stream,
            (true, None) => Pos::Kernel,
            (true, Some(o)) => Pos::At(o),
        };
        // No file is larger than i64::MAX: clamp so offset + count never overflows.
        let remaining = opts.count.map(|c| match opts.offset {
            Some(o) => c.min(i64::MAX as u64 - o),
            None => c,
        });
        Job {
            src,
            dst,
            si,
            di,
            pos,
            dst_pos: opts.dst_offset,
            remaining,
            report: Report {
                method: opts.method,
                ..Report::default()
            },
            deadline: opts.timeout.map(|t| Instant::now() + t),
            zero_timeout: opts.timeout.is_some_and(|t| t.is_zero()),
            hook: opts.on_interrupt.clone(),
            saw_epipe: false,
            restore_pos: false,
        }
    }

    fn run_chain(&mut self, chain: &[Method], opts: &Options) -> Result<()> {
        let explicit = opts.method != Method::Auto;
        let mut last_mover = None;
        for (i, &m) in chain.iter().enumerate() {
            let before = self.report.bytes;
            self.report.method = m;
            let r = mechanism::run(m, self);
            if self.report.bytes > before {
                last_mover = Some(self.report.method);
            }
            if let Some(mover) = last_mover {
                self.report.method = mover;
            }
            match r {
                Ok(()) | Err(Stop::Eof) => return Ok(()),
                Err(Stop::Fail(e)) => return Err(e),
                Err(Stop::Fallback { errno, reason }) => {
                    if let Some(&next) = chain.get(i + 1) {
                        self.report.fallbacks.push(Fallback {
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

    /// True when the count has been reached (or an offset reached the largest file offset,
    /// past which nothing can be read or written).
    pub fn done(&self) -> bool {
        self.want(usize::MAX) == 0
    }

    /// How much to ask for in one call, at most `cap`. Never so much that an offset would pass
    /// the largest file offset (the kernel says EINVAL there; a read there is simply EOF).
    pub fn want(&self, cap: usize) -> usize {
        let mut w = self.remaining.unwrap_or(u64::MAX).min(cap as u64);
        for p in [self.offset(), self.dst_pos].into_iter().flatten() {
            w = w.min((i64::MAX as u64).saturating_sub(p));
        }
        w as usize
    }

    /// Records `n` bytes that reached the destination.
    pub fn delivered(&mut self, n: usize) {
        let n = n as u64;
        self.report.bytes += n;
        if let Some(r) = &mut self.remaining {
            *r -= n.min(*r);
        }
        if let Pos::At(p) = &mut self.pos {
            *p += n;
        }
        if let Some(p) = &mut self.dst_pos {
            *p += n;
        }
    }

    /// Records `n` bytes delivered by a write that asked for `asked`. A blocking destination
    /// returns short only at EOF or when a signal interrupted the call after some progress (no
    /// EINTR then): the host gets to run its handlers now (the interrupt hook), or the next
    /// call could block for ever with its Ctrl-C already consumed.
    pub fn delivered_of(&mut self, n: usize, asked: usize) -> Step {
        self.delivered(n);
        let blocking = self.deadline.is_none() && self.di.may_block() && !self.di.nonblocking();
        if n < asked && blocking {
            self.interrupted()?;
        }
        Ok(())
    }

    /// The explicit offset of the next byte, switching from the kernel's file position to an
    /// explicit one (restored at the end) for mechanisms that read ahead of delivery.
    pub fn explicit_pos(&mut self) -> std::result::Result<Option<u64>, Stop> {
        match self.pos {
            Pos::Stream => Ok(None),
            Pos::At(p) => Ok(Some(p)),
            Pos::Kernel => {
                let p =
                    sys::lseek(self.src, 0, libc::SEEK_CUR).map_err(|e| Stop::Fail(e.into()))?;
                self.pos = Pos::At(p);
                self.restore_pos = true;
                Ok(Some(p))
            }
        }
    }

    /// Whether a byte can be read at the next source offset: tells a file that really ends
    /// where its size says from a procfs/sysfs file that reports size 0 but has content.
    pub fn has_data(&mut self) -> std::result::Result<bool, Stop> {
        let off = self.explicit_pos()?;
        let mut b = [0u8; 1];
        Ok(sys::read(self.src, &mut b, off).is_ok_and(|n| n > 0))
    }

    /// The offset for a positioned read (`None` for stream sources).
    pub fn offset(&self) -> Option<u64> {
        match self.pos {
            Pos::At(p) => Some(p),
            _ => None,
        }
    }

    fn restore_position(&mut self) {
        if let (true, Pos::At(p)) = (self.restore_pos, self.pos) {
            let _ = sys::lseek(self.src, p as i64, libc::SEEK_SET);
        }
    }

    /// Handles a syscall error: EINTR retries (unless the interrupt hook says stop), EAGAIN
    /// waits for `side`, a fallback errno stops the method, anything else fails the call.
    pub fn handle(&mut self, e: io::Error, side: Side) -> Step {
        match e.raw_os_error() {
            Some(libc::EINTR) => self.interrupted(),
            Some(libc::EAGAIN) => self.wait(side),
            _ => Err(self.stop_for(e)),
        }
    }

    /// Classifies an error that is not EINTR/EAGAIN.
    pub fn stop_for(&mut self, e: io::Error) -> Stop {
        let errno = e.raw_os_error();
        match errno {
            Some(libc::EOVERFLOW) if self.offset().is_some_and(|p| p >= self.si.size) => Stop::Eof,
            Some(libc::EPIPE) => {
                self.saw_epipe = true;
                Stop::Fail(e.into())
            }
            Some(libc::ENOSYS | libc::EINVAL | libc::EXDEV | libc::EOPNOTSUPP | libc::EPERM) => {
                Stop::Fallback {
                    errno,
                    reason: e.to_string(),
                }
            }
            Some(libc::EBADF) if self.di.append() => Stop::Fallback {
                errno,
                reason: e.to_string(),
            },
            _ => Stop::Fail(e.into()),
        }
    }

    /// EINTR: ask the host whether to stop.
    pub fn interrupted(&mut self) -> Step {
        if self.hook.as_ref().is_some_and(|h| h()) {
            return Err(Stop::Fail(io::Error::from_raw_os_error(libc::EINTR).into()));
        }
        Ok(())
    }

    /// Waits (poll, never spin) until `side` is ready or the deadline passes.
    pub fn wait(&mut self, side: Side) -> Step {
        match side {
            Side::Src => self.wait_on(self.src, sys::POLLIN),
            Side::Dst => self.wait_on(self.dst, sys::POLLOUT),
            Side::Both => {
                self.wait_on(self.src, sys::POLLIN)?;
                self.wait_on(self.dst, sys::POLLOUT)
            }
        }
    }

    /// The time left before the deadline, or the WouldBlock / TimedOut stop once it is gone.
    pub fn time_left(&self) -> std::result::Result<Option<std::time::Duration>, Stop> {
        if self.zero_timeout {
            return Err(Stop::Fail(Error::new(ErrorKind::WouldBlock)));
        }
        deadline::time_left(self.deadline).map_err(|_| Stop::Fail(Error::new(ErrorKind::TimedOut)))
    }

    fn wait_on(&mut self, fd: BorrowedFd<'_>, events: i16) -> Step {
        loop {
            let timeout = self.time_left()?;
            match sys::poll(&[(fd, events)], timeout) {
                Ok(rev) if rev[0] != 0 => return Ok(()),
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => self.interrupted()?,
                Err(e) => return Err(Stop::Fail(e.into())),
            }
        }
    }
}

/// Sets O_NONBLOCK on a borrowed fd for its lifetime and restores the flags on drop.
pub(crate) struct NonblockGuard<'a> {
    fd: BorrowedFd<'a>,
    restore: Option<i32>,
}

impl<'a> NonblockGuard<'a> {
    pub(crate) fn set(fd: BorrowedFd<'a>, info: &FdInfo) -> Result<NonblockGuard<'a>> {
        if info.nonblocking() {
            return Ok(NonblockGuard { fd, restore: None });
        }
        sys::set_fl(fd, info.flags | libc::O_NONBLOCK)?;
        Ok(NonblockGuard {
            fd,
            restore: Some(info.flags),
        })
    }
}

impl Drop for NonblockGuard<'_> {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            let _ = sys::set_fl(self.fd, flags);
        }
    }
}
