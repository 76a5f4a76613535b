//! Attacks on a relay, shared by the tests that run them on the pipe path (as root, where
//! every relay gets pipes) and on the buffer path (`relay_buffered.rs`: as nobody, with the
//! pipe budget taken): each checks the outcome and returns the relay's report, so the caller
//! can say which path carried it.

#![allow(clippy::result_large_err)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use zcopy_core::{ErrorCode, RelayOptions, RelayReport, relay};

use super::*;

/// Sends `before`, one TCP urgent byte, `after`, then half-closes.
pub fn send_with_urgent_byte(c: TcpStream, before: &[u8], after: &[u8]) {
    (&c).write_all(before).unwrap();
    // SAFETY: one byte from a live buffer.
    let n = unsafe { libc::send(c.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
    assert_eq!(n, 1);
    (&c).write_all(after).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
}

/// A relay between two loopback TCP connections, proved running by one byte from `left` to
/// `right` (so it holds its pipes or its buffers): the test's two ends and the relay's thread.
pub struct Running {
    pub left: TcpStream,
    pub right: TcpStream,
    pub relay: JoinHandle<Result<RelayReport, String>>,
}

/// Starts a [`Running`] relay; `tune` sees each of the relay's own sockets before it starts.
pub fn running_relay(tune: impl Fn(&TcpStream)) -> Running {
    let (mut left, a) = tcp_pair();
    let (b, mut right) = tcp_pair();
    tune(&a);
    tune(&b);
    let relay = thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || relay(&a, &b, &RelayOptions::default()).map_err(|e| e.to_string()))
        .expect("relay thread");
    left.write_all(b"?").expect("ping");
    let mut one = [0u8; 1];
    right.read_exact(&mut one).expect("ping through the relay");
    Running { left, right, relay }
}

fn bounded() -> RelayOptions {
    RelayOptions {
        timeout: Some(Duration::from_secs(20)),
        ..RelayOptions::default()
    }
}

/// Defect 13: the relay steps over an urgent byte: everything else arrives, in order.
pub fn urgent_byte() -> RelayReport {
    let before = pattern(50_000, 15);
    let after = pattern(70_000, 16);
    let mut want = before.clone();
    want.extend_from_slice(&after);
    let (client, a) = tcp_pair();
    let (b, server) = tcp_pair();
    let (bb, aa) = (before.clone(), after.clone());
    let feeder = thread::spawn(move || send_with_urgent_byte(client, &bb, &aa));
    let reader = thread::spawn(move || {
        server.shutdown(Shutdown::Write).unwrap();
        read_all(&server).unwrap()
    });
    let o = bounded();
    let r = deadline("relay urgent", 30, move || relay(&a, &b, &o));
    feeder.join().unwrap();
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.a_to_b as usize, want.len());
    assert_eq!(reader.join().unwrap(), want);
    r
}

/// Defect 13: a server that answers and then resets while the client still uploads: the
/// answer reaches the client whatever the order of the relay's arguments, and the relay
/// reports the error with the answer's bytes.
pub fn answer_then_reset(swap: bool) -> RelayReport {
    let answer = pattern(300_000, 21);
    let (client, a) = tcp_pair();
    let (b, server) = tcp_pair();
    let ans = answer.clone();
    let srv = thread::spawn(move || {
        let mut req = [0u8; 5];
        (&server).read_exact(&mut req).unwrap();
        (&server).write_all(&ans).unwrap();
        // Reset once the answer has left (a reset drops what is still unsent).
        let mut unsent: libc::c_int = 1;
        while unsent > 0 {
            // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
            unsafe { libc::ioctl(server.as_raw_fd(), libc::TIOCOUTQ, &mut unsent) };
            thread::sleep(Duration::from_millis(1));
        }
        linger_zero(&server);
        drop(server);
    });
    let uploader = client.try_clone().unwrap();
    let upload = thread::spawn(move || {
        let chunk = vec![7u8; 64 << 10];
        for _ in 0..64 {
            if (&uploader).write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        let _ = (&client).read_to_end(&mut got);
        got
    });
    let o = bounded();
    // The relay's sockets stay open until the client has read: closing one with unread
    // upload bytes would reset the client's connection.
    let (r, a, b) = deadline("relay reset", 30, move || {
        let r = if swap {
            relay(&b, &a, &o)
        } else {
            relay(&a, &b, &o)
        };
        (r, a, b)
    });
    srv.join().unwrap();
    let got = reader.join().unwrap();
    drop((a, b));
    upload.join().unwrap();
    assert_eq!(got.len(), answer.len(), "swap={swap}: {r:?}");
    assert_eq!(got, answer, "swap={swap}");
    let e = r.expect_err("the server reset");
    let to_client = if swap {
        e.report.a_to_b
    } else {
        e.report.b_to_a
    };
    assert_eq!(to_client as usize, answer.len(), "swap={swap}");
    e.report
}

/// A peer that resets while the other side is idle ends the relay: a socket that failed to
/// read takes no more writes either.
pub fn reset_while_idle() -> RelayReport {
    let (client, a) = tcp_pair();
    let (b, server) = tcp_pair();
    (&client).write_all(b"request").unwrap();
    let srv = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        linger_zero(&server);
        drop(server);
    });
    let o = RelayOptions::default();
    let (r, a, b) = deadline("reset while idle", 20, move || (relay(&a, &b, &o), a, b));
    srv.join().unwrap();
    let e = r.expect_err("the server reset");
    assert_eq!(e.error.errno(), Some(libc::ECONNRESET), "{e}");
    assert_eq!(e.report.a_to_b, 7);
    drop((a, b, client));
    e.report
}

/// A b-side peer that reads 1000 bytes of a 4 MiB upload and then resets: the relay fails
/// with EPIPE or ECONNRESET and a report of at least those 1000 bytes.
pub fn into_reset_peer() -> Result<RelayReport, String> {
    let (ca, a) = tcp_pair();
    let (b, cb) = tcp_pair();
    let data = pattern(4 << 20, 9);
    let writer = {
        let mut ca = ca.try_clone().unwrap();
        let data = data.clone();
        thread::spawn(move || {
            // Ends with an error once the relay stops reading and `a` is closed.
            let _ = ca.write_all(&data);
        })
    };
    let peer = thread::spawn(move || {
        let mut cb = cb;
        let mut first = vec![0u8; 1000];
        cb.read_exact(&mut first).map(|()| first)
        // Closing with unread data resets the connection.
    });
    let r = relay(&a, &b, &RelayOptions::default());
    drop(a);
    let first = peer.join().unwrap().map_err(|e| e.to_string())?;
    writer.join().unwrap();
    drop(ca);
    check_bytes("peer's first bytes", &data[..1000], &first)?;
    match r {
        Err(e) => {
            if e.error.code() != ErrorCode::Os
                || !matches!(e.error.errno(), Some(libc::EPIPE | libc::ECONNRESET))
            {
                return Err(format!("expected Os(EPIPE or ECONNRESET), got {e}"));
            }
            // The peer read 1000 bytes: at least that much was delivered a -> b.
            if !(1000..=4 << 20).contains(&e.report.a_to_b) {
                return Err(format!(
                    "the error's report says a_to_b = {}, but the peer read 1000 bytes: {e}",
                    e.report.a_to_b
                ));
            }
            Ok(e.report)
        }
        Ok(rep) => Err(format!("the peer reset the connection, yet Ok({rep:?})")),
    }
}

/// A server that never reads a 4 MiB upload, and a 300 ms deadline: the relay ends TimedOut,
/// and what it reports delivered a -> b is exactly what the server then finds (a prefix of
/// the upload; what the relay held is gone, as documented).
pub fn deadline_with_a_stalled_peer() -> RelayReport {
    let (client, a) = tcp_pair();
    let (b, server) = tcp_pair();
    small_buffers(&b);
    small_buffers(&server);
    let data = pattern(4 << 20, 41);
    let upload = {
        let c = client.try_clone().unwrap();
        let data = data.clone();
        // Ends with an error once the relay's socket closes with unread bytes.
        thread::spawn(move || {
            let _ = (&c).write_all(&data);
        })
    };
    let o = RelayOptions {
        timeout: Some(Duration::from_millis(300)),
        ..RelayOptions::default()
    };
    let (r, a, b) = deadline("relay with a stalled peer", 30, move || {
        (relay(&a, &b, &o), a, b)
    });
    let e = r.expect_err("the server never reads: the deadline ends the relay");
    assert_eq!(e.error.code(), ErrorCode::TimedOut, "{e}");
    drop((a, b));
    let got = read_all(&server).unwrap();
    assert_eq!(got.len() as u64, e.report.a_to_b, "reported vs received");
    assert!(!got.is_empty() && got.len() < data.len(), "{}", got.len());
    assert_bytes("stalled upload", &data[..got.len()], &got);
    drop(client);
    upload.join().unwrap();
    e.report
}
