//! Files over 4 GiB: a sparse file of 4 GiB + a few bytes with a marker at its end. Lengths and
//! offsets must survive the 32-bit boundary (no u32 truncation, no overflowing length), the
//! per-call kernel caps, and the tail must arrive intact.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;

use common::*;
use zcopy_core::{Method, Options, transfer};

const GIB4: u64 = 4 << 30;
const SIZE: u64 = GIB4 + 4096 + 77;
const MARKER_LEN: usize = 200;

struct Sparse {
    dir: TempDir,
    marker: Vec<u8>,
    /// A few bytes just below 4 GiB, too.
    low_marker: Vec<u8>,
}

impl Sparse {
    fn new() -> Sparse {
        let dir = TempDir::new("sparse");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("big"))
            .unwrap();
        f.set_len(SIZE).unwrap();
        let marker = pattern(MARKER_LEN, 0xfeed);
        f.write_all_at(&marker, SIZE - MARKER_LEN as u64).unwrap();
        let low_marker = pattern(64, 0xbeef);
        f.write_all_at(&low_marker, GIB4 - 32).unwrap();
        Sparse {
            dir,
            marker,
            low_marker,
        }
    }

    fn open(&self) -> File {
        File::open(self.dir.join("big")).unwrap()
    }

    /// The file's bytes in [from, SIZE), built without reading the file.
    fn expected_from(&self, from: u64) -> Vec<u8> {
        let mut v = vec![0u8; (SIZE - from) as usize];
        let mut put = |at: u64, bytes: &[u8]| {
            for (i, &b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= from {
                    v[(p - from) as usize] = b;
                }
            }
        };
        put(SIZE - MARKER_LEN as u64, &self.marker);
        put(GIB4 - 32, &self.low_marker);
        v
    }
}

/// Reads a stream to EOF, checking everything but the last `tail` bytes is zero (memcmp against
/// a zero block, fast even in debug builds) and keeping the last `tail` bytes.
fn drain_zeros_keep_tail(
    mut r: impl Read,
    tail: usize,
    skip_check: std::ops::Range<u64>,
) -> std::io::Result<(u64, bool, Vec<u8>)> {
    let zeros = vec![0u8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut all_zero = true;
    let mut last: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        let (start, end) = (total, total + n as u64);
        if end <= skip_check.start || start >= skip_check.end {
            all_zero &= chunk == &zeros[..n];
        }
        total = end;
        last.extend_from_slice(chunk);
        if last.len() > 2 * tail + (1 << 20) {
            last.drain(..last.len() - tail);
        }
    }
    if last.len() > tail {
        last.drain(..last.len() - tail);
    }
    Ok((total, all_zero, last))
}

#[test]
fn sparse_file_over_4gib_whole_to_dev_null_and_through_tcp() {
    deadline("4 GiB sparse file", 110, || {
        let sp = Sparse::new();
        // Auto to /dev/null, from the file position: count and position past 4 GiB.
        let src = sp.open();
        let r = transfer(&src, dev_null(), &Options::default()).unwrap();
        assert_eq!(r.bytes, SIZE);
        assert_eq!(position(&src), SIZE, "the position ends past 4 GiB");

        // Auto through loopback TCP to a draining thread: every byte is zero but the markers.
        let src = sp.open();
        let (c, s) = tcp_pair();
        let drain = std::thread::spawn(move || {
            drain_zeros_keep_tail(s, MARKER_LEN, GIB4 - (1 << 20)..SIZE)
        });
        let r = transfer(&src, &c, &Options::default()).unwrap();
        drop(c);
        let (total, zeros_ok, tail) = drain.join().unwrap().unwrap();
        assert_eq!(r.bytes, SIZE);
        assert_eq!(total, SIZE, "bytes that reached the peer");
        assert!(zeros_ok, "the holes arrive as zeros");
        assert_bytes("tail marker after 4 GiB", &sp.marker, &tail);
        assert_eq!(position(&src), SIZE);
    });
}

#[test]
fn sparse_file_over_4gib_windows_across_the_boundary_with_every_method() {
    deadline("windows across 4 GiB", 110, || {
        let sp = Sparse::new();
        let src = sp.open();
        let dir = TempDir::new("sparse-dst");
        for m in FILE_TO_FILE {
            // Starting below 4 GiB, crossing it, to EOF; explicit offset and file position.
            for from in [GIB4 - 1000, GIB4, GIB4 + 1, SIZE - 1, SIZE] {
                let dst = dir.sink("dst");
                let r = transfer(
                    &src,
                    &dst,
                    &Options {
                        method: m,
                        offset: Some(from),
                        ..Options::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{m} from {from}: {e}"));
                assert_eq!(r.bytes, SIZE - from, "{m} from {from}");
                assert_bytes(
                    &format!("{m} from {from}"),
                    &sp.expected_from(from),
                    &dir.read("dst"),
                );
                assert_eq!(
                    position(&src),
                    0,
                    "{m}: an explicit offset leaves the position alone"
                );

                seek(&src, from);
                let dst = dir.sink("dst");
                let r = transfer(
                    &src,
                    &dst,
                    &Options {
                        method: m,
                        count: Some(1 << 20),
                        ..Options::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{m} from position {from}: {e}"));
                assert_eq!(r.bytes, SIZE - from, "{m} from position {from}");
                assert_eq!(position(&src), SIZE, "{m} from position {from}");
                assert_bytes(
                    &format!("{m} from position {from}"),
                    &sp.expected_from(from),
                    &dir.read("dst"),
                );
                seek(&src, 0);
            }
        }
        // Through a socket, with the methods that go there.
        for m in [
            Method::Sendfile,
            Method::Splice,
            Method::Mmap,
            Method::MsgZerocopy,
            Method::ReadWrite,
        ] {
            let from = GIB4 - (3 << 20);
            let (c, s) = tcp_pair();
            let reader = spawn_reader(s);
            let r = transfer(
                &src,
                &c,
                &Options {
                    method: m,
                    offset: Some(from),
                    ..Options::default()
                },
            )
            .unwrap_or_else(|e| panic!("{m} to tcp: {e}"));
            drop(c);
            assert_eq!(r.bytes, SIZE - from);
            assert_bytes(
                &format!("{m} to tcp from 4 GiB - 3 MiB"),
                &sp.expected_from(from),
                &reader.join().unwrap().unwrap(),
            );
        }
    });
}

#[test]
fn count_larger_than_4gib_is_not_truncated_to_32_bits() {
    deadline("count > 4 GiB", 110, || {
        let sp = Sparse::new();
        let src = sp.open();
        // count = 4 GiB + 1 from an offset near the end: the count is larger than what is left,
        // and a u32 cast of it would be 1.
        let from = SIZE - 10_000;
        for m in [
            Method::Auto,
            Method::ReadWrite,
            Method::Sendfile,
            Method::Splice,
            Method::CopyFileRange,
        ] {
            let dir = TempDir::new("sparse-count");
            let dst = dir.sink("dst");
            let r = transfer(
                &src,
                &dst,
                &Options {
                    method: m,
                    offset: Some(from),
                    count: Some(GIB4 + 1),
                    ..Options::default()
                },
            )
            .unwrap();
            assert_eq!(r.bytes, 10_000, "{m}");
            assert_bytes(&format!("{m}"), &sp.expected_from(from), &dir.read("dst"));
        }
        // count = exactly 4 GiB from 0 into /dev/null: a u32 cast would be 0.
        let r = transfer(
            &src,
            dev_null(),
            &Options {
                offset: Some(0),
                count: Some(GIB4),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(r.bytes, GIB4);
    });
}
