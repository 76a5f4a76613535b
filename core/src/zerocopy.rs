//! MSG_ZEROCOPY: the streaming [`ZeroCopySender`], and the id bookkeeping shared with the
//! `msg_zerocopy` transfer method.
//!
//! The kernel numbers every successful `send(MSG_ZEROCOPY)` on a socket with a per-socket
//! 32-bit counter that starts at 0 and that user space cannot read. Completions arrive on the
//! socket's error queue as ranges of those numbers. The engine keeps, per socket, how many
//! zerocopy sends it has issued, so a sender created on a socket that was used before still
//! maps completions to its own sends. This is exact as long as every MSG_ZEROCOPY send on the
//! socket goes through zcopy in this process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::deadline::time_left;
use crate::error::{Error, ErrorKind, Result};
use crate::fd;
use crate::sys::{self, ExternalBuffer, ZcCompletion};

/// Next kernel zerocopy id per socket (keyed by the socket's device and inode).
static NEXT_ID: Mutex<Option<HashMap<(u64, u64), u32>>> = Mutex::new(None);

/// The kernel id the next zerocopy send on this socket will get.
pub(crate) fn next_kernel_id(key: (u64, u64)) -> u32 {
    let map = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner());
    map.as_ref().and_then(|m| m.get(&key).copied()).unwrap_or(0)
}

/// Records `n` more successful zerocopy sends on this socket.
pub(crate) fn advance_kernel_id(key: (u64, u64), n: u32) {
    let mut map = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner());
    let e = map.get_or_insert_with(HashMap::new).entry(key).or_insert(0);
    *e = e.wrapping_add(n);
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

    /// Waits until relative ids below `upto` have all completed, or the deadline passes.
    /// Returns whether they all did.
    pub(crate) fn wait_for(
        &mut self,
        sock: BorrowedFd<'_>,
        upto: u64,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        loop {
            self.drain(sock)?;
            if self.watermark >= upto {
                return Ok(true);
            }
            let Ok(timeout) = time_left(deadline) else {
                return Ok(false);
            };
            // POLLERR is always reported; asking for nothing else waits for the error queue.
            match sys::poll(&[(sock, 0)], timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
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
/// Dropping the sender waits (up to 30 s) for outstanding completions; buffers whose completion
/// never arrives are leaked rather than released while the kernel may still read them.
pub struct ZeroCopySender {
    sock: OwnedFd,
    key: (u64, u64),
    completions: Completions,
    /// Kernel sends issued, relative to the base.
    issued: u64,
    /// Per id not yet released: (id, relative kernel id after its last send, kept buffer).
    pending: VecDeque<(u64, u64, Option<Held>)>,
    next_id: u64,
}

impl ZeroCopySender {
    /// A sender on a TCP socket (IPv4 or IPv6). Other sockets (Unix, UDP) are Unsupported;
    /// a descriptor that is not a socket is InvalidArgument.
    pub fn new(sock: impl AsFd) -> Result<ZeroCopySender> {
        let owned = sys::dup_above(std::os::fd::AsRawFd::as_raw_fd(&sock.as_fd()), 0)?;
        Self::from_owned(owned)
    }

    /// [`new`](Self::new) on a raw descriptor number (negative: InvalidArgument).
    pub fn from_raw(sock: RawFd) -> Result<ZeroCopySender> {
        if sock < 0 {
            return Err(Error::invalid(format!("negative file descriptor ({sock})")));
        }
        Self::from_owned(sys::dup_above(sock, 0)?)
    }

    fn from_owned(sock: OwnedFd) -> Result<ZeroCopySender> {
        let info = fd::classify(sock.as_fd())?;
        match info.kind {
            fd::FdKind::Stream(_) | fd::FdKind::Datagram if !info.is_tcp() => {
                return Err(Error::unsupported(
                    "MSG_ZEROCOPY needs a TCP socket (Unix and UDP sockets cannot do it)",
                ));
            }
            fd::FdKind::Stream(_) => {}
            _ => return Err(Error::invalid("not a socket")),
        }
        enable(sock.as_fd())?;
        let key = info.dev_ino;
        // A transfer that returned with completions due owns the first ids: let them arrive.
        crate::mechanism::msg_zerocopy::wait_parked(
            key,
            Some(Instant::now() + Duration::from_secs(30)),
        );
        let base = next_kernel_id(key);
        Ok(ZeroCopySender {
            sock,
            key,
            completions: Completions::new(base),
            issued: 0,
            pending: VecDeque::new(),
            next_id: 0,
        })
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
        while sent < len {
            match held.send_from(self.sock.as_fd(), sent) {
                Ok(n) => {
                    sent += n;
                    self.issued += 1;
                    advance_kernel_id(self.key, 1);
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => self.wait_writable()?,
                    // Too much memory pinned by outstanding sends: let completions free some.
                    Some(libc::ENOBUFS) => {
                        let upto = (self.completions.watermark() + 1).min(self.issued);
                        let deadline = Instant::now() + Duration::from_secs(1);
                        self.completions
                            .wait_for(self.sock.as_fd(), upto, Some(deadline))?;
                    }
                    _ if sent == 0 => return Err(e.into()),
                    // Part of the buffer is in flight: keep it until that part completes.
                    _ => {
                        self.push(Some(held));
                        return Err(e.into());
                    }
                },
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

    fn wait_writable(&mut self) -> Result<()> {
        match sys::poll(&[(self.sock.as_fd(), sys::POLLOUT)], None) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e.into()),
        }
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
        let deadline = timeout.map(|t| Instant::now() + t);
        self.completions
            .wait_for(self.sock.as_fd(), self.issued, deadline)?;
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
        let _ = self.completions.wait_for(
            self.sock.as_fd(),
            self.issued,
            Some(Instant::now() + Duration::from_secs(30)),
        );
        self.release();
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
