//! Relays past the pipe budget, as an unprivileged user (`nobody`, in a child process of this
//! test binary), whom the kernel's per-user pipe quota binds: the relays that find no useful
//! pipe move their bytes through a buffer (and their report says so) instead of failing, and
//! every relay delivers both ways byte-exact.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// More relays than a 32 MiB budget holds floor-size (64 KiB) pipes for: two per relay, 512.
const RELAYS: usize = 400;
/// Bytes each way per relay: more than a buffer or pipe holds.
const SIZE: usize = 256 << 10;

#[test]
fn relays_past_the_pipe_budget_fall_back_to_a_buffer() {
    let text = as_nobody(
        "relays_past_the_pipe_budget_fall_back_to_a_buffer",
        scenario,
    );
    for line in text.lines().filter(|l| l.contains("through a buffer")) {
        eprintln!("as nobody: {line}");
    }
}

/// RELAYS relays between loopback TCP connections, all running (each proved by a one-byte
/// round trip) before any of them streams; then SIZE bytes each way through every relay at
/// once, with the far sides half-closing.
fn scenario() {
    let running = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(RELAYS);
    for i in 0..RELAYS {
        let running = running.clone();
        let spawned = thread::Builder::new().stack_size(256 << 10).spawn(move || {
            // Small buffers on the relay's sockets: its sends are often partial (the buffer
            // then holds bytes at its end while it reads more).
            let relay_attacks::Running {
                mut left,
                mut right,
                relay,
            } = relay_attacks::running_relay(|s| small_buffers(s));
            all_running(&running);
            let up = pattern(SIZE, 2 * i as u64);
            let down = pattern(SIZE, 2 * i as u64 + 1);
            let answer = send_then_half_close(&right, down.clone());
            let ask = send_then_half_close(&left, up.clone());
            let got_up = read_all(&mut right).expect("read right");
            let got_down = read_all(&mut left).expect("read left");
            ask.join().expect("send a->b");
            answer.join().expect("send b->a");
            let report = relay.join().expect("relay thread").expect("relay");
            assert_bytes(&format!("relay {i} a->b"), &up, &got_up);
            assert_bytes(&format!("relay {i} b->a"), &down, &got_down);
            assert_eq!(report.a_to_b, SIZE as u64 + 1, "relay {i}");
            assert_eq!(report.b_to_a, SIZE as u64, "relay {i}");
            report.buffered
        });
        clients.push(spawned.expect("client thread"));
    }
    let buffered = clients
        .into_iter()
        .map(|c| c.join().expect("a relay client failed"))
        .filter(|&b| b)
        .count();
    eprintln!("{buffered} of {RELAYS} relays moved their bytes through a buffer");
    assert!(
        buffered > 0,
        "{RELAYS} relays at once should outrun a 32 MiB pipe budget"
    );
    eprintln!("scenario done");
}

/// Counts this relay as running and waits (at most 30 s: a relay that failed never counts)
/// until all are, so that they hold their pipes at once.
fn all_running(running: &AtomicUsize) {
    running.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(30);
    while running.load(Ordering::SeqCst) < RELAYS && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `bytes` into a clone of `sock` on its own thread, then half-closes it.
fn send_then_half_close(sock: &TcpStream, bytes: Vec<u8>) -> thread::JoinHandle<()> {
    let mut w = sock.try_clone().expect("clone");
    thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            w.write_all(&bytes).expect("send");
            w.shutdown(Shutdown::Write).expect("half-close");
        })
        .expect("sender thread")
}
