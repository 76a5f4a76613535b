//! Error paths: bad and closed descriptors, directories, access modes, datagram sockets, closed
//! peers (EPIPE with progress, SIGPIPE never kills a host that left it at SIG_DFL), huge
//! offsets and counts.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use common::*;
use zcopy_core::{
    ErrorCode, ErrorKind, Method, Options, RelayOptions, relay, transfer, transfer_fds,
};

const FILE_METHODS: [Method; 5] = [
    Method::Auto,
    Method::ReadWrite,
    Method::Mmap,
    Method::Sendfile,
    Method::Splice,
];

#[test]
fn negative_fd_is_invalid_argument() {
    let dir = TempDir::new("badfd");
    let src = dir.source("src", b"abc");
    let dst = dir.sink("dst");
    for (s, d) in [
        (-1, dst.as_raw_fd()),
        (src.as_raw_fd(), -1),
        (-1, -1),
        (i32::MIN, dst.as_raw_fd()),
    ] {
        let e = transfer_fds(s, d, &Options::default()).expect_err("negative fd");
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "({s}, {d}): {e}");
        assert_eq!(e.errno(), None);
        assert_eq!(e.bytes(), 0);
    }
    assert!(dir.read("dst").is_empty());
}

#[test]
fn closed_fd_number_is_os_ebadf() {
    let dir = TempDir::new("closedfd");
    let src = dir.source("src", b"abc");
    let dst = dir.sink("dst");
    let closed = closed_fd_number();
    for (s, d) in [(closed, dst.as_raw_fd()), (src.as_raw_fd(), closed)] {
        let e = transfer_fds(s, d, &Options::default()).expect_err("closed fd");
        assert_eq!(
            (e.code(), e.errno()),
            (ErrorCode::Os, Some(libc::EBADF)),
            "({s}, {d}): {e}"
        );
        assert_eq!(e.bytes(), 0);
    }
    // The raw entry point works on real numbers and leaves them open.
    let r = transfer_fds(src.as_raw_fd(), dst.as_raw_fd(), &Options::default()).unwrap();
    assert_eq!(r.bytes, 3);
    assert_eq!(
        position(&src),
        3,
        "transfer_fds shares the caller's file position"
    );
    assert_eq!(dir.read("dst"), b"abc");
}

#[test]
fn directory_is_eisdir_on_either_side() {
    let dir = TempDir::new("dir");
    let d = std::fs::File::open(dir.path()).unwrap();
    let src = dir.source("src", b"abc");
    let dst = dir.sink("dst");
    for m in Method::ALL {
        let e = transfer(&d, &dst, &Options::with_method(m)).expect_err("directory source");
        assert_eq!(
            (e.code(), e.errno()),
            (ErrorCode::Os, Some(libc::EISDIR)),
            "{m} from a directory: {e}"
        );
        let e = transfer(&src, &d, &Options::with_method(m)).expect_err("directory destination");
        assert_eq!(
            (e.code(), e.errno()),
            (ErrorCode::Os, Some(libc::EISDIR)),
            "{m} to a directory: {e}"
        );
    }
    assert_eq!(position(&src), 0);
}

#[test]
fn wrong_access_mode_is_ebadf() {
    let dir = TempDir::new("access");
    let src = dir.source("src", &pattern(5000, 1));
    let write_only = OpenOptions::new()
        .write(true)
        .open(dir.join("src"))
        .unwrap();
    let dst = dir.sink("dst");
    let read_only = std::fs::File::open(dir.join("dst")).unwrap();
    let path =
        std::ffi::CString::new(dir.join("src").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path; the result is checked and owned below.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    assert!(raw >= 0);
    // SAFETY: a fresh descriptor nobody else owns.
    let o_path = unsafe { OwnedFd::from_raw_fd(raw) };
    let (pr, pw) = pipe();
    for m in Method::ALL {
        for (what, s, d) in [
            ("write-only source", write_only.as_fd(), dst.as_fd()),
            ("O_PATH source", o_path.as_fd(), dst.as_fd()),
            ("read-only destination", src.as_fd(), read_only.as_fd()),
            ("O_PATH destination", src.as_fd(), o_path.as_fd()),
            ("pipe read end as destination", src.as_fd(), pr.as_fd()),
            ("pipe write end as source", pw.as_fd(), dst.as_fd()),
        ] {
            let e = transfer(s, d, &Options::with_method(m)).expect_err(what);
            assert_eq!(
                (e.code(), e.errno()),
                (ErrorCode::Os, Some(libc::EBADF)),
                "{m}, {what}: {e}"
            );
            assert_eq!(e.bytes(), 0);
        }
    }
    assert_eq!(position(&src), 0);
    assert!(dir.read("dst").is_empty());
}

#[test]
fn datagram_sockets_and_other_fds_are_unsupported() {
    let dir = TempDir::new("udp");
    let src = dir.source("src", &pattern(5000, 2));
    let dst = dir.sink("dst");
    let (u1, u2) = udp_pair();
    u2.send(b"datagram").unwrap();
    // SAFETY: no pointers; the result is checked and owned below.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(efd >= 0);
    // SAFETY: a fresh descriptor nobody else owns.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    for m in Method::ALL {
        let e = transfer(&src, &u1, &Options::with_method(m)).expect_err("udp destination");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m} to UDP: {e}");
        let e = transfer(&u1, &dst, &Options::with_method(m)).expect_err("udp source");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m} from UDP: {e}");
        let e = transfer(&src, &efd, &Options::with_method(m)).expect_err("eventfd destination");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m} to eventfd: {e}");
        // With fallback allowed it is still Unsupported: no method can do it.
        let opts = Options {
            method: m,
            fallback: true,
            ..Options::default()
        };
        let e = transfer(&src, &u1, &opts).expect_err("udp with fallback");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m}+fallback to UDP: {e}");
    }
    assert_eq!(position(&src), 0);
    // The datagram is still there: nothing was read from the UDP source.
    let mut buf = [0u8; 64];
    u1.set_nonblocking(true).unwrap();
    assert_eq!(u1.recv(&mut buf).unwrap(), 8);
}

#[test]
fn huge_offsets_and_counts_never_panic_or_overflow() {
    let dir = TempDir::new("huge");
    let data = pattern(5000, 3);
    let src = dir.source("src", &data);
    for m in FILE_TO_FILE {
        // Beyond the largest file offset: InvalidArgument.
        for off in [u64::MAX, i64::MAX as u64 + 1] {
            let dst = dir.sink("dst");
            let e = transfer(
                &src,
                &dst,
                &Options {
                    method: m,
                    offset: Some(off),
                    count: Some(u64::MAX),
                    ..Options::default()
                },
            )
            .expect_err("offset beyond 2^63-1");
            assert_eq!(
                e.code(),
                ErrorCode::InvalidArgument,
                "{m} offset {off}: {e}"
            );
        }
        // The largest offsets are past EOF: 0 bytes, whatever the count.
        for off in [i64::MAX as u64, i64::MAX as u64 - 4096] {
            for count in [None, Some(1), Some(u64::MAX)] {
                let dst = dir.sink("dst");
                let r = transfer(
                    &src,
                    &dst,
                    &Options {
                        method: m,
                        offset: Some(off),
                        count,
                        ..Options::default()
                    },
                );
                match r {
                    Ok(r) => assert_eq!(r.bytes, 0, "{m} offset {off} count {count:?}"),
                    Err(e) => {
                        panic!("{m} offset {off} count {count:?}: past EOF is 0 bytes, not {e}")
                    }
                }
            }
        }
        // count u64::MAX from the start is "to EOF".
        let dst = dir.sink("dst");
        let r = transfer(
            &src,
            &dst,
            &Options {
                method: m,
                offset: Some(0),
                count: Some(u64::MAX),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(r.bytes, 5000);
        assert_bytes(&format!("{m}"), &data, &dir.read("dst"));
        // And from the position, near the end.
        seek(&src, 4999);
        let dst = dir.sink("dst");
        let r = transfer(
            &src,
            &dst,
            &Options {
                method: m,
                count: Some(u64::MAX),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(r.bytes, 1);
        assert_eq!(position(&src), 5000);
        seek(&src, 0);
    }
}

#[test]
fn explicit_method_that_does_not_apply_falls_back_only_when_allowed() {
    let dir = TempDir::new("fallback");
    let data = pattern(100_000, 4);
    let src = dir.source("src", &data);
    let (pr, pw) = pipe();
    let e = transfer(&src, &pw, &Options::with_method(Method::CopyFileRange))
        .expect_err("cfr to a pipe");
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    assert_eq!(position(&src), 0);
    let reader = spawn_reader(pr);
    let opts = Options {
        method: Method::CopyFileRange,
        fallback: true,
        ..Options::default()
    };
    let r = transfer(&src, &pw, &opts).unwrap();
    drop(pw);
    assert_eq!(r.bytes, data.len() as u64);
    assert_ne!(r.method, Method::CopyFileRange);
    assert!(
        r.fallbacks
            .first()
            .is_some_and(|f| f.from == Method::CopyFileRange),
        "{r:?}"
    );
    assert_bytes(
        "cfr fallback to a pipe",
        &data,
        &reader.join().unwrap().unwrap(),
    );
}

#[test]
fn error_values_carry_code_errno_bytes_and_display() {
    let dir = TempDir::new("display");
    let src = dir.source("src", &pattern(300_000, 5));
    let (pr, pw) = pipe();
    let reader = std::thread::spawn(move || {
        let mut r = pr;
        let mut buf = vec![0u8; 100_000];
        r.read_exact(&mut buf).unwrap();
        buf
    });
    let e = transfer(&src, &pw, &Options::with_method(Method::ReadWrite))
        .expect_err("reader goes away");
    let got = reader.join().unwrap();
    assert_eq!(
        (e.code(), e.errno()),
        (ErrorCode::Os, Some(libc::EPIPE)),
        "{e}"
    );
    assert!(matches!(e.kind, ErrorKind::Os(_)));
    assert!(e.bytes() >= 100_000 && e.bytes() <= 300_000, "{e}");
    assert_eq!(e.bytes(), e.report.bytes);
    assert_eq!(
        position(&src),
        e.bytes(),
        "resumable: the position is start + bytes delivered"
    );
    let text = e.to_string();
    assert!(
        text.contains(&format!("after {} bytes", e.bytes())),
        "{text}"
    );
    assert!(std::error::Error::source(&e).is_some());
    assert_bytes("what the reader got", &pattern(300_000, 5)[..100_000], &got);
}

// ---------------------------------------------------------------------------------------------
// Closed peers: EPIPE with the bytes moved.

/// Transfers `size` bytes of a file into `dst`; the other end is read for `read_first` bytes by
/// `peer` and then closed. Returns (error, bytes the peer got, source position).
fn epipe_case(m: Method, kind: &str, read_first: usize) -> Result<(), String> {
    let dir = TempDir::new("epipe");
    let size = 4 << 20;
    let data = pattern(size, 6);
    let src = dir.source("src", &data);
    let (dst, peer): (std::fs::File, std::fs::File) = match kind {
        "pipe" => {
            let (r, w) = pipe();
            (w, r)
        }
        "unix" => {
            let (a, b) = unix_pair();
            (as_file(a), as_file(b))
        }
        _ => {
            let (c, s) = tcp_pair();
            // Loopback TCP autotunes its buffers up to tens of MiB: the whole file could be
            // buffered before the peer closes. Small fixed buffers make "the peer went away
            // mid-transfer" a certainty.
            small_buffers(&c);
            small_buffers(&s);
            (as_file(c), as_file(s))
        }
    };
    let reader = std::thread::spawn(move || {
        let mut p = peer;
        let mut buf = vec![0u8; read_first];
        p.read_exact(&mut buf).map(|()| buf)
        // `p` closes here: the engine's next writes hit a closed peer.
    });
    if read_first == 0 {
        // Make sure the peer is gone before the transfer starts.
        reader
            .join()
            .map_err(|_| "reader panicked")?
            .map_err(|e| e.to_string())?;
        let e = match transfer(&src, &dst, &Options::with_method(m)) {
            Ok(r) => return Err(format!("into a closed peer: Ok({r:?})")),
            Err(e) => e,
        };
        if e.errno() != Some(libc::EPIPE) {
            return Err(format!(
                "expected EPIPE, got {e} [{:?} {:?}]",
                e.code(),
                e.errno()
            ));
        }
        if kind != "tcp" && e.bytes() != 0 {
            return Err(format!(
                "nothing can reach a closed {kind}, yet bytes = {}",
                e.bytes()
            ));
        }
        if position(&src) != e.bytes() {
            return Err(format!(
                "position {} != bytes {}",
                position(&src),
                e.bytes()
            ));
        }
        return Ok(());
    }
    let e = match transfer(&src, &dst, &Options::with_method(m)) {
        Ok(r) => return Err(format!("into a peer that went away: Ok({r:?})")),
        Err(e) => e,
    };
    let got = reader
        .join()
        .map_err(|_| "reader panicked")?
        .map_err(|e| e.to_string())?;
    // A socket peer that closes with unread data resets the connection: ECONNRESET is the
    // kernel's word for that closed peer, for TCP and for Unix stream sockets alike (unix
    // sockets set it on the survivor when the closing end's receive queue was not empty; which
    // one a call meets depends on timing). Pipes always say EPIPE.
    let reset_ok = kind != "pipe" && e.errno() == Some(libc::ECONNRESET);
    if e.errno() != Some(libc::EPIPE) && !reset_ok {
        return Err(format!(
            "expected EPIPE, got {e} [{:?} {:?}]",
            e.code(),
            e.errno()
        ));
    }
    if e.bytes() < read_first as u64 || e.bytes() > size as u64 {
        return Err(format!(
            "bytes {} must be between what the peer read ({read_first}) and the size",
            e.bytes()
        ));
    }
    if position(&src) != e.bytes() {
        return Err(format!(
            "source position {} != bytes delivered {}",
            position(&src),
            e.bytes()
        ));
    }
    check_bytes("what the peer read", &data[..read_first], &got)
}

#[test]
fn closed_peer_is_epipe_with_the_bytes_moved() {
    let mut failures = Vec::new();
    for kind in ["pipe", "unix", "tcp"] {
        for m in FILE_METHODS
            .into_iter()
            .chain((kind == "tcp").then_some(Method::MsgZerocopy))
        {
            for read_first in [0, 100_000] {
                let r = try_deadline(60, move || epipe_case(m, kind, read_first))
                    .unwrap_or_else(|| Err("hung".into()));
                if let Err(e) = r {
                    failures.push(format!("{m} into {kind} (peer read {read_first}): {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// SIGPIPE at SIG_DFL: the Rust runtime ignores SIGPIPE in every Rust process, so this runs in a
// child (this test binary, re-executed) that first resets SIGPIPE to SIG_DFL, like a C host.

const CHILD_ENV: &str = "ZCOPY_TEST_SIGPIPE_CHILD";
const CHILD_OK: &str = "ZCOPY-SIGPIPE-CHILD-OK";

fn sigpipe_disposition() -> libc::sighandler_t {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is valid storage.
    let rc = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: sigaction succeeded and wrote `old`.
    unsafe { old.assume_init() }.sa_sigaction
}

/// (SIGPIPE blocked on this thread, SIGPIPE pending).
fn sigpipe_mask_state() -> (bool, bool) {
    let mut cur = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    let mut pend = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: a null new set only queries; the pointers are valid storage.
    unsafe {
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), cur.as_mut_ptr()),
            0
        );
        assert_eq!(libc::sigpending(pend.as_mut_ptr()), 0);
        (
            libc::sigismember(cur.as_ptr(), libc::SIGPIPE) == 1,
            libc::sigismember(pend.as_ptr(), libc::SIGPIPE) == 1,
        )
    }
}

fn child_body() {
    // SAFETY: resetting a signal disposition to its default, before any transfer.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_eq!(sigpipe_disposition(), libc::SIG_DFL);
    let check_untouched = |what: &str| {
        assert_eq!(
            sigpipe_disposition(),
            libc::SIG_DFL,
            "{what}: SIGPIPE disposition changed"
        );
        assert_eq!(
            sigpipe_mask_state(),
            (false, false),
            "{what}: SIGPIPE left blocked or pending"
        );
    };
    let dir = TempDir::new("sigpipe-child");
    let data = pattern(1 << 20, 7);
    let src = dir.source("src", &data);
    for m in FILE_METHODS {
        // A pipe whose reader is gone.
        let (r, w) = pipe();
        drop(r);
        seek(&src, 0);
        let e = transfer(&src, &w, &Options::with_method(m)).expect_err("closed pipe");
        assert_eq!(e.errno(), Some(libc::EPIPE), "{m} into a closed pipe: {e}");
        check_untouched(&format!("{m} pipe"));
        // A Unix socket whose peer is gone.
        let (a, b) = unix_pair();
        drop(b);
        seek(&src, 0);
        let e = transfer(&src, &a, &Options::with_method(m)).expect_err("closed unix peer");
        assert_eq!(
            e.errno(),
            Some(libc::EPIPE),
            "{m} into a closed unix socket: {e}"
        );
        check_untouched(&format!("{m} unix"));
        // A TCP connection whose peer is gone.
        let (c, s) = tcp_pair();
        drop(s);
        seek(&src, 0);
        let e = transfer(&src, &c, &Options::with_method(m)).expect_err("closed tcp peer");
        assert_eq!(
            e.errno(),
            Some(libc::EPIPE),
            "{m} into a closed TCP peer: {e}"
        );
        assert_eq!(position(&src), e.bytes());
        check_untouched(&format!("{m} tcp"));
    }
    // From a pipe source (splice/read-write), into a closed peer.
    for m in [Method::Auto, Method::ReadWrite, Method::Splice] {
        let (r, mut w) = pipe();
        w.write_all(&data[..30_000]).unwrap();
        let (a, b) = unix_pair();
        drop(b);
        let e = transfer(&r, &a, &Options::with_method(m)).expect_err("closed peer");
        assert_eq!(e.errno(), Some(libc::EPIPE), "{m} pipe -> closed unix: {e}");
        check_untouched(&format!("{m} pipe source"));
    }
    // The relay into a closed peer.
    let (a_out, a_in) = unix_pair();
    let (b_in, b_out) = unix_pair();
    drop(b_out);
    (&a_out).write_all(&data[..100_000]).unwrap();
    let e = relay(&a_in, &b_in, &RelayOptions::default()).expect_err("relay into a closed peer");
    assert_eq!(e.error.errno(), Some(libc::EPIPE), "relay: {e}");
    check_untouched("relay");
    // A caller that blocked SIGPIPE itself keeps it blocked.
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: valid sigset storage, initialised by sigemptyset before use.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()),
            0
        );
    }
    let (r, w) = pipe();
    drop(r);
    seek(&src, 0);
    let e = transfer(&src, &w, &Options::default()).expect_err("closed pipe");
    assert_eq!(e.errno(), Some(libc::EPIPE));
    assert!(
        sigpipe_mask_state().0,
        "the caller's own block of SIGPIPE was lifted"
    );
    assert_eq!(sigpipe_disposition(), libc::SIG_DFL);
    println!("{CHILD_OK}");
}

#[test]
fn closed_peer_does_not_kill_a_host_with_sigpipe_at_default() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = deadline("sigpipe child", 120, move || {
        Command::new(exe)
            .args([
                "--exact",
                "closed_peer_does_not_kill_a_host_with_sigpipe_at_default",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_ne!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "the child was killed by SIGPIPE:\n{stdout}\n{stderr}"
    );
    assert!(
        out.status.success(),
        "child failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(CHILD_OK),
        "the child did not run its body:\n{stdout}\n{stderr}"
    );
}

#[test]
fn flags_are_restored_after_an_error_under_a_deadline() {
    // A deadline makes the engine set O_NONBLOCK on a blocking fd; an EPIPE must not leave it.
    let dir = TempDir::new("flags-epipe");
    let src = dir.source("src", &pattern(1 << 20, 8));
    for m in FILE_METHODS {
        let (a, b) = unix_pair();
        drop(b);
        let before = flags(&a);
        let opts = Options {
            method: m,
            timeout: Some(std::time::Duration::from_secs(10)),
            ..Options::default()
        };
        let e = transfer(&src, &a, &opts).expect_err("closed peer");
        assert_eq!(e.errno(), Some(libc::EPIPE), "{m}: {e}");
        assert_eq!(flags(&a), before, "{m}: O_NONBLOCK leaked out of the call");
        assert_eq!(position(&src), 0);
    }
}

#[test]
fn relay_into_a_reset_peer_fails_with_the_bytes_moved() {
    // Where the error lands in the relay's loop varies from run to run: repeat, so a report
    // that loses the progress of the failing round shows up on every run of the suite.
    for round in 0..20 {
        let r = try_deadline(60, || relay_attacks::into_reset_peer().map(|_| ()))
            .unwrap_or_else(|| Err("hung".into()));
        if let Err(e) = r {
            panic!("round {round}: {e}");
        }
    }
}
