//! The semantics every method shares (DESIGN.md): offsets and counts, source and destination
//! positions, O_APPEND, Unsupported consuming nothing, procfs files, /dev/zero, a source
//! truncated during the transfer.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use common::*;
use zcopy_core::{ErrorCode, Method, Options, transfer};

/// The methods that can move file -> stream socket.
const FILE_TO_SOCKET: [Method; 5] = [
    Method::Auto,
    Method::ReadWrite,
    Method::Mmap,
    Method::Sendfile,
    Method::Splice,
];

const SIZE: usize = 10_000;
const OFFSETS: [u64; 10] = [
    0,
    1,
    4095,
    4096,
    5000,
    9999,
    10_000,
    10_001,
    1 << 40,
    i64::MAX as u64,
];

fn counts_for(left: u64) -> Vec<Option<u64>> {
    let mut c = vec![
        None,
        Some(0),
        Some(1),
        Some(100),
        Some(left),
        Some(left + 1),
        Some(u64::MAX),
    ];
    if left > 1 {
        c.push(Some(left - 1));
    }
    c
}

fn window(data: &[u8], start: u64, count: Option<u64>) -> &[u8] {
    let start = start.min(data.len() as u64) as usize;
    let end = match count {
        Some(c) => (start as u64).saturating_add(c).min(data.len() as u64) as usize,
        None => data.len(),
    };
    &data[start..end]
}

#[test]
fn offsets_and_counts_file_to_file_leave_the_source_position_alone() {
    let dir = TempDir::new("offsets-ff");
    let data = pattern(SIZE, 1);
    let src = dir.source("src", &data);
    let mut failures = Vec::new();
    for m in FILE_TO_FILE {
        for off in OFFSETS {
            for count in counts_for((SIZE as u64).saturating_sub(off)) {
                seek(&src, 777);
                let dst = dir.sink("dst");
                let opts = Options {
                    method: m,
                    offset: Some(off),
                    count,
                    ..Options::default()
                };
                let want = window(&data, off, count);
                let what = format!("{m} offset {off} count {count:?}");
                match transfer(&src, &dst, &opts) {
                    Ok(r) => {
                        if r.bytes != want.len() as u64 {
                            failures.push(format!("{what}: bytes {} != {}", r.bytes, want.len()));
                        }
                        if let Err(e) = check_bytes(&what, want, &dir.read("dst")) {
                            failures.push(e);
                        }
                        if position(&dst) != want.len() as u64 {
                            failures.push(format!(
                                "{what}: destination position {} != {}",
                                position(&dst),
                                want.len()
                            ));
                        }
                    }
                    Err(e) => {
                        failures.push(format!("{what}: {e} [{:?} {:?}]", e.code(), e.errno()))
                    }
                }
                if position(&src) != 777 {
                    failures.push(format!(
                        "{what}: offset given, but the source position moved to {}",
                        position(&src)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn offsets_and_counts_file_to_socket() {
    let dir = TempDir::new("offsets-fs");
    let data = pattern(SIZE, 2);
    let src = dir.source("src", &data);
    let mut failures = Vec::new();
    let mut run = |m: Method, off: u64, count: Option<u64>, tcp: bool| {
        let (a, reader) = if tcp {
            let (c, s) = tcp_pair();
            (as_file(c), spawn_reader(s))
        } else {
            let (a, b) = unix_pair();
            (as_file(a), spawn_reader(b))
        };
        let opts = Options {
            method: m,
            offset: Some(off),
            count,
            ..Options::default()
        };
        let want = window(&data, off, count);
        let what = format!("{m} offset {off} count {count:?}");
        let r = transfer(&src, &a, &opts);
        drop(a);
        let got = reader.join().unwrap().unwrap();
        match r {
            Ok(r) if r.bytes == want.len() as u64 => {
                if let Err(e) = check_bytes(&what, want, &got) {
                    failures.push(e);
                }
            }
            Ok(r) => failures.push(format!("{what}: bytes {} != {}", r.bytes, want.len())),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
        if position(&src) != 0 {
            failures.push(format!(
                "{what}: source position moved to {}",
                position(&src)
            ));
        }
    };
    for m in FILE_TO_SOCKET {
        for off in OFFSETS {
            for count in counts_for((SIZE as u64).saturating_sub(off)) {
                run(m, off, count, false);
            }
        }
    }
    for off in [0, 4095, 4097, 9999, 10_000, 1 << 40] {
        for count in counts_for((SIZE as u64).saturating_sub(off)) {
            run(Method::MsgZerocopy, off, count, true);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn offset_none_uses_and_advances_the_source_position() {
    let dir = TempDir::new("pos");
    let data = pattern(SIZE, 3);
    let src = dir.source("src", &data);
    for m in FILE_TO_FILE {
        for (start, count) in [
            (0, None),
            (100, Some(1000)),
            (4096, Some(4096)),
            (9000, None),
            (9000, Some(5000)),
            (10_000, None),
            (12_345, None),
        ] {
            seek(&src, start);
            let dst = dir.sink("dst");
            let opts = Options {
                method: m,
                count,
                ..Options::default()
            };
            let r = transfer(&src, &dst, &opts)
                .unwrap_or_else(|e| panic!("{m} start {start} count {count:?}: {e}"));
            let want = window(&data, start, count);
            assert_eq!(
                r.bytes,
                want.len() as u64,
                "{m} start {start} count {count:?}"
            );
            assert_eq!(
                position(&src),
                start + r.bytes,
                "{m}: the source position advances by the bytes moved"
            );
            assert_bytes(&format!("{m} start {start}"), want, &dir.read("dst"));
        }
    }
}

#[test]
fn two_calls_concatenate_at_the_destination_position() {
    let dir = TempDir::new("concat");
    let data = pattern(SIZE, 4);
    let src = dir.source("src", &data);
    for m in FILE_TO_FILE {
        let mut dst = dir.sink("dst");
        dst.write_all(b"HEAD").unwrap();
        seek(&src, 0);
        let first = Options {
            method: m,
            count: Some(3000),
            ..Options::default()
        };
        assert_eq!(transfer(&src, &dst, &first).unwrap().bytes, 3000, "{m}");
        assert_eq!(
            position(&dst),
            3004,
            "{m}: the destination position advances"
        );
        let second = Options {
            method: m,
            ..Options::default()
        };
        assert_eq!(
            transfer(&src, &dst, &second).unwrap().bytes,
            (SIZE - 3000) as u64,
            "{m}"
        );
        assert_eq!(position(&dst), 4 + SIZE as u64, "{m}");
        let mut want = b"HEAD".to_vec();
        want.extend_from_slice(&data);
        assert_bytes(&format!("{m} concatenation"), &want, &dir.read("dst"));
    }
}

#[test]
fn destination_is_written_at_its_position_inside_an_existing_file() {
    let dir = TempDir::new("dstpos");
    let data = pattern(SIZE, 5);
    let src = dir.source("src", &data);
    for m in FILE_TO_FILE {
        let base = vec![b'x'; 20_000];
        std::fs::write(dir.join("dst"), &base).unwrap();
        let dst = OpenOptions::new()
            .write(true)
            .open(dir.join("dst"))
            .unwrap();
        seek(&dst, 5000);
        let opts = Options {
            method: m,
            offset: Some(10),
            count: Some(6000),
            ..Options::default()
        };
        assert_eq!(transfer(&src, &dst, &opts).unwrap().bytes, 6000, "{m}");
        assert_eq!(position(&dst), 11_000, "{m}");
        let mut want = base.clone();
        want[5000..11_000].copy_from_slice(&data[10..6010]);
        assert_bytes(&format!("{m} overwrite in place"), &want, &dir.read("dst"));
    }
}

#[test]
fn o_append_destination_appends_and_in_kernel_methods_say_unsupported() {
    let dir = TempDir::new("append");
    let data = pattern(70_000, 6);
    let src = dir.source("src", &data);
    let open_append = || {
        std::fs::write(dir.join("dst"), b"HEAD").unwrap();
        let f = OpenOptions::new()
            .append(true)
            .open(dir.join("dst"))
            .unwrap();
        seek(&f, 0);
        f
    };
    let mut appended = b"HEAD".to_vec();
    appended.extend_from_slice(&data);

    // Auto and the user-space methods append.
    for m in [Method::Auto, Method::ReadWrite, Method::Mmap] {
        seek(&src, 0);
        let dst = open_append();
        let r = transfer(&src, &dst, &Options::with_method(m))
            .unwrap_or_else(|e| panic!("{m} to O_APPEND: {e}"));
        assert_eq!(r.bytes, data.len() as u64, "{m}");
        assert_bytes(&format!("{m} append"), &appended, &dir.read("dst"));
        assert_eq!(position(&src), data.len() as u64);
    }
    // The in-kernel methods cannot write to O_APPEND files: Unsupported, nothing moved.
    for m in [Method::CopyFileRange, Method::Sendfile, Method::Splice] {
        seek(&src, 0);
        let dst = open_append();
        let e = transfer(&src, &dst, &Options::with_method(m)).expect_err("O_APPEND");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m} to O_APPEND: {e}");
        assert_eq!(e.bytes(), 0);
        assert_eq!(position(&src), 0, "{m}: nothing consumed");
        assert_eq!(dir.read("dst"), b"HEAD");
        // With fallback allowed they work, and the report says which fallback was taken.
        let dst = open_append();
        let opts = Options {
            method: m,
            fallback: true,
            ..Options::default()
        };
        let r = transfer(&src, &dst, &opts).unwrap_or_else(|e| panic!("{m} with fallback: {e}"));
        assert_eq!(r.bytes, data.len() as u64);
        assert_bytes(
            &format!("{m} append with fallback"),
            &appended,
            &dir.read("dst"),
        );
        assert_eq!(position(&src), data.len() as u64);
        assert!(
            r.fallbacks.first().is_some_and(|f| f.from == m),
            "{m}: fallback not in the report: {r:?}"
        );
        assert_ne!(r.method, m);
    }
}

#[test]
fn unsupported_methods_consume_nothing_from_a_pipe_or_socket() {
    let dir = TempDir::new("unsup");
    let data = pattern(100_000, 7);
    for m in [
        Method::Mmap,
        Method::Sendfile,
        Method::CopyFileRange,
        Method::MsgZerocopy,
    ] {
        // A pipe holding data and a writer still open.
        let (r, mut w) = pipe();
        w.write_all(&data[..50_000]).unwrap();
        let dst = dir.sink("dst");
        match transfer(&r, &dst, &Options::with_method(m)) {
            Err(e) => assert_eq!(e.code(), ErrorCode::Unsupported, "{m} from a pipe: {e}"),
            Ok(rep) => panic!("{m} from a pipe must be Unsupported, got {rep:?}"),
        }
        drop(w);
        assert_bytes(
            &format!("{m}: pipe content untouched"),
            &data[..50_000],
            &read_all(&r).unwrap(),
        );

        let (c, s) = tcp_pair();
        let (tcp_dst, _peer) = tcp_pair();
        let feeder = spawn_writer(c, data.clone());
        let e = transfer(&s, &tcp_dst, &Options::with_method(m)).expect_err("socket source");
        assert_eq!(e.code(), ErrorCode::Unsupported, "{m} from a socket: {e}");
        assert_bytes(
            &format!("{m}: socket content untouched"),
            &data,
            &read_all(&s).unwrap(),
        );
        feeder.join().unwrap().unwrap();
    }
}

#[test]
fn offset_on_a_stream_source_is_rejected_and_consumes_nothing() {
    let dir = TempDir::new("offset-pipe");
    let (r, mut w) = pipe();
    w.write_all(b"0123456789").unwrap();
    drop(w);
    let dst = dir.sink("dst");
    for m in [Method::Auto, Method::ReadWrite, Method::Splice] {
        let e = transfer(
            &r,
            &dst,
            &Options {
                method: m,
                offset: Some(3),
                ..Options::default()
            },
        )
        .expect_err("offset on a pipe");
        assert!(
            e.code() == ErrorCode::InvalidArgument || e.errno() == Some(libc::ESPIPE),
            "{m}: offset on a pipe must be InvalidArgument (or ESPIPE): {e}"
        );
    }
    assert_eq!(read_all(&r).unwrap(), b"0123456789");
}

#[test]
fn count_zero_is_an_immediate_success() {
    let dir = TempDir::new("count0");
    let src = dir.source("src", &pattern(5000, 8));
    let (r, w) = pipe();
    for m in Method::ALL {
        let rep = transfer(
            &src,
            &w,
            &Options {
                method: m,
                count: Some(0),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(rep.bytes, 0);
        assert_eq!(position(&src), 0);
    }
    drop(w);
    assert!(read_all(r).unwrap().is_empty());
}

#[test]
fn empty_regular_file_moves_zero_bytes_with_every_file_method() {
    let dir = TempDir::new("empty");
    let src = dir.source("src", b"");
    for m in FILE_TO_FILE {
        let dst = dir.sink("dst");
        match transfer(&src, &dst, &Options::with_method(m)) {
            Ok(r) => assert_eq!(r.bytes, 0, "{m}"),
            Err(e) => panic!("{m}: an empty file is 0 bytes, not an error: {e}"),
        }
    }
}

#[test]
fn dev_zero_with_a_count_delivers_exactly_count_zeros() {
    deadline("dev zero", 60, || {
        let dir = TempDir::new("zero");
        for count in [1u64, 4096, 100_001, 3 << 20] {
            let zero = dev_zero();
            let dst = dir.sink("dst");
            let r = transfer(
                &zero,
                &dst,
                &Options {
                    count: Some(count),
                    ..Options::default()
                },
            )
            .unwrap();
            assert_eq!(r.bytes, count);
            let got = dir.read("dst");
            assert_eq!(got.len() as u64, count);
            assert!(got.iter().all(|&b| b == 0));
            let (c, s) = tcp_pair();
            let reader = spawn_reader(s);
            let r = transfer(
                &zero,
                &c,
                &Options {
                    count: Some(count),
                    ..Options::default()
                },
            )
            .unwrap();
            drop(c);
            assert_eq!(r.bytes, count);
            let got = reader.join().unwrap().unwrap();
            assert_eq!(got.len() as u64, count);
            assert!(got.iter().all(|&b| b == 0));
            let r = transfer(
                &zero,
                dev_null(),
                &Options {
                    count: Some(count),
                    ..Options::default()
                },
            )
            .unwrap();
            assert_eq!(r.bytes, count);
        }
    });
}

#[test]
fn procfs_files_of_size_zero_are_transferred_in_full() {
    deadline("procfs", 60, || {
        let dir = TempDir::new("procfs");
        // Content that does not change between two reads: byte-exact.
        for path in [
            "/proc/version",
            "/proc/self/cmdline",
            "/proc/self/environ",
            "/proc/filesystems",
        ] {
            let want = std::fs::read(path).unwrap();
            assert!(!want.is_empty());
            let src = std::fs::File::open(path).unwrap();
            let dst = dir.sink("dst");
            let r =
                transfer(&src, &dst, &Options::default()).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(r.bytes, want.len() as u64, "{path}: {r:?}");
            assert_bytes(path, &want, &dir.read("dst"));
            let src = std::fs::File::open(path).unwrap();
            let (c, s) = tcp_pair();
            let reader = spawn_reader(s);
            transfer(&src, &c, &Options::default())
                .unwrap_or_else(|e| panic!("{path} -> tcp: {e}"));
            drop(c);
            assert_bytes(
                &format!("{path} -> tcp"),
                &want,
                &reader.join().unwrap().unwrap(),
            );
            let src = std::fs::File::open(path).unwrap();
            let (pr, pw) = pipe();
            let reader = spawn_reader(pr);
            transfer(&src, &pw, &Options::default())
                .unwrap_or_else(|e| panic!("{path} -> pipe: {e}"));
            drop(pw);
            assert_bytes(
                &format!("{path} -> pipe"),
                &want,
                &reader.join().unwrap().unwrap(),
            );
        }
        // /proc/self/status changes as the process runs: same lines, same keys, full content.
        let src = std::fs::File::open("/proc/self/status").unwrap();
        let dst = dir.sink("status");
        let r = transfer(&src, &dst, &Options::default()).unwrap();
        let got = String::from_utf8(dir.read("status")).unwrap();
        assert_eq!(r.bytes, got.len() as u64);
        let fresh = std::fs::read_to_string("/proc/self/status").unwrap();
        let keys = |s: &str| {
            s.lines()
                .map(|l| l.split(':').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        assert!(got.starts_with("Name:"), "{got}");
        assert!(got.ends_with('\n'));
        assert_eq!(
            keys(&got),
            keys(&fresh),
            "the whole of /proc/self/status, not a prefix"
        );
    });
}

const TRUNCATED_TO: usize = 100 * 4096;

/// A reader takes 64 KiB, truncates the source, then drains: the transfer must end (never
/// hang), report exactly what arrived, and what arrived must be a prefix of the original.
fn truncated_during(m: Method, to_socket: bool) -> Result<(), String> {
    let dir = TempDir::new("trunc");
    let size = 16 << 20;
    let data = pattern(size, 9);
    let src = dir.source("src", &data);
    let path = dir.join("src");
    let (dst, reader_end): (std::fs::File, std::fs::File) = if to_socket {
        let (a, b) = unix_pair();
        (as_file(a), as_file(b))
    } else {
        let (r, w) = pipe();
        (w, r)
    };
    let reader = std::thread::spawn(move || {
        let mut r = reader_end;
        let mut first = vec![0u8; 65536];
        r.read_exact(&mut first)?;
        OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(TRUNCATED_TO as u64)?;
        let mut rest = read_all(&r)?;
        first.append(&mut rest);
        Ok::<_, std::io::Error>(first)
    });
    let r = transfer(&src, &dst, &Options::with_method(m));
    drop(dst);
    let got = reader.join().unwrap().map_err(|e| format!("reader: {e}"))?;
    let bytes = match &r {
        Ok(rep) => rep.bytes,
        Err(e) if e.code() == ErrorCode::Os => e.bytes(),
        Err(e) => return Err(format!("unexpected error {e}")),
    };
    if bytes != got.len() as u64 {
        return Err(format!(
            "report says {bytes} bytes, {} arrived ({r:?})",
            got.len()
        ));
    }
    // Up to the new end, the original bytes. Past it, pages the engine had already handed to
    // the kernel (splice, sendfile) are shared with the page cache, and the kernel zeroes the
    // truncated part of a large folio in place: each page is the original or zeros
    // ("pages, not bytes, are shared", DESIGN.md). Never anything else.
    let cut = TRUNCATED_TO.min(got.len());
    check_bytes(
        "what arrived is a prefix of the original",
        &data[..cut],
        &got[..cut],
    )?;
    for (i, page) in got[cut..].chunks(4096).enumerate() {
        let at = cut + i * 4096;
        if page != &data[at..at + page.len()] && page.iter().any(|&b| b != 0) {
            return Err(format!("bytes at {at} are neither the original nor zeros"));
        }
    }
    if got.len() >= size {
        return Err("the truncation happened after the transfer: the test proves nothing".into());
    }
    if position(&src) != bytes {
        return Err(format!(
            "source position {} != bytes {bytes}",
            position(&src)
        ));
    }
    Ok(())
}

#[test]
fn source_truncated_during_the_transfer_ends_and_never_hangs() {
    let mut failures = Vec::new();
    for m in FILE_TO_SOCKET {
        for to_socket in [false, true] {
            let r = try_deadline(60, move || truncated_during(m, to_socket))
                .unwrap_or_else(|| Err("hung".into()));
            if let Err(e) = r {
                failures.push(format!(
                    "{m} to {}: {e}",
                    if to_socket { "socket" } else { "pipe" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn source_grown_during_a_count_bounded_transfer_is_read_to_the_count() {
    // The size seen at the start is not a limit: the count is.
    let dir = TempDir::new("grow");
    let data = pattern(50_000, 10);
    let src = dir.source("src", &data[..20_000]);
    let writer = OpenOptions::new()
        .write(true)
        .open(dir.join("src"))
        .unwrap();
    writer.write_all_at(&data[20_000..], 20_000).unwrap();
    for m in FILE_TO_FILE {
        let dst = dir.sink("dst");
        let r = transfer(
            &src,
            &dst,
            &Options {
                method: m,
                offset: Some(0),
                count: Some(50_000),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(r.bytes, 50_000, "{m}");
        assert_bytes(&format!("{m}"), &data, &dir.read("dst"));
    }
}

#[test]
fn procfs_with_explicit_methods_is_full_or_unsupported() {
    let dir = TempDir::new("procfs-explicit");
    let want = std::fs::read("/proc/version").unwrap();
    for m in [
        Method::ReadWrite,
        Method::Sendfile,
        Method::Splice,
        Method::Mmap,
        Method::CopyFileRange,
    ] {
        let src = std::fs::File::open("/proc/version").unwrap();
        let dst = dir.sink("dst");
        match transfer(&src, &dst, &Options::with_method(m)) {
            Ok(r) => {
                assert_eq!(r.bytes, want.len() as u64, "{m}: {r:?}");
                assert_bytes(&format!("{m} /proc/version"), &want, &dir.read("dst"));
            }
            // mmap and copy_file_range cannot read procfs; the copying methods must.
            Err(e)
                if e.code() == ErrorCode::Unsupported
                    && matches!(m, Method::Mmap | Method::CopyFileRange) =>
            {
                assert!(dir.read("dst").is_empty());
                assert_eq!(position(&src), 0);
            }
            Err(e) => panic!("{m} from /proc/version: {e}"),
        }
    }
}
