//! Bidirectional stream-socket relay over splice (recv/send through a 64 KiB buffer when pipes
//! are scarce): single thread, poll-driven, half-close aware.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::fd::{self, FdInfo};
use crate::options::RelayOptions;
use crate::pipe::{self, Pipe};
use crate::report::RelayReport;
use crate::sigpipe::SigpipeGuard;
use crate::sys;
use crate::wait::{NonblockGuard, Waiter};

/// Relays running in this process: a new relay's pipes share the pipe budget with them.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Counts a relay as running for its lifetime.
struct Running;

impl Running {
    fn start() -> (Running, usize) {
        (Running, RUNNING.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The largest pipe a relay direction asks for when it is the `running`th relay: a sixteenth of
/// the budget divided by the relays running. Relays that start early keep their pipes while
/// later ones arrive, so the shares shrink as 1/n: one relay gets full-size pipes, a few hundred
/// get the 64 KiB floor, and the sum for a thousand stays within the budget (about 214 MiB of
/// 256 MiB: 1 MiB pipes for the first 16, then budget/16n, then 64 KiB from the 256th on).
fn pipe_share(running: usize) -> usize {
    pipe::budget() / (16 * running.max(1))
}

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

/// Bytes of a relay direction's buffer when pipes are scarce, the size of the smallest pipe it
/// would have had: at most 128 KiB per relay, 125 MiB for a thousand.
const BUFFER: usize = 64 << 10;

/// Where a direction holds the bytes read from `from` and not yet written to `to`: the engine's
/// pipe (splice in and out, no copy), or, when pipes are scarce, a buffer (recv and send: two
/// copies, as a read/write relay makes).
enum Hold {
    Pipe(Pipe),
    Buffer {
        bytes: Vec<u8>,
        start: usize,
        end: usize,
    },
}

impl Hold {
    /// A pipe of at most `share` bytes, or a buffer when the pipe budget has no useful pipe.
    fn new(share: usize) -> Result<Hold> {
        match pipe::acquire_at_most(share) {
            Ok(p) => Ok(Hold::Pipe(p)),
            Err(e) if pipe::is_scarce(&e) => Ok(Hold::Buffer {
                bytes: vec![0; BUFFER],
                start: 0,
                end: 0,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes held.
    fn held(&self) -> usize {
        match self {
            Hold::Pipe(p) => p.held,
            Hold::Buffer { start, end, .. } => end - start,
        }
    }

    /// Bytes it can hold.
    fn capacity(&self) -> usize {
        match self {
            Hold::Pipe(p) => p.capacity(),
            Hold::Buffer { bytes, .. } => bytes.len(),
        }
    }

    /// Reads what `from` has queued into the free room (non-blocking); Ok(0) is EOF, or a TCP
    /// urgent mark for a pipe (splice stops there; recv steps over it).
    fn fill(&mut self, from: BorrowedFd<'_>) -> std::io::Result<usize> {
        match self {
            Hold::Pipe(p) => {
                let flags = sys::SPLICE_F_NONBLOCK | sys::SPLICE_F_MOVE;
                let n = sys::splice(from, None, p.writer(), None, p.capacity() - p.held, flags)?;
                p.held += n;
                Ok(n)
            }
            Hold::Buffer { bytes, start, end } => {
                // Move what is held to the front, so the room asked for is all free at the end
                // (a recv into an empty tail would read as EOF).
                bytes.copy_within(*start..*end, 0);
                (*start, *end) = (0, *end - *start);
                let n = sys::recv(from, &mut bytes[*end..], 0)?;
                *end += n;
                Ok(n)
            }
        }
    }

    /// Writes what it holds to `to` (non-blocking); returns the bytes written.
    fn drain(&mut self, to: BorrowedFd<'_>) -> std::io::Result<usize> {
        match self {
            Hold::Pipe(p) => {
                let flags = sys::SPLICE_F_NONBLOCK | sys::SPLICE_F_MOVE;
                let n = sys::splice(p.reader(), None, to, None, p.held, flags)?;
                p.held -= n;
                Ok(n)
            }
            Hold::Buffer { bytes, start, end } => {
                let n = sys::send(to, &bytes[*start..*end], 0)?;
                *start += n;
                Ok(n)
            }
        }
    }

    /// The pipe's write end, for bytes `recv` took past an urgent mark (pipes only).
    fn pipe_mut(&mut self) -> Option<&mut Pipe> {
        match self {
            Hold::Pipe(p) => Some(p),
            Hold::Buffer { .. } => None,
        }
    }
}

/// One direction of the relay: `from` -> pipe (or buffer) -> `to`.
struct Direction {
    hold: Hold,
    /// `from` ended (EOF, or an error reading it): nothing more will be read.
    eof: bool,
    /// EOF was forwarded as `shutdown(SHUT_WR)` on `to`.
    shut: bool,
    /// Writing to `to` failed: nothing more can be delivered this way.
    dead: bool,
    moved: u64,
    /// `from` was last seen readable (or not yet tried).
    readable: bool,
    /// `to` was last seen writable (or not yet tried).
    writable: bool,
    /// Reading `from` failed (a reset): the connection is gone both ways.
    read_failed: bool,
    /// poll saw TCP urgent data pending on `from` (POLLPRI).
    urgent: bool,
    /// The first error of this direction.
    error: Option<Error>,
    /// A write got EPIPE: the SIGPIPE it raised is the relay's own to consume, whatever error
    /// the relay returns in the end.
    saw_epipe: bool,
}

impl Direction {
    fn new(share: usize) -> Result<Direction> {
        Ok(Direction {
            hold: Hold::new(share)?,
            eof: false,
            shut: false,
            dead: false,
            moved: 0,
            readable: true,
            writable: true,
            read_failed: false,
            urgent: false,
            error: None,
            saw_epipe: false,
        })
    }

    /// Nothing more will move this way.
    fn finished(&self) -> bool {
        self.shut || self.dead
    }

    /// What changes when bytes move or the direction ends (for the spin guard).
    fn state(&self) -> (u64, usize, bool, bool, bool) {
        (self.moved, self.hold.held(), self.eof, self.shut, self.dead)
    }
}

/// Relays `a` <-> `b` until both directions have reached EOF and been forwarded.
///
/// EOF from one side becomes `shutdown(SHUT_WR)` on the other (half-close), and the other
/// direction keeps flowing. An error ends only its own direction: a peer that answers and then
/// resets still has its answer delivered the other way, whatever the argument order, and the
/// error is returned once both directions have ended. Both sockets are borrowed: the relay does
/// not close them, and their O_NONBLOCK flag is restored on return. Errors carry the bytes
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
    let (a, b) = crate::transfer::pin(a, b).map_err(wrap)?;
    relay(&a, &b, opts)
}

fn check_stream(info: &FdInfo, what: &str) -> Result<()> {
    if !info.is_stream() {
        return Err(Error::unsupported(format!(
            "{what} is not a stream socket: relay joins two stream sockets"
        )));
    }
    fd::check_readable(info, what)?;
    fd::check_writable(info, what)
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
    let mut waiter = Waiter::new(opts.timeout, opts.on_interrupt.clone());
    let _nb_a = NonblockGuard::set(a, &ai)?;
    let _nb_b = NonblockGuard::set(b, &bi)?;
    let mut guard = SigpipeGuard::new();
    let (_running, running) = Running::start();
    let share = pipe_share(running);
    let mut dirs = [Direction::new(share)?, Direction::new(share)?];
    let infos = [ai, bi];
    let result = pump([a, b], &infos, &mut dirs, &mut waiter);
    // Delivered bytes count on every outcome, including the round an error ended.
    report.a_to_b = dirs[0].moved;
    report.b_to_a = dirs[1].moved;
    // Any direction's EPIPE, not only the error returned (a deadline or the other direction's
    // error may end the relay): otherwise its SIGPIPE is delivered when the guard unblocks it.
    guard.saw_epipe = dirs.iter().any(|d| d.saw_epipe)
        || result.as_ref().err().and_then(Error::errno) == Some(libc::EPIPE);
    report.buffered = dirs.iter().any(|d| matches!(d.hold, Hold::Buffer { .. }));
    for d in dirs {
        if let Hold::Pipe(p) = d.hold {
            pipe::release(p);
        }
    }
    result
}

/// Steps both directions until both have ended; waits (the one wait rule) when neither can
/// move. Returns the first error either direction met.
fn pump(
    fds: [BorrowedFd<'_>; 2],
    infos: &[FdInfo; 2],
    dirs: &mut [Direction; 2],
    waiter: &mut Waiter,
) -> Result<()> {
    loop {
        let before = dirs.iter().map(Direction::state).collect::<Vec<_>>();
        let mut progress = false;
        for (i, d) in dirs.iter_mut().enumerate() {
            progress |= d.step(fds[i], &infos[i], fds[1 - i]);
        }
        // A socket that failed to read (a reset) takes no more writes either: the direction
        // into it is over, even while it has nothing to send (it would wait for ever).
        for i in 0..2 {
            if dirs[i].read_failed && !dirs[1 - i].dead {
                dirs[1 - i].dead = true;
                progress = true;
            }
        }
        if dirs.iter().map(Direction::state).ne(before) {
            waiter.progressed();
        }
        if dirs.iter().all(Direction::finished) {
            return match dirs.iter_mut().find_map(|d| d.error.take()) {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        if progress {
            waiter.checkpoint()?;
            continue;
        }
        // Nothing can move until a socket is ready: wait for what each direction needs.
        let mut want = [0i16; 2];
        for (i, d) in dirs.iter().enumerate() {
            let (r, w) = d.waits_for(&infos[i]);
            want[i] |= r;
            want[1 - i] |= w;
        }
        let polled: Vec<(BorrowedFd<'_>, i16)> = (0..2)
            .filter(|&i| want[i] != 0)
            .map(|i| (fds[i], want[i]))
            .collect();
        let revents = waiter.poll(&polled)?;
        for (k, (fd, _)) in polled.iter().enumerate() {
            let i = usize::from(fd.as_raw_fd() != fds[0].as_raw_fd());
            let rev = revents[k];
            // Errors and hang-ups count as ready: the next splice reports them.
            let any = rev & (sys::POLLERR | sys::POLLHUP) != 0;
            if rev & (sys::POLLIN | sys::POLLPRI) != 0 || any {
                dirs[i].readable = true;
            }
            dirs[i].urgent |= rev & sys::POLLPRI != 0;
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
    fn step(&mut self, from: BorrowedFd<'_>, from_info: &FdInfo, to: BorrowedFd<'_>) -> bool {
        let mut progress = false;
        if !self.eof && !self.dead && self.readable && self.hold.held() < self.hold.capacity() {
            self.fill(from, from_info);
            progress = true;
        }
        if self.hold.held() > 0 && self.writable && !self.dead {
            self.drain(to);
            progress = true;
        }
        if self.eof && self.hold.held() == 0 && !self.shut && !self.dead {
            match sys::shutdown_write(to) {
                // The peer may be gone already; nothing is left to forward either way.
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
                Err(e) => self.fail(e.into()),
            }
            self.shut = true;
            progress = true;
        }
        progress
    }

    /// Reads what `from` has queued into the pipe or buffer. An error ends reading, not the
    /// direction: what is held is still delivered.
    fn fill(&mut self, from: BorrowedFd<'_>, from_info: &FdInfo) {
        let room = self.hold.capacity() - self.hold.held();
        let piped = matches!(self.hold, Hold::Pipe(_));
        match self.hold.fill(from) {
            Ok(0) if piped && at_urgent_mark(from, from_info) => self.past_urgent_mark(from, room),
            Ok(0) => self.eof = true,
            // Less than asked: the socket's queue is drained; poll before the next try.
            Ok(n) => self.readable = n == room,
            // Only a poll that saw urgent data (POLLPRI) makes the mark worth asking about.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if piped && self.urgent && at_urgent_mark(from, from_info) {
                    self.urgent = false;
                    self.past_urgent_mark(from, room);
                } else {
                    self.readable = false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.eof = true;
                self.read_failed = true;
                self.fail(e.into());
            }
        }
    }

    /// splice cannot step over a TCP urgent mark (it returns 0 or EAGAIN there for ever): `recv`
    /// can, as `read` does, and what it returns is written into the pipe.
    fn past_urgent_mark(&mut self, from: BorrowedFd<'_>, room: usize) {
        let Some(pipe) = self.hold.pipe_mut() else {
            return;
        };
        let mut buf = vec![0u8; room.min(64 * 1024)];
        match sys::recv(from, &mut buf, 0) {
            Ok(0) => self.eof = true,
            Ok(n) => match sys::write(pipe.writer(), &buf[..n], None) {
                Ok(w) if w == n => pipe.held += n,
                Ok(_) | Err(_) => {
                    self.eof = true;
                    self.fail(Error::from_errno(libc::EIO));
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.readable = false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.eof = true;
                self.read_failed = true;
                self.fail(e.into());
            }
        }
    }

    /// Writes what the pipe or buffer holds into `to`. An error there ends the direction.
    fn drain(&mut self, to: BorrowedFd<'_>) {
        let held = self.hold.held();
        match self.hold.drain(to) {
            Ok(n) => {
                self.writable = n == held;
                self.moved += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.writable = false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.dead = true;
                self.fail(e.into());
            }
        }
    }

    fn fail(&mut self, e: Error) {
        self.saw_epipe |= e.errno() == Some(libc::EPIPE);
        self.error.get_or_insert(e);
    }

    /// Poll events this direction waits for: (on `from`, on `to`).
    fn waits_for(&self, from_info: &FdInfo) -> (i16, i16) {
        let reading = !self.eof && !self.dead && !self.readable;
        let r = if reading && self.hold.held() < self.hold.capacity() {
            if from_info.is_tcp() {
                sys::POLLIN | sys::POLLPRI
            } else {
                sys::POLLIN
            }
        } else {
            0
        };
        let w = if self.hold.held() > 0 && !self.writable && !self.dead {
            sys::POLLOUT
        } else {
            0
        };
        (r, w)
    }
}

/// Whether a TCP socket sits at its urgent (MSG_OOB) mark.
fn at_urgent_mark(fd: BorrowedFd<'_>, info: &FdInfo) -> bool {
    info.is_tcp() && sys::at_urgent_mark(fd).unwrap_or(false)
}
