//! Regression tests for the defects of zcopy 0.1.0 that peers which stall, close, reset or send
//! urgent data, same-file copies, truncated sources, descriptor games and deadlines exposed
//! (issue 10). Each test names the defect it pins down; the reproducers live in
//! ../shared/repro/.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use zcopy_core::{ErrorCode, InterruptHook, Method, Options, transfer, transfer_fds};

fn opts(method: Method) -> Options {
    Options {
        method,
        ..Options::default()
    }
}

/// Defect 4: a never-open number is EBADF (not EINVAL), and a descriptor at RLIMIT_NOFILE - 1
/// works (no duplicate "above both numbers" is needed).
#[test]
fn never_open_numbers_are_ebadf_and_a_descriptor_at_the_limit_works() {
    let dir = TempDir::new("fdlimit");
    let src = dir.source("src", &pattern(5000, 1));
    let null = dev_null();
    for (s, d) in [(src.as_raw_fd(), 999_999), (999_999, null.as_raw_fd())] {
        let e = transfer_fds(s, d, &Options::default()).expect_err("never open");
        assert_eq!(
            (e.code(), e.errno()),
            (ErrorCode::Os, Some(libc::EBADF)),
            "{e}"
        );
        let e = transfer_fds(s, d, &opts(Method::ReadWrite)).expect_err("never open");
        assert_eq!(e.errno(), Some(libc::EBADF), "{e}");
    }
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is valid storage.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    let top = (rl.rlim_cur - 1) as i32;
    // SAFETY: dup2 onto a number this test owns for its duration.
    let hi = unsafe { libc::dup2(null.as_raw_fd(), top) };
    assert_eq!(hi, top, "dup2 to RLIMIT_NOFILE-1");
    // SAFETY: `hi` is a fresh descriptor owned here.
    let hi = unsafe { OwnedFd::from_raw_fd(hi) };
    for m in [
        Method::Auto,
        Method::ReadWrite,
        Method::Splice,
        Method::Sendfile,
    ] {
        seek(&src, 0);
        let r = transfer_fds(src.as_raw_fd(), hi.as_raw_fd(), &opts(m)).expect("at the limit");
        assert_eq!(r.bytes, 5000, "{m}");
    }
}

/// Defect 7: another thread swapping the destination number (dup2) during a counted Auto
/// transfer never splits it between two files: every byte goes to the one file the number
/// named when the call resolved it.
#[test]
fn a_number_swapped_during_a_transfer_never_gets_part_of_it() {
    let dir = TempDir::new("swap");
    let data = pattern(500_000, 7);
    let src = dir.source("src", &data);
    let victim = dir.sink("victim");
    deadline("swap", 60, move || {
        for _ in 0..150 {
            let (a, b) = unix_pair();
            set_nonblocking(&a, true);
            // SAFETY: dup of an open socket; the copy is owned by `num`.
            let num = unsafe { OwnedFd::from_raw_fd(libc::dup(a.as_raw_fd())) };
            let n = num.as_raw_fd();
            let drain = spawn_reader(b);
            let go = Arc::new(AtomicBool::new(true));
            let flip = {
                let (go, v, s) = (Arc::clone(&go), victim.as_raw_fd(), a.as_raw_fd());
                thread::spawn(move || {
                    while go.load(Ordering::Relaxed) {
                        // SAFETY: both numbers stay open while the flipper runs.
                        unsafe {
                            libc::dup2(v, n);
                            libc::dup2(s, n);
                        }
                    }
                })
            };
            let o = Options {
                offset: Some(0),
                count: Some(500_000),
                ..Options::default()
            };
            let r = transfer_fds(src.as_raw_fd(), n, &o);
            go.store(false, Ordering::Relaxed);
            flip.join().unwrap();
            drop(num);
            drop(a);
            let got = drain.join().unwrap().unwrap();
            let in_file = victim.metadata().unwrap().len();
            assert!(
                got.is_empty() || in_file == 0,
                "split: socket got {}, the other file {in_file} ({r:?})",
                got.len()
            );
            let moved = match &r {
                Ok(r) => r.bytes,
                Err(e) => e.report.bytes,
            };
            assert!(moved as usize == got.len() || moved == in_file, "{r:?}");
            victim.set_len(0).unwrap();
        }
    });
}

/// Defect 2: a transfer waiting on a peer that reads nothing sleeps in poll; it never spins.
#[test]
fn waits_on_a_stalled_peer_do_not_spin() {
    for m in [
        Method::Splice,
        Method::Sendfile,
        Method::Mmap,
        Method::MsgZerocopy,
    ] {
        let dir = TempDir::new("spin");
        let src = dir.source("src", &pattern(8 << 20, 2));
        let (c, s) = tcp_pair();
        small_buffers(&c);
        small_buffers(&s);
        let (cpu, wall, r) = deadline("stalled peer", 20, move || {
            let t0 = Instant::now();
            let c0 = thread_cpu();
            let o = Options {
                timeout: Some(Duration::from_millis(400)),
                ..opts(m)
            };
            let r = transfer(&src, &c, &o);
            (thread_cpu() - c0, t0.elapsed(), r)
        });
        let e = r.expect_err("the peer reads nothing");
        assert_eq!(e.code(), ErrorCode::TimedOut, "{m}: {e}");
        assert!(wall < Duration::from_secs(3), "{m}: took {wall:?}");
        assert!(cpu < wall / 4, "{m}: {cpu:?} of CPU in {wall:?}: a spin");
        drop(s);
    }
}

/// Defect 10: with nothing ever to wait on (`/dev/zero` -> `/dev/null`), the deadline is still
/// kept and the interrupt hook still heard.
#[test]
fn deadline_and_hook_are_kept_when_nothing_waits() {
    for m in [Method::Auto, Method::Splice, Method::ReadWrite] {
        let r = deadline("zero deadline", 20, move || {
            let t0 = Instant::now();
            let o = Options {
                timeout: Some(Duration::from_millis(300)),
                ..opts(m)
            };
            (transfer(dev_zero(), dev_null(), &o), t0.elapsed())
        });
        let e = r.0.expect_err("/dev/zero never ends");
        assert_eq!(e.code(), ErrorCode::TimedOut, "{m}: {e}");
        assert!(e.report.bytes > 0, "{m}");
        assert!(r.1 < Duration::from_secs(2), "{m}: {:?}", r.1);

        let stop = Arc::new(AtomicBool::new(false));
        let hook: InterruptHook = {
            let stop = Arc::clone(&stop);
            Arc::new(move || stop.load(Ordering::SeqCst))
        };
        let timer = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(200));
                stop.store(true, Ordering::SeqCst);
                Instant::now()
            })
        };
        let (r, ended) = deadline("zero hook", 20, move || {
            let o = Options {
                on_interrupt: Some(hook),
                ..opts(m)
            };
            (transfer(dev_zero(), dev_null(), &o), Instant::now())
        });
        let asked = timer.join().unwrap();
        let e = r.expect_err("stopped by the hook");
        assert_eq!(e.errno(), Some(libc::EINTR), "{m}: {e}");
        assert!(
            ended.duration_since(asked) < Duration::from_millis(500),
            "{m}"
        );
    }
}

/// Defect 9: the same file on both sides with overlapping ranges is refused by every method
/// (InvalidArgument), and the file is unchanged; ranges that do not overlap still copy.
#[test]
fn overlapping_ranges_of_one_file_are_refused() {
    let dir = TempDir::new("samefile");
    let data = pattern(64 << 10, 9);
    for m in Method::ALL {
        for (src_pos, dst_pos, count) in [(0, 100, None), (1000, 0, None), (0, 0, Some(10))] {
            drop(dir.source("f", &data));
            let src = std::fs::File::open(dir.join("f")).unwrap();
            let dst = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("f"))
                .unwrap();
            seek(&src, src_pos);
            seek(&dst, dst_pos);
            let o = Options {
                count,
                fallback: true,
                timeout: Some(Duration::from_secs(5)),
                ..opts(m)
            };
            let e = transfer(&src, &dst, &o).expect_err("overlap");
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "{m}: {e}");
            assert_eq!(dir.read("f"), data, "{m}: the file changed");
        }
        // An append-mode destination is its own end: `cat f >> f`.
        drop(dir.source("f", &data));
        let src = std::fs::File::open(dir.join("f")).unwrap();
        let app = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("f"))
            .unwrap();
        let e = transfer(&src, &app, &opts(m)).expect_err("append onto itself");
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{m}: {e}");
        // Disjoint ranges of one file are a plain copy.
        let src = std::fs::File::open(dir.join("f")).unwrap();
        let dst = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("f"))
            .unwrap();
        seek(&dst, 32 << 10);
        let o = Options {
            count: Some(32 << 10),
            fallback: true,
            ..opts(m)
        };
        if let Ok(r) = transfer(&src, &dst, &o) {
            assert_eq!(r.bytes, 32 << 10, "{m}");
            let f = dir.read("f");
            assert_eq!(f[32 << 10..], data[..32 << 10], "{m}");
        }
    }
}

/// Defect 8: a pipe or socket source into a destination that only takes aligned writes
/// (O_DIRECT) is refused before a byte is taken: everything is still in the socket.
#[test]
fn a_stream_source_into_an_o_direct_file_takes_nothing() {
    let dir = TempDir::new("odirect");
    let path = dir.join("out");
    let Ok(dst) = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
    else {
        eprintln!("skipped: the temp dir's file system has no O_DIRECT");
        return;
    };
    for m in [Method::Auto, Method::Splice, Method::ReadWrite] {
        let (a, b) = unix_pair();
        let data = pattern(100_000, 3);
        (&a).write_all(&data).unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        let o = Options {
            fallback: true,
            ..opts(m)
        };
        let e = transfer(&b, &dst, &o).expect_err("O_DIRECT");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m}: {e}");
        assert_eq!(e.report.undelivered, 0, "{m}");
        assert_eq!(read_all(&b).unwrap(), data, "{m}: bytes were taken");
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// Defect 3: MSG_ZEROCOPY returning early (timeout 0, a stalled peer) keeps nothing of the
/// caller's: when the caller closes its socket the peer sees EOF after exactly the bytes
/// reported, and the report says how many completions were still due.
#[test]
fn msg_zerocopy_returning_early_keeps_nothing_of_the_callers() {
    let dir = TempDir::new("zc-early");
    let data = pattern(8 << 20, 4);
    let src = dir.source("src", &data);
    let (c, s) = tcp_pair();
    small_buffers(&c);
    small_buffers(&s);
    set_nonblocking(&c, true);
    let o = Options {
        offset: Some(0),
        timeout: Some(Duration::ZERO),
        ..opts(Method::MsgZerocopy)
    };
    let e = transfer(&src, &c, &o).expect_err("a full socket with timeout 0");
    assert_eq!(e.code(), ErrorCode::WouldBlock, "{e}");
    let sent = e.report.bytes;
    assert!(sent > 0);
    drop(c);
    let got = deadline("EOF after close", 10, move || read_all(&s).unwrap());
    assert_eq!(got.len() as u64, sent);
    assert_eq!(got[..], data[..sent as usize]);
}

/// Defect 11: mmap and msg_zerocopy from a file truncated mid-transfer end exactly at the new
/// end, with OK, to TCP and to Unix sockets.
#[test]
fn a_truncated_source_ends_exactly_at_its_new_end() {
    let size = 16 << 20;
    let new_size: u64 = (4 << 20) + 100;
    for (m, unix) in [
        (Method::Mmap, false),
        (Method::MsgZerocopy, false),
        (Method::Mmap, true),
    ] {
        let dir = TempDir::new("truncated");
        let data = pattern(size, 11);
        let src = dir.source("src", &data);
        let (snd, rcv): (OwnedFd, OwnedFd) = if unix {
            let (a, b) = unix_pair();
            (a.into(), b.into())
        } else {
            let (a, b) = tcp_pair();
            (a.into(), b.into())
        };
        small_buffers(&snd);
        small_buffers(&rcv);
        let path = dir.join("src");
        let worker = thread::spawn(move || {
            let r = transfer(&src, &snd, &opts(m));
            drop(snd);
            r
        });
        thread::sleep(Duration::from_millis(300));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(new_size)
            .unwrap();
        let got = deadline("truncated", 30, move || read_all(as_file(rcv)).unwrap());
        let r = worker.join().unwrap();
        let r = r.unwrap_or_else(|e| panic!("{m} unix={unix}: {e}"));
        assert_eq!(got.len() as u64, new_size, "{m} unix={unix}");
        assert_eq!(r.bytes, new_size, "{m} unix={unix}");
        assert_eq!(got[..], data[..new_size as usize], "{m} unix={unix}");
    }
}

/// Defect 13: one TCP urgent byte neither ends a splice early (a false EOF) nor makes it spin;
/// the bytes after the mark arrive, without the urgent byte, as `read` would give them.
#[test]
fn splice_steps_over_a_tcp_urgent_byte() {
    let before = pattern(100_000, 5);
    let after = pattern(200_000, 6);
    let mut want = before.clone();
    want.extend_from_slice(&after);
    for (m, timeout) in [
        (Method::Auto, None),
        (Method::Splice, None),
        (Method::Splice, Some(Duration::from_secs(10))),
    ] {
        let dir = TempDir::new("oob");
        let (c, s) = tcp_pair();
        let (b, a) = (before.clone(), after.clone());
        let feeder = thread::spawn(move || relay_attacks::send_with_urgent_byte(c, &b, &a));
        let dst = dir.sink("out");
        let (r, cpu) = deadline("urgent byte", 20, move || {
            let c0 = thread_cpu();
            let o = Options { timeout, ..opts(m) };
            (transfer(&s, &dst, &o), thread_cpu() - c0)
        });
        feeder.join().unwrap();
        let r = r.unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(r.bytes as usize, want.len(), "{m}");
        assert_eq!(dir.read("out"), want, "{m}");
        assert!(cpu < Duration::from_secs(2), "{m}: {cpu:?} of CPU");
    }
}

/// Defect 13: the relay steps over an urgent byte too, in both directions of the pair.
#[test]
fn relay_steps_over_a_tcp_urgent_byte() {
    relay_attacks::urgent_byte();
}

/// Defect 13: a server that answers and then resets: the answer reaches the client through
/// the relay whatever the order of the relay's arguments, and the relay reports the error.
#[test]
fn relay_delivers_an_answer_sent_before_a_reset_in_both_orders() {
    for swap in [false, true] {
        relay_attacks::answer_then_reset(swap);
    }
}

/// Defect 13: a socket -> socket transfer resumed after each timeout ends with exactly the
/// source's bytes at the peer: nothing taken and left behind in an internal pipe.
#[test]
fn resuming_a_socket_to_socket_transfer_after_timeouts_leaves_no_hole() {
    for m in [Method::Auto, Method::ReadWrite] {
        let data = pattern(6 << 20, 31);
        let (feed, src) = unix_pair();
        let (dst, peer) = tcp_pair();
        small_buffers(&dst);
        small_buffers(&peer);
        let feeder = spawn_writer(feed, data.clone());
        // A slow reader: the transfer times out again and again.
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 32 << 10];
            loop {
                thread::sleep(Duration::from_millis(2));
                match (&peer).read(&mut buf) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let (total, timeouts) = deadline("resume", 120, move || {
            let (mut total, mut timeouts) = (0u64, 0);
            loop {
                let o = Options {
                    timeout: Some(Duration::from_millis(20)),
                    ..opts(m)
                };
                match transfer(&src, &dst, &o) {
                    Ok(r) => {
                        total += r.bytes;
                        break;
                    }
                    Err(e) if e.code() == ErrorCode::TimedOut => {
                        assert_eq!(e.report.undelivered, 0, "{m}: {e}");
                        total += e.report.bytes;
                        timeouts += 1;
                    }
                    Err(e) => panic!("{m}: {e}"),
                }
            }
            dst.shutdown(Shutdown::Write).unwrap();
            (total, timeouts)
        });
        feeder.join().unwrap().unwrap();
        let got = reader.join().unwrap();
        assert!(
            timeouts > 0,
            "{m}: the reader was too fast to test resuming"
        );
        assert_eq!(total as usize, data.len(), "{m}");
        assert_bytes(&format!("{m}"), &data, &got);
    }
}

/// Defect 13: a timeout larger than the clock can hold waits as long as it takes.
#[test]
fn a_huge_timeout_is_no_deadline() {
    let dir = TempDir::new("huge");
    let src = dir.source("src", &pattern(10_000, 1));
    let o = Options {
        timeout: Some(Duration::from_secs(u64::MAX)),
        ..Options::default()
    };
    let r = transfer(&src, dev_null(), &o).expect("huge timeout");
    assert_eq!(r.bytes, 10_000);
    let _ = src.as_fd();
}

/// Defect 13: a source that ends before the count does not leave its last chunk corked with
/// "more to follow" (MSG_MORE held it for the 200 ms cork timer): the peer has every byte
/// right after the call returns, from a file and from a socket.
#[test]
fn a_source_ending_before_the_count_leaves_nothing_corked() {
    let dir = TempDir::new("cork");
    // Less than a segment: with nothing else in flight, no ACK would push a corked tail.
    let data = pattern(1000, 41);
    for from_socket in [false, true] {
        let (c, s) = tcp_pair();
        let r = if from_socket {
            let (feed, src) = unix_pair();
            spawn_writer(feed, data.clone()).join().unwrap().unwrap();
            let o = Options {
                count: Some(1 << 20),
                ..opts(Method::Splice)
            };
            transfer(&src, &c, &o)
        } else {
            let src = dir.source("src", &data);
            let o = Options {
                count: Some(1 << 20),
                ..opts(Method::Splice)
            };
            transfer(&src, &c, &o)
        };
        assert_eq!(r.unwrap().bytes, 1000);
        // A corked tail would arrive only when the 200 ms cork timer fires.
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let mut got = vec![0u8; data.len()];
        let mut at = 0;
        while at < got.len() {
            match (&s).read(&mut got[at..]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) => panic!(
                    "socket={from_socket}: {at} of {} bytes, then {e}",
                    data.len()
                ),
            }
        }
        assert_eq!(got, data, "socket={from_socket}");
        drop(c);
    }
}

/// A peer that resets while the other side is idle (nothing left to send its way) ends the
/// relay: a socket that failed to read takes no more writes either.
#[test]
fn relay_ends_when_a_peer_resets_while_the_other_side_is_idle() {
    relay_attacks::reset_while_idle();
}

/// A server that never reads, and a deadline: the relay ends TimedOut and reports exactly
/// what reached the server.
#[test]
fn relay_deadline_with_a_stalled_peer_reports_what_arrived() {
    relay_attacks::deadline_with_a_stalled_peer();
}

/// Defect 8: bytes taken from a socket that a full disk refuses are counted, never lost
/// silently: delivered + undelivered + what is still in the socket is the whole stream.
/// (A 1 MiB tmpfs is mounted for it; skipped where mounting is not permitted.)
#[test]
fn a_full_disk_counts_the_bytes_it_refused() {
    let dir = TempDir::new("enospc");
    let mnt = dir.join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "zcopy-enospc"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a small tmpfs here");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        for m in [Method::Auto, Method::Splice, Method::ReadWrite] {
            let data = pattern(3 << 20, 51);
            let (feed, src) = unix_pair();
            let feeder = spawn_writer(feed, data.clone());
            let path = mnt.join("out");
            let dst = std::fs::File::create(&path).unwrap();
            let e = transfer(&src, &dst, &opts(m)).expect_err("the disk is full");
            assert_eq!(e.errno(), Some(libc::ENOSPC), "{m}: {e}");
            let rest = read_all(&src).unwrap();
            feeder.join().unwrap().unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len() as u64, e.report.bytes, "{m}");
            assert_eq!(on_disk[..], data[..on_disk.len()], "{m}");
            let accounted = e.report.bytes + e.report.undelivered + rest.len() as u64;
            assert_eq!(accounted, data.len() as u64, "{m}: {e}");
            assert_eq!(rest[..], data[data.len() - rest.len()..], "{m}");
            drop(dst);
            std::fs::remove_file(&path).unwrap();
        }
    });
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
