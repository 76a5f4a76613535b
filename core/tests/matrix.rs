//! Every fd pair the engine accepts x every method (explicit and Auto) x sizes around page and
//! pipe boundaries. Every byte is checked by hash; methods that do not apply must say
//! Unsupported and consume nothing; flags and positions are checked on every case.
//!
//! One test per source kind, so the harness runs them in parallel; each collects every failing
//! case before failing, so one bug does not hide the others.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use zcopy_core::{ErrorCode, Method, Options, transfer};

const SIZES: [usize; 8] = [0, 1, 4095, 4096, 4097, 65535, 65537, (1 << 20) + 1];

fn case(src: Src, dst: Dst, m: Method, size: usize, count: Option<u64>) -> Result<(), String> {
    let dir = TempDir::new("matrix");
    let data = match src {
        Src::Zero => vec![0u8; size],
        _ => pattern(size, size as u64 ^ (m as u64) << 32),
    };
    let s = SrcEnd::new(src, &data, &dir, "src");
    let d = DstEnd::new(dst, &dir, "dst");
    let opts = Options {
        method: m,
        count,
        ..Options::default()
    };
    let flags_before = (flags(&s.fd), flags(&d.fd));
    let result = transfer(&s.fd, &d.fd, &opts);
    let flags_after = (flags(&s.fd), flags(&d.fd));
    if flags_before != flags_after {
        return Err(format!(
            "file status flags changed: {flags_before:x?} -> {flags_after:x?}"
        ));
    }
    let src_pos = (src == Src::File).then(|| position(&s.fd));
    let expect = applies(src, dst, m);
    // What a read/write loop would move: up to the count, up to EOF.
    let moved = count.map_or(size, |c| c.min(size as u64) as usize);
    match result {
        Ok(report) => {
            // A count of 0 is an immediate success, whatever the method.
            if expect == Expect::Never && opts.count != Some(0) {
                return Err(format!("expected Unsupported, got Ok({report:?})"));
            }
            if report.bytes != moved as u64 {
                return Err(format!(
                    "report.bytes {} != {moved}: {report:?}",
                    report.bytes
                ));
            }
            if moved > 0 && report.method == Method::Auto {
                return Err(format!(
                    "report.method must name the method that moved the bytes: {report:?}"
                ));
            }
            if m != Method::Auto && m != Method::MsgZerocopy {
                if moved > 0 && report.method != m {
                    return Err(format!(
                        "explicit {m} without fallback, but report says {}",
                        report.method
                    ));
                }
                if !report.fallbacks.is_empty() {
                    return Err(format!(
                        "explicit {m} without fallback fell back: {:?}",
                        report.fallbacks
                    ));
                }
            }
            if moved > 0 && report.syscalls == 0 {
                return Err(format!("report.syscalls is 0: {report:?}"));
            }
            if let Some(p) = src_pos {
                if p != moved as u64 {
                    return Err(format!("source position {p}, expected {moved}"));
                }
            }
            if src.is_stream() {
                // Not a byte more than the count was taken.
                let rest = s.rest()?;
                check_bytes("left in the source", &data[moved..], &rest)?;
            }
            match d.finish()? {
                Some(got) => check_bytes("destination", &data[..moved], &got),
                None => Ok(()),
            }
        }
        Err(e) if e.code() == ErrorCode::Unsupported && expect != Expect::Must => {
            if e.bytes() != 0 {
                return Err(format!("Unsupported after moving {} bytes: {e}", e.bytes()));
            }
            if let Some(p) = src_pos {
                if p != 0 {
                    return Err(format!("Unsupported, but the source position moved to {p}"));
                }
            }
            if src.is_stream() {
                // Nothing consumed: every byte is still in the source.
                let rest = s.rest()?;
                check_bytes(
                    "source after Unsupported (nothing may be consumed)",
                    &data,
                    &rest,
                )?;
            }
            match d.finish()? {
                Some(got) if !got.is_empty() => Err(format!(
                    "Unsupported, but {} bytes reached the destination",
                    got.len()
                )),
                _ => Ok(()),
            }
        }
        Err(e) => Err(format!(
            "expected {expect:?}, got error {e} [code {:?}, errno {:?}, report {:?}]",
            e.code(),
            e.errno(),
            e.report
        )),
    }
}

/// Runs every (destination, method, size) for `src` with the counts `counts(size)` gives.
fn run_source(src: Src, counts: fn(usize) -> Vec<Option<u64>>, methods: &[Method]) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for dst in Dst::ALL {
        for &m in methods {
            for size in SIZES {
                for count in counts(size) {
                    ran += 1;
                    let outcome = try_deadline(30, move || case(src, dst, m, size, count));
                    let outcome = outcome.unwrap_or_else(|| Err("hung for 30 s".to_string()));
                    if let Err(why) = outcome {
                        failures.push(format!(
                            "{src:?} -> {dst:?}, {m}, {size} bytes, count {count:?}: {why}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn to_eof(_: usize) -> Vec<Option<u64>> {
    vec![None]
}

/// /dev/zero never ends: it always gets a count.
fn exact(size: usize) -> Vec<Option<u64>> {
    vec![Some(size as u64)]
}

/// Counts below, at and above the size: a counted transfer is also the one-syscall fast path
/// of Auto and sendfile to a stream socket.
fn counted(size: usize) -> Vec<Option<u64>> {
    vec![
        Some(size as u64 / 2),
        Some(size as u64),
        Some(size as u64 + 1),
    ]
}

#[test]
fn matrix_from_regular_file() {
    run_source(Src::File, to_eof, &Method::ALL);
}

#[test]
fn matrix_from_pipe() {
    run_source(Src::Pipe, to_eof, &Method::ALL);
}

#[test]
fn matrix_from_tcp() {
    run_source(Src::Tcp, to_eof, &Method::ALL);
}

#[test]
fn matrix_from_unix_socket() {
    run_source(Src::Unix, to_eof, &Method::ALL);
}

#[test]
fn matrix_from_dev_zero_with_count() {
    run_source(Src::Zero, exact, &Method::ALL);
}

#[test]
fn matrix_counted_from_files() {
    run_source(Src::File, counted, &Method::ALL);
}

#[test]
fn matrix_counted_from_streams_with_auto_sendfile_and_splice() {
    let methods = [
        Method::Auto,
        Method::Sendfile,
        Method::Splice,
        Method::ReadWrite,
    ];
    for src in [Src::Pipe, Src::Tcp, Src::Unix] {
        run_source(src, counted, &methods);
    }
}
