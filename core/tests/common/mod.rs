//! Shared fixtures for the integration tests: temp dirs, fd pairs (files, pipes, loopback TCP,
//! Unix stream sockets, UDP, /dev/null, /dev/zero), deterministic data, a cheap hash, threads
//! that feed or drain a stream, deadlines, and the table of which method applies to which pair.
//!
//! Everything is real: real files under the system temp dir, kernel pipes, loopback sockets.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zcopy_core::Method;

pub mod relay_attacks;

// ---------------------------------------------------------------------------------------------
// Temp dirs

/// A directory under `std::env::temp_dir()` with a unique name, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "zcopy-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `data` to a new file `name` and opens it read-only.
    pub fn source(&self, name: &str, data: &[u8]) -> File {
        let p = self.join(name);
        std::fs::write(&p, data).expect("write source file");
        File::open(&p).expect("open source file")
    }

    /// Creates (truncates) file `name` and opens it write-only.
    pub fn sink(&self, name: &str) -> File {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.join(name))
            .expect("create destination file")
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.join(name)).expect("read back file")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Data and hashing

/// `len` deterministic pseudo-random bytes (splitmix64 of `seed`).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    let mut s = seed ^ 0x5851_f42d_4c95_7f2d;
    while v.len() < len {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        v.extend_from_slice(&z.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// FNV-1a, 64 bit: cheap, order-sensitive, incremental.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        let mut h = self.0;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

pub fn hash(data: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.update(data);
    h.finish()
}

/// Compares what arrived with what was expected, byte for byte; on a mismatch, says the
/// lengths, both hashes and where the first differing byte is.
pub fn check_bytes(what: &str, expected: &[u8], got: &[u8]) -> Result<(), String> {
    // Every byte, exactly (memcmp: fast even in debug builds, and stronger than comparing
    // hashes); the hashes only label a mismatch.
    if expected == got {
        return Ok(());
    }
    let first = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    Err(format!(
        "{what}: expected {} bytes (hash {:016x}), got {} bytes (hash {:016x}); first difference at byte {first}",
        expected.len(),
        hash(expected),
        got.len(),
        hash(got)
    ))
}

/// `check_bytes` that panics.
#[track_caller]
pub fn assert_bytes(what: &str, expected: &[u8], got: &[u8]) {
    if let Err(e) = check_bytes(what, expected, got) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors

/// Loopback TCP pair: (client, accepted server side).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let c = TcpStream::connect(l.local_addr().expect("local addr")).expect("connect loopback");
    let (s, _) = l.accept().expect("accept");
    (c, s)
}

/// Small fixed socket buffers (64 KiB asked, no autotuning): a peer that does not read
/// stalls the sender after a bounded, small number of bytes.
pub fn small_buffers(sock: impl AsFd) {
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        let v: libc::c_int = 64 * 1024;
        // SAFETY: `v` is a valid int for the duration of the call.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
    }
}

/// Connected Unix stream sockets.
pub fn unix_pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("socketpair")
}

/// Connected UDP sockets on loopback.
pub fn udp_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    a.connect(b.local_addr().expect("addr"))
        .expect("connect udp");
    b.connect(a.local_addr().expect("addr"))
        .expect("connect udp");
    (a, b)
}

/// A kernel pipe as two `File`s: (read end, write end), both close-on-exec.
pub fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid storage for two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Anything that owns a descriptor, as a `File` (read/write are plain read(2)/write(2)).
pub fn as_file(fd: impl Into<OwnedFd>) -> File {
    File::from(fd.into())
}

pub fn dev_null() -> File {
    OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null")
}

pub fn dev_zero() -> File {
    File::open("/dev/zero").expect("open /dev/zero")
}

/// The file status flags (`F_GETFL`).
pub fn flags(fd: impl AsFd) -> i32 {
    // SAFETY: no pointers; the fd is borrowed and open.
    let f = unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), libc::F_GETFL) };
    assert!(f >= 0, "F_GETFL: {}", io::Error::last_os_error());
    f
}

pub fn set_nonblocking(fd: impl AsFd, on: bool) {
    let fd = fd.as_fd();
    let f = flags(fd);
    let f = if on {
        f | libc::O_NONBLOCK
    } else {
        f & !libc::O_NONBLOCK
    };
    // SAFETY: no pointers; the fd is borrowed and open.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, f) };
    assert_eq!(rc, 0, "F_SETFL: {}", io::Error::last_os_error());
}

/// The file position (`lseek(fd, 0, SEEK_CUR)`).
pub fn position(fd: impl AsFd) -> u64 {
    // SAFETY: no pointers; the fd is borrowed and open.
    let p = unsafe { libc::lseek(fd.as_fd().as_raw_fd(), 0, libc::SEEK_CUR) };
    assert!(p >= 0, "lseek: {}", io::Error::last_os_error());
    p as u64
}

pub fn seek(fd: impl AsFd, pos: u64) {
    // SAFETY: no pointers; the fd is borrowed and open.
    let p = unsafe { libc::lseek(fd.as_fd().as_raw_fd(), pos as libc::off_t, libc::SEEK_SET) };
    assert_eq!(p as u64, pos, "lseek: {}", io::Error::last_os_error());
}

/// Bytes readable right now from a pipe or socket (`FIONREAD`).
pub fn readable_now(fd: impl AsFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: `n` is valid storage for the int FIONREAD writes.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", io::Error::last_os_error());
    n as usize
}

/// Waits until `fd` is readable (or `secs` pass): makes "data has arrived" a fact, not a guess.
pub fn wait_readable(fd: impl AsFd, secs: u64) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, left.as_millis() as libc::c_int) };
        if rc > 0 {
            return true;
        }
        if rc == 0 || std::time::Instant::now() >= end {
            return false;
        }
    }
}

/// A descriptor number that is surely closed: far above what the tests open, and checked.
pub fn closed_fd_number() -> i32 {
    let f = dev_null();
    // SAFETY: no pointers; F_DUPFD returns a new descriptor we own.
    let n = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 4000) };
    assert!(n >= 4000, "F_DUPFD: {}", io::Error::last_os_error());
    // SAFETY: we own `n` and close it once.
    unsafe { libc::close(n) };
    n
}

/// Reads to EOF, retrying EINTR; keeps what it read on an error.
pub fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{e} after {} bytes", out.len()),
                ));
            }
        }
    }
}

/// A thread that reads `r` to EOF and returns the bytes.
pub fn spawn_reader<R: Read + Send + 'static>(r: R) -> JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || read_all(r))
}

/// A thread that writes all of `data` to `w`, then closes it (EOF for the reader).
pub fn spawn_writer<W: Write + Send + 'static>(
    mut w: W,
    data: Vec<u8>,
) -> JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        w.write_all(&data)?;
        drop(w);
        Ok(())
    })
}

/// Runs `f` on its own thread and returns its result, or panics when `secs` pass first (the
/// thread is left behind: a hang becomes a failure, never a stuck suite).
#[track_caller]
pub fn deadline<T: Send + 'static>(
    what: &str,
    secs: u64,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    match try_deadline(secs, f) {
        Some(v) => v,
        None => panic!("{what}: did not finish within {secs} s (hang)"),
    }
}

/// `deadline` that returns None on a hang. A panic inside `f` is re-raised here.
pub fn try_deadline<T: Send + 'static>(
    secs: u64,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            let _ = h.join();
            Some(v)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("sender dropped without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints of a transfer, by kind

/// Source kinds the engine accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    File,
    Pipe,
    Tcp,
    Unix,
    /// /dev/zero, always with a count.
    Zero,
}

impl Src {
    pub const ALL: [Src; 5] = [Src::File, Src::Pipe, Src::Tcp, Src::Unix, Src::Zero];

    pub fn is_stream(self) -> bool {
        matches!(self, Src::Pipe | Src::Tcp | Src::Unix)
    }
}

/// Destination kinds the engine accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dst {
    File,
    Pipe,
    Tcp,
    Unix,
    /// /dev/null.
    Null,
}

impl Dst {
    pub const ALL: [Dst; 5] = [Dst::File, Dst::Pipe, Dst::Tcp, Dst::Unix, Dst::Null];
}

/// What an explicit method must do for a pair (DESIGN.md / issue 2 section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Must move the bytes.
    Must,
    /// Must return Unsupported and consume nothing.
    Never,
    /// The documents do not pin it down: either works correctly, or is Unsupported and
    /// consumes nothing.
    May,
}

pub fn applies(src: Src, dst: Dst, m: Method) -> Expect {
    use Expect::*;
    match m {
        Method::Auto | Method::ReadWrite => Must,
        Method::CopyFileRange => {
            if src == Src::File && dst == Dst::File {
                Must
            } else {
                Never
            }
        }
        Method::MsgZerocopy => match (src, dst) {
            (Src::File, Dst::Tcp) => Must,
            (Src::Zero, Dst::Tcp) => May,
            _ => Never,
        },
        Method::Sendfile => match src {
            Src::File => Must,
            Src::Tcp | Src::Unix => Never,
            Src::Pipe | Src::Zero => May,
        },
        Method::Mmap => match src {
            Src::File => Must,
            Src::Pipe | Src::Tcp | Src::Unix => Never,
            Src::Zero => May,
        },
        Method::Splice => match (src, dst) {
            (Src::Zero, _) => May,
            (Src::Pipe, _) => Must,
            (_, Dst::Pipe) => Must,
            (Src::File, Dst::Tcp | Dst::Unix) => Must,
            (Src::Tcp | Src::Unix, Dst::File | Dst::Tcp | Dst::Unix) => Must,
            (Src::File, Dst::File | Dst::Null) | (Src::Tcp | Src::Unix, Dst::Null) => May,
        },
    }
}

/// The source side of a transfer: the fd the engine reads, and for streams the thread that
/// feeds it `data` and then closes its end.
pub struct SrcEnd {
    pub kind: Src,
    pub fd: File,
    feeder: Option<JoinHandle<io::Result<()>>>,
}

impl SrcEnd {
    pub fn new(kind: Src, data: &[u8], dir: &TempDir, name: &str) -> SrcEnd {
        let (fd, feeder) = match kind {
            Src::File => (dir.source(name, data), None),
            Src::Zero => (dev_zero(), None),
            Src::Pipe => {
                let (r, w) = pipe();
                (r, Some(spawn_writer(w, data.to_vec())))
            }
            Src::Tcp => {
                let (c, s) = tcp_pair();
                (as_file(s), Some(spawn_writer(c, data.to_vec())))
            }
            Src::Unix => {
                let (a, b) = unix_pair();
                (as_file(b), Some(spawn_writer(a, data.to_vec())))
            }
        };
        SrcEnd { kind, fd, feeder }
    }

    /// For a stream: what the engine left unread (read to EOF), after the feeder finished.
    pub fn rest(self) -> Result<Vec<u8>, String> {
        let rest =
            read_all(&self.fd).map_err(|e| format!("reading the rest of the source: {e}"))?;
        if let Some(h) = self.feeder {
            h.join()
                .map_err(|_| "feeder panicked".to_string())?
                .map_err(|e| format!("feeder: {e}"))?;
        }
        Ok(rest)
    }
}

/// The destination side: the fd the engine writes, and what collects what reached it.
pub struct DstEnd {
    pub kind: Dst,
    pub fd: File,
    collector: Option<JoinHandle<io::Result<Vec<u8>>>>,
    path: Option<PathBuf>,
}

impl DstEnd {
    pub fn new(kind: Dst, dir: &TempDir, name: &str) -> DstEnd {
        match kind {
            Dst::File => DstEnd {
                kind,
                fd: dir.sink(name),
                collector: None,
                path: Some(dir.join(name)),
            },
            Dst::Null => DstEnd {
                kind,
                fd: dev_null(),
                collector: None,
                path: None,
            },
            Dst::Pipe => {
                let (r, w) = pipe();
                DstEnd {
                    kind,
                    fd: w,
                    collector: Some(spawn_reader(r)),
                    path: None,
                }
            }
            Dst::Tcp => {
                let (c, s) = tcp_pair();
                DstEnd {
                    kind,
                    fd: as_file(c),
                    collector: Some(spawn_reader(s)),
                    path: None,
                }
            }
            Dst::Unix => {
                let (a, b) = unix_pair();
                DstEnd {
                    kind,
                    fd: as_file(a),
                    collector: Some(spawn_reader(b)),
                    path: None,
                }
            }
        }
    }

    /// Closes the engine's side and returns what reached the destination (None for /dev/null).
    pub fn finish(self) -> Result<Option<Vec<u8>>, String> {
        drop(self.fd);
        if let Some(h) = self.collector {
            let got = h.join().map_err(|_| "collector panicked".to_string())?;
            return got.map(Some).map_err(|e| format!("collector: {e}"));
        }
        match self.path {
            Some(p) => std::fs::read(&p)
                .map(Some)
                .map_err(|e| format!("read back {}: {e}", p.display())),
            None => Ok(None),
        }
    }
}

/// The methods that can move file -> file (all but msg_zerocopy).
pub const FILE_TO_FILE: [Method; 6] = [
    Method::Auto,
    Method::ReadWrite,
    Method::Mmap,
    Method::Sendfile,
    Method::Splice,
    Method::CopyFileRange,
];

// ---------------------------------------------------------------------------------------------
// Signals, resets and CPU time

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// A SIGUSR1 handler without SA_RESTART, so blocking syscalls return EINTR.
pub fn install_sigusr1_handler() {
    let mut sa = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: `sa` is zeroed storage for a sigaction, filled in before use; the handler is an
    // async-signal-safe function that does nothing.
    unsafe {
        let sa = sa.as_mut_ptr();
        (*sa).sa_sigaction = on_sigusr1 as *const () as libc::sighandler_t;
        (*sa).sa_flags = 0;
        libc::sigemptyset(&mut (*sa).sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, sa, std::ptr::null_mut()), 0);
    }
}

/// Makes closing `fd` reset its TCP connection (SO_LINGER with a zero timeout).
pub fn linger_zero(fd: impl AsFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a valid linger struct for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// CPU time (user + system) of the calling thread so far.
pub fn thread_cpu() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is valid storage for getrusage to fill.
    let ru = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()), 0);
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------------------------
// TCP state

/// Segments the socket has sent so far (`TCP_INFO` `tcpi_segs_out`).
pub fn segs_out(fd: impl AsFd) -> u32 {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info`/`len` describe valid storage for the kernel to fill.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", io::Error::last_os_error());
    // SAFETY: getsockopt succeeded and wrote (a prefix of) the zeroed struct.
    unsafe { info.assume_init() }.tcpi_segs_out
}

/// An int socket option.
pub fn sockopt(fd: impl AsFd, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v`/`len` describe valid storage for one int.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", io::Error::last_os_error());
    v
}

/// Sets an int socket option.
pub fn set_sockopt(fd: impl AsFd, level: i32, name: i32, v: i32) {
    // SAFETY: `v` is a valid int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            (&raw const v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Runs `scenario` as `nobody`, whom the kernel's per-user limits (the pipe quota) bind: in a
/// child process of this test binary running only the test `test` (root re-runs itself there;
/// anyone else runs it in place). The scenario prints "scenario done" last; returns the child's
/// output.
#[allow(dead_code)]
pub fn as_nobody(test: &str, scenario: fn()) -> String {
    const CHILD_ENV: &str = "ZCOPY_TEST_AS_NOBODY";
    // SAFETY: geteuid has no preconditions.
    if std::env::var_os(CHILD_ENV).is_some() || unsafe { libc::geteuid() } != 0 {
        scenario();
        return String::new();
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture"])
        .env(CHILD_ENV, "1")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run the scenario as nobody");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "as nobody:\n{text}");
    assert!(text.contains("scenario done"), "the scenario ran:\n{text}");
    text
}
