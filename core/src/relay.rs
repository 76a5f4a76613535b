//! Bidirectional stream-socket relay over splice: single thread, poll-driven, half-close aware.

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Instant;

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
    let mut dirs = [
        Direction {
            pipe: pipe::acquire()?,
            eof: false,
            shut: false,
            moved: 0,
        },
        Direction {
            pipe: pipe::acquire()?,
            eof: false,
            shut: false,
            moved: 0,
        },
    ];
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
    let flags = sys::SPLICE_F_NONBLOCK | sys::SPLICE_F_MOVE;
    loop {
        let mut progress = false;
        // Readiness wanted per fd: [a, b].
        let mut want = [0i16; 2];
        for (i, d) in dirs.iter_mut().enumerate() {
            let (from, to, from_i, to_i) = if i == 0 { (a, b, 0, 1) } else { (b, a, 1, 0) };
            if !d.eof && d.pipe.held < d.pipe.capacity() {
                let room = d.pipe.capacity() - d.pipe.held;
                match sys::splice(from, None, d.pipe.writer(), None, room, flags) {
                    Ok(0) => {
                        d.eof = true;
                        progress = true;
                    }
                    Ok(n) => {
                        d.pipe.held += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        want[from_i] |= sys::POLLIN
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => progress = true,
                    Err(e) => return Err(e.into()),
                }
            }
            if d.pipe.held > 0 {
                match sys::splice(d.pipe.reader(), None, to, None, d.pipe.held, flags) {
                    Ok(n) => {
                        d.pipe.held -= n;
                        d.moved += n as u64;
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        want[to_i] |= sys::POLLOUT
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => progress = true,
                    Err(e) => return Err(e.into()),
                }
            }
            if d.eof && d.pipe.held == 0 && !d.shut {
                match sys::shutdown_write(to) {
                    // The peer may be gone already; nothing is left to forward either way.
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
                    Err(e) => return Err(e.into()),
                }
                d.shut = true;
                progress = true;
            }
        }
        if dirs.iter().all(|d| d.shut) {
            return Ok(());
        }
        if progress {
            continue;
        }
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::new(ErrorKind::TimedOut));
                }
                Some(d - now)
            }
        };
        let mut fds = Vec::with_capacity(2);
        if want[0] != 0 {
            fds.push((a, want[0]));
        }
        if want[1] != 0 {
            fds.push((b, want[1]));
        }
        match sys::poll(&fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                if opts.on_interrupt.as_ref().is_some_and(|h| h()) {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
