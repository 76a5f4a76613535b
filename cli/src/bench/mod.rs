//! `zcopy bench`: every applicable method, side by side, on a warm temporary file; and two
//! serving questions measured the same way: what the page-cache policies cost when serving a
//! cached file, and what sending a small response (header + file range) in one `send_parts`
//! call saves against `write` + `sendfile`.
//!
//! Rounds are the outer loop and methods are interleaved within each round (in an order that
//! rotates from round to round), so noise on a busy 2-core machine hits every method alike;
//! the table reports medians and the median of per-round ratios.

mod baseline;
mod findings;
mod scenarios;
mod table;

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use scenarios::{Env, RunError, Sample, Scenario, Variant};
use table::{Meta, Row, Status};

use crate::commands::CliResult;
use crate::units::{fmt_bytes, parse_size};

/// Arguments of `zcopy bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Size of the temporary test file (K, M, G suffixes: binary units).
    #[arg(long, default_value = "256M", value_parser = parse_test_size)]
    pub size: u64,
    /// Rounds per measurement; the table shows medians (9: enough for stable medians on a
    /// 2-core machine, where single rounds of identical code paths differ by 20%).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// Minimum measured seconds per sample: a run shorter than this is repeated back to back
    /// (0: every sample is a single run).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.2, value_parser = parse_min_time)]
    pub min_time: f64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Only these scenarios (repeatable): file_file, file_tcp, tcp_tcp, file_pipe, small_4k,
    /// small_64k, response_4k.
    #[arg(long = "scenario", value_name = "NAME", value_parser = parse_scenario)]
    pub scenarios: Vec<Scenario>,
    /// Where to create the temporary file (default: the system temp dir). The file system
    /// matters for file -> file: copy_file_range may reflink.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

// Argument checks live in clap's parsers, so a bad value is a usage error (exit status 2, with
// clap's usage line), not a runtime failure (1).

/// `--size`: a size of at least one byte.
fn parse_test_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err("must be at least 1 byte".into()),
        n => Ok(n),
    }
}

/// `--min-time`: 0 to 60 seconds.
fn parse_min_time(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(t.is_finite() && (0.0..=60.0).contains(&t)) {
        return Err("must be between 0 and 60 seconds".into());
    }
    Ok(t)
}

/// `--scenario`: one of the scenario names.
fn parse_scenario(s: &str) -> Result<Scenario, String> {
    Scenario::ALL
        .into_iter()
        .find(|sc| sc.id() == s)
        .ok_or_else(|| {
            let ids: Vec<String> = Scenario::ALL.iter().map(|s| s.id()).collect();
            format!("unknown scenario (expected one of {})", ids.join(", "))
        })
}

/// A directory removed on drop, holding the test files while they are created.
struct TempDir(PathBuf);

impl TempDir {
    fn new(base: &Path) -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!("zcopy-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `size` pseudo-random bytes (xorshift: no zero pages, nothing compressible), flushes
/// them to disk so writeback does not run during the measurements, and reads the file back so
/// every page is in the page cache.
fn make_test_file(path: &Path, size: u64) -> io::Result<File> {
    let mut f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    let mut r = File::open(path)?;
    let mut seen = 0u64;
    loop {
        match r.read(&mut buf)? {
            0 => break,
            n => seen += n as u64,
        }
    }
    if seen != size {
        return Err(io::Error::other(format!(
            "test file reads back {seen} bytes, wrote {size}"
        )));
    }
    Ok(r)
}

fn selected(args: &BenchArgs) -> Vec<Scenario> {
    if args.scenarios.is_empty() {
        return Scenario::ALL.to_vec();
    }
    let mut out: Vec<Scenario> = Vec::new();
    for sc in &args.scenarios {
        if !out.contains(sc) {
            out.push(*sc);
        }
    }
    out
}

/// Upper bound on the runs one sample adds up.
const MAX_REPS: u64 = 1000;

/// One round of one scenario: one sample per variant. Runs go in passes, each pass running
/// every variant whose sample is still short of `min_time` once, in an order that rotates
/// with the round and the pass, so a burst of load from elsewhere hits the methods alike.
fn measure_round(
    env: &mut Env,
    sc: Scenario,
    rows: &mut [Row],
    round: usize,
    min_time: Duration,
    bar: &ProgressBar,
) {
    let idx: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i].scenario == sc)
        .collect();
    let mut pass = 0;
    loop {
        let pending: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|i| {
                rows[*i].status == Status::Measured
                    && rows[*i].samples[round]
                        .is_none_or(|s| s.wall < min_time && s.reps < MAX_REPS)
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        let n = pending.len();
        for k in 0..n {
            let i = pending[(k + round + pass) % n];
            let row = &mut rows[i];
            bar.set_message(format!(
                "round {}: {} {}",
                round + 1,
                sc.label(),
                row.variant.label()
            ));
            match scenarios::run_once(env, sc, row.variant) {
                Ok(s) => {
                    let acc = row.samples[round].get_or_insert_with(Sample::default);
                    acc.add(&s);
                    if acc.wall >= min_time || acc.reps >= MAX_REPS {
                        bar.inc(1);
                    }
                }
                Err(e) => {
                    // This round's sample ends here, and the later rounds will not run it.
                    bar.inc(1);
                    bar.dec_length((row.samples.len() - round - 1) as u64);
                    row.samples.iter_mut().for_each(|s| *s = None);
                    row.status = match e {
                        RunError::NotApplicable(why) => Status::NotApplicable(why),
                        RunError::Failed(why) => {
                            Status::Failed(format!("round {}: {why}", round + 1))
                        }
                    };
                }
            }
        }
        pass += 1;
    }
}

/// Runs the benchmark and prints the table (and writes the JSON when asked).
pub fn run(args: &BenchArgs, quiet: bool) -> CliResult {
    let min_time = Duration::from_secs_f64(args.min_time);
    let scenarios = selected(args);
    let rounds = args.rounds as usize;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let caps = zcopy_core::capabilities();

    let t0 = Instant::now();
    let tmp = TempDir::new(&base)
        .map_err(|e| format!("creating a temporary directory in {}: {e}", base.display()))?;
    let src_path = tmp.0.join("src.bin");
    if !quiet {
        eprintln!(
            "bench: writing a {} test file in {} ...",
            fmt_bytes(args.size),
            tmp.0.display()
        );
    }
    let src =
        make_test_file(&src_path, args.size).map_err(|e| format!("{}: {e}", src_path.display()))?;
    let dst_path = tmp.0.join("dst.bin");
    let dst = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&dst_path)
        .map_err(|e| format!("{}: {e}", dst_path.display()))?;
    // The runs only use the open descriptors: unlinking now means nothing is left behind even
    // if the benchmark is interrupted.
    drop(tmp);
    let mut env = Env {
        src,
        dst,
        size: args.size,
        buf: vec![0u8; baseline::RW_BUF],
    };

    let mut rows: Vec<Row> = Vec::new();
    for sc in &scenarios {
        for v in sc.variants() {
            let status = match v {
                Variant::Engine(m) if !caps.supports(m) => Status::NotApplicable(
                    "this kernel does not support it (see zcopy probe)".into(),
                ),
                _ => Status::Measured,
            };
            rows.push(Row {
                scenario: *sc,
                variant: v,
                samples: vec![None; rounds],
                status,
            });
        }
    }

    let total = (rounds * rows.iter().filter(|r| r.status == Status::Measured).count()) as u64;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let style = ProgressStyle::with_template("bench {bar:30} {pos}/{len} {msg}")
            .expect("the template is a valid literal")
            .progress_chars("=> ");
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
    };
    let lines = !quiet && !io::stderr().is_terminal();
    for round in 0..rounds {
        let tr = Instant::now();
        for sc in &scenarios {
            measure_round(&mut env, *sc, &mut rows, round, min_time, &bar);
        }
        if lines {
            eprintln!(
                "bench: round {}/{rounds} done in {:.1} s",
                round + 1,
                tr.elapsed().as_secs_f64()
            );
        }
    }
    bar.finish_and_clear();
    drop(env);

    let meta = Meta {
        size: args.size,
        rounds,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        dir: base.display().to_string(),
        min_time: args.min_time,
    };
    rows.sort_by_key(|r| {
        (
            scenarios.iter().position(|s| *s == r.scenario),
            r.variant.order(),
        )
    });
    let findings = findings::findings(&rows);
    print!("{}", table::render(&meta, &rows, &findings));
    if !quiet {
        eprintln!("bench: done in {:.1} s", t0.elapsed().as_secs_f64());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, table::to_json(&meta, &rows, &findings).to_text())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
