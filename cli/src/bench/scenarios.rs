//! The measured scenarios. Each run sets up its descriptors and helper threads outside the
//! measured window, then measures wall time, whole-process CPU time (getrusage, so receiver
//! and feeder threads are included) and the measuring thread's syscalls, from the first byte
//! until the last byte has reached its final destination.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use zcopy_core::{ErrorCode, ErrorKind, Method, Options, RelayOptions, relay, transfer};

use super::baseline;

/// What is moved where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Regular file -> regular file (page cache to page cache, no fsync).
    FileFile,
    /// Regular file -> TCP loopback; a receiver thread splices into /dev/null.
    FileTcp,
    /// TCP -> TCP: a feeder thread sends the file into one connection, the measured thread
    /// forwards it into another, a sink thread drains it.
    TcpTcp,
    /// Regular file -> pipe; a drainer thread splices into /dev/null.
    FilePipe,
    /// Many small file -> TCP transfers of this many bytes each (ops per second).
    Small(u64),
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 6] = [
        Scenario::FileFile,
        Scenario::FileTcp,
        Scenario::TcpTcp,
        Scenario::FilePipe,
        Scenario::Small(4 << 10),
        Scenario::Small(64 << 10),
    ];

    /// A stable identifier for JSON and `--scenario`.
    pub fn id(self) -> String {
        match self {
            Scenario::FileFile => "file_file".into(),
            Scenario::FileTcp => "file_tcp".into(),
            Scenario::TcpTcp => "tcp_tcp".into(),
            Scenario::FilePipe => "file_pipe".into(),
            Scenario::Small(n) => format!("small_{}k", n >> 10),
        }
    }

    /// The label in the table.
    pub fn label(self) -> String {
        match self {
            Scenario::FileFile => "file -> file".into(),
            Scenario::FileTcp => "file -> tcp".into(),
            Scenario::TcpTcp => "tcp -> tcp".into(),
            Scenario::FilePipe => "file -> pipe".into(),
            Scenario::Small(n) => format!("{} KiB -> tcp", n >> 10),
        }
    }

    /// What is measured besides the engine's methods: the read/write baseline always, the
    /// plain sendfile loop where the destination is TCP, the engine's `relay` for TCP -> TCP.
    /// Every explicit method is tried; the engine itself says which do not apply.
    pub fn variants(self) -> Vec<Variant> {
        let mut v = vec![Variant::Rw64k];
        v.extend(Method::EXPLICIT.into_iter().map(Variant::Engine));
        v.push(Variant::Engine(Method::Auto));
        match self {
            Scenario::FileTcp | Scenario::Small(_) => v.push(Variant::LibcSendfile),
            Scenario::TcpTcp => v.push(Variant::Relay),
            Scenario::FileFile | Scenario::FilePipe => {}
        }
        v
    }

    /// Whether this scenario reports operations per second.
    pub fn counts_ops(self) -> bool {
        matches!(self, Scenario::Small(_))
    }
}

/// One row of the table: how the bytes are moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The engine-free baseline: `read`/`write` (`pread` from files) with a 64 KiB buffer.
    Rw64k,
    /// The engine's `transfer` with this method.
    Engine(Method),
    /// The engine-free reference: a plain `sendfile` loop written against libc.
    LibcSendfile,
    /// The engine's bidirectional `relay`.
    Relay,
}

impl Variant {
    /// A stable identifier for JSON.
    pub fn id(self) -> &'static str {
        match self {
            Variant::Rw64k => "rw64k",
            Variant::Engine(m) => m.name(),
            Variant::LibcSendfile => "libc_sendfile",
            Variant::Relay => "relay",
        }
    }

    /// The label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Rw64k => "read/write 64K (libc)",
            Variant::Engine(m) => m.name(),
            Variant::LibcSendfile => "libc sendfile loop",
            Variant::Relay => "relay()",
        }
    }

    /// An explicit engine method (what "Auto vs best explicit" compares with).
    pub fn is_explicit(self) -> bool {
        matches!(self, Variant::Engine(m) if m != Method::Auto)
    }

    /// Where the row sits within its scenario.
    pub fn order(self) -> usize {
        match self {
            Variant::Rw64k => 0,
            Variant::Engine(Method::Auto) => 20,
            Variant::Engine(m) => 1 + m as usize,
            Variant::LibcSendfile => 30,
            Variant::Relay => 31,
        }
    }
}

/// One measurement.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Bytes that reached the final destination.
    pub bytes: u64,
    /// Wall time from the first byte to the last byte's arrival.
    pub wall: Duration,
    /// User + system CPU time of the whole process over the same window.
    pub cpu: Duration,
    /// Syscalls issued by the measured thread (the engine's own count for engine rows).
    pub syscalls: u64,
    /// Transfers issued (1 per repetition except for the small-transfer scenarios).
    pub ops: u64,
    /// The method the engine reported for the last run (engine rows only).
    pub used: Option<Method>,
    /// How many runs the sample adds up (runs repeat until the sample's minimum time).
    pub reps: u64,
}

impl Sample {
    /// Adds another repetition's numbers.
    pub fn add(&mut self, s: &Sample) {
        self.bytes += s.bytes;
        self.wall += s.wall;
        self.cpu += s.cpu;
        self.syscalls += s.syscalls;
        self.ops += s.ops;
        self.reps += s.reps;
        self.used = s.used.or(self.used);
    }
}

/// Why a run produced no sample.
#[derive(Clone, Debug)]
pub enum RunError {
    /// The engine said Unsupported: the method does not apply to this fd pair.
    NotApplicable(String),
    /// Anything else, including a byte count that does not add up.
    Failed(String),
}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> RunError {
        RunError::Failed(e.to_string())
    }
}

impl From<zcopy_core::Error> for RunError {
    fn from(e: zcopy_core::Error) -> RunError {
        match e.code() {
            ErrorCode::Unsupported => match e.kind {
                ErrorKind::Unsupported(why) => RunError::NotApplicable(why),
                _ => RunError::NotApplicable(e.to_string()),
            },
            _ => RunError::Failed(e.to_string()),
        }
    }
}

/// The test file and what the runs share.
pub struct Env {
    /// The source file, warm in the page cache.
    pub src: File,
    /// The file -> file destination, truncated before each run.
    pub dst: File,
    /// The source's size.
    pub size: u64,
    /// The read/write baseline's buffer.
    pub buf: Vec<u8>,
}

/// Bytes moved and syscalls issued by the measured thread.
struct Moved {
    bytes: u64,
    syscalls: u64,
    ops: u64,
    /// The method the engine reports having used (engine rows only).
    used: Option<Method>,
}

impl Moved {
    /// One engine-free transfer.
    fn one(bytes: u64, syscalls: u64) -> Moved {
        Moved {
            bytes,
            syscalls,
            ops: 1,
            used: None,
        }
    }
}

/// Wall clock and process CPU time at the start of a measured window.
struct Meter {
    t0: Instant,
    cpu0: Duration,
}

fn cpu_now() -> Result<Duration, RunError> {
    let (user, system) = zcopy_core::process_cpu_time()?;
    Ok(user + system)
}

impl Meter {
    fn start() -> Result<Meter, RunError> {
        Ok(Meter {
            cpu0: cpu_now()?,
            t0: Instant::now(),
        })
    }

    fn stop(self, moved: &Moved, arrived: u64) -> Result<Sample, RunError> {
        let wall = self.t0.elapsed();
        let cpu = cpu_now()?.saturating_sub(self.cpu0);
        if moved.bytes != arrived {
            return Err(RunError::Failed(format!(
                "the sender reported {} bytes but {arrived} arrived",
                moved.bytes
            )));
        }
        Ok(Sample {
            bytes: arrived,
            wall,
            cpu,
            syscalls: moved.syscalls,
            ops: moved.ops,
            used: moved.used,
            reps: 1,
        })
    }
}

/// Runs the scenario once and checks that every byte arrived.
pub fn run_once(env: &mut Env, sc: Scenario, v: Variant) -> Result<Sample, RunError> {
    let sample = match sc {
        Scenario::FileFile => file_file(env, v)?,
        Scenario::FileTcp => to_receiver(|sock| bulk(env, sock.as_fd(), v))?,
        Scenario::TcpTcp => tcp_tcp(env, v)?,
        Scenario::FilePipe => file_pipe(env, v)?,
        Scenario::Small(op) => small(env, op, v)?,
    };
    let expected = match sc {
        Scenario::Small(op) => small_ops(env.size, op) * op,
        _ => env.size,
    };
    if sample.bytes != expected {
        return Err(RunError::Failed(format!(
            "moved {} bytes, expected {expected}",
            sample.bytes
        )));
    }
    Ok(sample)
}

fn wrong(v: Variant) -> RunError {
    RunError::NotApplicable(format!("{} is not measured in this scenario", v.label()))
}

/// The engine with `method`, from offset 0 to EOF (what a file server asks for).
fn engine(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    method: Method,
    offset: Option<u64>,
    count: Option<u64>,
) -> Result<Moved, RunError> {
    let opts = Options {
        method,
        offset,
        count,
        ..Options::default()
    };
    let r = transfer(src, dst, &opts)?;
    Ok(Moved {
        bytes: r.bytes,
        syscalls: r.syscalls,
        ops: 1,
        used: Some(r.method),
    })
}

/// Moves the whole file from offset 0 into `dst` (file -> file, tcp, pipe).
fn bulk(env: &mut Env, dst: BorrowedFd<'_>, v: Variant) -> Result<Moved, RunError> {
    let src = env.src.as_fd();
    let mut syscalls = 0;
    let bytes = match v {
        Variant::Engine(m) => return engine(src, dst, m, Some(0), None),
        Variant::Rw64k => {
            baseline::pread_write(src, 0, env.size, dst, &mut env.buf, &mut syscalls)?
        }
        Variant::LibcSendfile => baseline::sendfile_loop(dst, src, 0, env.size, &mut syscalls)?,
        Variant::Relay => return Err(wrong(v)),
    };
    Ok(Moved::one(bytes, syscalls))
}

fn file_file(env: &mut Env, v: Variant) -> Result<Sample, RunError> {
    if v == Variant::LibcSendfile || v == Variant::Relay {
        return Err(wrong(v));
    }
    let dst = env.dst.try_clone()?;
    dst.set_len(0)?;
    (&dst).seek(SeekFrom::Start(0))?;
    let meter = Meter::start()?;
    let moved = bulk(env, dst.as_fd(), v)?;
    let arrived = dst.metadata()?.len();
    meter.stop(&moved, arrived)
}

fn file_pipe(env: &mut Env, v: Variant) -> Result<Sample, RunError> {
    if v == Variant::LibcSendfile || v == Variant::Relay {
        return Err(wrong(v));
    }
    let (r, w) = io::pipe()?;
    baseline::grow_pipe(w.as_fd(), baseline::DRAIN_PIPE);
    let drainer = thread::Builder::new()
        .name("bench-drain".into())
        .spawn(move || baseline::drain_pipe(r.as_fd()))?;
    let meter = Meter::start()?;
    let moved = bulk(env, w.as_fd(), v);
    drop(w);
    let arrived = join(drainer)?;
    meter.stop(&moved?, arrived)
}

/// Connects a socket to a receiver thread that splices everything into /dev/null, runs `send`
/// on it, and measures until the receiver has seen EOF.
fn to_receiver(
    send: impl FnOnce(&TcpStream) -> Result<Moved, RunError>,
) -> Result<Sample, RunError> {
    let (sock, receiver) = receiver()?;
    let meter = Meter::start()?;
    let moved = send(&sock);
    sock.shutdown(Shutdown::Write)?;
    let arrived = join(receiver)?;
    meter.stop(&moved?, arrived)
}

/// A connected socket whose peer is a receiver thread draining into /dev/null (with
/// TCP_QUICKACK), returned once the receiver has accepted.
fn receiver() -> Result<(TcpStream, JoinHandle<io::Result<u64>>), RunError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = thread::Builder::new()
        .name("bench-recv".into())
        .spawn(move || {
            let (s, _) = listener.accept()?;
            baseline::quickack(s.as_fd());
            let _ = ready_tx.send(());
            baseline::drain_socket(s.as_fd())
        })?;
    let sock = TcpStream::connect(addr)?;
    if ready_rx.recv().is_err() {
        // The receiver ended before accepting: its error says why.
        join(h)?;
        return Err(RunError::Failed("the receiver thread ended early".into()));
    }
    Ok((sock, h))
}

fn join(h: JoinHandle<io::Result<u64>>) -> Result<u64, RunError> {
    match h.join() {
        Ok(r) => Ok(r?),
        Err(_) => Err(RunError::Failed("a helper thread panicked".into())),
    }
}

fn tcp_tcp(env: &mut Env, v: Variant) -> Result<Sample, RunError> {
    if v == Variant::LibcSendfile {
        return Err(wrong(v));
    }
    // The sink: the final destination.
    let (b, sink) = receiver()?;
    // The feeder: sends the file with a plain sendfile loop once told to go, then waits for
    // the far side to close.
    let front = TcpListener::bind(("127.0.0.1", 0))?;
    let front_addr = front.local_addr()?;
    let file = env.src.try_clone()?;
    let size = env.size;
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let feeder =
        thread::Builder::new()
            .name("bench-feed".into())
            .spawn(move || -> io::Result<u64> {
                let s = TcpStream::connect(front_addr)?;
                if go_rx.recv().is_err() {
                    return Ok(0);
                }
                let mut sys = 0;
                let sent = baseline::sendfile_loop(s.as_fd(), file.as_fd(), 0, size, &mut sys)?;
                s.shutdown(Shutdown::Write)?;
                baseline::read_to_eof(s.as_fd())?;
                Ok(sent)
            })?;
    let (a, _) = front.accept()?;
    let meter = Meter::start()?;
    let _ = go_tx.send(());
    let moved = forward(env, &a, &b, v);
    if v != Variant::Relay {
        b.shutdown(Shutdown::Write)?;
    }
    let arrived = join(sink);
    let sample = moved.and_then(|m| meter.stop(&m, arrived?));
    drop(a);
    drop(b);
    // The feeder's own result only matters when the run failed, and then the run's error
    // is the one worth reporting.
    let _ = join(feeder);
    sample
}

/// The measured hop of TCP -> TCP: `a` (from the feeder) into `b` (to the sink).
fn forward(env: &mut Env, a: &TcpStream, b: &TcpStream, v: Variant) -> Result<Moved, RunError> {
    match v {
        Variant::Engine(m) => engine(a.as_fd(), b.as_fd(), m, None, None),
        Variant::Rw64k => {
            let mut syscalls = 0;
            let bytes =
                baseline::read_write_stream(a.as_fd(), b.as_fd(), &mut env.buf, &mut syscalls)?;
            Ok(Moved::one(bytes, syscalls))
        }
        Variant::Relay => {
            let r = relay(a, b, &RelayOptions::default()).map_err(|e| RunError::from(e.error))?;
            Ok(Moved::one(r.a_to_b, r.syscalls))
        }
        Variant::LibcSendfile => Err(wrong(v)),
    }
}

/// How many small transfers of `op` bytes one run issues: a quarter of the file's worth,
/// at least 64 and at most 16384 (runs repeat to fill a sample's minimum time).
pub fn small_ops(size: u64, op: u64) -> u64 {
    if op == 0 || size < op {
        0
    } else {
        (size / 4 / op).clamp(64, 16384)
    }
}

fn small(env: &mut Env, op: u64, v: Variant) -> Result<Sample, RunError> {
    if v == Variant::Relay {
        return Err(wrong(v));
    }
    let ops = small_ops(env.size, op);
    if ops == 0 {
        return Err(RunError::NotApplicable(format!(
            "the file is smaller than {op} bytes"
        )));
    }
    // Distinct, op-aligned offsets cycling through the file.
    let slots = env.size / op;
    to_receiver(|sock| {
        let dst = sock.as_fd();
        let src = env.src.as_fd();
        let mut total = Moved {
            bytes: 0,
            syscalls: 0,
            ops,
            used: None,
        };
        for i in 0..ops {
            let off = (i % slots) * op;
            let m = match v {
                Variant::Engine(m) => engine(src, dst, m, Some(off), Some(op))?,
                Variant::Rw64k => {
                    let mut syscalls = 0;
                    let bytes =
                        baseline::pread_write(src, off, op, dst, &mut env.buf, &mut syscalls)?;
                    Moved::one(bytes, syscalls)
                }
                Variant::LibcSendfile => {
                    let mut syscalls = 0;
                    let bytes = baseline::sendfile_loop(dst, src, off, op, &mut syscalls)?;
                    Moved::one(bytes, syscalls)
                }
                Variant::Relay => return Err(wrong(v)),
            };
            total.bytes += m.bytes;
            total.syscalls += m.syscalls;
            total.used = m.used;
        }
        Ok(total)
    })
}
