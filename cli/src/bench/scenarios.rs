//! The measured scenarios. Each run sets up its descriptors and helper threads outside the
//! measured window, then measures wall time, whole-process CPU time (getrusage, so receiver
//! and feeder threads are included) and the measuring thread's syscalls, from the first byte
//! until the last byte has reached its final destination.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use zcopy_core::{
    Cache, ErrorCode, ErrorKind, Method, Options, Part, PartsOptions, RelayOptions, relay,
    send_parts, transfer,
};

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
    /// Small HTTP-style request/response on one keep-alive TCP connection: a client thread
    /// sends a one-byte request and waits for the whole answer, a [`RESPONSE_HEADER`] from
    /// memory followed by [`RESPONSE_BODY`] bytes of the file (ops per second, and TCP segments
    /// per response). Both sockets have TCP_NODELAY, as servers set it: the header and the body
    /// then leave as one segment or as two, and a second segment costs the client a second
    /// wake-up.
    Response,
}

/// The header of the response scenario: 200 bytes, a typical HTTP/1.1 response header (the
/// size matters, not the text: it fits in one segment with the body).
pub const RESPONSE_HEADER: &[u8; 200] = b"HTTP/1.1 200 OK\r\n\
Content-Type: application/octet-stream\r\nContent-Length: 4096\r\n\
Last-Modified: Thu, 03 Dec 2026 08:00:00 GMT\r\nETag: \"5f3a-1000\"\r\n\
X-Pad: ppppppppppppppppppppppppppppppppppppppppppppp\r\n\r\n";

/// The file range of each response of the response scenario.
pub const RESPONSE_BODY: u64 = 4 << 10;

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 7] = [
        Scenario::FileFile,
        Scenario::FileTcp,
        Scenario::TcpTcp,
        Scenario::FilePipe,
        Scenario::Small(4 << 10),
        Scenario::Small(64 << 10),
        Scenario::Response,
    ];

    /// A stable identifier for JSON and `--scenario`.
    pub fn id(self) -> String {
        match self {
            Scenario::FileFile => "file_file".into(),
            Scenario::FileTcp => "file_tcp".into(),
            Scenario::TcpTcp => "tcp_tcp".into(),
            Scenario::FilePipe => "file_pipe".into(),
            Scenario::Small(n) => format!("small_{}k", n >> 10),
            Scenario::Response => format!("response_{}k", RESPONSE_BODY >> 10),
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
            Scenario::Response => format!(
                "response: {} B header + {} KiB file -> tcp",
                RESPONSE_HEADER.len(),
                RESPONSE_BODY >> 10
            ),
        }
    }

    /// What is measured besides the engine's methods: the read/write baseline always, the
    /// plain sendfile loop where the destination is TCP, the engine's `relay` for TCP -> TCP.
    /// Every explicit method is tried; the engine itself says which do not apply. File -> TCP
    /// also runs Auto with the page-cache policies that release the file behind the transfer,
    /// next to Auto's default (keep), on the same cached file: what serving a hot file with
    /// them costs. The response scenario compares one engine call with what users write today
    /// (no method list: `send_parts` picks the file part's method as Auto does).
    pub fn variants(self) -> Vec<Variant> {
        if self == Scenario::Response {
            return vec![Variant::SendParts, Variant::WriteSendfile];
        }
        let mut v = vec![Variant::Rw64k];
        v.extend(Method::EXPLICIT.into_iter().map(Variant::Engine));
        v.push(Variant::Engine(Method::Auto));
        match self {
            Scenario::FileTcp => v.extend([
                Variant::AutoCache(Cache::DropBehind),
                Variant::AutoCache(Cache::Direct),
                Variant::LibcSendfile,
            ]),
            Scenario::Small(_) => v.push(Variant::LibcSendfile),
            Scenario::TcpTcp => v.push(Variant::Relay),
            Scenario::FileFile | Scenario::FilePipe | Scenario::Response => {}
        }
        v
    }

    /// Whether this scenario reports operations per second.
    pub fn counts_ops(self) -> bool {
        matches!(self, Scenario::Small(_) | Scenario::Response)
    }

    /// Whether this scenario counts the TCP segments the sending socket emits (whether a
    /// response leaves in one segment or two is the point of the response scenario).
    pub fn counts_segments(self) -> bool {
        self == Scenario::Response
    }

    /// Bytes one run moves: the whole file, or its small transfers or responses.
    pub fn expected_bytes(self, size: u64) -> u64 {
        match self {
            Scenario::Small(op) => small_ops(size, op) * op,
            Scenario::Response => {
                response_ops(size) * (RESPONSE_HEADER.len() as u64 + RESPONSE_BODY)
            }
            _ => size,
        }
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
    /// The engine's `transfer` with Auto and this page-cache policy (Keep is plain
    /// `Engine(Auto)`). The policies that release pages leave the source uncached, so the
    /// file is read back into the page cache after each run, outside the measured window.
    AutoCache(Cache),
    /// The engine's `send_parts` with the header and the file range as two parts.
    SendParts,
    /// The engine-free reference for a response: `write(2)` of the header, then a plain
    /// `sendfile(2)` loop for the file range.
    WriteSendfile,
}

impl Variant {
    /// A stable identifier for JSON.
    pub fn id(self) -> &'static str {
        match self {
            Variant::Rw64k => "rw64k",
            Variant::Engine(m) => m.name(),
            Variant::LibcSendfile => "libc_sendfile",
            Variant::Relay => "relay",
            Variant::AutoCache(Cache::Keep) => "auto",
            Variant::AutoCache(Cache::DropBehind) => "auto_drop_behind",
            Variant::AutoCache(Cache::Direct) => "auto_direct",
            Variant::SendParts => "send_parts",
            Variant::WriteSendfile => "libc_write_sendfile",
        }
    }

    /// The label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Rw64k => "read/write 64K (libc)",
            Variant::Engine(m) => m.name(),
            Variant::LibcSendfile => "libc sendfile loop",
            Variant::Relay => "relay()",
            Variant::AutoCache(Cache::Keep) => "auto",
            Variant::AutoCache(Cache::DropBehind) => "auto, drop_behind",
            Variant::AutoCache(Cache::Direct) => "auto, direct",
            Variant::SendParts => "send_parts",
            Variant::WriteSendfile => "write + sendfile (libc)",
        }
    }

    /// An explicit engine method (what "Auto vs best explicit" compares with).
    pub fn is_explicit(self) -> bool {
        matches!(self, Variant::Engine(m) if m != Method::Auto)
    }

    /// Whether a run leaves the source file (partly) out of the page cache, so it has to be
    /// read back before the next run of any row.
    pub fn releases_cache(self) -> bool {
        matches!(self, Variant::AutoCache(c) if c != Cache::Keep)
    }

    /// Where the row sits within its scenario: the cache policies right below plain Auto,
    /// the engine-free references last.
    pub fn order(self) -> usize {
        match self {
            Variant::Rw64k => 0,
            Variant::Engine(Method::Auto) | Variant::AutoCache(Cache::Keep) => 20,
            Variant::Engine(m) => 1 + m as usize,
            Variant::AutoCache(Cache::DropBehind) => 21,
            Variant::AutoCache(Cache::Direct) => 22,
            Variant::SendParts => 25,
            Variant::LibcSendfile => 30,
            Variant::Relay => 31,
            Variant::WriteSendfile => 32,
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
    /// TCP segments the sending socket emitted (`tcpi_segs_out`), where the scenario counts
    /// them ([`Scenario::counts_segments`]); 0 elsewhere.
    pub segments: u64,
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
        self.segments += s.segments;
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

impl Env {
    /// Reads the whole source back into the page cache (as the setup did), after a run that
    /// released it: every row starts from a cached file. Not measured.
    fn rewarm(&mut self) -> io::Result<()> {
        // Larger reads than the baseline's buffer: this is disk I/O, and it is pure overhead.
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        while off < self.size {
            let want = (self.size - off).min(buf.len() as u64) as usize;
            match self.src.read_at(&mut buf[..want], off) {
                Ok(0) => {
                    return Err(io::Error::other(format!(
                        "the test file ends at {off} bytes of {}",
                        self.size
                    )));
                }
                Ok(n) => off += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Bytes moved and syscalls issued by the measured thread.
struct Moved {
    bytes: u64,
    syscalls: u64,
    ops: u64,
    /// The method the engine reports having used (engine rows only).
    used: Option<Method>,
    /// TCP segments sent, where the scenario counts them.
    segments: u64,
}

impl Moved {
    /// Nothing moved yet by a run of `ops` operations.
    fn empty(ops: u64) -> Moved {
        Moved {
            bytes: 0,
            syscalls: 0,
            ops,
            used: None,
            segments: 0,
        }
    }

    /// One engine-free transfer.
    fn one(bytes: u64, syscalls: u64) -> Moved {
        Moved {
            bytes,
            syscalls,
            ops: 1,
            used: None,
            segments: 0,
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
            segments: moved.segments,
            used: moved.used,
            reps: 1,
        })
    }
}

/// Runs the scenario once and checks that every byte arrived. After a variant that releases
/// the source's page cache, the file is read back into it (outside the measured window, and
/// whether or not the run worked), so the next run of any row starts from a cached file.
pub fn run_once(env: &mut Env, sc: Scenario, v: Variant) -> Result<Sample, RunError> {
    let sample = match sc {
        Scenario::FileFile => file_file(env, v),
        Scenario::FileTcp => to_receiver(|sock| bulk(env, sock.as_fd(), v)),
        Scenario::TcpTcp => tcp_tcp(env, v),
        Scenario::FilePipe => file_pipe(env, v),
        Scenario::Small(op) => small(env, op, v),
        Scenario::Response => response(env, v),
    };
    if v.releases_cache() {
        env.rewarm()
            .map_err(|e| RunError::Failed(format!("reading the test file back: {e}")))?;
    }
    let sample = sample?;
    let expected = sc.expected_bytes(env.size);
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

/// The engine with `method` and page-cache policy `cache`, over the given range.
fn engine(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    method: Method,
    cache: Cache,
    offset: Option<u64>,
    count: Option<u64>,
) -> Result<Moved, RunError> {
    let opts = Options {
        method,
        offset,
        count,
        cache,
        ..Options::default()
    };
    let r = transfer(src, dst, &opts)?;
    Ok(Moved {
        bytes: r.bytes,
        syscalls: r.syscalls,
        ops: 1,
        used: Some(r.method),
        segments: 0,
    })
}

/// Moves the whole file from offset 0 into `dst` (file -> file, tcp, pipe).
fn bulk(env: &mut Env, dst: BorrowedFd<'_>, v: Variant) -> Result<Moved, RunError> {
    let src = env.src.as_fd();
    let mut syscalls = 0;
    let bytes = match v {
        Variant::Engine(m) => return engine(src, dst, m, Cache::Keep, Some(0), None),
        Variant::AutoCache(c) => return engine(src, dst, Method::Auto, c, Some(0), None),
        Variant::Rw64k => {
            baseline::pread_write(src, 0, env.size, dst, &mut env.buf, &mut syscalls)?
        }
        Variant::LibcSendfile => baseline::sendfile_loop(dst, src, 0, env.size, &mut syscalls)?,
        Variant::Relay | Variant::SendParts | Variant::WriteSendfile => return Err(wrong(v)),
    };
    Ok(Moved::one(bytes, syscalls))
}

fn file_file(env: &mut Env, v: Variant) -> Result<Sample, RunError> {
    if matches!(
        v,
        Variant::LibcSendfile | Variant::Relay | Variant::SendParts | Variant::WriteSendfile
    ) {
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
    if matches!(
        v,
        Variant::LibcSendfile | Variant::Relay | Variant::SendParts | Variant::WriteSendfile
    ) {
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
    if !matches!(v, Variant::Engine(_) | Variant::Rw64k | Variant::Relay) {
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
        Variant::Engine(m) => engine(a.as_fd(), b.as_fd(), m, Cache::Keep, None, None),
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
        Variant::LibcSendfile
        | Variant::AutoCache(_)
        | Variant::SendParts
        | Variant::WriteSendfile => Err(wrong(v)),
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
    if !matches!(
        v,
        Variant::Engine(_) | Variant::Rw64k | Variant::LibcSendfile
    ) {
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
        let mut total = Moved::empty(ops);
        for i in 0..ops {
            let off = (i % slots) * op;
            let m = match v {
                Variant::Engine(m) => engine(src, dst, m, Cache::Keep, Some(off), Some(op))?,
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
                _ => return Err(wrong(v)),
            };
            total.bytes += m.bytes;
            total.syscalls += m.syscalls;
            total.used = m.used;
        }
        Ok(total)
    })
}

/// Round trips per response run: a request/response costs tens of microseconds, not the
/// microsecond of a small transfer, so fewer than [`small_ops`] keep a run short.
const RESPONSE_OPS_MAX: u64 = 2048;

/// Responses one run answers.
pub fn response_ops(size: u64) -> u64 {
    small_ops(size, RESPONSE_BODY).min(RESPONSE_OPS_MAX)
}

/// The response scenario: [`response_ops`] request/response round trips on one connection.
/// The measured thread reads each one-byte request and answers it with the variant; the
/// socket's `tcpi_segs_out` is read before the first answer and after the last (the FIN after
/// the window is not counted). A failed answer shuts the socket down, so the waiting client
/// sees the end instead of hanging.
fn response(env: &mut Env, v: Variant) -> Result<Sample, RunError> {
    if !matches!(v, Variant::SendParts | Variant::WriteSendfile) {
        return Err(wrong(v));
    }
    let body = RESPONSE_BODY;
    let ops = response_ops(env.size);
    if ops == 0 {
        return Err(RunError::NotApplicable(format!(
            "the file is smaller than {body} bytes"
        )));
    }
    let slots = env.size / body;
    let each = RESPONSE_HEADER.len() + body as usize;
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let client =
        thread::Builder::new()
            .name("bench-client".into())
            .spawn(move || -> io::Result<u64> {
                let mut s = TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                let mut answer = vec![0u8; each];
                let mut got = 0;
                for _ in 0..ops {
                    s.write_all(b"?")?;
                    s.read_exact(&mut answer)?;
                    got += each as u64;
                }
                Ok(got)
            })?;
    let (sock, _) = listener.accept()?;
    sock.set_nodelay(true)?;
    let meter = Meter::start()?;
    let moved = answer_requests(env, &sock, v, ops, slots);
    if moved.is_err() {
        let _ = sock.shutdown(Shutdown::Both);
    }
    let arrived = join(client)?;
    meter.stop(&moved?, arrived)
}

/// Reads `ops` one-byte requests from `sock` and answers each with the variant.
fn answer_requests(
    env: &Env,
    sock: &TcpStream,
    v: Variant,
    ops: u64,
    slots: u64,
) -> Result<Moved, RunError> {
    let body = RESPONSE_BODY;
    let dst = sock.as_fd();
    let src = env.src.as_fd();
    let segs0 = baseline::segs_out(dst)?;
    let mut total = Moved::empty(ops);
    let mut request = [0u8; 1];
    for i in 0..ops {
        (&*sock).read_exact(&mut request)?;
        let offset = (i % slots) * body;
        if v == Variant::SendParts {
            let parts = [
                Part::Bytes(RESPONSE_HEADER),
                Part::File {
                    fd: src,
                    offset,
                    len: body,
                },
            ];
            // A Rust program ignores SIGPIPE from its start, as CPython and the JVM do (and
            // the bindings say so): the engine need not check the disposition on every call.
            let opts = PartsOptions {
                host_ignores_sigpipe: true,
                ..PartsOptions::default()
            };
            let r = send_parts(dst, &parts, &opts)?;
            total.bytes += r.bytes;
            total.syscalls += r.syscalls;
            total.used = Some(r.method);
        } else {
            total.bytes += baseline::write_then_sendfile(
                dst,
                RESPONSE_HEADER,
                src,
                offset,
                body,
                &mut total.syscalls,
            )?;
        }
    }
    // The counter is a u32 that wraps; one run sends far fewer segments than 2^32.
    total.segments = u64::from(baseline::segs_out(dst)?.wrapping_sub(segs0));
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_header_is_200_bytes_of_http() {
        assert_eq!(RESPONSE_HEADER.len(), 200);
        assert!(RESPONSE_HEADER.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(RESPONSE_HEADER.ends_with(b"\r\n\r\n"));
        assert_eq!(
            RESPONSE_HEADER
                .windows(4)
                .filter(|w| w == b"\r\n\r\n")
                .count(),
            1
        );
    }

    #[test]
    fn ids_and_orders_are_unique_and_cached_policies_sit_next_to_auto() {
        for sc in Scenario::ALL {
            let vs = sc.variants();
            for (i, a) in vs.iter().enumerate() {
                for b in &vs[i + 1..] {
                    assert_ne!(a.id(), b.id(), "{sc:?}");
                    assert_ne!(a.label(), b.label(), "{sc:?}");
                    assert_ne!(a.order(), b.order(), "{sc:?}");
                }
            }
        }
        let ids: Vec<String> = Scenario::ALL.iter().map(|s| s.id()).collect();
        assert!(ids.contains(&"response_4k".to_owned()), "{ids:?}");
        let mut tcp = Scenario::FileTcp.variants();
        tcp.sort_by_key(|v| v.order());
        let auto = tcp
            .iter()
            .position(|v| *v == Variant::Engine(Method::Auto))
            .expect("file -> tcp runs Auto");
        assert_eq!(
            tcp[auto + 1..auto + 3],
            [
                Variant::AutoCache(Cache::DropBehind),
                Variant::AutoCache(Cache::Direct)
            ]
        );
        assert_eq!(tcp[auto + 1].id(), "auto_drop_behind");
        assert_eq!(tcp[auto + 2].id(), "auto_direct");
        assert!(tcp[auto + 1].releases_cache() && tcp[auto + 2].releases_cache());
        assert!(!Variant::Engine(Method::Auto).releases_cache());
    }

    #[test]
    fn response_runs_count_ops_and_segments() {
        assert!(Scenario::Response.counts_ops() && Scenario::Response.counts_segments());
        assert!(!Scenario::FileTcp.counts_segments());
        assert_eq!(
            Scenario::Response.expected_bytes(256 << 20),
            RESPONSE_OPS_MAX * (200 + 4096)
        );
        assert_eq!(Scenario::Small(4096).expected_bytes(1 << 20), 64 * 4096);
        assert_eq!(Scenario::FileTcp.expected_bytes(12345), 12345);
    }
}
