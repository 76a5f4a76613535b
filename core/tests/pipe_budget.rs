//! The pipe budget with many concurrent splices, as an unprivileged user (`nobody`, in a child
//! process of this test binary), whom the kernel's per-user pipe quota binds: every transfer is
//! byte-exact, the engine's pipes stay within its budget, and the transfers that find no useful
//! pipe fall back to sendfile and say why, instead of crawling through a two-page pipe. And a
//! thousand concurrent transfers in one process, each byte-exact.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use zcopy_core::{Method, Options, transfer};

/// More than the 512 floor-size (64 KiB) pipes a 32 MiB budget holds.
const TRANSFERS: usize = 700;
/// More than a small socket buffer holds, so each splice waits holding its pipe.
const SIZE: usize = 1 << 20;

#[test]
fn concurrent_splices_stay_within_the_pipe_budget() {
    as_nobody("concurrent_splices_stay_within_the_pipe_budget", scenario);
}

/// TRANSFERS file -> TCP splices at once, each held open by a peer that starts reading only
/// after all have started (half a second; small socket buffers keep each splice waiting).
fn scenario() {
    let dir = TempDir::new("pipe-budget");
    let data = pattern(SIZE, 1);
    dir.source("src", &data);
    let start = Arc::new(Barrier::new(TRANSFERS + 1));
    let mut workers = Vec::new();
    for _ in 0..TRANSFERS {
        let path = dir.join("src");
        let start = start.clone();
        workers.push(thread::spawn(move || {
            let f = std::fs::File::open(path).expect("open");
            let (tx, rx) = tcp_pair();
            small_buffers(&tx);
            small_buffers(&rx);
            let reader = thread::spawn(move || {
                thread::sleep(Duration::from_millis(500));
                read_all(rx).expect("read")
            });
            start.wait();
            // Splice asked for (Auto would pick sendfile for 1 MiB), falling back as Auto would.
            let opts = Options {
                method: Method::Splice,
                fallback: true,
                ..Options::default()
            };
            let rep = transfer(&f, &tx, &opts).expect("transfer");
            drop(tx);
            (rep, reader.join().expect("reader"))
        }));
    }
    start.wait();
    let budget = zcopy_core::pipe_budget();
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(zcopy_core::pipe_capacity_held());
        thread::sleep(Duration::from_millis(20));
    }
    let mut fell_back = 0;
    for w in workers {
        let (rep, got) = w.join().expect("worker");
        assert_bytes("transfer", &data, &got);
        assert_eq!(rep.bytes, SIZE as u64);
        if let Some(fb) = rep.fallbacks.iter().find(|f| f.from == Method::Splice) {
            assert!(
                fb.reason.contains("pipe"),
                "the reason names the pipes: {}",
                fb.reason
            );
            assert_eq!(rep.method, Method::Sendfile, "{rep:?}");
            fell_back += 1;
        }
    }
    assert!(peak <= budget, "pipes held {peak} bytes, budget {budget}");
    assert!(
        fell_back > 0,
        "{TRANSFERS} splices at once all found a pipe within {budget} bytes"
    );
    assert!(fell_back < TRANSFERS, "no splice found a pipe at all");
    println!(
        "scenario done: budget {budget}, peak {peak}, {fell_back} of {TRANSFERS} fell back to sendfile"
    );
}

/// A thousand file -> TCP transfers at once (threads, one process), large enough for Auto to
/// splice: every peer gets exactly its range, whatever mix of splice and sendfile the pipe
/// budget allows.
#[test]
fn a_thousand_concurrent_transfers_are_byte_exact() {
    // Each transfer holds about eight descriptors (file, two sockets, duplicates, a pipe).
    let n = (raise_nofile_limit().saturating_sub(256) / 8).min(1000);
    if n < 1000 {
        eprintln!("only {n} transfers: RLIMIT_NOFILE is too low for a thousand");
    }
    run_concurrent(n);
}

/// Raises the soft descriptor limit to the hard one; returns it.
fn raise_nofile_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimit storage for get and set.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur as usize
}

fn run_concurrent(n: usize) {
    const EACH: usize = (4 << 20) + 4096;
    let dir = TempDir::new("thousand");
    let data = Arc::new(pattern(16 << 20, 2));
    dir.source("src", &data);
    let start = Arc::new(Barrier::new(n));
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let (path, start, data) = (dir.join("src"), start.clone(), data.clone());
        let spawned = thread::Builder::new().stack_size(256 << 10).spawn(move || {
            let f = std::fs::File::open(path).expect("open");
            let (tx, rx) = tcp_pair();
            let reader = thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || read_all(rx).expect("read"))
                .expect("reader thread");
            let offset = (i * 4096) % (data.len() - EACH);
            start.wait();
            let opts = Options {
                offset: Some(offset as u64),
                count: Some(EACH as u64),
                ..Options::default()
            };
            let rep = transfer(&f, &tx, &opts).expect("transfer");
            drop(tx);
            let got = reader.join().expect("reader");
            assert_eq!(rep.bytes as usize, EACH, "transfer {i}");
            assert!(
                got[..] == data[offset..offset + EACH],
                "transfer {i}: bytes differ"
            );
        });
        workers.push(spawned.expect("worker thread"));
    }
    for w in workers {
        w.join().expect("a transfer failed");
    }
    assert!(zcopy_core::pipe_capacity_held() <= zcopy_core::pipe_budget());
}
