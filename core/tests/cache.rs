//! Page-cache policies on a real file system (the temp dir; ext4 here): Keep leaves the
//! streamed file cached, DropBehind and Direct leave it (almost) non-resident, measured with
//! mincore; bytes are exact for every policy, offsets, counts and positions hold, and Direct
//! falls back (and says so) where O_DIRECT is refused (procfs).

mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use common::*;
use zcopy_core::{Cache, ErrorCode, Method, Options, Part, PartsOptions, send_parts, transfer};

const SIZE: usize = 64 << 20;
/// What may stay resident after drop-behind: the engine's lag (8 MiB), one step (8 MiB) and
/// what the socket still held at the end.
const LEFT_AT_MOST: usize = 24 << 20;

/// Bytes of `f` in the page cache (mincore over a mapping that is never touched).
fn resident(f: &File) -> usize {
    let len = f.metadata().expect("metadata").len() as usize;
    let page = 4096;
    // SAFETY: a fresh read-only shared mapping of the whole file, only passed to mincore and
    // unmapped before returning; `vec` has one byte per page.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        let mut vec = vec![0u8; len.div_ceil(page)];
        assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0, "mincore");
        libc::munmap(p, len);
        vec.iter().filter(|b| **b & 1 == 1).count() * page
    }
}

/// Whether the directory is on tmpfs, whose pages are the file itself and are never dropped.
fn on_tmpfs(dir: &Path) -> bool {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: valid path and out-pointer.
    unsafe {
        assert_eq!(libc::statfs(c.as_ptr(), st.as_mut_ptr()), 0);
        st.assume_init().f_type == libc::TMPFS_MAGIC
    }
}

/// A file of SIZE bytes, written back to disk and then read, so it is fully cached and clean.
fn cached_file(dir: &TempDir, data: &[u8]) -> File {
    let f = cached_file_of(dir, data);
    assert!(
        resident(&f) >= SIZE * 9 / 10,
        "the file is cached before the test"
    );
    f
}

fn send_to_tcp(f: &File, opts: &Options) -> (zcopy_core::Report, Vec<u8>) {
    let (tx, rx) = tcp_pair();
    let reader = spawn_reader(rx);
    let rep = transfer(f, &tx, opts).expect("transfer");
    drop(tx);
    (rep, reader.join().expect("reader").expect("read"))
}

#[test]
fn keep_leaves_the_file_cached_and_drop_behind_and_direct_do_not() {
    let dir = TempDir::new("cache-policy");
    if on_tmpfs(dir.path()) {
        eprintln!("skipped: the temp dir is on tmpfs, whose pages cannot be dropped");
        return;
    }
    let data = pattern(SIZE, 1);
    for (cache, method) in [
        (Cache::Keep, Method::ReadWrite),
        (Cache::DropBehind, Method::Splice),
        (Cache::Direct, Method::ReadWrite),
    ] {
        let f = cached_file(&dir, &data);
        let opts = Options {
            cache,
            ..Options::default()
        };
        let (rep, got) = send_to_tcp(&f, &opts);
        assert_bytes(&format!("{cache:?}"), &data, &got);
        assert_eq!(rep.bytes, SIZE as u64);
        assert_eq!(
            position(&f),
            SIZE as u64,
            "{cache:?}: position at start + bytes"
        );
        let left = resident(&f);
        match cache {
            Cache::Keep => assert!(left >= SIZE * 9 / 10, "Keep left {left} of {SIZE} cached"),
            _ => assert!(left <= LEFT_AT_MOST, "{cache:?} left {left} bytes resident"),
        }
        if cache != Cache::Keep {
            assert_eq!(rep.method, method, "{cache:?}: {rep:?}");
            assert!(rep.fallbacks.is_empty(), "{cache:?}: {:?}", rep.fallbacks);
        }
    }
}

#[test]
fn direct_reads_unaligned_ranges_exactly_and_keeps_positions() {
    let dir = TempDir::new("cache-direct");
    let data = pattern(5_000_000, 2);
    let f = dir.source("src", &data);
    for (offset, count) in [
        (Some(1000u64), Some(3_000_001u64)),
        (Some(4096), None),
        (None, Some(12_345)),
    ] {
        let out = dir.sink("out");
        seek(&f, 777);
        let opts = Options {
            cache: Cache::Direct,
            offset,
            count,
            ..Options::default()
        };
        let rep = transfer(&f, &out, &opts).expect("direct transfer");
        let start = offset.unwrap_or(777) as usize;
        let end = count.map_or(data.len(), |c| (start + c as usize).min(data.len()));
        assert_bytes("direct", &data[start..end], &dir.read("out"));
        assert_eq!(rep.bytes as usize, end - start);
        let want_pos = if offset.is_some() { 777 } else { end as u64 };
        assert_eq!(position(&f), want_pos, "position");
    }
}

#[test]
fn direct_falls_back_where_o_direct_is_refused_and_says_so() {
    // procfs refuses O_DIRECT (tmpfs accepts it since Linux 6.6); this process's command line
    // does not change while it runs.
    let want = std::fs::read("/proc/self/cmdline").expect("cmdline");
    let f = File::open("/proc/self/cmdline").expect("open");
    let dir = TempDir::new("cache-fallback");
    let out = dir.sink("out");
    let opts = Options {
        cache: Cache::Direct,
        ..Options::default()
    };
    let rep = transfer(&f, &out, &opts).expect("transfer");
    assert_bytes("cmdline", &want, &dir.read("out"));
    assert!(
        rep.fallbacks
            .iter()
            .any(|fb| fb.reason.contains("O_DIRECT")),
        "the report says O_DIRECT was refused: {:?}",
        rep.fallbacks
    );
}

#[test]
fn direct_with_a_page_cache_method_is_refused() {
    let dir = TempDir::new("cache-refuse");
    let f = dir.source("src", &pattern(10_000, 4));
    let out = dir.sink("out");
    for m in [
        Method::Sendfile,
        Method::Splice,
        Method::Mmap,
        Method::CopyFileRange,
    ] {
        let opts = Options {
            cache: Cache::Direct,
            method: m,
            ..Options::default()
        };
        let e = transfer(&f, &out, &opts).expect_err("refused");
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{m}: {e}");
        assert_eq!(e.bytes(), 0);
    }
    assert!(dir.read("out").is_empty());
}

#[test]
fn send_parts_file_ranges_drop_behind() {
    let dir = TempDir::new("cache-parts");
    if on_tmpfs(dir.path()) {
        eprintln!("skipped: the temp dir is on tmpfs");
        return;
    }
    let data = pattern(SIZE, 5);
    let f = cached_file(&dir, &data);
    let (tx, rx) = tcp_pair();
    let reader = spawn_reader(rx);
    let parts = [
        Part::Bytes(b"HEAD\r\n\r\n"),
        Part::File {
            fd: f.as_fd(),
            offset: 0,
            len: SIZE as u64,
        },
    ];
    let opts = PartsOptions {
        cache: Cache::DropBehind,
        ..PartsOptions::default()
    };
    send_parts(&tx, &parts, &opts).expect("send_parts");
    drop(tx);
    let got = reader.join().expect("reader").expect("read");
    assert_eq!(&got[..8], b"HEAD\r\n\r\n");
    assert_bytes("body", &data, &got[8..]);
    let left = resident(&f);
    assert!(
        left <= LEFT_AT_MOST,
        "drop-behind through send_parts left {left} bytes"
    );
}

/// Bytes this thread has had read from storage so far (`read_bytes` of /proc/thread-self/io):
/// O_DIRECT and page-cache misses count, reads served by the cache do not.
fn disk_reads() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("read_bytes")
}

/// Drops the (clean) file from the page cache. Pages a closed socket still referenced are
/// freed a moment later (deferred skb frees), so the advice is repeated until it took.
fn make_cold(f: &File) {
    f.sync_all().expect("fsync");
    let mut left = usize::MAX;
    for _ in 0..100 {
        // SAFETY: a valid descriptor; the advice only drops clean cached pages.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
        left = resident(f);
        if left < (1 << 20) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the file stays cached: {left} bytes");
}

#[test]
fn direct_sends_a_hot_file_from_the_cache_and_reads_a_cold_one_from_the_disk() {
    let dir = TempDir::new("cache-direct-hot");
    if on_tmpfs(dir.path()) {
        eprintln!("skipped: the temp dir is on tmpfs, which has no disk to read");
        return;
    }
    let data = pattern(SIZE, 6);
    // An unaligned start and count, so the chunks straddle pages both ways.
    let (start, count) = (12_345usize, SIZE - 100_000);
    let opts = Options {
        cache: Cache::Direct,
        offset: Some(start as u64),
        count: Some(count as u64),
        ..Options::default()
    };
    let expect = &data[start..start + count];

    let f = cached_file(&dir, &data);
    let before = disk_reads();
    let (rep, got) = send_to_tcp(&f, &opts);
    let hot_reads = disk_reads() - before;
    assert_bytes("hot", expect, &got);
    assert_eq!(rep.bytes, count as u64);
    assert!(
        hot_reads < (SIZE / 8) as u64,
        "a cached file was read again from the disk: {hot_reads} bytes"
    );
    assert!(resident(&f) <= LEFT_AT_MOST, "hot: drop-behind released it");

    make_cold(&f);
    let before = disk_reads();
    let (rep, got) = send_to_tcp(&f, &opts);
    let cold_reads = disk_reads() - before;
    assert_bytes("cold", expect, &got);
    assert_eq!(rep.bytes, count as u64);
    assert!(
        cold_reads >= count as u64,
        "a cold file comes from the disk: {cold_reads} bytes read for {count}"
    );
    assert!(
        resident(&f) < (1 << 20),
        "O_DIRECT reads left {} bytes of a cold file cached",
        resident(&f)
    );
    assert!(rep.fallbacks.is_empty(), "{:?}", rep.fallbacks);
}

/// A peer that stops reading, with a deadline: every policy ends TimedOut with exactly the
/// bytes the peer then finds, and a second call from there completes the file byte-exact.
#[test]
fn every_policy_resumes_byte_exact_after_a_deadline_on_a_stalled_peer() {
    let dir = TempDir::new("cache-stall");
    let data = pattern(8 << 20, 7);
    for cache in [Cache::Keep, Cache::DropBehind, Cache::Direct] {
        let f = cached_file_of(&dir, &data);
        let (tx, rx) = tcp_pair();
        small_buffers(&tx);
        small_buffers(&rx);
        let first = Options {
            cache,
            offset: Some(0),
            timeout: Some(std::time::Duration::from_millis(200)),
            ..Options::default()
        };
        let e = deadline("stalled transfer", 20, {
            let (f, tx) = (f.try_clone().expect("dup"), tx.try_clone().expect("dup"));
            move || transfer(&f, &tx, &first).expect_err("the peer never reads")
        });
        assert_eq!(e.code(), ErrorCode::TimedOut, "{cache:?}: {e}");
        let sent = e.bytes();
        assert!(sent > 0 && sent < data.len() as u64, "{cache:?}: {sent}");
        let reader = spawn_reader(rx);
        let rest = Options {
            cache,
            offset: Some(sent),
            ..Options::default()
        };
        let rep = transfer(&f, &tx, &rest).expect("resumed");
        drop(tx);
        let got = reader.join().expect("reader").expect("read");
        assert_eq!(sent + rep.bytes, data.len() as u64, "{cache:?}");
        assert_bytes(&format!("{cache:?} resumed"), &data, &got);
    }
}

/// The file shrinks while it is being sent to a slow reader: every policy stops at the new
/// end (or earlier, with what was already on its way), and the count it reports is exactly
/// what the reader got, a prefix of the file.
#[test]
fn every_policy_counts_exactly_when_the_file_shrinks_mid_send() {
    let dir = TempDir::new("cache-shrink");
    let data = pattern(32 << 20, 8);
    for cache in [Cache::Keep, Cache::DropBehind, Cache::Direct] {
        let f = cached_file_of(&dir, &data);
        let (tx, mut rx) = tcp_pair();
        small_buffers(&tx);
        small_buffers(&rx);
        let path = dir.join("src");
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 4 << 20];
            rx.read_exact(&mut got).expect("first 4 MiB");
            File::options()
                .write(true)
                .open(path)
                .expect("open to truncate")
                .set_len(6 << 20)
                .expect("truncate");
            rx.read_to_end(&mut got).expect("rest");
            got
        });
        let opts = Options {
            cache,
            ..Options::default()
        };
        let rep = deadline("send of a shrinking file", 30, {
            let (f, tx) = (f.try_clone().expect("dup"), tx.try_clone().expect("dup"));
            move || transfer(&f, &tx, &opts)
        });
        drop(tx);
        let got = reader.join().expect("reader");
        let rep = rep.unwrap_or_else(|e| panic!("{cache:?}: {e}"));
        assert_eq!(
            rep.bytes,
            got.len() as u64,
            "{cache:?}: reported vs received"
        );
        assert!(got.len() >= 4 << 20, "{cache:?}: {}", got.len());
        assert_bytes(&format!("{cache:?} prefix"), &data[..got.len()], &got);
    }
}

/// A file of `data`, written back and cached where the file system can (tmpfs always is).
fn cached_file_of(dir: &TempDir, data: &[u8]) -> File {
    let f = dir.source("src", data);
    f.sync_all().expect("fsync");
    let mut sink = Vec::with_capacity(data.len());
    File::open(dir.join("src"))
        .expect("open")
        .read_to_end(&mut sink)
        .expect("read");
    f
}
