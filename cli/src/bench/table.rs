//! Results: medians per row, ratios measured side by side (the median of per-round ratios, so
//! slow drift on a noisy machine hits both sides of a ratio alike), the table, and the JSON
//! document.

use std::fmt::Write as _;

use zcopy_core::Method;

use super::findings::{Finding, ResponseCost};
use super::scenarios::{Sample, Scenario, Variant};

/// What became of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Measured in every round.
    Measured,
    /// The engine said Unsupported for this fd pair.
    NotApplicable(String),
    /// A run failed; its samples are discarded.
    Failed(String),
}

/// One (scenario, variant) pair and its samples, one slot per round.
#[derive(Clone, Debug)]
pub struct Row {
    /// The scenario.
    pub scenario: Scenario,
    /// The variant.
    pub variant: Variant,
    /// Samples by round (`None` for rounds not run).
    pub samples: Vec<Option<Sample>>,
    /// Measured, not applicable, or failed.
    pub status: Status,
}

fn gb(s: &Sample) -> f64 {
    s.bytes as f64 / 1e9
}

/// Decimal GB/s.
pub fn gbps(s: &Sample) -> f64 {
    per_sec(gb(s), s)
}

/// CPU seconds (whole process) per GB.
pub fn cpu_per_gb(s: &Sample) -> f64 {
    s.cpu.as_secs_f64() / gb(s)
}

/// Syscalls of the measuring thread per GB.
pub fn sys_per_gb(s: &Sample) -> f64 {
    s.syscalls as f64 / gb(s)
}

/// Transfers per second.
pub fn ops_per_sec(s: &Sample) -> f64 {
    per_sec(s.ops as f64, s)
}

/// TCP segments sent per transfer (scenarios that count segments).
pub fn segments_per_op(s: &Sample) -> f64 {
    s.segments as f64 / s.ops as f64
}

/// Syscalls of the measuring thread per transfer.
pub fn syscalls_per_op(s: &Sample) -> f64 {
    s.syscalls as f64 / s.ops as f64
}

fn per_sec(x: f64, s: &Sample) -> f64 {
    let t = s.wall.as_secs_f64();
    if t > 0.0 { x / t } else { f64::NAN }
}

/// The median (mean of the two middle values for an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Row {
    fn measured(&self) -> bool {
        self.status == Status::Measured
    }

    /// Measured in every round (not skipped or failed).
    pub fn is_measured(&self) -> bool {
        self.measured()
    }

    /// The method the engine reported using (what Auto picked), if the rounds agree on one.
    pub fn used(&self) -> Option<Method> {
        let mut it = self.samples.iter().flatten().map(|s| s.used);
        let first = it.next()??;
        it.all(|u| u == Some(first)).then_some(first)
    }

    /// The row's label: Auto (with any cache policy) and `send_parts` show the method the
    /// engine reported.
    pub fn label(&self) -> String {
        match (self.variant, self.used()) {
            (Variant::Engine(Method::Auto), Some(m)) => format!("auto ({m})"),
            (Variant::AutoCache(_) | Variant::SendParts, Some(m)) => {
                format!("{} ({m})", self.variant.label())
            }
            _ => self.variant.label().into(),
        }
    }

    /// The median of `f` over the rounds.
    pub fn median(&self, f: fn(&Sample) -> f64) -> f64 {
        median(self.samples.iter().flatten().map(f).collect())
    }

    /// Half the range of GB/s over the rounds, relative to the median: how noisy the row is.
    pub fn spread(&self) -> f64 {
        let v: Vec<f64> = self.samples.iter().flatten().map(gbps).collect();
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(*x), hi.max(*x))
            });
        (hi - lo) / 2.0 / self.median(gbps)
    }
}

/// The median over rounds of `f(a) / f(b)`, pairing samples of the same round.
pub fn paired_ratio(a: &Row, b: &Row, f: fn(&Sample) -> f64) -> f64 {
    let ratios = a
        .samples
        .iter()
        .zip(&b.samples)
        .filter_map(|(x, y)| Some(f(x.as_ref()?) / f(y.as_ref()?)))
        .collect();
    median(ratios)
}

/// The measured row of a scenario and variant.
pub fn find(rows: &[Row], sc: Scenario, v: Variant) -> Option<&Row> {
    rows.iter()
        .find(|r| r.scenario == sc && r.variant == v && r.measured())
}

/// The ratio of a row to the read/write baseline in GB/s (ops/s for small transfers); NaN
/// where the scenario has no baseline row.
fn vs_baseline(rows: &[Row], row: &Row) -> f64 {
    match find(rows, row.scenario, Variant::Rw64k) {
        Some(base) => paired_ratio(row, base, gbps),
        None => f64::NAN,
    }
}

/// Formats a count with thousands separators.
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let s = format!("{:.0}", x);
    let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn num(x: f64, prec: usize) -> String {
    if x.is_finite() {
        format!("{x:.prec$}")
    } else {
        "-".into()
    }
}

/// A ratio with its "x", or "-" when there is none.
fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "-".into()
    }
}

/// Width of the scenario column of the table and the findings.
const SCENARIO_W: usize = 14;
/// Width of the method column (fits "auto, drop_behind (splice)").
const METHOD_W: usize = 26;

/// Writes a scenario's label in the scenario column, or, when it is longer than the column,
/// on a line of its own (so the columns of the lines below stay aligned); returns what the
/// first line of the scenario puts in that column.
fn scenario_cell(o: &mut String, label: String) -> String {
    if label.chars().count() > SCENARIO_W {
        let _ = writeln!(o, "{label}");
        String::new()
    } else {
        label
    }
}

/// Header facts printed above the table and stored in the JSON.
pub struct Meta {
    /// Test file size in bytes.
    pub size: u64,
    /// Rounds run.
    pub rounds: usize,
    /// `uname -r`.
    pub kernel: String,
    /// Online CPUs.
    pub cpus: usize,
    /// The file system of the test file.
    pub dir: String,
    /// Minimum measured seconds per sample.
    pub min_time: f64,
}

/// The table, the rows that did not apply or failed, and the findings, as printed on stdout.
pub fn render(meta: &Meta, rows: &[Row], findings: &[Finding]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "zcopy bench: {} test file in {}, {} rounds of at least {} s per sample, Linux {}, {} CPUs",
        crate::units::fmt_bytes(meta.size),
        meta.dir,
        meta.rounds,
        meta.min_time,
        meta.kernel,
        meta.cpus
    );
    let _ = writeln!(
        o,
        "medians over rounds; GB = 10^9 bytes; CPU = getrusage of the whole process (receiver threads included);"
    );
    let _ = writeln!(
        o,
        "syscalls = the sending thread's; \"vs rw64k\" = median of per-round ratios to read/write with a 64 KiB buffer"
    );
    let _ = writeln!(o);
    let head = [
        "scenario",
        "method",
        "GB/s",
        "±%",
        "CPU s/GB",
        "syscalls/GB",
        "vs rw64k",
        "ops/s",
    ];
    let w = [SCENARIO_W, METHOD_W, 7, 5, 9, 12, 9, 10];
    let line = |cells: [String; 8]| {
        let mut l = format!("{:<w0$} {:<w1$}", cells[0], cells[1], w0 = w[0], w1 = w[1]);
        for (c, width) in cells.iter().zip(w).skip(2) {
            let _ = write!(l, " {c:>width$}");
        }
        l.trim_end().to_owned()
    };
    let _ = writeln!(o, "{}", line(head.map(String::from)));
    let _ = writeln!(o, "{}", line(w.map(|n| "-".repeat(n))));
    let mut last = None;
    for r in rows.iter().filter(|r| r.measured()) {
        let label = if last == Some(r.scenario) {
            String::new()
        } else {
            scenario_cell(&mut o, r.scenario.label())
        };
        last = Some(r.scenario);
        let ops = if r.scenario.counts_ops() {
            thousands(r.median(ops_per_sec))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "{}",
            line([
                label,
                r.label(),
                num(r.median(gbps), 2),
                num(r.spread() * 100.0, 0),
                num(r.median(cpu_per_gb), 3),
                thousands(r.median(sys_per_gb)),
                ratio(vs_baseline(rows, r)),
                ops,
            ])
        );
    }
    let skipped: Vec<&Row> = rows.iter().filter(|r| !r.measured()).collect();
    if !skipped.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "not measured:");
        for r in skipped {
            let (what, why) = match &r.status {
                Status::NotApplicable(why) => ("n/a", why.as_str()),
                Status::Failed(why) => ("FAILED", why.as_str()),
                Status::Measured => continue,
            };
            let _ = writeln!(
                o,
                "  {:<SCENARIO_W$} {:<METHOD_W$} {what}: {why}",
                r.scenario.label(),
                r.variant.label()
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "findings:");
    for f in findings {
        for (i, line) in f.lines().iter().enumerate() {
            let label = if i > 0 {
                String::new()
            } else if f.scenario.label().chars().count() > SCENARIO_W {
                let _ = writeln!(o, "  {}", f.scenario.label());
                String::new()
            } else {
                f.scenario.label()
            };
            let _ = writeln!(o, "  {label:<SCENARIO_W$} {line}");
        }
    }
    o
}

fn finding_json(f: &Finding) -> Json {
    let (auto, ratio) = match &f.auto {
        Some((m, r)) => (Json::Str(m.clone()), Json::Num(*r)),
        None => (Json::Null, Json::Null),
    };
    let (g, c) = match f.vs_rw64k {
        Some((g, c)) => (Json::Num(g), Json::Num(c)),
        None => (Json::Null, Json::Null),
    };
    let (fastest, fastest_gbps) = match &f.fastest {
        Some((name, g)) => (Json::Str(name.clone()), Json::Num(*g)),
        None => (Json::Null, Json::Null),
    };
    let cache = f.cache.as_ref().map_or(Json::Null, |c| {
        Json::Obj(vec![
            (
                "vs_keep_gbps",
                Json::Obj(
                    c.vs_keep
                        .iter()
                        .map(|(p, r)| (p.name(), Json::Num(*r)))
                        .collect(),
                ),
            ),
            ("noise", Json::Num(c.noise)),
        ])
    });
    let response = f.response.as_ref().map_or(Json::Null, |r| {
        let per_op = |pick: fn(&ResponseCost) -> f64| {
            Json::Obj(vec![
                (r.engine.id, Json::Num(pick(&r.engine))),
                (r.reference.id, Json::Num(pick(&r.reference))),
            ])
        };
        Json::Obj(vec![
            ("segments_per_response", per_op(|c| c.segments)),
            ("syscalls_per_response", per_op(|c| c.syscalls)),
            ("ops_ratio", Json::Num(r.ops_ratio)),
            ("noise", Json::Num(r.noise)),
            ("gap_is_real", Json::Bool(r.gap_is_real())),
        ])
    });
    Json::Obj(vec![
        ("scenario", Json::Str(f.scenario.id())),
        ("fastest", fastest),
        ("fastest_gbps", fastest_gbps),
        ("auto_method", auto),
        ("auto_vs_fastest_explicit", ratio),
        ("noise", Json::Num(f.noise)),
        ("auto_gap_is_real", Json::Bool(f.auto_gap_is_real())),
        ("auto_vs_rw64k_gbps", g),
        ("auto_vs_rw64k_cpu_per_gb", c),
        ("cache", cache),
        ("response", response),
        ("text", Json::Str(f.text())),
    ])
}

/// A JSON value, enough to write the results document.
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (non-finite numbers are written as null).
    Num(f64),
    /// An integer.
    Int(u64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in order.
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    fn write(&self, o: &mut String) {
        match self {
            Json::Null => o.push_str("null"),
            Json::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
            Json::Num(x) if x.is_finite() => {
                let _ = write!(o, "{x}");
            }
            Json::Num(_) => o.push_str("null"),
            Json::Int(n) => {
                let _ = write!(o, "{n}");
            }
            Json::Str(s) => {
                o.push('"');
                for c in s.chars() {
                    match c {
                        '"' => o.push_str("\\\""),
                        '\\' => o.push_str("\\\\"),
                        '\n' => o.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(o, "\\u{:04x}", c as u32);
                        }
                        c => o.push(c),
                    }
                }
                o.push('"');
            }
            Json::Arr(items) => {
                o.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    it.write(o);
                }
                o.push(']');
            }
            Json::Obj(fields) => {
                o.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    Json::Str((*k).into()).write(o);
                    o.push(':');
                    v.write(o);
                }
                o.push('}');
            }
        }
    }

    /// The document as text.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        self.write(&mut o);
        o.push('\n');
        o
    }
}

/// The machine-readable results: meta, one object per row (medians and every sample), checks.
pub fn to_json(meta: &Meta, rows: &[Row], findings: &[Finding]) -> Json {
    let row = |r: &Row| {
        let (status, reason) = match &r.status {
            Status::Measured => ("measured", Json::Null),
            Status::NotApplicable(w) => ("not_applicable", Json::Str(w.clone())),
            Status::Failed(w) => ("failed", Json::Str(w.clone())),
        };
        let kind = match r.variant {
            Variant::Engine(_) | Variant::Relay | Variant::AutoCache(_) | Variant::SendParts => {
                "engine"
            }
            Variant::Rw64k => "baseline",
            Variant::LibcSendfile | Variant::WriteSendfile => "reference",
        };
        let segments = r.scenario.counts_segments();
        let samples = r
            .samples
            .iter()
            .flatten()
            .map(|s| {
                let mut fields = vec![
                    ("bytes", Json::Int(s.bytes)),
                    ("seconds", Json::Num(s.wall.as_secs_f64())),
                    ("cpu_seconds", Json::Num(s.cpu.as_secs_f64())),
                    ("syscalls", Json::Int(s.syscalls)),
                    ("ops", Json::Int(s.ops)),
                    ("reps", Json::Int(s.reps)),
                ];
                if segments {
                    fields.push(("segments", Json::Int(s.segments)));
                }
                Json::Obj(fields)
            })
            .collect();
        let measured = r.measured();
        let stat = |f: fn(&Sample) -> f64| {
            if measured {
                Json::Num(r.median(f))
            } else {
                Json::Null
            }
        };
        Json::Obj(vec![
            ("scenario", Json::Str(r.scenario.id())),
            ("method", Json::Str(r.variant.id().into())),
            ("kind", Json::Str(kind.into())),
            (
                "engine_method",
                r.used().map_or(Json::Null, |m| Json::Str(m.name().into())),
            ),
            ("status", Json::Str(status.into())),
            ("reason", reason),
            ("gbps", stat(gbps)),
            ("cpu_s_per_gb", stat(cpu_per_gb)),
            ("syscalls_per_gb", stat(sys_per_gb)),
            (
                "ratio_rw64k",
                if measured {
                    Json::Num(vs_baseline(rows, r))
                } else {
                    Json::Null
                },
            ),
            (
                "ops_per_sec",
                if measured && r.scenario.counts_ops() {
                    Json::Num(r.median(ops_per_sec))
                } else {
                    Json::Null
                },
            ),
            (
                "segments_per_op",
                if measured && segments {
                    Json::Num(r.median(segments_per_op))
                } else {
                    Json::Null
                },
            ),
            ("samples", Json::Arr(samples)),
        ])
    };
    Json::Obj(vec![
        ("zcopy_version", Json::Str(zcopy_core::VERSION.into())),
        ("size", Json::Int(meta.size)),
        ("rounds", Json::Int(meta.rounds as u64)),
        ("kernel", Json::Str(meta.kernel.clone())),
        ("cpus", Json::Int(meta.cpus as u64)),
        ("min_time", Json::Num(meta.min_time)),
        ("rows", Json::Arr(rows.iter().map(row).collect())),
        (
            "findings",
            Json::Arr(findings.iter().map(finding_json).collect()),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        assert_eq!(median(vec![f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(32768.4), "32,768");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(f64::NAN), "-");
    }

    #[test]
    fn json_text() {
        let j = Json::Obj(vec![
            (
                "a",
                Json::Arr(vec![Json::Int(1), Json::Num(0.5), Json::Num(f64::NAN)]),
            ),
            ("b", Json::Str("x\"y\\\n".into())),
            ("c", Json::Bool(true)),
            ("d", Json::Null),
        ]);
        assert_eq!(
            j.to_text(),
            "{\"a\":[1,0.5,null],\"b\":\"x\\\"y\\\\\\n\",\"c\":true,\"d\":null}\n"
        );
    }
}
