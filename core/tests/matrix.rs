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

fn case(src: Src, dst: Dst, m: Method, size: usize) -> Result<(), String> {
    let dir = TempDir::new("matrix");
    let data = match src {
        Src::Zero => vec![0u8; size],
        _ => pattern(size, size as u64 ^ (m as u64) << 32),
    };
    let s = SrcEnd::new(src, &data, &dir, "src");
    let d = DstEnd::new(dst, &dir, "dst");
    let opts = Options {
        method: m,
        // /dev/zero never ends: it always gets a count.
        count: (src == Src::Zero).then_some(size as u64),
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
    match result {
        Ok(report) => {
            // A count of 0 is an immediate success, whatever the method.
            if expect == Expect::Never && opts.count != Some(0) {
                return Err(format!("expected Unsupported, got Ok({report:?})"));
            }
            if report.bytes != size as u64 {
                return Err(format!(
                    "report.bytes {} != {size}: {report:?}",
                    report.bytes
                ));
            }
            if size > 0 && report.method == Method::Auto {
                return Err(format!(
                    "report.method must name the method that moved the bytes: {report:?}"
                ));
            }
            if m != Method::Auto && m != Method::MsgZerocopy {
                if size > 0 && report.method != m {
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
            if size > 0 && report.syscalls == 0 {
                return Err(format!("report.syscalls is 0: {report:?}"));
            }
            if let Some(p) = src_pos {
                if p != size as u64 {
                    return Err(format!("source position {p}, expected {size}"));
                }
            }
            if src.is_stream() {
                let rest = s.rest()?;
                if !rest.is_empty() {
                    return Err(format!("{} bytes left unread in the source", rest.len()));
                }
            }
            match d.finish()? {
                Some(got) => check_bytes("destination", &data, &got),
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

fn run_source(src: Src) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for dst in Dst::ALL {
        for m in Method::ALL {
            for size in SIZES {
                ran += 1;
                let outcome = try_deadline(30, move || case(src, dst, m, size));
                let outcome = outcome.unwrap_or_else(|| Err("hung for 30 s".to_string()));
                if let Err(why) = outcome {
                    failures.push(format!("{src:?} -> {dst:?}, {m}, {size} bytes: {why}"));
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

#[test]
fn matrix_from_regular_file() {
    run_source(Src::File);
}

#[test]
fn matrix_from_pipe() {
    run_source(Src::Pipe);
}

#[test]
fn matrix_from_tcp() {
    run_source(Src::Tcp);
}

#[test]
fn matrix_from_unix_socket() {
    run_source(Src::Unix);
}

#[test]
fn matrix_from_dev_zero_with_count() {
    run_source(Src::Zero);
}
