//! `relay(a, b)`: bidirectional splice relay between stream sockets, with half-close.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use common::*;
use zcopy_core::{ErrorCode, RelayOptions, RelayReport, relay, relay_fds};

/// One end of a relayed connection: the engine relays `inner`, the test talks on `outer`.
struct Leg {
    outer: std::fs::File,
    inner: std::fs::File,
}

fn tcp_leg() -> Leg {
    let (c, s) = tcp_pair();
    Leg {
        outer: as_file(c),
        inner: as_file(s),
    }
}

fn unix_leg() -> Leg {
    let (x, y) = unix_pair();
    Leg {
        outer: as_file(x),
        inner: as_file(y),
    }
}

fn shutdown_write(f: &std::fs::File) {
    // SAFETY: no pointers; the fd is open for the duration of the call.
    let rc = unsafe { libc::shutdown(f.as_raw_fd(), libc::SHUT_WR) };
    assert_eq!(rc, 0, "shutdown: {}", std::io::Error::last_os_error());
}

/// Starts `relay(a.inner, b.inner)` on a thread; returns the test's ends and the join handle.
fn start(
    a: Leg,
    b: Leg,
    opts: RelayOptions,
) -> (
    std::fs::File,
    std::fs::File,
    thread::JoinHandle<Result<RelayReport, String>>,
) {
    let (ai, bi) = (a.inner, b.inner);
    let h = thread::spawn(move || {
        let before = (flags(&ai), flags(&bi));
        let r = relay(&ai, &bi, &opts);
        assert_eq!(
            (flags(&ai), flags(&bi)),
            before,
            "relay must restore the sockets' file status flags"
        );
        r.map_err(|e| {
            format!(
                "{e} [code {:?}, errno {:?}, report {:?}]",
                e.error.code(),
                e.error.errno(),
                e.report
            )
        })
    });
    (a.outer, b.outer, h)
}

fn join_relay(h: thread::JoinHandle<Result<RelayReport, String>>) -> RelayReport {
    let r = deadline("relay to end", 60, move || {
        h.join().expect("relay thread panicked")
    });
    r.expect("relay failed")
}

fn half_close_from(first_a: bool, a: Leg, b: Leg) {
    let x = pattern(300_000, 11);
    let y = pattern(200_001, 12);
    let (ca, cb, h) = start(a, b, RelayOptions::default());
    let (mut first, mut second) = if first_a { (ca, cb) } else { (cb, ca) };
    let (x2, y2) = (x.clone(), y.clone());
    let body = move || {
        // The first side speaks and half-closes; the second must see all of it, then EOF,
        // while its own direction is still open.
        first.write_all(&x2).unwrap();
        shutdown_write(&first);
        let got = read_all(&second).unwrap();
        assert_bytes("first direction", &x2, &got);
        // Then the second answers, after the first direction has ended, and half-closes.
        second.write_all(&y2).unwrap();
        shutdown_write(&second);
        let back = read_all(&mut first).unwrap();
        assert_bytes("second direction", &y2, &back);
    };
    deadline("half-close exchange", 60, body);
    let report = join_relay(h);
    let (a_to_b, b_to_a) = if first_a {
        (x.len(), y.len())
    } else {
        (y.len(), x.len())
    };
    assert_eq!(report.a_to_b, a_to_b as u64);
    assert_eq!(report.b_to_a, b_to_a as u64);
    assert!(report.syscalls > 0);
}

#[test]
fn relay_forwards_half_close_from_a_then_carries_b_to_a() {
    half_close_from(true, tcp_leg(), tcp_leg());
}

#[test]
fn relay_forwards_half_close_from_b_then_carries_a_to_b() {
    half_close_from(false, tcp_leg(), tcp_leg());
}

#[test]
fn relay_half_close_between_unix_and_tcp() {
    half_close_from(true, unix_leg(), tcp_leg());
    half_close_from(false, tcp_leg(), unix_leg());
}

fn both_ways_at_once(a: Leg, b: Leg, size: usize) {
    let x = pattern(size, 21);
    let y = pattern(size + 12345, 22);
    let (ca, cb, h) = start(a, b, RelayOptions::default());
    let (hx, hy) = (hash(&x), hash(&y));
    let (lx, ly) = (x.len(), y.len());
    let body = move || {
        let ca2 = ca.try_clone().unwrap();
        let cb2 = cb.try_clone().unwrap();
        // Both sides write and read at the same time; each half-closes when done writing.
        let wa = thread::spawn(move || {
            let mut ca2 = ca2;
            ca2.write_all(&x).unwrap();
            shutdown_write(&ca2);
        });
        let wb = thread::spawn(move || {
            let mut cb2 = cb2;
            cb2.write_all(&y).unwrap();
            shutdown_write(&cb2);
        });
        let ra = spawn_reader(ca);
        let rb = spawn_reader(cb);
        wa.join().unwrap();
        wb.join().unwrap();
        let at_a = ra.join().unwrap().unwrap();
        let at_b = rb.join().unwrap().unwrap();
        assert_eq!((at_b.len(), hash(&at_b)), (lx, hx), "a -> b stream");
        assert_eq!((at_a.len(), hash(&at_a)), (ly, hy), "b -> a stream");
    };
    deadline("streaming both ways", 90, body);
    let report = join_relay(h);
    assert_eq!(report.a_to_b, lx as u64);
    assert_eq!(report.b_to_a, ly as u64);
}

#[test]
fn relay_streams_both_directions_at_once_over_tcp() {
    both_ways_at_once(tcp_leg(), tcp_leg(), 6 << 20);
}

#[test]
fn relay_streams_both_directions_at_once_over_unix_sockets() {
    both_ways_at_once(unix_leg(), unix_leg(), 3 << 20);
}

#[test]
fn relay_of_two_immediately_closed_sides_moves_nothing() {
    let (ca, cb, h) = start(tcp_leg(), tcp_leg(), RelayOptions::default());
    shutdown_write(&ca);
    shutdown_write(&cb);
    assert!(read_all(&ca).unwrap().is_empty());
    assert!(read_all(&cb).unwrap().is_empty());
    let report = join_relay(h);
    assert_eq!((report.a_to_b, report.b_to_a), (0, 0));
}

#[test]
fn relay_returns_when_both_peers_close_fully() {
    let (ca, cb, h) = start(tcp_leg(), unix_leg(), RelayOptions::default());
    let mut ca = ca;
    ca.write_all(b"hello").unwrap();
    drop(ca);
    let got = read_all(&cb).unwrap();
    assert_eq!(got, b"hello");
    drop(cb);
    let report = join_relay(h);
    assert_eq!(report.a_to_b, 5);
    assert_eq!(report.b_to_a, 0);
}

#[test]
fn relay_timeout_is_a_deadline_with_progress() {
    let a = tcp_leg();
    let b = tcp_leg();
    let mut ca = a.outer.try_clone().unwrap();
    ca.write_all(&pattern(1000, 5)).unwrap();
    // Make "the data is there" a fact before the relay starts.
    assert!(wait_readable(&a.inner, 10));
    let (_ca, mut cb, h) = start(
        a,
        b,
        RelayOptions {
            timeout: Some(Duration::from_millis(300)),
            on_interrupt: None,
        },
    );
    let err = deadline("relay with timeout", 30, move || h.join().unwrap())
        .expect_err("nothing ends the relay: it must time out");
    assert!(err.contains("TimedOut"), "expected TimedOut, got {err}");
    assert!(
        err.contains("a_to_b: 1000"),
        "the report must carry the 1000 bytes delivered: {err}"
    );
    let mut got = vec![0u8; 1000];
    cb.read_exact(&mut got).unwrap();
    assert_bytes("delivered before the timeout", &pattern(1000, 5), &got);
}

#[test]
fn relay_timeout_zero_with_nothing_to_do_times_out_at_once() {
    let a = tcp_leg();
    let b = tcp_leg();
    let (_ca, _cb, h) = start(
        a,
        b,
        RelayOptions {
            timeout: Some(Duration::ZERO),
            on_interrupt: None,
        },
    );
    let err = deadline("relay with zero timeout", 30, move || h.join().unwrap())
        .expect_err("must not wait");
    assert!(
        err.contains("TimedOut") || err.contains("WouldBlock"),
        "got {err}"
    );
}

#[test]
fn relay_rejects_what_is_not_a_stream_socket() {
    let (u, _u2) = udp_pair();
    let (s, _c) = UnixStream::pair().unwrap();
    let e = relay(&u, &s, &RelayOptions::default()).expect_err("udp");
    assert_eq!(e.error.code(), ErrorCode::Unsupported, "UDP: {e}");
    let e = relay(&s, &u, &RelayOptions::default()).expect_err("udp");
    assert_eq!(e.error.code(), ErrorCode::Unsupported, "UDP: {e}");

    let dir = TempDir::new("relay-file");
    drop(dir.source("f", b"abc"));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("f"))
        .unwrap();
    let e = relay(&f, &s, &RelayOptions::default()).expect_err("file");
    assert_eq!(e.error.code(), ErrorCode::Unsupported, "file: {e}");
    assert_eq!((e.report.a_to_b, e.report.b_to_a), (0, 0));

    // A valid descriptor of the wrong kind is Unsupported, whatever its access mode.
    let d = std::fs::File::open(dir.path()).unwrap();
    let e = relay(&d, &s, &RelayOptions::default()).expect_err("dir");
    assert_eq!(e.error.code(), ErrorCode::Unsupported, "dir: {e}");
    let read_only = std::fs::File::open(dir.join("f")).unwrap();
    let e = relay(&read_only, &s, &RelayOptions::default()).expect_err("read-only file");
    assert_eq!(
        e.error.code(),
        ErrorCode::Unsupported,
        "read-only file: {e}"
    );

    let e = relay_fds(-1, s.as_raw_fd(), &RelayOptions::default()).expect_err("negative");
    assert_eq!(e.error.code(), ErrorCode::InvalidArgument);
    let e = relay_fds(s.as_raw_fd(), -7, &RelayOptions::default()).expect_err("negative");
    assert_eq!(e.error.code(), ErrorCode::InvalidArgument);
    let closed = closed_fd_number();
    let e = relay_fds(closed, s.as_raw_fd(), &RelayOptions::default()).expect_err("closed");
    assert_eq!(
        (e.error.code(), e.error.errno()),
        (ErrorCode::Os, Some(libc::EBADF))
    );
    // The borrowed socket is still open and usable.
    assert!(flags(s.as_fd()) >= 0);
    s.shutdown(Shutdown::Both).unwrap();
}

#[test]
fn relay_fds_works_on_raw_numbers_and_leaves_them_open() {
    let a = unix_leg();
    let b = unix_leg();
    let (ai, bi) = (a.inner, b.inner);
    let (mut ca, cb) = (a.outer, b.outer);
    let (ar, br) = (ai.as_raw_fd(), bi.as_raw_fd());
    let h = thread::spawn(move || {
        relay_fds(ar, br, &RelayOptions::default()).map_err(|e| e.to_string())
    });
    ca.write_all(&pattern(70_000, 9)).unwrap();
    shutdown_write(&ca);
    let got = read_all(&cb).unwrap();
    assert_bytes("a -> b", &pattern(70_000, 9), &got);
    shutdown_write(&cb);
    assert!(read_all(&ca).unwrap().is_empty());
    let report = deadline("relay_fds", 30, move || h.join().unwrap()).expect("relay_fds");
    assert_eq!((report.a_to_b, report.b_to_a), (70_000, 0));
    // relay_fds worked on duplicates: the caller's numbers are still open.
    assert!(flags(&ai) >= 0 && flags(&bi) >= 0);
}
