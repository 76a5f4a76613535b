//! One transfer's state and its progress bookkeeping, shared by `transfer.rs` (which builds a
//! job and runs the method chain) and the mechanisms (which move bytes and record them here).
//!
//! Every rule about positions, counts and waits lives here or in `wait.rs`, once for every
//! method: a mechanism asks [`Job::more`] before each chunk, records each delivered byte with
//! [`Job::delivered`] / [`Job::delivered_of`], and hands every syscall error to
//! [`Job::handle`], which retries EINTR, waits on the side that can make progress for EAGAIN,
//! and classifies the rest.

use std::io;
use std::os::fd::BorrowedFd;

use crate::cache::Behind;
use crate::error::Error;
use crate::fd::FdInfo;
use crate::options::{Cache, Options};
use crate::report::Report;
use crate::sys;
use crate::wait::Waiter;

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
    /// Both must be ready (splice between a user's pipe and another descriptor, where either
    /// may be the one that blocked): waited for one after the other.
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
    /// The deadline, the interrupt hook and the spin guard.
    pub waiter: Waiter,
    /// A write returned EPIPE: a pending SIGPIPE is the engine's own.
    pub saw_epipe: bool,
    /// The source position was read at the start and must be set back at the end.
    restore_pos: bool,
    /// The page-cache policy for a regular-file source.
    pub cache: Cache,
    /// Drop-behind's progress, when the policy releases pages.
    behind: Option<Behind>,
}

impl<'a> Job<'a> {
    pub(crate) fn new(
        src: BorrowedFd<'a>,
        dst: BorrowedFd<'a>,
        si: FdInfo,
        di: FdInfo,
        opts: &Options,
        waiter: Waiter,
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
            waiter,
            saw_epipe: false,
            restore_pos: false,
            cache: opts.cache,
            behind: None,
        }
    }

    /// Starts the page-cache policy: a regular-file source whose pages are to be released is
    /// read at explicit offsets (its position is restored at the end), so the job knows which
    /// ranges are behind it.
    pub(crate) fn start_cache_policy(&mut self) -> crate::Result<()> {
        if self.cache == Cache::Keep || self.si.kind != crate::fd::FdKind::Regular {
            return Ok(());
        }
        let start = match self.explicit_pos() {
            Ok(p) => p,
            Err(Stop::Fail(e)) => return Err(e),
            Err(_) => None,
        };
        self.behind = start.map(Behind::new);
        Ok(())
    }

    /// Ends the page-cache policy: releases what was delivered and is still cached.
    pub(crate) fn finish_cache_policy(&mut self) {
        let pos = self.offset();
        if let (Some(b), Some(p)) = (&mut self.behind, pos) {
            b.finish(self.src, p);
        }
    }

    /// Before each chunk: `Ok(false)` when the count has been reached, else checks the deadline
    /// and (now and then) the interrupt hook, so a transfer that never waits still ends on
    /// time and hears Ctrl-C.
    pub fn more(&mut self) -> std::result::Result<bool, Stop> {
        if self.done() {
            return Ok(false);
        }
        self.waiter.checkpoint()?;
        Ok(true)
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
        if n > 0 {
            self.waiter.progressed();
        }
        self.report.bytes += n;
        if let Some(r) = &mut self.remaining {
            *r -= n.min(*r);
        }
        if let Pos::At(p) = &mut self.pos {
            *p += n;
            if let Some(b) = &mut self.behind {
                b.delivered_to(self.src, *p);
            }
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
        let blocking = !self.waiter.bounded() && self.di.may_block() && !self.di.nonblocking();
        if n < asked && blocking {
            self.interrupted()?;
        }
        Ok(())
    }

    /// Whether the next splice into a stream destination may say "more follows" (MSG_MORE)
    /// after `this` bytes: only when the count is not reached and the source is a file known
    /// to hold more. A stream source may end at any time, and a last chunk sent with MSG_MORE
    /// would sit corked in the socket for 200 ms.
    pub fn more_follows(&self, this: usize) -> bool {
        let beyond = |pos: u64| pos.saturating_add(this as u64) < self.si.size;
        let counted = self.remaining.is_none_or(|r| r > this as u64);
        counted && self.offset().is_some_and(beyond)
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

    /// Sets the source's file position to the next byte to deliver, if a mechanism switched to
    /// explicit offsets.
    pub(crate) fn restore_position(&mut self) {
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
        self.waiter.interrupted().map_err(Stop::Fail)
    }

    /// Waits (poll, never spin) until `side` is ready or the deadline passes.
    pub fn wait(&mut self, side: Side) -> Step {
        self.wait_for(side).map(drop)
    }

    /// [`Job::wait`], returning the source's revents (0 when only the destination was waited
    /// for); POLLPRI there means TCP urgent data.
    pub fn wait_for(&mut self, side: Side) -> std::result::Result<i16, Stop> {
        let src_events = if self.si.is_tcp() {
            sys::POLLIN | sys::POLLPRI
        } else {
            sys::POLLIN
        };
        let mut src_rev = 0;
        if matches!(side, Side::Src | Side::Both) {
            src_rev = self.waiter.wait(&[(self.src, &self.si, src_events)])?[0];
        }
        if matches!(side, Side::Dst | Side::Both) {
            self.waiter.wait(&[(self.dst, &self.di, sys::POLLOUT)])?;
        }
        Ok(src_rev)
    }

    /// Waits for one of the engine's own descriptors (a pooled pipe), which can always block.
    pub fn wait_own(&mut self, fd: BorrowedFd<'_>, events: i16) -> Step {
        self.waiter.poll(&[(fd, events)])?;
        Ok(())
    }
}
