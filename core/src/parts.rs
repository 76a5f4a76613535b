//! A whole response in one call: an ordered list of byte buffers and file ranges sent to one
//! descriptor (an HTTP status line and headers + a file range + a trailer; a broker's header +
//! record batches from a segment file).
//!
//! Sent piece by piece, each part costs a call, its syscalls and, on TCP, usually a segment of
//! its own. Here:
//! - consecutive byte parts go out in one `sendmsg`, with MSG_MORE when more parts follow, so
//!   a 200-byte header and a 4 KiB file leave as one segment (MSG_MORE holds the header until
//!   the file's send, unless an ACK for earlier data arrives in between and the socket, with
//!   TCP_NODELAY or nothing else in flight, sends what it holds: a response that starts while
//!   the previous one is still unacknowledged may take two segments; the TCP_CORK window below
//!   would close that gap for three more syscalls per response);
//! - a file part followed by more parts is sent inside one TCP_CORK window (`sendfile` has no
//!   MSG_MORE), after which the socket's cork state is what it was;
//! - file parts go through [`crate::transfer`]: the same method choice, fallbacks and waits.
//!
//! The response has one deadline and one byte count. WouldBlock, TimedOut and errors carry the
//! bytes of the response delivered so far; [`PartsOptions::skip`] resumes from there. Every
//! file range is checked against its file's size before the first byte goes out (a response
//! with a short body would be malformed), and a file that shrinks during the call ends it.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fd;
use crate::method::Method;
use crate::options::{Cache, InterruptHook, Options};
use crate::report::Report;
use crate::sigpipe::SigpipeGuard;
use crate::sys;
use crate::transfer::{transfer, transfer_fds};
use crate::wait::{NonblockGuard, Waiter};

/// One piece of a response.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// Bytes from memory (a header, a boundary, a trailer).
    Bytes(&'a [u8]),
    /// `len` bytes of a regular file from `offset` (the file's position is not used or moved).
    File {
        /// The file.
        fd: BorrowedFd<'a>,
        /// Where the range starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

impl Part<'_> {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::File { len, .. } => *len,
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`Part`] with a raw descriptor number, for the bindings ([`send_parts_fds`]).
#[derive(Clone, Copy, Debug)]
pub enum RawPart<'a> {
    /// Bytes from memory.
    Bytes(&'a [u8]),
    /// A file range.
    File {
        /// The file's descriptor number.
        fd: RawFd,
        /// Where the range starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

/// How to send a response. `PartsOptions::default()` waits as long as it takes, from byte 0.
#[derive(Clone, Default)]
pub struct PartsOptions {
    /// One deadline for the whole response; `None` waits, zero never waits (WouldBlock).
    pub timeout: Option<Duration>,
    /// Called on EINTR; see [`InterruptHook`].
    pub on_interrupt: Option<InterruptHook>,
    /// See [`Options::host_ignores_sigpipe`].
    pub host_ignores_sigpipe: bool,
    /// Bytes of this response an earlier call already delivered (the `bytes` of its error):
    /// the call starts right after them.
    pub skip: u64,
    /// The page-cache policy for the file parts; see [`Cache`].
    pub cache: Cache,
}

impl std::fmt::Debug for PartsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartsOptions")
            .field("timeout", &self.timeout)
            .field("on_interrupt", &self.on_interrupt.is_some())
            .field("host_ignores_sigpipe", &self.host_ignores_sigpipe)
            .field("skip", &self.skip)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Sends `parts` in order to `dst` (a stream socket; a pipe or a file works too) and reports
/// the bytes delivered, which on error is where a call with [`PartsOptions::skip`] resumes.
///
/// Errors before any byte moves: a file range past its file's end, or a `skip` past the
/// response's end, is InvalidArgument; a file part that is not a regular file is Unsupported.
/// The report's `method` is the one that moved the last file bytes (ReadWrite when only byte
/// parts moved).
pub fn send_parts(dst: impl AsFd, parts: &[Part<'_>], opts: &PartsOptions) -> Result<Report> {
    let items: Vec<Item<'_>> = parts
        .iter()
        .map(|p| match *p {
            Part::Bytes(b) => Item::Bytes(b),
            Part::File { fd, offset, len } => Item::File {
                src: Src::Borrowed(fd),
                offset,
                len,
            },
        })
        .collect();
    send_items(dst.as_fd(), &items, opts, sys::syscalls())
}

/// A part as the call works on it: a file is either borrowed (it cannot change during the
/// call) or a caller's raw number, which [`crate::transfer_fds`] resolves once.
#[derive(Clone, Copy)]
enum Item<'a> {
    Bytes(&'a [u8]),
    File { src: Src<'a>, offset: u64, len: u64 },
}

#[derive(Clone, Copy)]
enum Src<'a> {
    Borrowed(BorrowedFd<'a>),
    Raw(RawFd),
}

impl Item<'_> {
    fn len(&self) -> u64 {
        match self {
            Item::Bytes(b) => b.len() as u64,
            Item::File { len, .. } => *len,
        }
    }
}

fn send_items(
    dst: BorrowedFd<'_>,
    items: &[Item<'_>],
    opts: &PartsOptions,
    start: u64,
) -> Result<Report> {
    let mut report = Report::default();
    let result = run(dst, items, opts, &mut report);
    report.syscalls = sys::syscalls() - start;
    match result {
        Ok(()) => Ok(report),
        Err(e) => Err(e.with_report(report)),
    }
}

/// [`send_parts`] on raw descriptor numbers, for the bindings.
///
/// Each number is resolved once for the bytes it moves, as in [`crate::transfer_fds`]: the
/// destination is duplicated before the first byte (a response takes several syscalls on it),
/// and each file part goes through `transfer_fds`, whose single fast-path `sendfile` needs no
/// duplicate and which ends the call rather than resolve a number again after a short send
/// (WouldBlock for a non-blocking destination, Os(EINTR) otherwise, with the bytes so far: the
/// caller resumes with `skip`). So another thread closing a number during the call can never
/// split the response between two files or two connections. Negative numbers are
/// InvalidArgument; a number that is not open is Os(EBADF).
pub fn send_parts_fds(dst: RawFd, parts: &[RawPart<'_>], opts: &PartsOptions) -> Result<Report> {
    let file_fds = || {
        parts.iter().filter_map(|p| match p {
            RawPart::File { fd, .. } => Some(*fd),
            RawPart::Bytes(_) => None,
        })
    };
    if let Some(n) = std::iter::once(dst).chain(file_fds()).find(|n| *n < 0) {
        return Err(Error::invalid(format!("negative file descriptor ({n})")));
    }
    let start = sys::syscalls();
    let pinned = sys::dup(dst)?;
    // The lowest free number is a file part's number only if that number was not open.
    if file_fds().any(|n| n == pinned.as_raw_fd()) {
        return Err(Error::from_errno(libc::EBADF));
    }
    let items: Vec<Item<'_>> = parts
        .iter()
        .map(|p| match *p {
            RawPart::Bytes(b) => Item::Bytes(b),
            RawPart::File { fd, offset, len } => Item::File {
                src: Src::Raw(fd),
                offset,
                len,
            },
        })
        .collect();
    send_items(pinned.as_fd(), &items, opts, start)
}

fn run(
    dst: BorrowedFd<'_>,
    parts: &[Item<'_>],
    opts: &PartsOptions,
    report: &mut Report,
) -> Result<()> {
    check(parts, opts.skip)?;
    let todo = after_skip(parts, opts.skip);
    if todo.is_empty() {
        return Ok(());
    }
    let waiter = Waiter::new(opts.timeout, opts.on_interrupt.clone());
    // The destination is only classified when something depends on its kind: a deadline (it
    // must not block inside a syscall) or a file part with more after it (the cork window).
    let file_then_more = todo[..todo.len() - 1]
        .iter()
        .any(|(_, p)| matches!(p, Item::File { .. }));
    let info = (waiter.bounded() || file_then_more)
        .then(|| fd::classify(dst))
        .transpose()?;
    let _nonblock = match &info {
        Some(i) => NonblockGuard::for_call(dst, i, &waiter)?,
        None => None,
    };
    let _cork = match &info {
        Some(i) if i.is_tcp() && file_then_more => Cork::on(dst)?,
        _ => None,
    };
    let mut sigpipe = (!opts.host_ignores_sigpipe).then(SigpipeGuard::new);
    let mut out = Out {
        dst,
        waiter,
        socket: true,
        hook: opts.on_interrupt.clone(),
        cache: opts.cache,
        report,
        file_moved: false,
    };
    let result = out.send_all(&todo);
    if let (Some(g), Err(e)) = (sigpipe.as_mut(), &result) {
        g.saw_epipe = e.errno() == Some(libc::EPIPE);
    }
    if !out.file_moved && out.report.bytes > 0 {
        out.report.method = Method::ReadWrite;
    }
    result
}

/// Checks every part before a byte moves: file ranges inside regular files, lengths that add
/// up, `skip` inside the response.
fn check(parts: &[Item<'_>], skip: u64) -> Result<()> {
    let mut total: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        if let Item::File { src, offset, len } = *p {
            let end = offset
                .checked_add(len)
                .filter(|e| *e <= i64::MAX as u64)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "part {i}: offset {offset} + length {len} overflows"
                    ))
                })?;
            // A raw number may be resolved again here: fstat moves no byte.
            let st = sys::fstat(match src {
                Src::Borrowed(fd) => fd,
                Src::Raw(n) => sys::borrow_raw(n),
            })?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Error::unsupported(format!(
                    "part {i}: a file part must be a regular file"
                )));
            }
            let size = st.st_size as u64;
            if end > size {
                return Err(Error::invalid(format!(
                    "part {i}: range {offset}..{end} is past the end of its file ({size} bytes)"
                )));
            }
        }
        total = total
            .checked_add(p.len())
            .ok_or_else(|| Error::invalid("the parts' lengths overflow"))?;
    }
    if skip > total {
        return Err(Error::invalid(format!(
            "skip {skip} is past the end of the response ({total} bytes)"
        )));
    }
    Ok(())
}

/// The non-empty parts left after the first `skip` bytes, with their indexes in `parts`.
fn after_skip<'a>(parts: &[Item<'a>], mut skip: u64) -> Vec<(usize, Item<'a>)> {
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let len = p.len();
        if skip >= len {
            skip -= len;
            continue;
        }
        out.push((
            i,
            match *p {
                Item::Bytes(b) => Item::Bytes(&b[skip as usize..]),
                Item::File { src, offset, len } => Item::File {
                    src,
                    offset: offset + skip,
                    len: len - skip,
                },
            },
        ));
        skip = 0;
    }
    out
}

/// The sending side of one call.
struct Out<'a, 'r> {
    dst: BorrowedFd<'a>,
    waiter: Waiter,
    /// `sendmsg` until the destination says it is not a socket, then `writev`.
    socket: bool,
    hook: Option<InterruptHook>,
    cache: Cache,
    report: &'r mut Report,
    file_moved: bool,
}

impl Out<'_, '_> {
    fn send_all(&mut self, todo: &[(usize, Item<'_>)]) -> Result<()> {
        let mut i = 0;
        while i < todo.len() {
            match todo[i].1 {
                Item::Bytes(_) => {
                    let end = todo[i..]
                        .iter()
                        .position(|(_, p)| !matches!(p, Item::Bytes(_)))
                        .map_or(todo.len(), |k| i + k);
                    let mut bufs: Vec<IoSlice<'_>> = todo[i..end]
                        .iter()
                        .filter_map(|(_, p)| match p {
                            Item::Bytes(b) => Some(IoSlice::new(b)),
                            Item::File { .. } => None,
                        })
                        .collect();
                    self.send_bytes(&mut bufs, end < todo.len())?;
                    i = end;
                }
                Item::File { src, offset, len } => {
                    self.send_file(todo[i].0, src, offset, len)?;
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// One run of byte parts, as few `sendmsg` calls as the socket buffer allows.
    fn send_bytes(&mut self, bufs: &mut [IoSlice<'_>], more: bool) -> Result<()> {
        let flags = if more { libc::MSG_MORE } else { 0 };
        let mut bufs = bufs;
        while !bufs.is_empty() {
            self.waiter.checkpoint()?;
            let r = if self.socket {
                sys::send_vectored(self.dst, bufs, flags)
            } else {
                sys::write_vectored(self.dst, bufs)
            };
            match r {
                Ok(0) => return Err(Error::from_errno(libc::EIO)),
                Ok(n) => {
                    self.report.bytes += n as u64;
                    self.waiter.progressed();
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::ENOTSOCK) if self.socket => self.socket = false,
                    Some(libc::EINTR) => self.waiter.interrupted()?,
                    Some(libc::EAGAIN) => {
                        self.waiter.poll(&[(self.dst, sys::POLLOUT)])?;
                    }
                    _ => return Err(e.into()),
                },
            }
        }
        Ok(())
    }

    /// One file range through `transfer`, within what is left of the deadline.
    fn send_file(&mut self, index: usize, src: Src<'_>, offset: u64, len: u64) -> Result<()> {
        let opts = Options {
            offset: Some(offset),
            count: Some(len),
            timeout: self.waiter.remaining_timeout()?,
            on_interrupt: self.hook.clone(),
            // The SIGPIPE guard covers the whole response.
            host_ignores_sigpipe: true,
            cache: self.cache,
            ..Options::default()
        };
        let r = match src {
            Src::Borrowed(fd) => transfer(fd, self.dst, &opts),
            // The destination is this call's own duplicate: its number is stable.
            Src::Raw(n) => transfer_fds(n, self.dst.as_raw_fd(), &opts),
        };
        let part = match &r {
            Ok(r) => r,
            Err(e) => &e.report,
        };
        self.report.bytes += part.bytes;
        self.report.fallbacks.extend(part.fallbacks.iter().cloned());
        if part.bytes > 0 {
            self.report.method = part.method;
            self.file_moved = true;
            self.waiter.progressed();
        }
        let moved = r?.bytes;
        if moved < len {
            return Err(Error::invalid(format!(
                "part {index}: its file ended {moved} bytes into the {len}-byte range at offset \
                 {offset} (the file shrank during the call)"
            )));
        }
        Ok(())
    }
}

/// TCP_CORK on for the call (a file part must not push a partial segment before the parts
/// after it), off again on drop; a socket the caller corked stays corked.
struct Cork<'a> {
    fd: BorrowedFd<'a>,
}

impl<'a> Cork<'a> {
    fn on(fd: BorrowedFd<'a>) -> Result<Option<Cork<'a>>> {
        if sys::getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK)? != 0 {
            return Ok(None);
        }
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK, 1)?;
        Ok(Some(Cork { fd }))
    }
}

impl Drop for Cork<'_> {
    fn drop(&mut self) {
        // Uncorking pushes what is queued; it cannot fail on a socket that was corked.
        let _ = sys::setsockopt_int(self.fd, libc::IPPROTO_TCP, libc::TCP_CORK, 0);
    }
}
