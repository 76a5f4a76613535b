//! EINTR: a signal interrupting a blocked transfer is retried, unless the interrupt hook says
//! stop, in which case the call returns Os(EINTR) with its progress and a resumable position.
//! Signals are sent until the transfer returns; the only time limit is a hang deadline.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::thread::JoinHandleExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use zcopy_core::{ErrorCode, InterruptHook, Method, Options, transfer};

/// Runs `transfer(file -> tcp)` on a thread while the peer does not read, and pokes the
/// thread with SIGUSR1 until the hook has been called `pokes_wanted` times. Then the peer
/// drains (if the transfer is still going) and everything is checked.
fn interrupted(m: Method, stop: bool) -> Result<(), String> {
    install_sigusr1_handler();
    let dir = TempDir::new("eintr");
    let size = 12 << 20;
    let data = pattern(size, m as u64 + 100);
    let src = dir.source("src", &data);
    let (c, s) = tcp_pair();
    // The peer reads nothing until the hook ran: the transfer must stall, not fit in buffers.
    small_buffers(&c);
    small_buffers(&s);
    let calls = Arc::new(AtomicU64::new(0));
    let hook: InterruptHook = {
        let calls = Arc::clone(&calls);
        Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            stop
        })
    };
    let opts = Options {
        method: m,
        on_interrupt: Some(hook),
        ..Options::default()
    };
    let src2 = src.try_clone().unwrap();
    let worker = thread::spawn(move || {
        let r = transfer(&src2, &c, &opts);
        drop(c);
        r
    });
    let tid = worker.as_pthread_t();
    let want_calls = if stop { 1 } else { 3 };
    while calls.load(Ordering::SeqCst) < want_calls && !worker.is_finished() {
        // SAFETY: the thread is alive (not finished; joined only below).
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        thread::sleep(Duration::from_millis(5));
    }
    // The peer starts reading only now.
    let reader = spawn_reader(s);
    let r = worker.join().unwrap();
    let got = reader.join().unwrap().map_err(|e| e.to_string())?;
    match (stop, r) {
        (true, Err(e)) => {
            if (e.code(), e.errno()) != (ErrorCode::Os, Some(libc::EINTR)) {
                return Err(format!("hook said stop: expected Os(EINTR), got {e}"));
            }
            if e.bytes() != got.len() as u64 {
                return Err(format!(
                    "report {} bytes, peer got {}",
                    e.bytes(),
                    got.len()
                ));
            }
            if position(&src) != e.bytes() {
                return Err(format!(
                    "position {} != bytes {}",
                    position(&src),
                    e.bytes()
                ));
            }
            check_bytes("delivered before the interrupt", &data[..got.len()], &got)
        }
        (false, Ok(rep)) => {
            if calls.load(Ordering::SeqCst) < want_calls {
                return Err("the hook was never called: no EINTR reached the engine".into());
            }
            if rep.bytes != size as u64 {
                return Err(format!("bytes {} != {size}", rep.bytes));
            }
            check_bytes("interrupted and retried", &data, &got)
        }
        (_, r) => Err(format!("hook returned {stop}: unexpected {r:?}")),
    }
}

/// Runs [`interrupted`] for every method that can send a file to TCP and asserts none failed.
fn every_file_to_tcp_method(stop: bool) {
    let mut failures = Vec::new();
    for m in [
        Method::Auto,
        Method::ReadWrite,
        Method::Mmap,
        Method::Sendfile,
        Method::Splice,
        Method::MsgZerocopy,
    ] {
        let r =
            try_deadline(60, move || interrupted(m, stop)).unwrap_or_else(|| Err("hung".into()));
        if let Err(e) = r {
            failures.push(format!("{m}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn eintr_is_retried_when_the_hook_says_go_on() {
    every_file_to_tcp_method(false);
}

#[test]
fn eintr_stops_with_progress_when_the_hook_says_stop() {
    every_file_to_tcp_method(true);
}
