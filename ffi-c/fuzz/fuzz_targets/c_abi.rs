//! Fuzzes the argument handling of the C ABI (`make fuzz`, see `ffi-c/scripts/fuzz.sh`).
//!
//! Each input is a short program of calls, run against a fresh table of real descriptors made
//! for the case: files (a memfd, disk files read-write, read-only, O_APPEND and O_DIRECT), two
//! pipes, a Unix socketpair, a loopback TCP pair, a connected UDP socket, `/dev/null`,
//! `/dev/zero`, a directory and an eventfd; plus numbers that are closed (the lowest free
//! ones, which the library's own duplicates then take), huge, negative, or any int at all.
//! Every field of `zcopy_options` is arbitrary (methods and flags out of range included), as
//! are offsets, counts, timeouts, buffer lengths and which pointers are NULL.
//!
//! Checked on every call:
//! - no crash, no panic (libfuzzer-sys aborts on any panic, even one the library catches),
//!   no `ZCOPY_STATUS_PANIC`, a status the header knows, no SIGPIPE reaching the process;
//! - outputs written as documented: the report on every status, with `os_errno` set exactly
//!   for `ZCOPY_STATUS_OS` and `undelivered` 0 on success; sender outputs only on success;
//! - borrowed descriptors keep their file status flags;
//! - a file source read at its position ends at start + `bytes`; one read at an offset keeps
//!   its position; a file destination's position advances by `bytes`;
//! - a pipe or socket source loses nothing unaccounted for: queued before == `bytes` +
//!   `undelivered` + queued after, and UNSUPPORTED consumed nothing;
//! - no hang: calls that could wait get a deadline of at most 20 ms (libFuzzer's `-timeout`
//!   catches the rest), counts from `/dev/zero` are capped, `zcopy_relay` without a deadline is
//!   called only where it cannot wait, and a source fed by its own destination (a socket into
//!   its peer), which never waits and so never ends with timeout 0 either, gets 1 ms instead;
//! - no descriptor leak: after the case closes its table and its senders, /proc/self/fd has
//!   what it had before (less the engine's pooled pipes, which it keeps on purpose).
#![no_main]

use std::ffi::{CStr, c_int, c_void};
use std::mem::{MaybeUninit, offset_of};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zcopy::{
    ZCOPY_FLAG_ALLOW_FALLBACK, ZCOPY_TO_EOF, zcopy_capabilities, zcopy_method_name, zcopy_options,
    zcopy_options_init, zcopy_relay, zcopy_relay_report, zcopy_relay_with_timeout, zcopy_report,
    zcopy_sender, zcopy_sender_close, zcopy_sender_free, zcopy_sender_get_stats, zcopy_sender_new,
    zcopy_sender_poll, zcopy_sender_send, zcopy_sender_stats, zcopy_status, zcopy_status_name,
    zcopy_transfer, zcopy_version,
};

/// The largest deadline a call that could wait gets, in milliseconds.
const MAX_WAIT_MS: u64 = 20;
/// The most bytes a call may take from `/dev/zero`.
const MAX_ZERO_COUNT: u64 = 1 << 20;
/// Bytes a sender may have in flight towards a peer that never reads: well below what a
/// loopback TCP connection buffers, so `zcopy_sender_send` (which has no deadline) never waits.
const SENDER_BUDGET: usize = 48 << 10;
/// Calls per case.
const MAX_OPS: usize = 8;

/// `zcopy_options` with the method as a plain int: the library reads it so, and a Rust
/// `zcopy_method` holding 99 would be undefined behaviour on this side.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawOptions {
    method: i32,
    offset: i64,
    count: u64,
    timeout_ms: i64,
    flags: u32,
}

/// `zcopy_report` with the method as a plain int, to check what the library wrote.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawReport {
    bytes: u64,
    method: i32,
    syscalls: u64,
    fallbacks: u32,
    zc_sends: u64,
    zc_copied: u64,
    os_errno: i32,
    undelivered: u64,
    zc_pending: u64,
}

const _: () = {
    assert!(size_of::<RawOptions>() == size_of::<zcopy_options>());
    assert!(offset_of!(RawOptions, flags) == offset_of!(zcopy_options, flags));
    assert!(offset_of!(RawOptions, timeout_ms) == offset_of!(zcopy_options, timeout_ms));
    assert!(size_of::<RawReport>() == size_of::<zcopy_report>());
    assert!(offset_of!(RawReport, method) == offset_of!(zcopy_report, method));
    assert!(offset_of!(RawReport, os_errno) == offset_of!(zcopy_report, os_errno));
    assert!(offset_of!(RawReport, undelivered) == offset_of!(zcopy_report, undelivered));
    assert!(offset_of!(RawReport, zc_pending) == offset_of!(zcopy_report, zc_pending));
};

/// A descriptor argument.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fd {
    /// One of the case's real descriptors (index modulo the table).
    Real(u8),
    /// A number that was closed when the case started.
    Closed(u8),
    /// Far above anything open.
    Huge(u32),
    /// Any negative number.
    Negative(i32),
    /// Any number at all (one open but not the case's becomes a closed huge number).
    Raw(i32),
}

#[derive(Arbitrary, Debug)]
struct Opts {
    /// Below 7: that method; 7: `raw_method`; 8: -1.
    method: u8,
    raw_method: i32,
    offset: i64,
    /// 0: -1, 1: 0, 2: `offset` as is, else a small offset.
    offset_sel: u8,
    count: u64,
    /// 0: ZCOPY_TO_EOF, 1: 0, 2: `count` as is, else a small count.
    count_sel: u8,
    timeout_ms: i64,
    /// 0: -1, 1: 0, 2: `timeout_ms` as is, else a few milliseconds.
    timeout_sel: u8,
    flags: u32,
    /// 0: 0, 1: ALLOW_FALLBACK, else `flags` as is.
    flags_sel: u8,
}

#[derive(Arbitrary, Debug)]
enum SenderOp {
    Send {
        sender: Option<u8>,
        offset: u16,
        len: u16,
        null_buf: bool,
        null_id: bool,
    },
    Poll {
        sender: Option<u8>,
        timeout_ms: i64,
        null_done: bool,
        null_copied: bool,
    },
    Stats {
        sender: Option<u8>,
        null_out: bool,
    },
    Close {
        sender: Option<u8>,
        timeout_ms: i64,
    },
    Free {
        sender: Option<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Op {
    Transfer {
        src: Fd,
        dst: Fd,
        opts: Option<Opts>,
        want_report: bool,
    },
    Relay {
        a: Fd,
        b: Fd,
        timeout_ms: Option<i64>,
        want_report: bool,
    },
    SenderNew {
        fd: Fd,
        null_out: bool,
    },
    Sender(SenderOp),
    OptionsInit {
        null: bool,
    },
    Names {
        status: i32,
        method: i32,
    },
    /// Harness actions that vary the descriptors' state between calls.
    SetNonblock {
        slot: u8,
        on: bool,
    },
    Shutdown {
        slot: u8,
        how: u8,
    },
    Feed {
        slot: u8,
        len: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Case {
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A regular file (memfd or disk), seekable.
    File {
        append: bool,
    },
    PipeRead,
    PipeWrite,
    Unix,
    Tcp,
    Udp,
    DevNull,
    DevZero,
    Dir,
    EventFd,
}

impl Kind {
    /// Whether a call on this descriptor could wait for a peer.
    fn may_wait(self) -> bool {
        matches!(
            self,
            Kind::PipeRead | Kind::PipeWrite | Kind::Unix | Kind::Tcp | Kind::Udp | Kind::EventFd
        )
    }

    fn stream_socket(self) -> bool {
        matches!(self, Kind::Unix | Kind::Tcp)
    }

    /// A source whose unread bytes FIONREAD counts.
    fn queue(self) -> bool {
        matches!(self, Kind::PipeRead | Kind::Unix | Kind::Tcp)
    }
}

struct Slot {
    fd: c_int,
    kind: Kind,
    /// The other end of a pipe or socket pair: what is written there arrives here.
    peer: Option<usize>,
    /// The file status flags the descriptor must keep.
    flags: c_int,
}

/// A sender created by the case, and the slot of its socket.
struct Sender {
    ptr: *mut zcopy_sender,
    slot: usize,
}

/// The case's descriptors.
struct Table {
    slots: Vec<Slot>,
    closed: Vec<c_int>,
    senders: Vec<Sender>,
}

/// Bytes to feed and to send: never written after start-up, so a `MSG_ZEROCOPY` send may read
/// them for as long as it likes.
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    })
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check(rc: c_int, what: &str) -> c_int {
    assert!(rc >= 0, "harness: {what}: errno {}", errno());
    rc
}

/// A scratch directory for the disk files, and a loopback TCP listener, made once (before the
/// first descriptor count).
struct Globals {
    dir: std::ffi::CString,
    listener: c_int,
    addr: libc::sockaddr_in,
}

/// A SIGPIPE that gets past the library would kill a C host that leaves it at its default
/// disposition; this handler makes it a crash libFuzzer records (input and stack), where the
/// default action would end the run without either. The library blocks SIGPIPE around its
/// writes and consumes a pending one, so the handler never runs unless that failed.
extern "C" fn on_sigpipe(_: c_int) {
    const MSG: &[u8] =
        b"\nSIGPIPE reached the process: a write into a closed peer went unguarded\n";
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::abort();
    }
}

fn globals() -> &'static Globals {
    static G: OnceLock<Globals> = OnceLock::new();
    G.get_or_init(|| {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigpipe as extern "C" fn(c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            check(
                libc::sigaction(libc::SIGPIPE, &sa, std::ptr::null_mut()),
                "sigaction",
            );
        }
        let dir = std::env::temp_dir().join(format!("zcopy-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("harness: scratch directory");
        let dir = std::ffi::CString::new(dir.into_os_string().into_encoded_bytes())
            .expect("no NUL in a temp path");
        // SAFETY: plain socket calls on a socket made here, with a local sockaddr_in.
        unsafe {
            let l = check(
                libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0),
                "socket",
            );
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            check(
                libc::bind(l, (&raw const addr).cast(), len),
                "bind 127.0.0.1:0",
            );
            check(libc::listen(l, 64), "listen");
            let mut got = len;
            check(
                libc::getsockname(l, (&raw mut addr).cast(), &mut got),
                "getsockname",
            );
            Globals {
                dir,
                listener: l,
                addr,
            }
        }
    });
    G.get().expect("initialised above")
}

fn open_in_dir(name: &str, flags: c_int) -> c_int {
    let g = globals();
    let path = format!("{}/{name}\0", g.dir.to_str().expect("utf-8 temp path"));
    // SAFETY: a NUL-terminated path.
    unsafe { libc::open(path.as_ptr().cast(), flags | libc::O_CLOEXEC, 0o600) }
}

/// Retries a call that libFuzzer's timer signal (SIGALRM, no SA_RESTART) interrupted.
fn retry(mut call: impl FnMut() -> c_int) -> c_int {
    loop {
        let rc = call();
        if rc >= 0 || errno() != libc::EINTR {
            return rc;
        }
    }
}

/// `connect`, which an interrupting signal does not stop: the connection goes on, so wait for
/// it instead of calling again.
fn connect(fd: c_int, addr: &libc::sockaddr_in) -> c_int {
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a socket of the harness and a live sockaddr_in of `len` bytes.
    if unsafe { libc::connect(fd, (&raw const *addr).cast(), len) } == 0 {
        return 0;
    }
    if errno() != libc::EINTR {
        return -1;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    retry(|| unsafe { libc::poll(&mut p, 1, -1) });
    let mut err: c_int = 0;
    let mut elen = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: SO_ERROR writes one int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut elen,
        )
    };
    if rc == 0 && err == 0 { 0 } else { -1 }
}

fn write_all(fd: c_int, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: `data[off..]` is readable.
        let n = retry(|| unsafe {
            libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) as c_int
        });
        assert!(n > 0, "harness: write: errno {}", errno());
        off += n as usize;
    }
}

fn getfl(fd: c_int) -> c_int {
    // SAFETY: F_GETFL on any number is harmless.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

fn is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD on any number is harmless.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

fn queued(fd: c_int) -> Option<u64> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    (rc == 0).then_some(n as u64)
}

fn unsent(fd: c_int) -> u64 {
    let mut n: c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc == 0 { n as u64 } else { u64::MAX }
}

fn position(fd: c_int) -> i64 {
    // SAFETY: lseek on a descriptor of the table.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
}

fn inode(fd: c_int) -> Option<(u64, u64)> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes one struct stat.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: written by the successful fstat.
    let st = unsafe { st.assume_init() };
    Some((st.st_dev, st.st_ino))
}

/// Open descriptors of the process, less the engine's pooled pipes (two each).
fn open_fds() -> usize {
    let n = std::fs::read_dir("/proc/self/fd")
        .expect("harness: /proc/self/fd")
        .count();
    n - 2 * zcopy_core::pooled_pipes()
}

impl Table {
    fn new() -> Table {
        let mut t = Table {
            slots: Vec::new(),
            closed: Vec::new(),
            senders: Vec::new(),
        };
        let p = pattern();
        // SAFETY: each call makes descriptors that the table then owns.
        unsafe {
            let m = check(
                libc::memfd_create(c"zcopy-fuzz".as_ptr(), libc::MFD_CLOEXEC),
                "memfd_create",
            );
            write_all(m, &p[..8192]);
            libc::lseek(m, 0, libc::SEEK_SET);
            t.push(m, Kind::File { append: false }, None);

            let b = check(
                open_in_dir("b", libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC),
                "open b",
            );
            t.push(b, Kind::File { append: false }, None);

            let c = check(
                open_in_dir("c", libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
                "open c",
            );
            write_all(c, &p[..5000]);
            libc::close(c);
            let c = check(open_in_dir("c", libc::O_RDONLY), "open c read-only");
            t.push(c, Kind::File { append: false }, None);

            let d = check(
                open_in_dir(
                    "d",
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND,
                ),
                "open d",
            );
            write_all(d, b"head");
            t.push(d, Kind::File { append: true }, None);

            let mut e = open_in_dir(
                "e",
                libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_DIRECT,
            );
            if e < 0 {
                e = check(
                    open_in_dir("e", libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC),
                    "open e",
                );
            }
            t.push(e, Kind::File { append: false }, None);

            let mut fds = [0 as c_int; 2];
            check(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), "pipe2");
            write_all(fds[1], &p[..3000]);
            let r = t.push(fds[0], Kind::PipeRead, None);
            t.push(fds[1], Kind::PipeWrite, None);
            t.pair(r, r + 1);

            check(
                libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK),
                "pipe2",
            );
            let r = t.push(fds[0], Kind::PipeRead, None);
            t.push(fds[1], Kind::PipeWrite, None);
            t.pair(r, r + 1);

            check(
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                ),
                "socketpair",
            );
            write_all(fds[1], &p[..2000]);
            let a = t.push(fds[0], Kind::Unix, None);
            t.push(fds[1], Kind::Unix, None);
            t.pair(a, a + 1);

            let g = globals();
            let c = check(
                libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0),
                "socket",
            );
            let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            check(connect(c, &g.addr), "connect");
            let s = check(
                retry(|| {
                    libc::accept4(
                        g.listener,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC,
                    )
                }),
                "accept",
            );
            write_all(s, &p[..1500]);
            let a = t.push(c, Kind::Tcp, None);
            t.push(s, Kind::Tcp, None);
            t.pair(a, a + 1);

            let u = check(
                libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0),
                "udp socket",
            );
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            check(libc::bind(u, (&raw const addr).cast(), len), "udp bind");
            let mut got = len;
            check(
                libc::getsockname(u, (&raw mut addr).cast(), &mut got),
                "udp getsockname",
            );
            check(connect(u, &addr), "udp connect");
            t.push(u, Kind::Udp, None);

            let n = check(
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC),
                "/dev/null",
            );
            t.push(n, Kind::DevNull, None);
            let z = check(
                libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC),
                "/dev/zero",
            );
            t.push(z, Kind::DevZero, None);
            let dir = check(
                libc::open(
                    globals().dir.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                ),
                "directory",
            );
            t.push(dir, Kind::Dir, None);
            let ev = check(libc::eventfd(0, libc::EFD_CLOEXEC), "eventfd");
            t.push(ev, Kind::EventFd, None);

            // The lowest free numbers, closed again: the library's own duplicates take them.
            let x = check(libc::dup(m), "dup");
            let y = check(libc::dup(m), "dup");
            libc::close(x);
            libc::close(y);
            t.closed = vec![x, y];
        }
        t
    }

    fn push(&mut self, fd: c_int, kind: Kind, peer: Option<usize>) -> usize {
        self.slots.push(Slot {
            fd,
            kind,
            peer,
            flags: getfl(fd),
        });
        self.slots.len() - 1
    }

    fn pair(&mut self, a: usize, b: usize) {
        self.slots[a].peer = Some(b);
        self.slots[b].peer = Some(a);
    }

    fn slot(&self, i: u8) -> usize {
        i as usize % self.slots.len()
    }

    /// The number to pass for `fd`, and its slot when it is one of the table's.
    fn resolve(&self, fd: Fd) -> (c_int, Option<usize>) {
        let n = match fd {
            Fd::Real(i) => {
                let s = self.slot(i);
                return (self.slots[s].fd, Some(s));
            }
            Fd::Closed(i) => self.closed[i as usize % self.closed.len()],
            Fd::Huge(h) => (1 << 24) + (h % (1 << 20)) as c_int,
            Fd::Negative(n) => {
                if n < 0 {
                    n
                } else {
                    -1 - (n % 1000)
                }
            }
            Fd::Raw(n) => n,
        };
        if let Some(s) = self.slots.iter().position(|s| s.fd == n) {
            return (n, Some(s));
        }
        // Someone else's open descriptor (stdin, libFuzzer's, a sender's duplicate): never
        // touch it; a closed number far away instead.
        if is_open(n) {
            return ((1 << 25) + (n & 0xffff), None);
        }
        (n, None)
    }

    fn kind(&self, s: Option<usize>) -> Option<Kind> {
        s.map(|s| self.slots[s].kind)
    }

    /// Every borrowed descriptor kept its file status flags.
    fn flags_kept(&self, what: &str) {
        for s in &self.slots {
            assert_eq!(
                getfl(s.fd),
                s.flags,
                "{what}: the flags of fd {} ({:?}) changed",
                s.fd,
                s.kind
            );
        }
    }

    /// Closes every sender (waiting briefly for completions) and every descriptor.
    fn close(mut self) {
        for s in self.senders.drain(..) {
            // SAFETY: a live sender made by zcopy_sender_new, never used again.
            let st = unsafe { zcopy_sender_close(s.ptr, 1000) };
            assert!(
                matches!(
                    st,
                    zcopy_status::Ok | zcopy_status::TimedOut | zcopy_status::Os
                ),
                "zcopy_sender_close: {st:?}"
            );
        }
        for s in &self.slots {
            // SAFETY: the table's own descriptors, closed once.
            unsafe { libc::close(s.fd) };
        }
    }
}

/// A deadline no call that could wait goes without: invalid values stay (they must be refused
/// at once), everything else becomes 0..=MAX_WAIT_MS.
fn bounded(timeout_ms: i64, may_wait: bool) -> i64 {
    if timeout_ms < -1 || !may_wait || (0..=MAX_WAIT_MS as i64).contains(&timeout_ms) {
        timeout_ms
    } else {
        (timeout_ms.unsigned_abs() % (MAX_WAIT_MS + 1)) as i64
    }
}

fn raw_options(o: &Opts) -> RawOptions {
    RawOptions {
        method: match o.method % 9 {
            m @ 0..=6 => m as i32,
            7 => o.raw_method,
            _ => -1,
        },
        offset: match o.offset_sel % 4 {
            0 => -1,
            1 => 0,
            2 => o.offset,
            _ => o.offset.rem_euclid(10_000),
        },
        count: match o.count_sel % 4 {
            0 => ZCOPY_TO_EOF,
            1 => 0,
            2 => o.count,
            _ => o.count % 100_000,
        },
        timeout_ms: match o.timeout_sel % 4 {
            0 => -1,
            1 => 0,
            2 => o.timeout_ms,
            _ => o.timeout_ms.rem_euclid(10),
        },
        flags: match o.flags_sel % 3 {
            0 => 0,
            1 => ZCOPY_FLAG_ALLOW_FALLBACK,
            _ => o.flags,
        },
    }
}

fn status_ok(st: zcopy_status, what: &str) {
    let n = st as i32;
    assert!((0..=7).contains(&n), "{what}: unknown status {n}");
    assert_ne!(st, zcopy_status::Panic, "{what}: PANIC");
}

fn transfer(t: &Table, src: Fd, dst: Fd, opts: Option<&Opts>, want_report: bool) {
    let (sfd, ss) = t.resolve(src);
    let (dfd, ds) = t.resolve(dst);
    let (sk, dk) = (t.kind(ss), t.kind(ds));
    let may_wait = sk.is_some_and(Kind::may_wait) || dk.is_some_and(Kind::may_wait);
    let mut raw = opts.map_or(
        RawOptions {
            method: 0,
            offset: -1,
            count: ZCOPY_TO_EOF,
            timeout_ms: -1,
            flags: 0,
        },
        raw_options,
    );
    if sk == Some(Kind::DevZero) && raw.count > MAX_ZERO_COUNT {
        raw.count %= MAX_ZERO_COUNT + 1;
    }
    raw.timeout_ms = bounded(raw.timeout_ms, may_wait);
    let feeds_itself = match (ss, ds) {
        (Some(a), Some(b)) => t.slots[a].peer == Some(b),
        _ => false,
    };
    if feeds_itself && raw.timeout_ms == 0 {
        // A zero timeout only stops a call that would wait; a source fed by its own
        // destination never waits and never ends (as with no timeout): give it a deadline.
        raw.timeout_ms = 1;
    }
    // NULL options mean "wait as long as it takes, to the end": only where nothing can wait
    // and the source ends; elsewhere the defaults are passed, bounded.
    let pass_opts = opts.is_some() || may_wait || sk == Some(Kind::DevZero);

    // What to compare after the call.
    let same_file = match (ss, ds) {
        (Some(a), Some(b)) => inode(t.slots[a].fd) == inode(t.slots[b].fd),
        _ => false,
    };
    let src_pos = match sk {
        Some(Kind::File { .. }) if !same_file => Some(position(sfd)),
        _ => None,
    };
    let dst_pos = match dk {
        Some(Kind::File { append: false }) if !same_file => Some(position(dfd)),
        _ => None,
    };
    // TCP bytes the peer sent that are not acknowledged yet may still arrive during the call:
    // count only a source whose peer has nothing outstanding.
    let settled = |s: usize| {
        t.slots[s].kind != Kind::Tcp || t.slots[s].peer.is_some_and(|p| unsent(t.slots[p].fd) == 0)
    };
    let src_queue = match (ss, sk) {
        (Some(s), Some(k)) if k.queue() && !feeds_itself && settled(s) => queued(t.slots[s].fd),
        _ => None,
    };

    let mut rep = MaybeUninit::<RawReport>::uninit();
    // SAFETY: filling the bytes of a plain-integer struct.
    unsafe { rep.as_mut_ptr().write_bytes(0x5a, 1) };
    let rep_ptr: *mut zcopy_report = if want_report {
        rep.as_mut_ptr().cast()
    } else {
        std::ptr::null_mut()
    };
    let opts_ptr: *const zcopy_options = if pass_opts {
        (&raw const raw).cast()
    } else {
        std::ptr::null()
    };
    // SAFETY: options and report are NULL or point to live locals of the C layout (the method
    // as an int, which is how the library reads it).
    let st = unsafe { zcopy_transfer(sfd, dfd, opts_ptr, rep_ptr) };
    let what = format!("zcopy_transfer({sfd} {sk:?}, {dfd} {dk:?}, {raw:?})");
    status_ok(st, &what);
    t.flags_kept(&what);
    if !want_report {
        return;
    }
    // SAFETY: the library writes the report on every status; every bit pattern is a valid
    // RawReport.
    let r = unsafe { rep.assume_init() };
    let what = format!("{what} -> {st:?} {r:?}");
    assert!((0..=6).contains(&r.method), "{what}: method");
    assert_eq!(
        r.os_errno != 0,
        st == zcopy_status::Os,
        "{what}: os_errno with OS, only then"
    );
    if st == zcopy_status::Ok {
        assert_eq!(r.undelivered, 0, "{what}: undelivered on success");
    }
    if raw.count != ZCOPY_TO_EOF {
        assert!(r.bytes <= raw.count, "{what}: more than the count");
    }
    if matches!(
        st,
        zcopy_status::InvalidArgument | zcopy_status::NullParameter
    ) {
        assert_eq!(
            (r.bytes, r.undelivered),
            (0, 0),
            "{what}: bytes moved on a refused call"
        );
    }
    if let Some(before) = src_pos {
        let after = position(sfd);
        if pass_opts && raw.offset >= 0 {
            assert_eq!(after, before, "{what}: an offset read moved the position");
        } else {
            assert_eq!(
                after,
                before + r.bytes as i64,
                "{what}: the source position is not start + bytes"
            );
        }
    }
    if let Some(before) = dst_pos {
        assert_eq!(
            position(dfd),
            before + r.bytes as i64,
            "{what}: the destination position is not start + bytes"
        );
    }
    if let (Some(before), Some(s)) = (src_queue, ss) {
        let after = queued(t.slots[s].fd).unwrap_or(0);
        assert_eq!(
            before,
            r.bytes + r.undelivered + after,
            "{what}: queued {before} before, {after} after: bytes lost without a count"
        );
        if st == zcopy_status::Unsupported {
            assert_eq!(before, after, "{what}: UNSUPPORTED consumed bytes");
        }
    }
}

fn relay(t: &Table, a: Fd, b: Fd, timeout_ms: Option<i64>, want_report: bool) {
    let (afd, sa) = t.resolve(a);
    let (bfd, sb) = t.resolve(b);
    let (ka, kb) = (t.kind(sa), t.kind(sb));
    let both_streams = ka.is_some_and(Kind::stream_socket) && kb.is_some_and(Kind::stream_socket);
    // Without a deadline only where the relay is refused at once.
    let timeout_ms = match timeout_ms {
        None if !both_streams => None,
        None => Some(MAX_WAIT_MS as i64),
        Some(ms) => Some(bounded(ms, both_streams)),
    };
    // Two ends of one pair relayed into each other feed themselves and never wait: a zero
    // timeout would never end it (see `transfer`).
    let loops = matches!((sa, sb), (Some(x), Some(y)) if t.slots[x].peer == Some(y));
    let timeout_ms = match timeout_ms {
        Some(0) if loops => Some(1),
        other => other,
    };
    let mut rep = zcopy_relay_report {
        a_to_b: u64::MAX,
        b_to_a: u64::MAX,
        os_errno: -7,
        buffered: -7,
    };
    let rep_ptr: *mut zcopy_relay_report = if want_report {
        &raw mut rep
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: the report is NULL or a live local.
    let st = unsafe {
        match timeout_ms {
            None => zcopy_relay(afd, bfd, rep_ptr),
            Some(ms) => zcopy_relay_with_timeout(afd, bfd, ms, rep_ptr),
        }
    };
    let what = format!("zcopy_relay({afd} {ka:?}, {bfd} {kb:?}, {timeout_ms:?})");
    status_ok(st, &what);
    t.flags_kept(&what);
    if want_report {
        let what = format!("{what} -> {st:?} {rep:?}");
        assert_eq!(
            rep.os_errno != 0,
            st == zcopy_status::Os,
            "{what}: os_errno"
        );
        assert!(
            rep.a_to_b != u64::MAX && rep.b_to_a != u64::MAX,
            "{what}: not written"
        );
        assert!(rep.buffered == 0 || rep.buffered == 1, "{what}: buffered");
        if matches!(
            st,
            zcopy_status::InvalidArgument | zcopy_status::Unsupported | zcopy_status::NullParameter
        ) {
            assert_eq!(
                (rep.a_to_b, rep.b_to_a, rep.buffered),
                (0, 0, 0),
                "{what}: bytes on a refusal"
            );
        }
    }
}

fn sender_new(t: &mut Table, fd: Fd, null_out: bool) {
    let (n, s) = t.resolve(fd);
    let sentinel = 0x5a5a_5a5a_usize as *mut zcopy_sender;
    let mut out = sentinel;
    let out_ptr: *mut *mut zcopy_sender = if null_out {
        std::ptr::null_mut()
    } else {
        &raw mut out
    };
    // SAFETY: `out` is NULL or a live local.
    let st = unsafe { zcopy_sender_new(n, out_ptr) };
    let what = format!("zcopy_sender_new({n} {:?})", t.kind(s));
    status_ok(st, &what);
    t.flags_kept(&what);
    if null_out {
        assert_eq!(st, zcopy_status::NullParameter, "{what}: NULL out");
        return;
    }
    if st == zcopy_status::Ok {
        assert!(!out.is_null() && out != sentinel, "{what}: no sender");
        let slot = s.expect("a sender only on one of the table's sockets");
        assert_eq!(
            t.slots[slot].kind,
            Kind::Tcp,
            "{what}: a sender on a non-TCP socket"
        );
        t.senders.push(Sender { ptr: out, slot });
    } else {
        assert_eq!(out, sentinel, "{what}: out written on {st:?}");
    }
}

fn pick(t: &Table, sender: Option<u8>) -> Option<usize> {
    match sender {
        Some(i) if !t.senders.is_empty() => Some(i as usize % t.senders.len()),
        _ => None,
    }
}

fn sender_op(t: &mut Table, op: &SenderOp) {
    match *op {
        SenderOp::Send {
            sender,
            offset,
            len,
            null_buf,
            null_id,
        } => {
            let i = pick(t, sender);
            let p = pattern();
            let off = offset as usize % p.len();
            let len = (len as usize).min(p.len() - off);
            let will_send = i.is_some() && !null_buf && !null_id;
            if let (true, Some(i)) = (will_send, i) {
                // The send has no deadline: keep what the peer has not read within what the
                // connection buffers, or skip the call.
                let slot = &t.slots[t.senders[i].slot];
                let peer = &t.slots[slot.peer.expect("a TCP slot has a peer")];
                let inflight = unsent(slot.fd)
                    .saturating_add(queued(peer.fd).unwrap_or(u64::MAX))
                    .saturating_add(len as u64);
                if inflight > SENDER_BUDGET as u64 {
                    return;
                }
            }
            let s = i.map_or(std::ptr::null_mut(), |i| t.senders[i].ptr);
            let buf: *const c_void = if null_buf {
                std::ptr::null()
            } else {
                p[off..].as_ptr().cast()
            };
            let mut id = u64::MAX - 1;
            let id_ptr: *mut u64 = if null_id {
                std::ptr::null_mut()
            } else {
                &raw mut id
            };
            // SAFETY: `s` is NULL or a live sender; `buf` is NULL or `len` bytes of a static
            // that is never written; `id_ptr` is NULL or a live local.
            let st = unsafe { zcopy_sender_send(s, buf, len, id_ptr) };
            let what = format!("zcopy_sender_send({len})");
            status_ok(st, &what);
            t.flags_kept(&what);
            if s.is_null() || null_buf || null_id {
                assert_eq!(st, zcopy_status::NullParameter, "{what}");
            }
            if st != zcopy_status::Ok {
                assert_eq!(id, u64::MAX - 1, "{what}: id written on {st:?}");
            }
        }
        SenderOp::Poll {
            sender,
            timeout_ms,
            null_done,
            null_copied,
        } => {
            let i = pick(t, sender);
            let s = i.map_or(std::ptr::null_mut(), |i| t.senders[i].ptr);
            let (mut done, mut copied) = (u64::MAX, u64::MAX);
            let done_ptr: *mut u64 = if null_done {
                std::ptr::null_mut()
            } else {
                &raw mut done
            };
            let copied_ptr: *mut u64 = if null_copied {
                std::ptr::null_mut()
            } else {
                &raw mut copied
            };
            let ms = bounded(timeout_ms, true);
            // SAFETY: `s` is NULL or a live sender; the outputs are NULL or live locals.
            let st = unsafe { zcopy_sender_poll(s, ms, done_ptr, copied_ptr) };
            let what = format!("zcopy_sender_poll({ms})");
            status_ok(st, &what);
            t.flags_kept(&what);
            if st == zcopy_status::Ok {
                assert!(done != u64::MAX && copied != u64::MAX, "{what}: outputs");
            } else {
                assert_eq!(
                    (done, copied),
                    (u64::MAX, u64::MAX),
                    "{what}: written on {st:?}"
                );
            }
        }
        SenderOp::Stats { sender, null_out } => {
            let i = pick(t, sender);
            let s = i.map_or(std::ptr::null(), |i| t.senders[i].ptr.cast_const());
            let mut out = MaybeUninit::<zcopy_sender_stats>::uninit();
            let out_ptr = if null_out {
                std::ptr::null_mut()
            } else {
                out.as_mut_ptr()
            };
            // SAFETY: `s` is NULL or a live sender; `out_ptr` NULL or a live local.
            let st = unsafe { zcopy_sender_get_stats(s, out_ptr) };
            status_ok(st, "zcopy_sender_get_stats");
            if st == zcopy_status::Ok {
                // SAFETY: written on OK.
                let o = unsafe { out.assume_init() };
                assert_eq!(o.pending, o.sent - o.done, "stats: {o:?}");
                assert!(o.copied <= o.completions, "stats: {o:?}");
            } else {
                assert!(s.is_null() || null_out, "get_stats: {st:?}");
            }
        }
        SenderOp::Close { sender, timeout_ms } => {
            let i = pick(t, sender);
            let s = i.map_or(std::ptr::null_mut(), |i| t.senders[i].ptr);
            let ms = bounded(timeout_ms, true);
            // SAFETY: `s` is NULL or a live sender, forgotten below unless the status says it
            // was left untouched.
            let st = unsafe { zcopy_sender_close(s, ms) };
            let what = format!("zcopy_sender_close({ms})");
            status_ok(st, &what);
            t.flags_kept(&what);
            let kept = matches!(
                st,
                zcopy_status::NullParameter | zcopy_status::InvalidArgument
            );
            match i {
                None => assert_eq!(st, zcopy_status::NullParameter, "{what}"),
                Some(i) if !kept => {
                    t.senders.swap_remove(i);
                }
                Some(_) => assert!(ms < -1, "{what}: {st:?} with a valid timeout"),
            }
        }
        SenderOp::Free { sender } => {
            let Some(i) = pick(t, sender) else {
                // SAFETY: NULL is documented to do nothing.
                unsafe { zcopy_sender_free(std::ptr::null_mut()) };
                return;
            };
            let s = t.senders.swap_remove(i).ptr;
            // zcopy_sender_free waits up to 30 s for completions: only when none is due.
            let mut stats = zcopy_sender_stats::default();
            let (mut done, mut copied) = (0, 0);
            // SAFETY: a live sender; outputs are live locals.
            let pending = unsafe {
                zcopy_sender_poll(s, 50, &mut done, &mut copied);
                zcopy_sender_get_stats(s, &mut stats);
                stats.pending
            };
            // SAFETY: a live sender, never used again.
            unsafe {
                if pending == 0 {
                    zcopy_sender_free(s);
                } else {
                    zcopy_sender_close(s, 1000);
                }
            }
        }
    }
}

fn names(status: i32, method: i32) {
    // SAFETY: the library returns static NUL-terminated strings.
    let (s, m, v) = unsafe {
        let s = zcopy_status_name(status);
        let m = zcopy_method_name(method);
        let v = zcopy_version();
        assert!(!s.is_null() && !m.is_null() && !v.is_null());
        (CStr::from_ptr(s), CStr::from_ptr(m), CStr::from_ptr(v))
    };
    if !(0..=7).contains(&status) {
        assert_eq!(s, c"UNKNOWN");
    }
    if !(0..=6).contains(&method) {
        assert_eq!(m, c"unknown");
    }
    assert!(!v.is_empty());
    let caps = zcopy_capabilities();
    assert!(caps & 1 == 1 && caps >> 7 == 0, "capabilities {caps:#x}");
}

fn options_init(null: bool) {
    if null {
        // SAFETY: NULL is documented to do nothing.
        unsafe { zcopy_options_init(std::ptr::null_mut()) };
        return;
    }
    let mut o = MaybeUninit::<RawOptions>::uninit();
    // SAFETY: garbage first, then the library writes a whole zcopy_options.
    let o = unsafe {
        o.as_mut_ptr().write_bytes(0x77, 1);
        zcopy_options_init(o.as_mut_ptr().cast());
        o.assume_init()
    };
    assert_eq!(
        (o.method, o.offset, o.count, o.timeout_ms, o.flags),
        (0, -1, ZCOPY_TO_EOF, -1, 0)
    );
}

fn harness_op(t: &mut Table, op: &Op) {
    match *op {
        Op::SetNonblock { slot, on } => {
            let i = t.slot(slot);
            let s = &mut t.slots[i];
            let f = if on {
                s.flags | libc::O_NONBLOCK
            } else {
                s.flags & !libc::O_NONBLOCK
            };
            // SAFETY: F_SETFL on the table's descriptor.
            if unsafe { libc::fcntl(s.fd, libc::F_SETFL, f) } == 0 {
                s.flags = getfl(s.fd);
            }
        }
        Op::Shutdown { slot, how } => {
            let s = &t.slots[slot as usize % t.slots.len()];
            if s.kind.stream_socket() {
                let how = [libc::SHUT_RD, libc::SHUT_WR, libc::SHUT_RDWR][how as usize % 3];
                // SAFETY: shutdown of the table's socket.
                unsafe { libc::shutdown(s.fd, how) };
            }
        }
        Op::Feed { slot, len } => {
            let s = &t.slots[slot as usize % t.slots.len()];
            let data = &pattern()[..(len as usize).min(4096)];
            // SAFETY: writes of a static buffer into the table's descriptors, never waiting:
            // sockets with MSG_DONTWAIT, a pipe only when poll says a page is free (a write of
            // at most PIPE_BUF bytes then fits at once), and never SIGPIPE.
            unsafe {
                match s.kind {
                    Kind::Unix | Kind::Tcp | Kind::Udp => {
                        libc::send(
                            s.fd,
                            data.as_ptr().cast(),
                            data.len(),
                            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                        );
                    }
                    Kind::PipeWrite => {
                        let mut p = libc::pollfd {
                            fd: s.fd,
                            events: libc::POLLOUT,
                            revents: 0,
                        };
                        if libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLOUT != 0 {
                            libc::write(s.fd, data.as_ptr().cast(), data.len());
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => unreachable!("not a harness op"),
    }
}

fn run(case: &Case) {
    globals();
    pattern();
    let before = open_fds();
    let mut t = Table::new();
    for op in case.ops.iter().take(MAX_OPS) {
        match op {
            Op::Transfer {
                src,
                dst,
                opts,
                want_report,
            } => transfer(&t, *src, *dst, opts.as_ref(), *want_report),
            Op::Relay {
                a,
                b,
                timeout_ms,
                want_report,
            } => relay(&t, *a, *b, *timeout_ms, *want_report),
            Op::SenderNew { fd, null_out } => sender_new(&mut t, *fd, *null_out),
            Op::Sender(s) => sender_op(&mut t, s),
            Op::OptionsInit { null } => options_init(*null),
            Op::Names { status, method } => names(*status, *method),
            _ => harness_op(&mut t, op),
        }
    }
    t.close();
    let after = open_fds();
    assert_eq!(
        before, after,
        "descriptors leaked: {before} open before the case, {after} after"
    );
}

fuzz_target!(|case: Case| run(&case));
