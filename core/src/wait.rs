//! The one wait rule, shared by every mechanism, the relay, MSG_ZEROCOPY completions and the
//! sender: one deadline for the whole call, the host's interrupt hook, and poll on the
//! descriptor that can make progress — never a retry loop without a wait.
//!
//! - A wait polls only descriptors that can block (pipes, sockets, devices); a regular file is
//!   always "ready", so waiting on one would spin.
//! - Every wait is bounded by the deadline; a timeout of zero never waits (WouldBlock).
//! - EINTR asks the host's hook whether to stop (Python's Ctrl-C).
//! - Between chunks ([`Waiter::checkpoint`]) the deadline and, every [`HOOK_EVERY`], the hook are
//!   checked too, so a transfer that never waits (`/dev/zero` -> `/dev/null`) still ends on
//!   time and still hears Ctrl-C.
//! - A wait that reports readiness again and again without the caller making progress is a
//!   spin the kernel tricked us into (a state poll cannot see): after [`IDLE_WAKEUPS_BEFORE_BACKOFF`]
//!   such wake-ups each further wait first sleeps [`BACKOFF`], so CPU stays low while the
//!   deadline and the hook still apply.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::fd::FdInfo;
use crate::options::InterruptHook;
use crate::sys;

/// How often the interrupt hook is asked between chunks when nothing waits, and during a long
/// wait.
pub(crate) const HOOK_EVERY: Duration = Duration::from_millis(50);
/// Wake-ups without progress tolerated before waits back off.
const IDLE_WAKEUPS_BEFORE_BACKOFF: u32 = 16;
/// The back-off sleep of a wait that keeps waking up without progress.
const BACKOFF: Duration = Duration::from_millis(2);

/// The deadline, the interrupt hook and the spin guard of one call.
pub(crate) struct Waiter {
    deadline: Option<Instant>,
    zero: bool,
    hook: Option<InterruptHook>,
    last_hook: Instant,
    idle_wakeups: u32,
}

impl Waiter {
    /// `timeout`: `None` waits forever, zero never waits, else one deadline from now (a timeout
    /// too large for the clock is the same as none).
    pub(crate) fn new(timeout: Option<Duration>, hook: Option<InterruptHook>) -> Waiter {
        let now = Instant::now();
        Waiter {
            deadline: timeout.and_then(|t| now.checked_add(t)),
            zero: timeout.is_some_and(|t| t.is_zero()),
            hook,
            last_hook: now,
            idle_wakeups: 0,
        }
    }

    /// Whether the call has a deadline (or a zero timeout): borrowed descriptors that can
    /// block are then made non-blocking so that every wait goes through [`Waiter::wait`].
    pub(crate) fn bounded(&self) -> bool {
        self.deadline.is_some() || self.zero
    }

    /// The time a wait may take now: `Ok(None)` forever, or the WouldBlock / TimedOut error.
    pub(crate) fn time_left(&self) -> Result<Option<Duration>> {
        if self.zero {
            return Err(Error::new(ErrorKind::WouldBlock));
        }
        let Some(d) = self.deadline else {
            return Ok(None);
        };
        let now = Instant::now();
        if now >= d {
            return Err(Error::new(ErrorKind::TimedOut));
        }
        Ok(Some(d - now))
    }

    /// What is left of the call's timeout, for a nested call that takes its own: `None`
    /// (forever), zero (never wait), the time to the deadline, or TimedOut once it passed.
    pub(crate) fn remaining_timeout(&self) -> Result<Option<Duration>> {
        if self.zero {
            return Ok(Some(Duration::ZERO));
        }
        self.time_left()
    }

    /// EINTR (or a short blocking write, which is how a signal shows after some progress):
    /// stop with EINTR if the host's hook says so.
    pub(crate) fn interrupted(&mut self) -> Result<()> {
        self.last_hook = Instant::now();
        if self.hook.as_ref().is_some_and(|h| h()) {
            return Err(Error::from_errno(libc::EINTR));
        }
        Ok(())
    }

    /// Between two chunks of work that did not wait: the deadline (a positive timeout) and,
    /// every [`HOOK_EVERY`], the interrupt hook.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        if self.deadline.is_none() && self.hook.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        if !self.zero && self.deadline.is_some_and(|d| now >= d) {
            return Err(Error::new(ErrorKind::TimedOut));
        }
        if self.hook.is_some() && now.duration_since(self.last_hook) >= HOOK_EVERY {
            self.interrupted()?;
        }
        Ok(())
    }

    /// Waits until one of `fds` reports one of its events (or an error / hang-up, which the
    /// next syscall reports), within the deadline. Entries for descriptors that never block
    /// are ignored; with nothing left to wait on this returns at once. Returns the revents in
    /// the order of `fds`.
    pub(crate) fn wait(&mut self, fds: &[(BorrowedFd<'_>, &FdInfo, i16)]) -> Result<[i16; 4]> {
        let polled: Vec<(BorrowedFd<'_>, i16)> = fds
            .iter()
            .filter(|(_, info, _)| info.may_block())
            .map(|(fd, _, ev)| (*fd, *ev))
            .collect();
        if polled.is_empty() {
            // Nothing here can block: the syscall that said EAGAIN is retried at once, and the
            // spin guard slows it down should that repeat.
            self.backoff()?;
            self.idle_wakeups += 1;
            return Ok([0; 4]);
        }
        let revents = self.poll(&polled)?;
        let mut out = [0i16; 4];
        let mut k = 0;
        for (i, (_, info, _)) in fds.iter().enumerate().take(4) {
            if info.may_block() {
                out[i] = revents[k];
                k += 1;
            }
        }
        Ok(out)
    }

    /// [`Waiter::wait`] on descriptors the caller knows can block (the engine's own pipes).
    ///
    /// With a hook, a wait also wakes every [`HOOK_EVERY`] to ask it: a signal that arrived
    /// just before `poll` began (its handler ran, no EINTR follows) is still acted on.
    pub(crate) fn poll(&mut self, fds: &[(BorrowedFd<'_>, i16)]) -> Result<[i16; 4]> {
        self.backoff()?;
        loop {
            let left = self.time_left()?;
            let timeout = match (&self.hook, left) {
                (Some(_), None) => Some(HOOK_EVERY),
                (Some(_), Some(t)) => Some(t.min(HOOK_EVERY)),
                (None, t) => t,
            };
            match sys::poll(fds, timeout) {
                Ok(rev) if rev.iter().any(|r| *r != 0) => {
                    self.idle_wakeups += 1;
                    return Ok(rev);
                }
                Ok(_) if self.hook.is_some() => self.interrupted()?,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => self.interrupted()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Records that the caller made progress since its last wait (resets the spin guard).
    pub(crate) fn progressed(&mut self) {
        self.idle_wakeups = 0;
    }

    /// Sleeps [`BACKOFF`] (bounded by the deadline, interruptible) once waits keep waking up
    /// without progress.
    fn backoff(&mut self) -> Result<()> {
        if self.idle_wakeups < IDLE_WAKEUPS_BEFORE_BACKOFF {
            return Ok(());
        }
        let pause = self.time_left()?.map_or(BACKOFF, |t| t.min(BACKOFF));
        match sys::poll(&[], Some(pause)) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => self.interrupted(),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sets O_NONBLOCK on a borrowed fd for its lifetime and restores the flags on drop, so that a
/// call with a deadline never blocks inside a syscall.
pub(crate) struct NonblockGuard<'a> {
    fd: BorrowedFd<'a>,
    restore: Option<i32>,
}

impl<'a> NonblockGuard<'a> {
    /// Makes `fd` non-blocking unless it already is.
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

    /// A guard for a call bounded by a deadline: only descriptors that can block need one.
    pub(crate) fn for_call(
        fd: BorrowedFd<'a>,
        info: &FdInfo,
        waiter: &Waiter,
    ) -> Result<Option<NonblockGuard<'a>>> {
        if waiter.bounded() && info.may_block() && !info.nonblocking() {
            return NonblockGuard::set(fd, info).map(Some);
        }
        Ok(None)
    }
}

impl Drop for NonblockGuard<'_> {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            let _ = sys::set_fl(self.fd, flags);
        }
    }
}
