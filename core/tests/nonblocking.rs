//! Non-blocking descriptors and deadlines: timeout zero returns WouldBlock with the bytes moved
//! so far, a short timeout returns TimedOut with progress, the source position always ends at
//! start + bytes delivered, and resuming later delivers the rest exactly. Timeouts here are
//! deadlines only: no test measures how long anything took.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use zcopy_core::{Error, ErrorCode, Method, Options, transfer};

const FILE_TO_STREAM: [Method; 6] = [
    Method::Auto,
    Method::ReadWrite,
    Method::Mmap,
    Method::Sendfile,
    Method::Splice,
    Method::MsgZerocopy,
];

/// A destination whose peer does not read until told to: (engine's fd, peer's fd).
/// `method` with one deadline of `timeout` for the call.
fn with_timeout(method: Method, timeout: Duration) -> Options {
    Options {
        method,
        timeout: Some(timeout),
        ..Options::default()
    }
}

fn stuck_destination(kind: &str) -> (std::fs::File, std::fs::File) {
    match kind {
        "tcp" => {
            let (c, s) = tcp_pair();
            // Loopback autotuning could otherwise buffer megabytes before anything stalls.
            small_buffers(&c);
            small_buffers(&s);
            (as_file(c), as_file(s))
        }
        "unix" => {
            let (a, b) = unix_pair();
            (as_file(a), as_file(b))
        }
        _ => {
            let (r, w) = pipe();
            (w, r)
        }
    }
}

/// file -> non-blocking destination whose peer does not read, with `timeout`; then the peer
/// drains and the transfer is resumed until done. Checks the outcome code, progress,
/// positions, flags, and every byte.
fn stalled_then_resumed(
    m: Method,
    kind: &str,
    timeout: Duration,
    nonblocking: bool,
) -> Result<(), String> {
    let dir = TempDir::new("nb");
    let size = 8 << 20;
    let data = pattern(size, m as u64);
    let src = dir.source("src", &data);
    let (dst, peer) = stuck_destination(kind);
    if nonblocking {
        set_nonblocking(&dst, true);
    }
    let flags_before = flags(&dst);
    let start = 4096 + 5;
    seek(&src, start);
    let opts = Options {
        method: m,
        timeout: Some(timeout),
        ..Options::default()
    };
    let e: Error = match transfer(&src, &dst, &opts) {
        Ok(r) => return Err(format!("the peer never reads 8 MiB, yet Ok({r:?})")),
        Err(e) => e,
    };
    let want_code = if timeout.is_zero() {
        ErrorCode::WouldBlock
    } else {
        ErrorCode::TimedOut
    };
    if e.code() != want_code {
        return Err(format!(
            "expected {want_code:?}, got {e} [{:?} {:?}]",
            e.code(),
            e.errno()
        ));
    }
    let moved = e.bytes();
    if moved == 0 {
        return Err("an empty socket buffer or pipe takes some bytes before it blocks".into());
    }
    if moved >= (size as u64 - start) {
        return Err(format!(
            "moved everything ({moved}) into a peer that does not read"
        ));
    }
    if position(&src) != start + moved {
        return Err(format!(
            "source position {} != start {start} + bytes delivered {moved}",
            position(&src)
        ));
    }
    if flags(&dst) != flags_before {
        return Err(format!(
            "destination flags changed: {:x} -> {:x}",
            flags_before,
            flags(&dst)
        ));
    }
    // Now the peer reads, and the caller resumes from the position.
    let reader = spawn_reader(peer);
    // Counted, so Auto and sendfile also go through the one-syscall fast path (which meets a
    // non-blocking socket and must hand over to the waiting path).
    let resume = Options {
        method: m,
        count: Some(size as u64 - start - moved),
        ..Options::default()
    };
    let r = transfer(&src, &dst, &resume).map_err(|e| format!("resume: {e}"))?;
    if moved + r.bytes != size as u64 - start {
        return Err(format!(
            "first call {moved} + resume {} != {}",
            r.bytes,
            size as u64 - start
        ));
    }
    drop(dst);
    let got = reader.join().unwrap().map_err(|e| e.to_string())?;
    check_bytes("stalled then resumed", &data[start as usize..], &got)
}

fn run_all(kinds: &[&str], timeout: Duration, nonblocking: bool) {
    let mut failures = Vec::new();
    for &kind in kinds {
        for m in FILE_TO_STREAM {
            if m == Method::MsgZerocopy && kind != "tcp" {
                continue;
            }
            let k = kind.to_string();
            let r = try_deadline(60, move || {
                stalled_then_resumed(m, &k, timeout, nonblocking)
            })
            .unwrap_or_else(|| Err("hung".into()));
            if let Err(e) = r {
                failures.push(format!("{m} into {kind}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn timeout_zero_into_a_full_nonblocking_destination_is_would_block_with_progress() {
    run_all(&["tcp", "unix", "pipe"], Duration::ZERO, true);
}

#[test]
fn short_timeout_into_a_full_nonblocking_destination_is_timed_out_with_progress() {
    run_all(&["tcp", "pipe"], Duration::from_millis(150), true);
}

#[test]
fn short_timeout_into_a_full_blocking_destination_is_timed_out_and_flags_are_restored() {
    // The deadline covers blocking descriptors too; their O_NONBLOCK must not leak out.
    run_all(&["tcp", "unix"], Duration::from_millis(150), false);
}

#[test]
fn nonblocking_pipe_source_without_data_waits_times_out_and_resumes() {
    let dir = TempDir::new("nb-src");
    let data = pattern(300_000, 3);
    for m in [Method::Auto, Method::ReadWrite, Method::Splice] {
        let (r, mut w) = pipe();
        set_nonblocking(&r, true);
        let dst = dir.sink("dst");
        let e = transfer(&r, &dst, &with_timeout(m, Duration::ZERO))
            .expect_err("empty pipe, writer open");
        assert_eq!(
            (e.code(), e.bytes()),
            (ErrorCode::WouldBlock, 0),
            "{m}: {e}"
        );
        let e = transfer(&r, &dst, &with_timeout(m, Duration::from_millis(50)))
            .expect_err("empty pipe, writer open");
        assert_eq!((e.code(), e.bytes()), (ErrorCode::TimedOut, 0), "{m}: {e}");
        // Some data arrives, the writer stays open: those bytes are delivered, then time out.
        w.write_all(&data[..1000]).unwrap();
        let e = transfer(&r, &dst, &with_timeout(m, Duration::from_millis(50)))
            .expect_err("writer still open");
        assert_eq!(
            (e.code(), e.bytes(), e.report.undelivered),
            (ErrorCode::TimedOut, 1000, 0),
            "{m}: {e}"
        );
        assert_eq!(dir.read("dst"), &data[..1000], "{m}");
        w.write_all(&data[1000..2000]).unwrap();
        let e =
            transfer(&r, &dst, &with_timeout(m, Duration::ZERO)).expect_err("writer still open");
        assert_eq!(
            (e.code(), e.bytes()),
            (ErrorCode::WouldBlock, 1000),
            "{m}: {e}"
        );
        // The rest, then EOF: a call without a timeout finishes.
        let feeder = spawn_writer(w, data[2000..].to_vec());
        let rep = deadline("resume", 30, {
            let r = r.try_clone().unwrap();
            let dst = dst.try_clone().unwrap();
            move || {
                transfer(&r, &dst, &Options::with_method(m))
                    .map(|r| r.bytes)
                    .map_err(|e| e.to_string())
            }
        })
        .unwrap();
        feeder.join().unwrap().unwrap();
        assert_eq!(rep, (data.len() - 2000) as u64, "{m}");
        assert_bytes(
            &format!("{m} pipe source in three calls"),
            &data,
            &dir.read("dst"),
        );
        assert_ne!(
            flags(&r) & libc::O_NONBLOCK,
            0,
            "the caller's O_NONBLOCK stays"
        );
    }
}

#[test]
fn blocking_socket_source_with_a_deadline_times_out_and_keeps_the_rest() {
    let dir = TempDir::new("blk-src");
    let data = pattern(200_000, 4);
    for m in [Method::Auto, Method::ReadWrite, Method::Splice] {
        let (c, s) = tcp_pair();
        let mut c = c;
        c.write_all(&data[..5000]).unwrap();
        assert!(wait_readable(&s, 10));
        let dst = dir.sink("dst");
        let before = flags(&s);
        let e = transfer(&s, &dst, &with_timeout(m, Duration::from_millis(100)))
            .expect_err("the writer is still open");
        assert_eq!(e.code(), ErrorCode::TimedOut, "{m}: {e}");
        assert_eq!(
            flags(&s),
            before,
            "{m}: O_NONBLOCK set for the deadline must be removed again"
        );
        assert_eq!(
            e.bytes() + e.report.undelivered,
            5000,
            "{m}: every byte taken is delivered or reported: {e}"
        );
        assert_eq!(
            e.bytes(),
            5000,
            "{m}: a file destination never blocks, so nothing may be left undelivered"
        );
        let feeder = spawn_writer(c, data[5000..].to_vec());
        let r = transfer(&s, &dst, &Options::with_method(m)).unwrap();
        feeder.join().unwrap().unwrap();
        assert_eq!(r.bytes, (data.len() - 5000) as u64);
        assert_bytes(
            &format!("{m} socket source in two calls"),
            &data,
            &dir.read("dst"),
        );
    }
}

/// A stream source into a stuck non-blocking stream destination: bytes taken from the source
/// but not delivered cannot go back. They are never silently dropped: delivered + reported
/// undelivered + still in the source == everything the feeder wrote, in order.
#[test]
fn stream_to_stalled_stream_never_drops_bytes_silently() {
    let mut failures = Vec::new();
    for m in [Method::Auto, Method::ReadWrite, Method::Splice] {
        for timeout in [Duration::ZERO, Duration::from_millis(100)] {
            let r = try_deadline(60, move || -> Result<(), String> {
                let data = pattern(6 << 20, 5);
                let (feed, src) = unix_pair();
                let feeder = spawn_writer(feed, data.clone());
                let (dst, peer) = stuck_destination("tcp");
                set_nonblocking(&dst, true);
                let e = match transfer(&src, &dst, &with_timeout(m, timeout)) {
                    Ok(r) => return Err(format!("Ok({r:?}) into a peer that does not read")),
                    Err(e) => e,
                };
                // Explicit splice would hold bytes in its pipe: it refuses up front.
                let refused = m == Method::Splice && e.code() == ErrorCode::Unsupported;
                if refused && e.bytes() != 0 {
                    return Err(format!("refused after moving bytes: {e}"));
                }
                if !refused && !matches!(e.code(), ErrorCode::WouldBlock | ErrorCode::TimedOut) {
                    return Err(format!("got {e}"));
                }
                let (delivered, lost) = (e.bytes() as usize, e.report.undelivered as usize);
                drop(dst);
                let got = read_all(&peer).map_err(|e| e.to_string())?;
                check_bytes("delivered", &data[..delivered], &got)?;
                let rest = read_all(&src).map_err(|e| e.to_string())?;
                feeder.join().unwrap().map_err(|e| e.to_string())?;
                check_bytes("left in the source", &data[delivered + lost..], &rest).map_err(|why| {
                    format!("{why} [delivered {delivered}, reported undelivered {lost}: {e}]")
                })
            })
            .unwrap_or_else(|| Err("hung".into()));
            if let Err(e) = r {
                failures.push(format!("{m} timeout {timeout:?}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pipe_to_stalled_socket_with_splice_loses_nothing_and_resumes() {
    // One side is a pipe: splice moves directly, so nothing is ever held in between.
    let data = pattern(4 << 20, 6);
    let (r, w) = pipe();
    let feeder = spawn_writer(w, data.clone());
    let (dst, peer) = stuck_destination("unix");
    set_nonblocking(&dst, true);
    let e = transfer(&r, &dst, &with_timeout(Method::Splice, Duration::ZERO)).expect_err("stuck");
    assert_eq!(e.code(), ErrorCode::WouldBlock, "{e}");
    assert_eq!(e.report.undelivered, 0, "{e}");
    let moved = e.bytes();
    let reader = spawn_reader(peer);
    let rep = transfer(&r, &dst, &Options::with_method(Method::Splice)).unwrap();
    drop(dst);
    feeder.join().unwrap().unwrap();
    assert_eq!(moved + rep.bytes, data.len() as u64);
    assert_bytes(
        "pipe -> stalled socket, resumed",
        &data,
        &reader.join().unwrap().unwrap(),
    );
}

#[test]
fn pipes_left_holding_bytes_after_an_error_are_never_reused() {
    // file -> stalled socket through the pooled pipe: the pipe holds bytes when the call
    // returns WouldBlock. Later transfers through the pool must carry only their own bytes.
    let dir = TempDir::new("pool");
    let data = pattern(8 << 20, 7);
    let src = dir.source("src", &data);
    for _ in 0..4 {
        let (dst, _peer) = stuck_destination("unix");
        set_nonblocking(&dst, true);
        let opts = Options {
            method: Method::Splice,
            offset: Some(0),
            timeout: Some(Duration::ZERO),
            ..Options::default()
        };
        let e = transfer(&src, &dst, &opts).expect_err("stalled");
        assert_eq!(e.code(), ErrorCode::WouldBlock, "{e}");
    }
    for i in 0..20u64 {
        let small = pattern(10_000 + i as usize, 1000 + i);
        let s = dir.source("small", &small);
        let (a, b) = unix_pair();
        let reader = spawn_reader(b);
        let r = transfer(&s, &a, &Options::with_method(Method::Splice)).unwrap();
        drop(a);
        assert_eq!(r.bytes, small.len() as u64);
        assert_bytes(
            &format!("transfer {i} after errors"),
            &small,
            &reader.join().unwrap().unwrap(),
        );
    }
}
