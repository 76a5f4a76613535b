//! `send_parts`: whole responses (bytes and file ranges) in one call, to real loopback sockets,
//! pipes and files: exact bytes, one segment for a small response, the caller's cork state
//! kept, checks before the first byte, and resumes from the reported byte after timeouts,
//! WouldBlock and interrupts against stalled and slow peers.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use zcopy_core::{ErrorCode, Method, Part, PartsOptions, RawPart, send_parts, send_parts_fds};

const HEADER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
Content-Length: 4096\r\nCache-Control: max-age=3600\r\nServer: zcopy-test\r\n\r\n";

#[test]
fn header_file_trailer_arrive_exactly_over_tcp() {
    let dir = TempDir::new("parts-exact");
    let data = pattern(300_000, 1);
    let f = dir.source("f", &data);
    let (tx, rx) = tcp_pair();
    let reader = spawn_reader(rx);
    let parts = [
        Part::Bytes(HEADER),
        Part::File {
            fd: f.as_fd(),
            offset: 10,
            len: 4096,
        },
        Part::Bytes(b"--boundary\r\n"),
        Part::Bytes(b"Content-Range: bytes 100000-299999\r\n\r\n"),
        Part::File {
            fd: f.as_fd(),
            offset: 100_000,
            len: 200_000,
        },
        Part::Bytes(b"\r\n--boundary--\r\n"),
    ];
    let rep = send_parts(&tx, &parts, &PartsOptions::default()).expect("send_parts");
    drop(tx);
    let got = reader.join().expect("reader").expect("read");
    let mut want = HEADER.to_vec();
    want.extend_from_slice(&data[10..4106]);
    want.extend_from_slice(b"--boundary\r\nContent-Range: bytes 100000-299999\r\n\r\n");
    want.extend_from_slice(&data[100_000..300_000]);
    want.extend_from_slice(b"\r\n--boundary--\r\n");
    assert_bytes("response", &want, &got);
    assert_eq!(rep.bytes, want.len() as u64);
    assert_eq!(position(&f), 0, "file parts never move the file position");
}

#[test]
fn small_response_is_one_segment_and_cork_state_is_kept() {
    let dir = TempDir::new("parts-segs");
    let data = pattern(4096, 2);
    let f = dir.source("f", &data);
    let (tx, rx) = tcp_pair();
    let reader = spawn_reader(rx);
    // Header + file: MSG_MORE on the header, the file's send pushes both.
    let before = segs_out(&tx);
    let parts = [
        Part::Bytes(&HEADER[..200.min(HEADER.len())]),
        Part::File {
            fd: f.as_fd(),
            offset: 0,
            len: 4096,
        },
    ];
    send_parts(&tx, &parts, &PartsOptions::default()).expect("send_parts");
    assert_eq!(
        segs_out(&tx) - before,
        1,
        "header + 4 KiB file in one segment"
    );
    assert_eq!(
        sockopt(&tx, libc::IPPROTO_TCP, libc::TCP_CORK),
        0,
        "not left corked"
    );
    // A file part in the middle: one cork window, uncorked afterwards.
    let before = segs_out(&tx);
    let parts = [
        Part::Bytes(b"head\r\n"),
        Part::File {
            fd: f.as_fd(),
            offset: 0,
            len: 1000,
        },
        Part::Bytes(b"\r\nmiddle\r\n"),
        Part::File {
            fd: f.as_fd(),
            offset: 1000,
            len: 1000,
        },
        Part::Bytes(b"\r\ntrailer\r\n"),
    ];
    send_parts(&tx, &parts, &PartsOptions::default()).expect("send_parts");
    assert_eq!(segs_out(&tx) - before, 1, "five parts in one segment");
    assert_eq!(
        sockopt(&tx, libc::IPPROTO_TCP, libc::TCP_CORK),
        0,
        "cork window closed"
    );
    // A socket the caller corked stays corked (and its bytes wait for the caller's uncork).
    set_sockopt(&tx, libc::IPPROTO_TCP, libc::TCP_CORK, 1);
    send_parts(&tx, &parts, &PartsOptions::default()).expect("send_parts");
    assert_eq!(
        sockopt(&tx, libc::IPPROTO_TCP, libc::TCP_CORK),
        1,
        "the caller's cork kept"
    );
    set_sockopt(&tx, libc::IPPROTO_TCP, libc::TCP_CORK, 0);
    drop(tx);
    let got = reader.join().expect("reader").expect("read");
    assert_eq!(
        got.len(),
        200.min(HEADER.len()) + 4096 + 2 * (6 + 1000 + 10 + 1000 + 11)
    );
}

#[test]
fn pipe_and_file_destinations_take_bytes_and_ranges() {
    let dir = TempDir::new("parts-pipe");
    let data = pattern(200_000, 3);
    let f = dir.source("f", &data);
    let parts = [
        Part::Bytes(b"<<"),
        Part::File {
            fd: f.as_fd(),
            offset: 5,
            len: 150_000,
        },
        Part::Bytes(b">>"),
    ];
    let mut want = b"<<".to_vec();
    want.extend_from_slice(&data[5..150_005]);
    want.extend_from_slice(b">>");
    let (r, w) = pipe();
    let reader = spawn_reader(r);
    let rep = send_parts(&w, &parts, &PartsOptions::default()).expect("to a pipe");
    drop(w);
    assert_bytes(
        "pipe",
        &want,
        &reader.join().expect("reader").expect("read"),
    );
    assert_eq!(rep.bytes, want.len() as u64);
    let out = dir.sink("out");
    send_parts(&out, &parts, &PartsOptions::default()).expect("to a file");
    assert_bytes("file", &want, &dir.read("out"));
}

#[test]
fn bad_parts_are_refused_before_any_byte() {
    let dir = TempDir::new("parts-bad");
    let f = dir.source("f", &pattern(1000, 4));
    let (tx, rx) = tcp_pair();
    let opts = PartsOptions::default();
    let past_end = [
        Part::Bytes(HEADER),
        Part::File {
            fd: f.as_fd(),
            offset: 500,
            len: 501,
        },
    ];
    let e = send_parts(&tx, &past_end, &opts).expect_err("range past the end");
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains("part 1"), "{e}");
    let overflow = [Part::File {
        fd: f.as_fd(),
        offset: u64::MAX - 1,
        len: 10,
    }];
    assert_eq!(
        send_parts(&tx, &overflow, &opts)
            .expect_err("overflow")
            .code(),
        ErrorCode::InvalidArgument
    );
    let skip = PartsOptions {
        skip: HEADER.len() as u64 + 1,
        ..PartsOptions::default()
    };
    let e = send_parts(&tx, &[Part::Bytes(HEADER)], &skip).expect_err("skip past the end");
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let (pr, _pw) = pipe();
    let e = send_parts(
        &tx,
        &[Part::File {
            fd: pr.as_fd(),
            offset: 0,
            len: 1,
        }],
        &opts,
    )
    .expect_err("a pipe as a file part");
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    // Raw numbers: negative, and not open.
    let e = send_parts_fds(-1, &[RawPart::Bytes(b"x")], &opts).expect_err("negative");
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let closed = closed_fd_number();
    let e = send_parts_fds(
        tx.as_raw_fd(),
        &[RawPart::File {
            fd: closed,
            offset: 0,
            len: 1,
        }],
        &opts,
    )
    .expect_err("closed file number");
    assert_eq!(e.errno(), Some(libc::EBADF), "{e}");
    let e = send_parts_fds(closed, &[RawPart::Bytes(b"x")], &opts).expect_err("closed dst");
    assert_eq!(e.errno(), Some(libc::EBADF), "{e}");
    drop(tx);
    assert_eq!(
        read_all(rx).expect("read").len(),
        0,
        "nothing was sent by refused calls"
    );
}

#[test]
fn raw_numbers_send_the_same_response() {
    let dir = TempDir::new("parts-raw");
    let data = pattern(10_000, 5);
    let f = dir.source("f", &data);
    let (tx, rx) = tcp_pair();
    let reader = spawn_reader(rx);
    let parts = [
        RawPart::Bytes(b"a"),
        RawPart::File {
            fd: f.as_raw_fd(),
            offset: 0,
            len: 5000,
        },
        RawPart::File {
            fd: f.as_raw_fd(),
            offset: 5000,
            len: 5000,
        },
        RawPart::Bytes(b"z"),
    ];
    let rep = send_parts_fds(tx.as_raw_fd(), &parts, &PartsOptions::default()).expect("raw");
    drop(tx);
    let mut want = b"a".to_vec();
    want.extend_from_slice(&data);
    want.push(b'z');
    assert_bytes("raw", &want, &reader.join().expect("reader").expect("read"));
    assert_eq!(rep.bytes, want.len() as u64);
    assert_eq!(rep.method, Method::Sendfile);
}

/// A response larger than the socket buffers, against a peer that stalls, then reads slowly:
/// every call ends early (timeout 0 or a short deadline) and the next resumes from the byte
/// reported; the peer gets the whole response exactly once.
fn resume_until_done(timeout: Duration) {
    let dir = TempDir::new("parts-resume");
    let big = pattern(3 << 20, 6);
    let f = dir.source("f", &big);
    let (tx, rx) = tcp_pair();
    small_buffers(&tx);
    small_buffers(&rx);
    let go = Arc::new(AtomicBool::new(false));
    let peer = {
        let go = go.clone();
        thread::spawn(move || {
            while !go.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(5));
            }
            let mut rx = rx;
            let mut got = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            loop {
                match rx.read(&mut buf) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("peer read: {e}"),
                }
                thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let parts = [
        Part::Bytes(HEADER),
        Part::File {
            fd: f.as_fd(),
            offset: 0,
            len: 2 << 20,
        },
        Part::Bytes(b"\r\n--b\r\n"),
        Part::File {
            fd: f.as_fd(),
            offset: 2 << 20,
            len: 1 << 20,
        },
        Part::Bytes(b"\r\n--b--\r\n"),
    ];
    let total: u64 = parts.iter().map(Part::len).sum();
    let (mut done, mut calls, mut early) = (0u64, 0, 0);
    let t0 = Instant::now();
    while done < total {
        calls += 1;
        if calls == 3 {
            go.store(true, Ordering::SeqCst);
        }
        let opts = PartsOptions {
            timeout: Some(timeout),
            skip: done,
            ..PartsOptions::default()
        };
        let t = Instant::now();
        match send_parts(&tx, &parts, &opts) {
            Ok(r) => done += r.bytes,
            Err(e) => {
                assert!(
                    matches!(e.code(), ErrorCode::WouldBlock | ErrorCode::TimedOut),
                    "only early ends: {e}"
                );
                early += 1;
                done += e.bytes();
                assert!(
                    t.elapsed() < timeout + Duration::from_millis(500),
                    "call kept its deadline"
                );
                if timeout.is_zero() {
                    wait_writable(&tx);
                }
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "resume loop hung at byte {done}"
        );
    }
    go.store(true, Ordering::SeqCst);
    drop(tx);
    let got = peer.join().expect("peer");
    let mut want = HEADER.to_vec();
    want.extend_from_slice(&big[..2 << 20]);
    want.extend_from_slice(b"\r\n--b\r\n");
    want.extend_from_slice(&big[2 << 20..]);
    want.extend_from_slice(b"\r\n--b--\r\n");
    assert_bytes("resumed response", &want, &got);
    assert!(early >= 2, "the peer's stall ended calls early ({early})");
}

fn wait_writable(fd: impl AsFd) {
    let mut p = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 20) };
}

#[test]
fn timeout_zero_resumes_to_a_byte_exact_whole() {
    resume_until_done(Duration::ZERO);
}

#[test]
fn short_deadline_resumes_to_a_byte_exact_whole() {
    resume_until_done(Duration::from_millis(30));
}

#[test]
fn stalled_peer_deadline_and_interrupt() {
    let dir = TempDir::new("parts-stall");
    let f = dir.source("f", &pattern(4 << 20, 7));
    let (tx, rx) = tcp_pair();
    small_buffers(&tx);
    small_buffers(&rx);
    let parts = [
        Part::Bytes(HEADER),
        Part::File {
            fd: f.as_fd(),
            offset: 0,
            len: 4 << 20,
        },
    ];
    // A deadline: TimedOut on time, its count what the peer can read.
    let opts = PartsOptions {
        timeout: Some(Duration::from_millis(150)),
        ..PartsOptions::default()
    };
    let t = Instant::now();
    let e = send_parts(&tx, &parts, &opts).expect_err("stalled peer");
    assert_eq!(e.code(), ErrorCode::TimedOut, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(650),
        "took {:?}",
        t.elapsed()
    );
    let sent = e.bytes();
    assert!(sent > HEADER.len() as u64);
    // An interrupt with no deadline: the hook is heard within 0.5 s.
    install_sigusr1_handler();
    let me = current_thread_id();
    let poker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        // SAFETY: signalling a live thread of this process with a handled signal.
        unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
        Instant::now()
    });
    let opts = PartsOptions {
        skip: sent,
        on_interrupt: Some(Arc::new(|| true)),
        ..PartsOptions::default()
    };
    let e = send_parts(&tx, &parts, &opts).expect_err("interrupted");
    let ended = Instant::now();
    let asked = poker.join().expect("poker");
    assert_eq!(e.errno(), Some(libc::EINTR), "{e}");
    assert!(ended.duration_since(asked) < Duration::from_millis(500));
    let sent = sent + e.bytes();
    drop(tx);
    let got = read_all(rx).expect("read");
    assert_eq!(got.len() as u64, sent, "the counts equal what arrived");
}

fn current_thread_id() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

#[test]
fn a_file_that_shrinks_mid_response_is_an_error_with_the_count() {
    let dir = TempDir::new("parts-shrink");
    let data = pattern(8 << 20, 8);
    let f = dir.source("f", &data);
    let (tx, rx) = tcp_pair();
    small_buffers(&tx);
    small_buffers(&rx);
    let path = dir.join("f");
    let shrinker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open");
        f.set_len(1 << 20).expect("truncate");
    });
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        read_all(rx).expect("read")
    });
    let r = deadline("shrinking file", 30, move || {
        let parts = [
            Part::Bytes(HEADER),
            Part::File {
                fd: f.as_fd(),
                offset: 0,
                len: 8 << 20,
            },
            Part::Bytes(b"end"),
        ];
        let r = send_parts(&tx, &parts, &PartsOptions::default());
        drop(tx);
        r.map(|r| r.bytes)
            .map_err(|e| (e.code(), e.bytes(), e.to_string()))
    });
    shrinker.join().expect("shrinker");
    let got = reader.join().expect("reader");
    let (code, bytes, msg) = r.expect_err("a short body is an error");
    assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
    assert!(msg.contains("shrank"), "{msg}");
    assert_eq!(got.len() as u64, bytes, "the count equals what arrived");
    assert_eq!(&got[..HEADER.len()], HEADER);
    check_bytes(
        "body prefix",
        &data[..got.len() - HEADER.len()],
        &got[HEADER.len()..],
    )
    .expect("prefix");
}

#[test]
fn peer_reset_mid_response_is_an_error_with_the_count() {
    let dir = TempDir::new("parts-reset");
    let f = dir.source("f", &pattern(16 << 20, 9));
    let (tx, rx) = tcp_pair();
    small_buffers(&tx);
    let reader = thread::spawn(move || {
        let mut rx = rx;
        let mut buf = vec![0u8; 100_000];
        let mut n = 0;
        while n < 100_000 {
            n += rx.read(&mut buf[n..]).expect("read");
        }
        linger_zero(&rx);
        drop(rx);
        n
    });
    let parts = [
        Part::Bytes(HEADER),
        Part::File {
            fd: f.as_fd(),
            offset: 0,
            len: 16 << 20,
        },
    ];
    let e = send_parts(&tx, &parts, &PartsOptions::default()).expect_err("reset");
    assert!(
        matches!(e.errno(), Some(libc::ECONNRESET | libc::EPIPE)),
        "a reset says so: {e}"
    );
    assert!(
        e.bytes() >= 100_000,
        "at least what the peer read: {}",
        e.bytes()
    );
    let _ = reader.join();
    let mut tx = tx;
    assert!(tx.write_all(b"x").is_err(), "the connection is gone");
}
