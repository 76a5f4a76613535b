//! Bidirectional stream-socket relay over splice: single thread, poll-driven, half-close aware.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

use crate::deadline::time_left;
use crate::error::{Error, ErrorKind, Result};
use crate::fd::{self, FdInfo};
use crate::options::RelayOptions;
use crate::pipe::{self, Pipe};
use crate::report::RelayReport;
use crate::sigpipe::SigpipeGuard;
use crate::sys;
use crate::transfer::NonblockGuard;

/// A relay error with the bytes delivered each way before it.
#[derive(Debug)]
pub struct RelayError {
    /// What went wrong.
    pub error: Error,
    /// Bytes delivered each way before the error.
    pub report: RelayReport,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "relay failed after {} bytes a->b and {} bytes b->a: {}",
            self.report.a_to_b, self.report.b_to_a, self.error
        )
    }
}

impl std::error::Error for RelayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// One direction of the relay: `from` -> pipe -> `to`.
struct Direction {
    pipe: Pipe,
    eof: bool,
    shut: bool,
    moved: u64,
    /// `from` was last seen readable (or not yet tried).
    readable: bool,
    /// `to` was last seen writable (or not yet tried).
    writable: bool,
}

impl Direction {
    fn new() -> Result<Direction> {
        Ok(Direction {
            pipe: pipe::acquire()?,
            eof: false,
            shut: false,
            moved: 0,
            readable: true,
            writable: true,
        })
    }
}

/// Relays `a` <-> `b` until both directions have reached EOF and been forwarded.
///
/// EOF from one side becomes `shutdown(SHUT_WR)` on the other (half-close), and the other
/// direction keeps flowing. Both sockets are borrowed: the relay does not close them, and
/// their O_NONBLOCK flag is restored on return. Errors (a reset peer) carry the bytes
/// delivered each way.
// Errors are rare and carry the progress each way by design; their size is not a concern.
#[allow(clippy::result_large_err)]
pub fn relay(a: impl AsFd, b: impl AsFd, opts: &RelayOptions) -> Result<RelayReport, RelayError> {
    let start = sys::syscalls();
    let mut report = RelayReport::default();
    let r = run(a.as_fd(), b.as_fd(), opts, &mut report);
    report.syscalls = sys::syscalls() - start;
    match r {
        Ok(()) => Ok(report),
        Err(error) => Err(RelayError { error, report }),
    }
}

/// [`relay`] on raw descriptor numbers, for the bindings: negative numbers are
/// InvalidArgument; the engine works on duplicates, so a concurrent close of a number cannot
/// redirect the relay to another file.
#[allow(clippy::result_large_err)]
pub fn relay_fds(a: RawFd, b: RawFd, opts: &RelayOptions) -> Result<RelayReport, RelayError> {
    let wrap = |error: Error| RelayError {
        error,
        report: RelayReport::default(),
    };
    if a < 0 || b < 0 {
        return Err(wrap(Error::invalid(format!(
            "negative file descriptor ({a}, {b})"
        ))));
    }
    let above = a.max(b).saturating_add(1);
    let a = sys::dup_above(a, above).map_err(|e| wrap(e.into()))?;
    let b = sys::dup_above(b, above).map_err(|e| wrap(e.into()))?;
    relay(&a, &b, opts)
}

fn check_stream(info: &FdInfo, what: &str) -> Result<()> {
    fd::check_readable(info, what)?;
    fd::check_writable(info, what)?;
    if !info.is_stream() {
        return Err(Error::unsupported(format!(
            "{what} is not a stream socket: relay joins two stream sockets"
        )));
    }
    Ok(())
}

fn run(
    a: BorrowedFd<'_>,
    b: BorrowedFd<'_>,
    opts: &RelayOptions,
    report: &mut RelayReport,
) -> Result<()> {
    let ai = fd::classify(a)?;
    let bi = fd::classify(b)?;
    check_stream(&ai, "a")?;
    check_stream(&bi, "b")?;
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let _nb_a = NonblockGuard::set(a, &ai)?;
    let _nb_b = NonblockGuard::set(b, &bi)?;
    let mut guard = SigpipeGuard::new();
    let mut dirs = [Direction::new()?, Direction::new()?];
    let result = pump(a, b, &mut dirs, deadline, opts);
    // Delivered bytes count on every outcome, including the round an error ended.
    report.a_to_b = dirs[0].moved;
    report.b_to_a = dirs[1].moved;
    if let Err(e) = &result
        && e.errno() == Some(libc::EPIPE)
    {
        guard.saw_epipe = true;
    }
    for d in dirs {
        pipe::release(d.pipe);
    }
    result
}

fn pump(
    a: BorrowedFd<'_>,
    b: BorrowedFd<'_>,
    dirs: &mut [Direction; 2],
    deadline: Option<Instant>,
    opts: &RelayOptions,
) -> Result<()> {
    let fds = [a, b];
    loop {
        let mut progress = false;
        for (i, d) in dirs.iter_mut().enumerate() {
            progress |= d.step(fds[i], fds[1 - i])?;
        }
        if dirs.iter().all(|d| d.shut) {
            return Ok(());
        }
        if progress {
            continue;
        }
        // Nothing can move until a socket is ready: wait for what each direction needs.
        let mut want = [0i16; 2];
        for (i, d) in dirs.iter().enumerate() {
            let (r, w) = d.waits_for();
            want[i] |= r;
            want[1 - i] |= w;
        }
        let timeout = time_left(deadline).map_err(|_| Error::new(ErrorKind::TimedOut))?;
        let polled: Vec<(BorrowedFd<'_>, i16)> = (0..2)
            .filter(|&i| want[i] != 0)
            .map(|i| (fds[i], want[i]))
            .collect();
        let revents = match sys::poll(&polled, timeout) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                if opts.on_interrupt.as_ref().is_some_and(|h| h()) {
                    return Err(e.into());
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for (k, (fd, _)) in polled.iter().enumerate() {
            let i = usize::from(fd.as_raw_fd() != a.as_raw_fd());
            let rev = revents[k];
            // Errors and hang-ups count as ready: the next splice reports them.
            let any = rev & (sys::POLLERR | sys::POLLHUP) != 0;
            if rev & sys::POLLIN != 0 || any {
                dirs[i].readable = true;
            }
            if rev & sys::POLLOUT != 0 || any {
                dirs[1 - i].writable = true;
            }
        }
    }
}

impl Direction {
    /// One round for `from` -> pipe -> `to`: splice in what is queued, splice out what the
    /// pipe holds, forward EOF as SHUT_WR. Syscalls are only tried on sides last seen ready,
    /// so an idle direction costs nothing while the other streams. Returns whether it moved.
    fn step(&mut self, from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<bool> {
        let flags = sys::SPLICE_F_NONBLOCK | sys::SPLICE_F_MOVE;
        let mut progress = false;
        let room = self.pipe.capacity() - self.pipe.held;
        if !self.eof && self.readable && room > 0 {
            match sys::splice(from, None, self.pipe.writer(), None, room, flags) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.pipe.held += n;
                    // Less than asked: the socket's queue is drained; poll before the next try.
                    self.readable = n == room;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
            progress = true;
        }
        if self.pipe.held > 0 && self.writable {
            match sys::splice(self.pipe.reader(), None, to, None, self.pipe.held, flags) {
                Ok(n) => {
                    self.writable = n == self.pipe.held;
                    self.pipe.held -= n;
                    self.moved += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
            progress = true;
        }
        if self.eof && self.pipe.held == 0 && !self.shut {
            match sys::shutdown_write(to) {
                // The peer may be gone already; nothing is left to forward either way.
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
                Err(e) => return Err(e.into()),
            }
            self.shut = true;
            progress = true;
        }
        Ok(progress)
    }

    /// Poll events this direction waits for: (on `from`, on `to`).
    fn waits_for(&self) -> (i16, i16) {
        let r = if !self.eof && !self.readable && self.pipe.held < self.pipe.capacity() {
            sys::POLLIN
        } else {
            0
        };
        let w = if self.pipe.held > 0 && !self.writable {
            sys::POLLOUT
        } else {
            0
        };
        (r, w)
    }
}
