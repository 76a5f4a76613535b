//! The adversarial suite (issue 10): every fd pair x method, at sizes on both sides of the
//! engine's size thresholds, against peers that read normally, slowly, not at all, close early
//! or reset, with no deadline, a zero timeout (resumed until done) and a short deadline
//! (resumed), in this process, in forked children of a parent that already used the engine,
//! and from several threads at once. For every case it checks:
//! - the peer got a prefix of the source's bytes, once, in order, and nothing else; with a peer
//!   that keeps its connection, exactly what the reports add up to;
//! - nothing taken from a stream source vanished: delivered + reported undelivered + what is
//!   still in the source is the whole stream;
//! - a file source's position is its start plus the bytes reported;
//! - each call returned within its deadline plus a margin;
//! - no descriptor is left open by the calls (after the pipe pool is warm);
//! - CPU time while waiting on a peer that reads nothing is a small part of the wall time;
//! - a signal whose hook says stop ends a blocked call within 0.5 s, in every method.
//!
//! A custom harness (`harness = false`): cases run one after another, so fork() is safe and
//! descriptor counts are exact. `ZCOPY_SOAK_SECONDS=N` runs random cases for N seconds instead
//! (`make soak`), printing the seed of any failure; `ZCOPY_SOAK_SEED=S` replays one case.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use zcopy_core::{ErrorCode, InterruptHook, Method, Options, transfer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Normal,
    Slow,
    Stall,
    Close,
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// No deadline; a stalled peer is ended by a signal whose hook says stop.
    Forever,
    /// Timeout 0, resumed until done.
    Zero,
    /// A 30 ms deadline, resumed until done.
    Short,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    src: Src,
    dst: Dst,
    method: Method,
    size: usize,
    counted: bool,
    peer: Peer,
    wait: Wait,
    seed: u64,
}

const SRCS: [Src; 4] = [Src::File, Src::Pipe, Src::Tcp, Src::Unix];
const DSTS: [Dst; 4] = [Dst::File, Dst::Pipe, Dst::Tcp, Dst::Unix];
/// Both sides of: the read/write buffer (128 KiB), the zerocopy chunk (512 KiB), the pipe and
/// mmap chunk (1 MiB), the fast path / splice-first threshold (4 MiB).
const SIZES: [usize; 9] = [
    0,
    1,
    4095,
    (128 << 10) + 1,
    (512 << 10) - 1,
    (1 << 20) + 1,
    (4 << 20) - 1,
    4 << 20,
    (4 << 20) + 1,
];
const PEERS: [Peer; 5] = [
    Peer::Normal,
    Peer::Slow,
    Peer::Stall,
    Peer::Close,
    Peer::Reset,
];
const WAITS: [Wait; 3] = [Wait::Forever, Wait::Zero, Wait::Short];
/// How long a resumed transfer to a stalled peer keeps trying.
const GIVE_UP: Duration = Duration::from_millis(300);
/// Slack for a call's return past its deadline on a loaded 2-core machine (debug build).
const MARGIN: Duration = Duration::from_millis(1500);

/// Descriptors open in this process, less the engine's idle pooled pipes.
fn open_fds() -> usize {
    let all = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    all - 2 * zcopy_core::pooled_pipes()
}

/// Whether the method must move bytes for the pair (the matrix tests check the rest). With a
/// deadline, splice from a socket to a socket refuses (Unsupported, nothing taken): its pipe
/// could hold bytes it can neither deliver nor give back.
fn usable(src: Src, dst: Dst, m: Method, wait: Wait) -> bool {
    let socket = |d: Dst| matches!(d, Dst::Tcp | Dst::Unix);
    let holds = matches!(src, Src::Tcp | Src::Unix) && socket(dst) && m == Method::Splice;
    applies(src, dst, m) == Expect::Must && !(holds && wait != Wait::Forever)
}

/// The engine's side of a stream destination and the peer's behaviour.
struct PeerEnd {
    engine: File,
    release: Arc<AtomicBool>,
    peer: JoinHandle<Vec<u8>>,
}

fn small_send_buffer(fd: impl AsFd) {
    let v: libc::c_int = 32 * 1024;
    // SAFETY: `v` is a valid int for the call.
    unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const v).cast(),
            4,
        );
    }
}

/// Reads as `peer` does; returns what it read.
fn act(peer: Peer, mut r: File, release: Arc<AtomicBool>, limit: usize, tcp: bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    match peer {
        Peer::Normal => got = read_all(&r).unwrap_or_default(),
        Peer::Slow => loop {
            thread::sleep(Duration::from_millis(1));
            match r.read(&mut buf[..16 << 10]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        },
        Peer::Stall => {
            while !release.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(5));
            }
            got = read_all(&r).unwrap_or_default();
        }
        Peer::Close | Peer::Reset => {
            while got.len() < limit {
                let want = (limit - got.len()).min(buf.len());
                match r.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if peer == Peer::Reset && tcp {
                linger_zero(&r);
            }
        }
    }
    got
}

fn peer_end(kind: Dst, peer: Peer, size: usize) -> PeerEnd {
    let (engine, theirs, tcp) = match kind {
        Dst::Pipe => {
            let (r, w) = pipe();
            (w, r, false)
        }
        Dst::Tcp => {
            let (c, s): (TcpStream, TcpStream) = tcp_pair();
            small_buffers(&c);
            small_buffers(&s);
            (as_file(c), as_file(s), true)
        }
        _ => {
            let (a, b): (UnixStream, UnixStream) = unix_pair();
            small_send_buffer(&a);
            (as_file(a), as_file(b), false)
        }
    };
    let release = Arc::new(AtomicBool::new(false));
    let rel = Arc::clone(&release);
    let limit = size / 3;
    let peer = thread::spawn(move || act(peer, theirs, rel, limit, tcp));
    PeerEnd {
        engine,
        release,
        peer,
    }
}

/// Signals the transferring thread until it is done, once `stop` is set. Its hook says "stop"
/// once per raised signal, as Python's does (the first check raises KeyboardInterrupt; later
/// checks find nothing pending).
struct Poker {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    asked: Arc<std::sync::Mutex<Option<Instant>>>,
    handle: Option<JoinHandle<()>>,
}

impl Poker {
    fn start(target: libc::pthread_t, after: Duration) -> Poker {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(std::sync::Mutex::new(None));
        let (s, d, a) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&asked));
        let handle = thread::spawn(move || {
            let t0 = Instant::now();
            while !d.load(Ordering::SeqCst) {
                if t0.elapsed() >= after && a.lock().unwrap().is_none() {
                    *a.lock().unwrap() = Some(Instant::now());
                    s.store(true, Ordering::SeqCst);
                    // SAFETY: the target thread is alive until `done` is set.
                    unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        Poker {
            stop,
            done,
            asked,
            handle: Some(handle),
        }
    }

    fn hook(&self) -> InterruptHook {
        let stop = Arc::clone(&self.stop);
        Arc::new(move || stop.swap(false, Ordering::SeqCst))
    }

    fn finish(mut self) -> Option<Instant> {
        self.done.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        *self.asked.lock().unwrap()
    }
}

/// Runs one case on the calling thread; `Err` describes the broken invariant.
fn run(c: Case, check_fds: bool) -> Result<(), String> {
    let dir = TempDir::new("adv");
    let data = pattern(c.size, c.seed);
    let src = SrcEnd::new(c.src, &data, &dir, "src");
    let stream_dst = c.dst != Dst::File;
    let mut peer_end = stream_dst.then(|| peer_end(c.dst, c.peer, c.size));
    let dst_file = (!stream_dst).then(|| dir.sink("dst"));
    let dst: &File = match (&peer_end, &dst_file) {
        (Some(p), _) => &p.engine,
        (_, Some(f)) => f,
        _ => unreachable!(),
    };
    // Ends a blocked no-deadline call to a stalled peer (and checks the 0.5 s promise).
    let poker = (c.wait == Wait::Forever && c.peer == Peer::Stall && stream_dst)
        .then(|| Poker::start(current_thread(), GIVE_UP));
    let timeout = match c.wait {
        Wait::Forever => None,
        Wait::Zero => Some(Duration::ZERO),
        Wait::Short => Some(Duration::from_millis(30)),
    };
    let fds_before = open_fds();
    let (t0, cpu0) = (Instant::now(), thread_cpu());
    let (mut total, mut undelivered, mut last_err) = (0u64, 0u64, None);
    let mut calls = 0;
    loop {
        calls += 1;
        let opts = Options {
            method: c.method,
            count: c.counted.then(|| c.size as u64 - total),
            timeout,
            on_interrupt: poker.as_ref().map(Poker::hook),
            ..Options::default()
        };
        let t = Instant::now();
        let r = transfer(&src.fd, dst, &opts);
        let took = t.elapsed();
        if took > timeout.unwrap_or(Duration::MAX).saturating_add(MARGIN) {
            return Err(format!(
                "call {calls} took {took:?} with timeout {timeout:?}"
            ));
        }
        match r {
            Ok(rep) => {
                total += rep.bytes;
                break;
            }
            Err(e) if matches!(e.code(), ErrorCode::WouldBlock | ErrorCode::TimedOut) => {
                total += e.report.bytes;
                undelivered += e.report.undelivered;
                if e.report.undelivered > 0 {
                    return Err(format!("a resumable stop lost bytes: {e}"));
                }
                if t0.elapsed() > GIVE_UP {
                    last_err = Some(e);
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                total += e.report.bytes;
                undelivered += e.report.undelivered;
                last_err = Some(e);
                break;
            }
        }
    }
    let (wall, cpu) = (t0.elapsed(), thread_cpu() - cpu0);
    // Test threads may close their ends meanwhile; the engine must not add any.
    if check_fds && open_fds() > fds_before {
        return Err(format!(
            "descriptors open: {fds_before} before, {} after",
            open_fds()
        ));
    }
    if let Some(p) = poker {
        let ended = Instant::now();
        if let Some(asked) = p.finish() {
            let late = ended.duration_since(asked);
            if late > Duration::from_millis(500) {
                return Err(format!("the interrupt was acted on after {late:?}"));
            }
            match &last_err {
                Some(e) if e.errno() == Some(libc::EINTR) => {}
                other => return Err(format!("a stopped call must say EINTR: {other:?}")),
            }
        }
    }
    // Only the engine's own waits are judged: with timeout 0 the engine never waits, and the
    // CPU is this loop's own polling (its 1 ms sleeps; under ASan each resume costs ~0.3 ms).
    let engine_waited = c.wait != Wait::Zero;
    if engine_waited
        && c.peer == Peer::Stall
        && stream_dst
        && wall > Duration::from_millis(200)
        && cpu > wall / 4
    {
        return Err(format!(
            "{cpu:?} of CPU in {wall:?} waiting on a stalled peer"
        ));
    }
    // What arrived.
    let got = match peer_end.take() {
        Some(p) => {
            p.release.store(true, Ordering::SeqCst);
            drop(p.engine);
            p.peer.join().map_err(|_| "peer panicked")?
        }
        None => dir.read("dst"),
    };
    if got[..] != data[..got.len().min(data.len())] || got.len() > data.len() {
        return Err(format!(
            "the peer got {} bytes that are not a prefix of the source",
            got.len()
        ));
    }
    let keeps_connection = matches!(c.peer, Peer::Normal | Peer::Slow | Peer::Stall);
    if (keeps_connection || !stream_dst) && got.len() as u64 != total {
        return Err(format!(
            "reports add up to {total}, the peer got {} ({last_err:?})",
            got.len()
        ));
    }
    if keeps_connection && last_err.is_none() && total as usize != data.len() {
        return Err(format!("done after {total} of {} bytes", data.len()));
    }
    match c.src {
        Src::File => {
            let pos = position(&src.fd);
            if pos != total {
                return Err(format!("source position {pos}, reported {total}"));
            }
        }
        _ => {
            // Nothing vanished: delivered + undelivered + still in the source = the stream.
            let rest = src.rest().unwrap_or_default();
            let accounted = total + undelivered + rest.len() as u64;
            if accounted != data.len() as u64 && keeps_connection {
                return Err(format!(
                    "{total} delivered + {undelivered} undelivered + {} left = {accounted} of {}",
                    rest.len(),
                    data.len()
                ));
            }
            if keeps_connection && rest[..] != data[data.len() - rest.len()..] {
                return Err("the source's rest is not the stream's tail".into());
            }
        }
    }
    Ok(())
}

/// The calling thread's pthread handle, for signals aimed at it.
fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

/// The deterministic matrix: every pair x usable method x peer x wait, sizes rotating so that
/// each pair and method meets every size.
fn matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut k = 0usize;
    for src in SRCS {
        for dst in DSTS {
            for method in Method::ALL {
                let peers: &[Peer] = if dst == Dst::File {
                    &[Peer::Normal]
                } else {
                    &PEERS
                };
                for &peer in peers {
                    for wait in WAITS.into_iter().filter(|w| usable(src, dst, method, *w)) {
                        let size = SIZES[k % SIZES.len()];
                        k += 1;
                        cases.push(Case {
                            src,
                            dst,
                            method,
                            size,
                            counted: src == Src::File && k % 2 == 0,
                            peer,
                            wait,
                            seed: k as u64,
                        });
                    }
                }
            }
        }
    }
    cases
}

/// A random case from a seed (soak).
fn random_case(seed: u64) -> Case {
    let mut x = seed;
    let mut next = move |n: usize| {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    };
    loop {
        let src = SRCS[next(SRCS.len())];
        let dst = DSTS[next(DSTS.len())];
        let method = Method::ALL[next(Method::ALL.len())];
        let wait = WAITS[next(WAITS.len())];
        if !usable(src, dst, method, wait) {
            continue;
        }
        let peer = if dst == Dst::File {
            Peer::Normal
        } else {
            PEERS[next(PEERS.len())]
        };
        let size = match next(3) {
            0 => SIZES[next(SIZES.len())],
            1 => next(1 << 16),
            _ => next(6 << 20),
        };
        return Case {
            src,
            dst,
            method,
            size,
            counted: src == Src::File && next(2) == 0,
            peer,
            wait,
            seed,
        };
    }
}

/// Runs `cases` in a forked child (whose parent used the engine); returns the failures.
fn in_child(cases: &[Case]) -> Vec<String> {
    // SAFETY: this harness runs one thing at a time: no other thread holds a lock in the
    // engine or the allocator; the child runs the cases and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let failed = cases
            .iter()
            .filter(|c| {
                run(**c, true)
                    .map_err(|e| eprintln!("fork {c:?}: {e}"))
                    .is_err()
            })
            .count();
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(i32::from(failed > 0)) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Vec::new()
    } else {
        vec![format!("forked child: status {status}")]
    }
}

/// Several threads run cases at once (descriptor counts are not checked there).
fn threads(cases: &[Case]) -> Vec<String> {
    let handles: Vec<_> = cases
        .chunks(cases.len().div_ceil(4).max(1))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            thread::spawn(move || {
                chunk
                    .iter()
                    .filter_map(|c| run(*c, false).err().map(|e| format!("thread {c:?}: {e}")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn warm_pool() {
    // Two pipes in the pool (a relay's worth): later calls reuse them, so descriptor counts
    // before and after a call compare exactly.
    let dir = TempDir::new("warm");
    let src = dir.source("w", &pattern(10, 1));
    let (a, b) = tcp_pair();
    let (c, d) = tcp_pair();
    let h = thread::spawn(move || {
        let o = Options {
            method: Method::Splice,
            ..Options::default()
        };
        let _ = transfer(&src, &a, &o);
    });
    let o = Options {
        method: Method::Splice,
        count: Some(0),
        ..Options::default()
    };
    let _ = transfer(&c, &d, &o);
    h.join().unwrap();
    drop((b, c, d));
}

fn main() {
    install_sigusr1_handler();
    warm_pool();
    let soak = std::env::var("ZCOPY_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let replay = std::env::var("ZCOPY_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut report = |what: String, r: Result<(), String>| match r {
        Ok(()) => passed += 1,
        Err(e) => {
            failed += 1;
            println!("FAILED {what}: {e}");
        }
    };
    if let Some(seed) = replay {
        let c = random_case(seed);
        report(format!("seed {seed} {c:?}"), run(c, true));
    } else if let Some(secs) = soak {
        let start = std::env::var("ZCOPY_SOAK_FIRST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs() << 20)
            });
        let t0 = Instant::now();
        let mut seed = start;
        while t0.elapsed() < Duration::from_secs(secs) {
            let c = random_case(seed);
            report(format!("seed {seed} {c:?}"), run(c, true));
            if seed % 97 == 0 {
                for e in in_child(&[random_case(seed ^ 1), random_case(seed ^ 2)]) {
                    report(format!("seed {seed} (fork)"), Err(e));
                }
            }
            seed += 1;
        }
        println!("soak: seeds {start}..{seed} in {:?}", t0.elapsed());
    } else {
        let cases = matrix();
        for c in &cases {
            report(format!("{c:?}"), run(*c, true));
        }
        // A sample again in a forked child, and from four threads at once.
        let sample: Vec<Case> = cases.iter().step_by(7).copied().collect();
        let forked = in_child(&sample);
        report(
            "forked child".into(),
            forked.first().cloned().map_or(Ok(()), Err),
        );
        let errs = threads(&sample);
        report("threads".into(), errs.first().cloned().map_or(Ok(()), Err));
        for e in errs.iter().skip(1) {
            println!("  {e}");
        }
    }
    println!("adversarial: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
