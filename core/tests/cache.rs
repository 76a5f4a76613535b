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
    let f = dir.source("src", data);
    f.sync_all().expect("fsync");
    let mut sink = Vec::with_capacity(data.len());
    File::open(dir.join("src"))
        .expect("open")
        .read_to_end(&mut sink)
        .expect("read");
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
