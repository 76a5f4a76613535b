//! MSG_ZEROCOPY: the streaming [`ZeroCopySender`], and the per-socket bookkeeping shared with
//! the `msg_zerocopy` transfer method.
//!
//! The kernel numbers every successful `send(MSG_ZEROCOPY)` on a socket with a per-socket
//! 32-bit counter that starts at 0 and that user space cannot read. Completions arrive on the
//! socket's error queue as ranges of those numbers. The engine remembers, per socket (keyed by
//! its `SO_COOKIE`, which unlike an inode number is never reused), how many zerocopy sends it has
//! issued and how many notifications are still due from calls that returned before them. This
//! is exact as long as every MSG_ZEROCOPY send on the socket goes through zcopy in this process.
//!
//! The registry is bounded ([`REGISTRY_MAX`] sockets): past that, sockets with nothing in flight
//! are forgotten (a forgotten socket's next transfer works as before; a `ZeroCopySender` on it
//! is refused as Unsupported, because it could not match completions to its buffers).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, ErrorCode, ErrorKind, Result};
use crate::fd;
use crate::options::InterruptHook;
use crate::sys::{self, ExternalBuffer, ZcCompletion};
use crate::wait::Waiter;

/// At most this many sockets are remembered.
const REGISTRY_MAX: usize = 4096;

/// What the engine remembers of one socket between calls.
#[derive(Clone, Copy, Default)]
struct Ids {
    /// The kernel id of the next zerocopy send.
    next: u32,
    /// Notifications still due for sends of calls that have returned.
    in_flight: u64,
}

static REGISTRY: Mutex<Option<HashMap<u64, Ids>>> = Mutex::new(None);

fn with_registry<T>(f: impl FnOnce(&mut HashMap<u64, Ids>) -> T) -> T {
    let mut g = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn remember(cookie: u64, update: impl FnOnce(&mut Ids)) {
    with_registry(|m| {
        if m.len() >= REGISTRY_MAX && !m.contains_key(&cookie) {
            m.retain(|_, ids| ids.in_flight > 0);
            if m.len() >= REGISTRY_MAX {
                m.clear();
            }
        }
        update(m.entry(cookie).or_default());
    });
}

/// How many sockets the MSG_ZEROCOPY registry remembers (its bound is tested).
pub fn zerocopy_sockets_remembered() -> usize {
    with_registry(|m| m.len())
}

/// Completion notifications counted for one transfer call: those still due from earlier calls
/// on the socket come first (sends complete in order), then the call's own.
pub(crate) struct Tally {
    earlier: u64,
    issued: u64,
    completed: u64,
    copied: u64,
    cookie: u64,
}

impl Tally {
    /// Starts counting on the socket `cookie`, taking over what earlier calls left due.
    pub(crate) fn resume(cookie: u64) -> Tally {
        let earlier = with_registry(|m| m.get(&cookie).map_or(0, |ids| ids.in_flight));
        Tally {
            earlier,
            issued: 0,
            completed: 0,
            copied: 0,
            cookie,
        }
    }

    /// Records `n` successful zerocopy sends.
    pub(crate) fn issued(&mut self, n: u32) {
        self.issued += u64::from(n);
        remember(self.cookie, |ids| ids.next = ids.next.wrapping_add(n));
    }

    /// Notifications still due (earlier calls' and this one's).
    pub(crate) fn pending(&self) -> u64 {
        (self.earlier + self.issued).saturating_sub(self.completed)
    }

    /// This call's sends whose notification arrived.
    pub(crate) fn ours_completed(&self) -> u64 {
        self.completed.saturating_sub(self.earlier).min(self.issued)
    }

    /// ... of which the kernel copied.
    pub(crate) fn ours_copied(&self) -> u64 {
        self.copied.min(self.ours_completed())
    }

    /// Reads what the error queue holds without waiting. Returns how many sends completed.
    pub(crate) fn drain(&mut self, sock: BorrowedFd<'_>) -> std::io::Result<u64> {
        let mut got = Vec::new();
        sys::recv_zc_completions(sock, &mut got)?;
        let before = self.completed;
        for c in got {
            let earlier_left = self.earlier.saturating_sub(self.completed);
            self.completed += c.count();
            // Earlier calls' notifications come first; only ours count as copied.
            if c.copied {
                self.copied += c.count().saturating_sub(earlier_left);
            }
        }
        Ok(self.completed - before)
    }

    /// Waits (the call's deadline and interrupt hook apply) until at least one more send
    /// completes.
    pub(crate) fn wait_one(&mut self, sock: BorrowedFd<'_>, waiter: &mut Waiter) -> Result<()> {
        loop {
            if self.drain(sock)? > 0 || self.poll_error_queue(sock, waiter)? {
                return Ok(());
            }
        }
    }

    /// Waits (the call's deadline and interrupt hook apply) until every notification due has
    /// arrived.
    pub(crate) fn wait_all(&mut self, sock: BorrowedFd<'_>, waiter: &mut Waiter) -> Result<()> {
        loop {
            self.drain(sock)?;
            if self.pending() == 0 || self.poll_error_queue(sock, waiter)? {
                return Ok(());
            }
        }
    }

    /// One wait for the error queue (POLLERR is always reported; asking for nothing else waits
    /// for it). `true` when the connection is gone and nothing more can be expected.
    fn poll_error_queue(&mut self, sock: BorrowedFd<'_>, waiter: &mut Waiter) -> Result<bool> {
        let rev = waiter.poll(&[(sock, 0)])?[0];
        Ok(rev & sys::POLLHUP != 0 && self.drain(sock)? == 0)
    }

    /// Leaves what is still due for the socket's next call.
    pub(crate) fn park(&self) {
        let due = self.pending();
        remember(self.cookie, |ids| ids.in_flight = due);
    }
}

/// Turns SO_ZEROCOPY on (it is off by default and must be set before MSG_ZEROCOPY sends).
pub(crate) fn enable(sock: BorrowedFd<'_>) -> Result<()> {
    sys::setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_ZEROCOPY, 1).map_err(|e| {
        if matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::EINVAL)
        ) {
            Error::unsupported(format!("SO_ZEROCOPY refused by the kernel: {e}"))
        } else {
            e.into()
        }
    })
}

/// Completed kernel ids relative to a base: a watermark below which all have completed, plus
/// the ranges completed out of order above it.
#[derive(Default)]
pub(crate) struct Completions {
    base: u32,
    watermark: u64,
    ahead: BTreeMap<u64, u64>,
    /// Sends whose completion arrived.
    pub completed: u64,
    /// ... of which the kernel copied.
    pub copied: u64,
}

impl Completions {
    pub(crate) fn new(base: u32) -> Completions {
        Completions {
            base,
            ..Completions::default()
        }
    }

    /// Every relative id below this has completed.
    pub(crate) fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Maps a kernel id to a relative id near the watermark (ids are 32-bit and wrap).
    fn relative(&self, id: u32) -> u64 {
        let rel32 = id.wrapping_sub(self.base);
        let high = self.watermark & !0xffff_ffff;
        let mut rel = high | u64::from(rel32);
        if rel + (1 << 31) < self.watermark {
            rel += 1 << 32;
        }
        rel
    }

    pub(crate) fn add(&mut self, c: ZcCompletion) {
        // Before 2^31 sends, an id "below" the base is an earlier call's: skip those, and clip
        // a range the kernel merged across the base.
        let (rel_lo, rel_hi) = (c.lo.wrapping_sub(self.base), c.hi.wrapping_sub(self.base));
        if self.watermark < 1 << 31 && (rel_hi as i32) < 0 {
            return;
        }
        let c = if self.watermark < 1 << 31 && (rel_lo as i32) < 0 {
            ZcCompletion { lo: self.base, ..c }
        } else {
            c
        };
        let lo = self.relative(c.lo);
        let hi = lo + c.count();
        self.completed += c.count();
        if c.copied {
            self.copied += c.count();
        }
        let e = self.ahead.entry(lo).or_insert(hi);
        *e = (*e).max(hi);
        while let Some((&s, &e)) = self.ahead.first_key_value() {
            if s > self.watermark {
                break;
            }
            self.watermark = self.watermark.max(e);
            self.ahead.pop_first();
        }
    }

    /// Reads what the error queue holds without waiting. Returns how many sends completed.
    pub(crate) fn drain(&mut self, sock: BorrowedFd<'_>) -> std::io::Result<u64> {
        let before = self.completed;
        let mut got = Vec::new();
        sys::recv_zc_completions(sock, &mut got)?;
        for c in got {
            self.add(c);
        }
        Ok(self.completed - before)
    }

    /// Waits until relative ids below `upto` have all completed, or the waiter's deadline
    /// passes (`Ok(false)`); an interrupt the hook stops is Os(EINTR).
    pub(crate) fn wait_for(
        &mut self,
        sock: BorrowedFd<'_>,
        upto: u64,
        waiter: &mut Waiter,
    ) -> Result<bool> {
        loop {
            self.drain(sock)?;
            if self.watermark >= upto {
                return Ok(true);
            }
            // POLLERR is always reported; asking for nothing else waits for the error queue.
            match waiter.poll(&[(sock, 0)]) {
                Ok(rev) if rev[0] & sys::POLLHUP != 0 && self.drain(sock)? == 0 => {
                    return Ok(self.watermark >= upto);
                }
                Ok(_) => {}
                Err(e) if matches!(e.code(), ErrorCode::TimedOut | ErrorCode::WouldBlock) => {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Counters of a [`ZeroCopySender`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Ids handed out so far (the next send gets this id).
    pub sent: u64,
    /// Every id below this has completed and its buffer has been released.
    pub done: u64,
    /// Sends not yet completed (`sent - done`).
    pub pending: u64,
    /// Kernel sends whose completion arrived.
    pub completions: u64,
    /// ... of which the kernel copied the data instead of sharing pages.
    pub copied: u64,
}

/// A buffer the sender keeps alive until its completion.
enum Held {
    Owned(Box<dyn AsRef<[u8]> + Send>),
    External(ExternalBuffer),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::Owned(b) => (**b).as_ref().len(),
            Held::External(e) => e.len(),
        }
    }

    fn send_from(&self, fd: BorrowedFd<'_>, at: usize) -> std::io::Result<usize> {
        match self {
            Held::Owned(b) => sys::send_zerocopy(fd, &(**b).as_ref()[at..]),
            Held::External(e) => e.send_zerocopy_from(fd, at),
        }
    }
}

/// Streams buffers to a TCP socket with MSG_ZEROCOPY, owning each until the kernel's
/// completion for it arrives.
///
/// The sender owns a duplicate of the socket descriptor (closed on drop); the caller's
/// descriptor stays the caller's. Ids start at 0 and increase by one per [`send`](Self::send).
/// Every wait (a full socket, completions) asks the interrupt hook on EINTR (see
/// [`ZeroCopySender::set_interrupt_hook`]). Dropping the sender waits (up to 30 s) for
/// outstanding completions; buffers whose completion never arrives are leaked rather than
/// released while the kernel may still read them.
pub struct ZeroCopySender {
    sock: OwnedFd,
    cookie: u64,
    completions: Completions,
    /// Kernel sends issued, relative to the base.
    issued: u64,
    /// Per id not yet released: (id, relative kernel id after its last send, kept buffer).
    pending: VecDeque<(u64, u64, Option<Held>)>,
    next_id: u64,
    hook: Option<InterruptHook>,
}

impl ZeroCopySender {
    /// A sender on a TCP socket (IPv4 or IPv6). Anything else (a Unix or UDP socket, a file) is
    /// Unsupported, and so is a socket that had zerocopy sends this engine does not know of
    /// (their completions could not be told from this sender's).
    pub fn new(sock: impl AsFd) -> Result<ZeroCopySender> {
        let owned = sys::dup(std::os::fd::AsRawFd::as_raw_fd(&sock.as_fd()))?;
        Self::from_owned(owned)
    }

    /// [`new`](Self::new) on a raw descriptor number (negative: InvalidArgument).
    pub fn from_raw(sock: RawFd) -> Result<ZeroCopySender> {
        if sock < 0 {
            return Err(Error::invalid(format!("negative file descriptor ({sock})")));
        }
        Self::from_owned(sys::dup(sock)?)
    }

    fn from_owned(sock: OwnedFd) -> Result<ZeroCopySender> {
        let info = fd::classify(sock.as_fd())?;
        if !info.is_tcp() {
            return Err(Error::unsupported(
                "MSG_ZEROCOPY needs a TCP socket (Unix and UDP sockets, files and pipes cannot \
                 do it)",
            ));
        }
        let cookie = sys::socket_cookie(sock.as_fd())?;
        let already_on =
            sys::getsockopt_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_ZEROCOPY)? != 0;
        let known = with_registry(|m| m.get(&cookie).copied());
        // With SO_ZEROCOPY never turned on, no zerocopy send can have been made: ids start at 0.
        let base = match (known, already_on) {
            (Some(ids), _) => ids.next,
            (None, false) => 0,
            (None, true) => {
                return Err(Error::unsupported(
                    "this socket already made MSG_ZEROCOPY sends that zcopy does not know of: \
                     their completions could not be told from the sender's",
                ));
            }
        };
        enable(sock.as_fd())?;
        // The sender reads the whole error queue, earlier calls' notifications included.
        remember(cookie, |ids| ids.in_flight = 0);
        Ok(ZeroCopySender {
            sock,
            cookie,
            completions: Completions::new(base),
            issued: 0,
            pending: VecDeque::new(),
            next_id: 0,
            hook: None,
        })
    }

    /// Sets the hook asked when a wait is interrupted by a signal (EINTR): `true` stops the
    /// wait with Os(EINTR), so a host language can raise its own exception (Ctrl-C).
    pub fn set_interrupt_hook(&mut self, hook: Option<InterruptHook>) {
        self.hook = hook;
    }

    fn waiter(&self, timeout: Option<Duration>) -> Waiter {
        Waiter::new(timeout, self.hook.clone())
    }

    /// Sends all of `buf` with MSG_ZEROCOPY and keeps `buf` until its completion. Returns its id.
    pub fn send<B: AsRef<[u8]> + Send + 'static>(&mut self, buf: B) -> Result<u64> {
        self.send_held(Held::Owned(Box::new(buf)))
    }

    /// Sends memory owned by a foreign caller (see [`ExternalBuffer::new`] for the contract).
    pub fn send_external(&mut self, buf: ExternalBuffer) -> Result<u64> {
        self.send_held(Held::External(buf))
    }

    fn send_held(&mut self, held: Held) -> Result<u64> {
        let len = held.len();
        let mut sent = 0usize;
        let mut waiter = self.waiter(None);
        while sent < len {
            let r = match held.send_from(self.sock.as_fd(), sent) {
                Ok(n) => {
                    sent += n;
                    self.issued += 1;
                    remember(self.cookie, |ids| ids.next = ids.next.wrapping_add(1));
                    Ok(())
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => waiter.interrupted(),
                    Some(libc::EAGAIN) => {
                        waiter.poll(&[(self.sock.as_fd(), sys::POLLOUT)]).map(drop)
                    }
                    // Too much memory pinned by outstanding sends: let completions free some.
                    Some(libc::ENOBUFS) => {
                        let upto = (self.completions.watermark() + 1).min(self.issued);
                        let mut w = self.waiter(Some(Duration::from_secs(1)));
                        self.completions
                            .wait_for(self.sock.as_fd(), upto, &mut w)
                            .map(drop)
                    }
                    _ => Err(e.into()),
                },
            };
            if let Err(e) = r {
                // Part of the buffer is in flight: keep it until that part completes.
                if sent > 0 {
                    self.push(Some(held));
                }
                return Err(e);
            }
        }
        let id = self.push(Some(held));
        self.release();
        Ok(id)
    }

    fn push(&mut self, keep: Option<Held>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push_back((id, self.issued, keep));
        id
    }

    /// Releases, in id order, every buffer whose sends have all completed.
    fn release(&mut self) {
        while let Some(&(_, last, _)) = self.pending.front() {
            if last > self.completions.watermark() {
                break;
            }
            self.pending.pop_front();
        }
    }

    /// Reads completions, waiting up to `timeout` (`None`: as long as it takes) for every
    /// pending send to complete. Returns the id below which every send has completed.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<u64> {
        let mut waiter = self.waiter(timeout);
        self.completions
            .wait_for(self.sock.as_fd(), self.issued, &mut waiter)?;
        self.release();
        Ok(self.done())
    }

    /// The id below which every send has completed.
    pub fn done(&self) -> u64 {
        self.pending.front().map_or(self.next_id, |p| p.0)
    }

    /// Counters so far.
    pub fn stats(&self) -> SenderStats {
        let done = self.done();
        SenderStats {
            sent: self.next_id,
            done,
            pending: self.next_id - done,
            completions: self.completions.completed,
            copied: self.completions.copied,
        }
    }

    /// Waits up to `timeout` for outstanding completions, then closes the sender's descriptor.
    /// Returns TimedOut if some never arrived (their buffers are then leaked, never freed early).
    pub fn close(mut self, timeout: Option<Duration>) -> Result<()> {
        let done = self.poll(timeout)?;
        if done < self.next_id {
            self.leak_pending();
            return Err(Error::new(ErrorKind::TimedOut));
        }
        Ok(())
    }

    /// Forgets buffers the kernel may still read: leaking is safe, freeing them is not.
    fn leak_pending(&mut self) {
        for (_, _, keep) in self.pending.drain(..) {
            std::mem::forget(keep);
        }
    }
}

impl Drop for ZeroCopySender {
    fn drop(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut waiter = Waiter::new(Some(Duration::from_secs(30)), None);
        let _ = self
            .completions
            .wait_for(self.sock.as_fd(), self.issued, &mut waiter);
        self.release();
        // Notifications still due are the socket's next transfer's to read.
        let due = self.issued.saturating_sub(self.completions.watermark());
        remember(self.cookie, |ids| ids.in_flight = due);
        self.leak_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lo: u32, hi: u32, copied: bool) -> ZcCompletion {
        ZcCompletion { lo, hi, copied }
    }

    #[test]
    fn in_order_ranges_advance_the_watermark() {
        let mut comp = Completions::new(0);
        comp.add(c(0, 2, true));
        comp.add(c(3, 3, false));
        assert_eq!(comp.watermark(), 4);
        assert_eq!((comp.completed, comp.copied), (4, 3));
    }

    #[test]
    fn out_of_order_ranges_wait_for_the_gap() {
        let mut comp = Completions::new(10);
        comp.add(c(13, 14, false));
        assert_eq!(comp.watermark(), 0);
        comp.add(c(10, 12, false));
        assert_eq!(comp.watermark(), 5);
    }

    #[test]
    fn ids_wrap_at_32_bits() {
        let mut comp = Completions::new(u32::MAX - 1);
        comp.add(c(u32::MAX - 1, 1, true));
        assert_eq!(comp.watermark(), 4);
        assert_eq!(comp.completed, 4);
    }
}
