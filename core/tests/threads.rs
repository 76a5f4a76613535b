//! The engine is safe to call from many threads at once: shared pipe pool, shared MSG_ZEROCOPY
//! bookkeeping, per-thread SIGPIPE handling. Every byte of every transfer is checked.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use zcopy_core::{Method, Options, transfer};

const THREADS: usize = 8;
const PER_THREAD: usize = 20;

/// (offset, count) of transfer `j` of thread `t`: different windows, some past the end.
fn window(t: usize, j: usize, size: usize) -> (u64, u64) {
    let off = ((t * 7919 + j * 104_729) % size) as u64;
    let count = (((t + 1) * (j + 3) * 4099) % 300_000) as u64 + 1;
    (off, count)
}

fn many_threads(method: Method, dst_kind: &'static str) {
    let dir = Arc::new(TempDir::new("threads"));
    let size = 2 << 20;
    let data = Arc::new(pattern(size, 42));
    drop(dir.source("src", &data));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let dir = Arc::clone(&dir);
            let data = Arc::clone(&data);
            thread::spawn(move || -> Result<(), String> {
                // One shared source descriptor per thread; explicit offsets, so no shared position.
                let src = std::fs::File::open(dir.join("src")).unwrap();
                for j in 0..PER_THREAD {
                    let (off, count) = window(t, j, size);
                    let end = (off + count).min(size as u64) as usize;
                    let want = &data[off as usize..end];
                    let (dst, collect) = match dst_kind {
                        "pipe" => {
                            let (r, w) = pipe();
                            (w, spawn_reader(r))
                        }
                        "tcp" => {
                            let (c, s) = tcp_pair();
                            (as_file(c), spawn_reader(s))
                        }
                        _ => {
                            let (a, b) = unix_pair();
                            (as_file(a), spawn_reader(b))
                        }
                    };
                    let opts = Options {
                        method,
                        offset: Some(off),
                        count: Some(count),
                        ..Options::default()
                    };
                    let r =
                        transfer(&src, &dst, &opts).map_err(|e| format!("thread {t} #{j}: {e}"))?;
                    drop(dst);
                    let got = collect.join().unwrap().map_err(|e| e.to_string())?;
                    if r.bytes != want.len() as u64 {
                        return Err(format!(
                            "thread {t} #{j}: bytes {} != {}",
                            r.bytes,
                            want.len()
                        ));
                    }
                    check_bytes(&format!("thread {t} #{j}"), want, &got)?;
                }
                Ok(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        if let Err(e) = h.join().unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn eight_threads_splice_through_pipes_at_once() {
    deadline("threads splice -> pipe", 110, || {
        many_threads(Method::Splice, "pipe")
    });
}

#[test]
fn eight_threads_splice_to_sockets_through_the_shared_pipe_pool() {
    deadline("threads splice -> unix", 110, || {
        many_threads(Method::Splice, "unix")
    });
}

#[test]
fn eight_threads_auto_and_msg_zerocopy_to_tcp_at_once() {
    deadline("threads auto -> tcp", 110, || {
        let a = thread::spawn(|| many_threads(Method::Auto, "tcp"));
        let z = thread::spawn(|| many_threads(Method::MsgZerocopy, "tcp"));
        a.join().unwrap();
        z.join().unwrap();
    });
}

#[test]
fn threads_with_their_own_files_each_get_exactly_their_source_with_every_method() {
    // Each thread moves a file (own position) to its own file: positions are per open file,
    // so each output is exactly its source, whatever the other threads do.
    deadline("threads file -> file", 110, || {
        let dir = Arc::new(TempDir::new("threads-ff"));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let dir = Arc::clone(&dir);
                thread::spawn(move || {
                    let data = pattern(300_000 + t * 1000, t as u64);
                    let name = format!("src{t}");
                    let src = dir.source(&name, &data);
                    for (j, m) in [
                        Method::Auto,
                        Method::CopyFileRange,
                        Method::Sendfile,
                        Method::Splice,
                        Method::ReadWrite,
                        Method::Mmap,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let out = format!("dst{t}-{j}");
                        seek(&src, 0);
                        let dst = dir.sink(&out);
                        let r = transfer(&src, &dst, &Options::with_method(m)).unwrap();
                        assert_eq!(r.bytes, data.len() as u64);
                        assert_bytes(&format!("thread {t} {m}"), &data, &dir.read(&out));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}
