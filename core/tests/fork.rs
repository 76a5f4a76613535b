//! Defect 1 of issue 10: the pool of internal pipes is inherited by fork(). A child must never
//! use a pipe its parent pooled: the kernel pipe is shared, so a child's peer would receive
//! bytes another process left in it, and a full inherited pipe made transfers time out with 0
//! bytes or spin. One test in this binary: fork() is only safe while no other test thread runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use zcopy_core::{Method, Options, transfer};

/// Runs `child` in a forked child and returns its exit status (killing it after 20 s).
fn in_child(child: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    // SAFETY: the child only runs `child` and then _exit()s; no other thread of this test
    // binary is running engine code (one test per binary).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = match child() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("child: {e}");
                1
            }
        };
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let t0 = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
                Some(0) => Ok(()),
                other => Err(format!("child ended with {other:?} (status {status})")),
            };
        }
        if t0.elapsed() > Duration::from_secs(20) {
            // SAFETY: kills our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Err("child hung".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `src` -> a loopback TCP connection whose peer reads everything; checks the peer got
/// exactly `want`.
fn send_and_check(
    src: &std::fs::File,
    want: &[u8],
    timeout: Option<Duration>,
) -> Result<(), String> {
    let (c, s) = tcp_pair();
    small_buffers(&c);
    let reader = spawn_reader(s);
    let o = Options {
        method: Method::Splice,
        offset: Some(0),
        count: Some(want.len() as u64),
        timeout,
        ..Options::default()
    };
    let r = transfer(src, &c, &o).map_err(|e| e.to_string())?;
    drop(c);
    let got = reader.join().unwrap().map_err(|e| e.to_string())?;
    if r.bytes != want.len() as u64 {
        return Err(format!("reported {} of {}", r.bytes, want.len()));
    }
    check_bytes("peer", want, &got)
}

#[test]
fn forked_children_never_share_the_parents_pipes() {
    let dir = TempDir::new("fork");
    let a = vec![b'A'; 8 << 20];
    let b = vec![b'B'; 8 << 20];
    let fa = dir.source("a", &a);
    let fb = dir.source("b", &b);
    // The parent uses the engine first: its pool now holds a pipe.
    send_and_check(&fb, &b[..4096], None).unwrap();

    // Child 1 leaves 'A' bytes in its pipe: the peer never reads and the deadline ends it.
    in_child(|| {
        let (c, s) = tcp_pair();
        small_buffers(&c);
        small_buffers(&s);
        let o = Options {
            method: Method::Splice,
            offset: Some(0),
            timeout: Some(Duration::from_millis(100)),
            ..Options::default()
        };
        match transfer(&fa, &c, &o) {
            Err(e) if e.code() == zcopy_core::ErrorCode::TimedOut => Ok(()),
            other => Err(format!("expected a timeout: {other:?}")),
        }
    })
    .unwrap();
    // Later children (and the parent) get only their own bytes, with and without a deadline.
    for timeout in [Some(Duration::from_secs(5)), None] {
        in_child(|| send_and_check(&fb, &b[..65536], timeout)).unwrap();
    }
    // A child that forks again, after using the engine itself.
    in_child(|| {
        send_and_check(&fb, &b[..65536], None)?;
        in_child(|| send_and_check(&fa, &a[..100_000], None))
    })
    .unwrap();
    send_and_check(&fb, &b[..65536], Some(Duration::from_secs(5))).unwrap();
}
