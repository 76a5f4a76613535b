//! MSG_ZEROCOPY on loopback: the `msg_zerocopy` transfer method and the streaming
//! `ZeroCopySender`. Loopback always copies, so every completion must say "copied", and a large
//! enough transfer must switch to plain send and say so in the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;
use zcopy_core::{ErrorCode, Method, Options, ZeroCopySender, transfer};

fn zc(offset: Option<u64>, count: Option<u64>) -> Options {
    Options {
        method: Method::MsgZerocopy,
        offset,
        count,
        ..Options::default()
    }
}

/// file (size bytes of pattern `seed`) -> TCP with `opts`; returns the report and what arrived.
fn file_to_tcp(size: usize, seed: u64, opts: Options) -> (zcopy_core::Report, Vec<u8>, Vec<u8>) {
    deadline("file -> tcp", 90, move || {
        let dir = TempDir::new("zc");
        let data = pattern(size, seed);
        let src = dir.source("src", &data);
        let (c, s) = tcp_pair();
        let reader = spawn_reader(s);
        let report = transfer(&src, &c, &opts)
            .unwrap_or_else(|e| panic!("msg_zerocopy transfer failed: {e} ({:?})", e.report));
        drop(c);
        let got = reader.join().unwrap().unwrap();
        (report, got, data)
    })
}

#[test]
fn msg_zerocopy_transfer_delivers_intact_data_and_reports_kernel_copies() {
    for size in [1usize, 4096, 4097, 256 * 1024 + 3] {
        let (report, got, data) = file_to_tcp(size, size as u64, zc(None, None));
        assert_bytes(&format!("msg_zerocopy {size} bytes"), &data, &got);
        assert_eq!(report.bytes, size as u64);
        assert!(
            report.zc_sends > 0,
            "{size}: no MSG_ZEROCOPY completion counted: {report:?}"
        );
        assert_eq!(
            report.zc_copied, report.zc_sends,
            "{size}: loopback copies every send: {report:?}"
        );
        assert!(report.syscalls > 0);
    }
}

#[test]
fn msg_zerocopy_transfer_at_unaligned_offset_and_count() {
    let (report, got, data) = file_to_tcp(1_000_000, 77, zc(Some(4097), Some(300_001)));
    assert_bytes("msg_zerocopy window", &data[4097..4097 + 300_001], &got);
    assert_eq!(report.bytes, 300_001);
    let (report, got, data) = file_to_tcp(100_000, 78, zc(Some(99_999), Some(10)));
    assert_bytes("msg_zerocopy last byte", &data[99_999..], &got);
    assert_eq!(report.bytes, 1);
}

#[test]
fn msg_zerocopy_large_transfer_switches_to_plain_send_on_loopback() {
    let size = 48 << 20;
    let (report, got, data) = file_to_tcp(size, 3, zc(None, None));
    assert_eq!(report.bytes, size as u64);
    assert_eq!(
        (got.len(), hash(&got)),
        (data.len(), hash(&data)),
        "48 MiB through msg_zerocopy"
    );
    assert!(report.zc_sends > 0, "{report:?}");
    assert_eq!(report.zc_copied, report.zc_sends, "{report:?}");
    assert!(
        report
            .fallbacks
            .iter()
            .any(|f| f.from == Method::MsgZerocopy),
        "the kernel copied every send: the switch to plain send must show in the report: {report:?}"
    );
}

#[test]
fn msg_zerocopy_source_position_advances_by_bytes_sent() {
    deadline("position", 60, || {
        let dir = TempDir::new("zc-pos");
        let data = pattern(200_000, 4);
        let src = dir.source("src", &data);
        seek(&src, 1000);
        let (c, s) = tcp_pair();
        let reader = spawn_reader(s);
        let r = transfer(&src, &c, &zc(None, Some(50_000))).unwrap();
        assert_eq!(r.bytes, 50_000);
        assert_eq!(position(&src), 51_000);
        let r = transfer(&src, &c, &zc(None, None)).unwrap();
        assert_eq!(r.bytes, 149_000);
        assert_eq!(position(&src), 200_000);
        drop(c);
        assert_bytes(
            "two calls concatenate",
            &data[1000..],
            &reader.join().unwrap().unwrap(),
        );
    });
}

#[test]
fn msg_zerocopy_to_anything_but_tcp_is_unsupported() {
    let dir = TempDir::new("zc-unsup");
    let data = pattern(10_000, 5);
    let src = dir.source("src", &data);
    seek(&src, 10);
    let (u, _u2) = unix_pair();
    let (pr, pw) = pipe();
    let (udp, _udp2) = udp_pair();
    let file = dir.sink("dst");
    let null = dev_null();
    let dsts: [(&str, &dyn std::os::fd::AsFd); 5] = [
        ("unix", &u),
        ("pipe", &pw),
        ("udp", &udp),
        ("file", &file),
        ("/dev/null", &null),
    ];
    for (name, dst) in dsts {
        let e = transfer(&src, dst.as_fd(), &zc(None, None)).expect_err(name);
        assert_eq!(
            e.code(),
            ErrorCode::Unsupported,
            "msg_zerocopy to {name}: {e}"
        );
        assert_eq!(e.bytes(), 0);
        assert_eq!(position(&src), 10, "{name}: nothing consumed");
    }
    drop(pw);
    assert!(read_all(pr).unwrap().is_empty());
    assert!(dir.read("dst").is_empty());
}

#[test]
fn msg_zerocopy_with_fallback_to_a_unix_socket_uses_another_method() {
    deadline("fallback", 60, || {
        let dir = TempDir::new("zc-fb");
        let data = pattern(123_457, 6);
        let src = dir.source("src", &data);
        let (a, b) = unix_pair();
        let reader = spawn_reader(b);
        let opts = Options {
            method: Method::MsgZerocopy,
            fallback: true,
            ..Options::default()
        };
        let r = transfer(&src, &a, &opts).unwrap();
        drop(a);
        assert_bytes("fallback data", &data, &reader.join().unwrap().unwrap());
        assert_eq!(r.bytes, data.len() as u64);
        assert_ne!(
            r.method,
            Method::MsgZerocopy,
            "the bytes were not moved by MSG_ZEROCOPY: {r:?}"
        );
        assert!(
            r.fallbacks
                .first()
                .is_some_and(|f| f.from == Method::MsgZerocopy),
            "the fallback taken must be in the report: {r:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// ZeroCopySender

const SENDER_SIZES: [usize; 9] = [1, 0, 4095, 4096, 65_536, 65_537, 300_000, 1 << 20, 7];

fn send_all(sender: &mut ZeroCopySender, seed0: u64) -> Vec<u8> {
    let mut expected = Vec::new();
    let first = sender.stats().sent;
    for (i, &n) in SENDER_SIZES.iter().enumerate() {
        let buf = pattern(n, seed0 + i as u64);
        expected.extend_from_slice(&buf);
        let id = sender
            .send(buf)
            .unwrap_or_else(|e| panic!("send #{i} ({n} bytes): {e}"));
        assert_eq!(id, first + i as u64, "ids are consecutive");
    }
    expected
}

fn poll_until_done(sender: &mut ZeroCopySender) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let done = sender.poll(Some(Duration::from_millis(500))).expect("poll");
        if done == sender.stats().sent {
            return;
        }
        assert!(
            Instant::now() < end,
            "completions never arrived: {:?}",
            sender.stats()
        );
    }
}

#[test]
fn sender_streams_buffers_and_every_completion_is_copied_on_loopback() {
    deadline("sender", 90, || {
        let (c, s) = tcp_pair();
        let reader = spawn_reader(s);
        let mut sender = ZeroCopySender::new(&c).expect("sender on TCP");
        let expected = send_all(&mut sender, 100);
        poll_until_done(&mut sender);
        let st = sender.stats();
        assert_eq!(st.sent, SENDER_SIZES.len() as u64);
        assert_eq!(st.done, st.sent);
        assert_eq!(st.pending, 0);
        assert!(st.completions > 0, "{st:?}");
        assert_eq!(st.copied, st.completions, "loopback copies: {st:?}");
        assert_eq!(sender.done(), st.sent);
        sender.close(Some(Duration::from_secs(10))).expect("close");
        // The sender owned a duplicate: the caller's socket is still open and usable.
        (&c).write_all(b"tail").expect("caller's socket still open");
        drop(c);
        let mut all = expected;
        all.extend_from_slice(b"tail");
        assert_bytes("sender stream", &all, &reader.join().unwrap().unwrap());
    });
}

#[test]
fn sender_with_a_reader_that_starts_late_still_completes() {
    deadline("sender late reader", 90, || {
        let (c, s) = tcp_pair();
        let mut sender = ZeroCopySender::new(&c).expect("sender");
        // Fill beyond the socket buffers before anyone reads: sends wait, nothing is lost.
        let writer = std::thread::spawn(move || {
            let mut expected = Vec::new();
            for round in 0..4u64 {
                expected.extend(send_all(&mut sender, 1000 * round));
            }
            poll_until_done(&mut sender);
            let st = sender.stats();
            assert_eq!(st.copied, st.completions);
            drop(sender);
            expected
        });
        std::thread::sleep(Duration::from_millis(50));
        let reader = spawn_reader(s);
        let expected = writer.join().unwrap();
        drop(c);
        assert_bytes("late reader", &expected, &reader.join().unwrap().unwrap());
    });
}

#[test]
fn sender_rejects_sockets_that_cannot_do_msg_zerocopy() {
    let (u, _u2) = unix_pair();
    let e = ZeroCopySender::new(&u).err().expect("unix socket");
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    let (udp, _udp2) = udp_pair();
    let e = ZeroCopySender::new(&udp).err().expect("udp socket");
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    let dir = TempDir::new("zc-sender");
    let f = dir.sink("f");
    // A valid descriptor of the wrong kind is Unsupported, as everywhere else.
    let e = ZeroCopySender::new(&f).err().expect("file");
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    let e = ZeroCopySender::from_raw(-1).err().expect("negative");
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    let e = ZeroCopySender::from_raw(closed_fd_number())
        .err()
        .expect("closed");
    assert_eq!(
        (e.code(), e.errno()),
        (ErrorCode::Os, Some(libc::EBADF)),
        "{e}"
    );
    // Unix socket and pipe numbers through from_raw too.
    let e = ZeroCopySender::from_raw(u.as_raw_fd())
        .err()
        .expect("unix raw");
    assert_eq!(e.code(), ErrorCode::Unsupported);
}

#[test]
fn sender_after_a_msg_zerocopy_transfer_on_the_same_socket_maps_completions() {
    deadline("sender after transfer", 90, || {
        let dir = TempDir::new("zc-mixed");
        let data = pattern(500_000, 8);
        let src = dir.source("src", &data);
        let (c, s) = tcp_pair();
        let reader = spawn_reader(s);
        let r = transfer(&src, &c, &zc(None, None)).expect("transfer");
        assert!(r.zc_sends > 0);
        let mut sender = ZeroCopySender::new(&c).expect("sender");
        let mut expected = data.clone();
        expected.extend(send_all(&mut sender, 50));
        poll_until_done(&mut sender);
        assert_eq!(sender.stats().pending, 0);
        drop(sender);
        // And a transfer after the sender, on the same socket.
        let r = transfer(&src, &c, &zc(Some(0), None)).expect("transfer after sender");
        assert!(r.zc_sends > 0);
        assert_eq!(r.zc_copied, r.zc_sends);
        expected.extend_from_slice(&data);
        drop(c);
        assert_bytes("mixed stream", &expected, &reader.join().unwrap().unwrap());
    });
}
