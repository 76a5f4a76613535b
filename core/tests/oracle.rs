//! Property test: `transfer` against a read/write oracle over random size, start position,
//! offset, count, method and fd pair. Bounded (64 cases) and deterministic (a fixed seed), so a
//! failure reproduces on every run; proptest shrinks it to a small case.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Seek, SeekFrom};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use zcopy_core::{ErrorCode, Method, Options, transfer};

#[derive(Clone, Debug)]
struct Case {
    src: Src,
    dst: Dst,
    method: Method,
    size: usize,
    /// File sources: where the file position starts.
    start: u64,
    /// File sources only.
    offset: Option<u64>,
    count: Option<u64>,
    seed: u64,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let src = prop_oneof![
        Just(Src::File),
        Just(Src::Pipe),
        Just(Src::Tcp),
        Just(Src::Unix)
    ];
    let dst = prop_oneof![
        Just(Dst::File),
        Just(Dst::Pipe),
        Just(Dst::Tcp),
        Just(Dst::Unix),
        Just(Dst::Null)
    ];
    let method = (0..7i32).prop_map(|n| Method::from_i32(n).unwrap());
    let size = prop_oneof![
        0..=16usize,
        4090..=4102usize,
        65530..=65542usize,
        0..=400_000usize
    ];
    // Fractions of the size (in 1/1024ths, beyond 1 = past EOF), so positions land everywhere.
    let frac = || prop_oneof![Just(0u32), Just(1024u32), 0..=1100u32];
    let count = prop_oneof![
        Just(None),
        (0..=1100u32).prop_map(Some),
        Just(Some(u32::MAX))
    ];
    (
        src,
        dst,
        method,
        size,
        frac(),
        proptest::option::of(frac()),
        count,
        any::<u64>(),
    )
        .prop_map(|(src, dst, method, size, start, offset, count, seed)| {
            let at = |f: u32| (size as u64 * u64::from(f)) / 1024 + u64::from(f > 1024);
            let file = src == Src::File;
            Case {
                src,
                dst,
                method,
                size,
                start: if file { at(start) } else { 0 },
                offset: if file { offset.map(at) } else { None },
                count: count.map(|c| if c == u32::MAX { u64::MAX } else { at(c) }),
                seed,
            }
        })
}

/// What a plain read/write loop does: for a file, seek (or start at the offset), read at most
/// `count` bytes until EOF; for a stream, read at most `count` bytes of what the feeder wrote.
fn oracle(c: &Case, data: &[u8], dir: &TempDir) -> (Vec<u8>, u64) {
    match c.src {
        Src::File => {
            let mut f = std::fs::File::open(dir.join("src")).unwrap();
            let from = c.offset.unwrap_or(c.start);
            f.seek(SeekFrom::Start(from)).unwrap();
            let mut out = Vec::new();
            f.take(c.count.unwrap_or(u64::MAX))
                .read_to_end(&mut out)
                .unwrap();
            let pos_after = if c.offset.is_some() {
                c.start
            } else {
                c.start + out.len() as u64
            };
            (out, pos_after)
        }
        _ => {
            let n = c
                .count
                .map_or(data.len(), |n| n.min(data.len() as u64) as usize);
            (data[..n].to_vec(), 0)
        }
    }
}

fn check(c: Case) -> Result<(), String> {
    let dir = TempDir::new("oracle");
    let data = pattern(c.size, c.seed);
    let s = SrcEnd::new(c.src, &data, &dir, "src");
    let d = DstEnd::new(c.dst, &dir, "dst");
    if c.src == Src::File {
        seek(&s.fd, c.start);
    }
    let (want, want_pos) = oracle(&c, &data, &dir);
    let opts = Options {
        method: c.method,
        offset: c.offset,
        count: c.count,
        ..Options::default()
    };
    let result = transfer(&s.fd, &d.fd, &opts);
    let pos = (c.src == Src::File).then(|| position(&s.fd));
    match result {
        Ok(r) => {
            if applies(c.src, c.dst, c.method) == Expect::Never && c.count != Some(0) {
                return Err(format!("expected Unsupported, got Ok({r:?})"));
            }
            if r.bytes != want.len() as u64 {
                return Err(format!("bytes {} != oracle {}", r.bytes, want.len()));
            }
            if let Some(p) = pos {
                if p != want_pos {
                    return Err(format!("source position {p} != oracle {want_pos}"));
                }
            }
            if c.src.is_stream() {
                // Not a byte more than the count was taken from the stream.
                let rest = s.rest()?;
                check_bytes("left in the source", &data[want.len()..], &rest)?;
            }
            match d.finish()? {
                Some(got) => check_bytes("destination", &want, &got),
                None => Ok(()),
            }
        }
        Err(e)
            if e.code() == ErrorCode::Unsupported
                && applies(c.src, c.dst, c.method) != Expect::Must =>
        {
            if pos.is_some_and(|p| p != c.start) {
                return Err(format!(
                    "Unsupported, but the source position moved to {pos:?}"
                ));
            }
            if c.src.is_stream() {
                check_bytes("source after Unsupported", &data, &s.rest()?)?;
            }
            match d.finish()? {
                Some(got) if !got.is_empty() => {
                    Err(format!("Unsupported, but {} bytes arrived", got.len()))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(format!(
            "{e} [code {:?}, errno {:?}, report {:?}]",
            e.code(),
            e.errno(),
            e.report
        )),
    }
}

#[test]
fn transfer_matches_a_read_write_oracle() {
    let config = Config {
        cases: 64,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&case_strategy(), |c| {
        let shown = format!("{c:?}");
        match try_deadline(30, move || check(c)) {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(TestCaseError::fail(format!("{shown}: {why}"))),
            None => Err(TestCaseError::fail(format!("{shown}: hung for 30 s"))),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
