//! What a run says, in users' terms: for each scenario the fastest method, what Auto chose and
//! how close it came, what that is worth against a plain read/write loop, what the page-cache
//! policies cost on a cached file, what a response sent in one call saves in segments and
//! time, and whether a difference is larger than the run's own noise — numbers and judgement
//! from one run, never pass/fail targets (those belong to the project's own checks, not to the
//! product's output).

use zcopy_core::{Cache, Method};

use super::scenarios::{Scenario, Variant};
use super::table::{
    Row, cpu_per_gb, find, gbps, ops_per_sec, paired_ratio, segments_per_op, syscalls_per_op,
};

/// What one scenario's rows say.
pub struct Finding {
    /// The scenario.
    pub scenario: Scenario,
    /// The fastest of the engine's methods (Auto included) and its median GB/s; `None` where
    /// the scenario does not run the method list (the response scenario).
    pub fastest: Option<(String, f64)>,
    /// What Auto used, and its GB/s as a paired ratio to the fastest explicit method.
    pub auto: Option<(String, f64)>,
    /// The larger ±% of the two rows compared: differences below it are noise in this run.
    pub noise: f64,
    /// Auto against the read/write 64 KiB loop: (GB/s ratio, CPU/GB ratio).
    pub vs_rw64k: Option<(f64, f64)>,
    /// Auto with the page-cache policies that release pages, against Auto with keep.
    pub cache: Option<CachePolicies>,
    /// `send_parts` against a `write` + `sendfile` loop, per response.
    pub response: Option<Responses>,
}

/// Auto with each page-cache policy against Auto with keep, on the same cached file.
pub struct CachePolicies {
    /// Each policy's GB/s as a paired ratio to keep's.
    pub vs_keep: Vec<(Cache, f64)>,
    /// The largest ±% of the rows compared.
    pub noise: f64,
}

/// One response variant's per-response costs.
pub struct ResponseCost {
    /// The row's label.
    pub label: String,
    /// The variant's JSON id.
    pub id: &'static str,
    /// Median TCP segments per response.
    pub segments: f64,
    /// Median syscalls of the sending thread per response.
    pub syscalls: f64,
}

/// The response scenario: the engine's one call against what users write today.
pub struct Responses {
    /// `send_parts`.
    pub engine: ResponseCost,
    /// `write` + `sendfile`.
    pub reference: ResponseCost,
    /// The engine's responses per second as a paired ratio to the reference's.
    pub ops_ratio: f64,
    /// The larger ±% of the two rows.
    pub noise: f64,
}

impl Responses {
    /// Whether the ops/s ratio is further from 1 than the noise.
    pub fn gap_is_real(&self) -> bool {
        (1.0 - self.ops_ratio).abs() > self.noise
    }
}

/// How a difference compares with the run's noise, in words.
fn verdict(real: bool) -> &'static str {
    if real {
        "a real difference"
    } else {
        "within this run's noise"
    }
}

impl Finding {
    /// Whether Auto's distance from the fastest explicit method is more than noise.
    pub fn auto_gap_is_real(&self) -> bool {
        self.auto
            .as_ref()
            .is_some_and(|(_, r)| (1.0 - r).abs() > self.noise)
    }

    /// The finding as short lines of prose.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((name, best)) = &self.fastest {
            out.push(format!("fastest: {name}, {best:.2} GB/s"));
        }
        if let Some((auto, ratio)) = &self.auto {
            out.push(format!(
                "auto chose {auto}: {ratio:.2}x the best explicit method, {} (±{:.0} %)",
                verdict(self.auto_gap_is_real()),
                self.noise * 100.0
            ));
        }
        if let Some((g, c)) = self.vs_rw64k {
            out.push(format!(
                "auto against a 64 KiB read/write loop: {g:.2}x GB/s at {c:.2}x CPU per GB"
            ));
        }
        if let Some(c) = &self.cache {
            let ratios: Vec<String> = c
                .vs_keep
                .iter()
                .map(|(p, r)| format!("{} {r:.2}x", p.name()))
                .collect();
            out.push(format!(
                "cache policies on a cached file: {} of keep's GB/s (±{:.0} % noise)",
                ratios.join(", "),
                c.noise * 100.0
            ));
        }
        if let Some(r) = &self.response {
            let (e, b) = (&r.engine, &r.reference);
            out.push(format!(
                "request/response on a keep-alive connection: {} {:.2} TCP segments and {:.1} \
                 syscalls each, {} {:.2} and {:.1}",
                e.label, e.segments, e.syscalls, b.label, b.segments, b.syscalls
            ));
            out.push(format!(
                "{}: {:.2}x the responses per second of {}, {} (±{:.0} %)",
                e.label,
                r.ops_ratio,
                b.label,
                verdict(r.gap_is_real()),
                r.noise * 100.0
            ));
        }
        out
    }

    /// [`Finding::lines`] as one sentence each, joined.
    pub fn text(&self) -> String {
        self.lines().join(". ") + "."
    }
}

/// The findings of every scenario that has measured engine rows.
pub fn findings(rows: &[Row]) -> Vec<Finding> {
    let mut out = Vec::new();
    for sc in Scenario::ALL {
        // The method list: cache-policy rows answer another question (their own line).
        let engine = |r: &&Row| {
            r.scenario == sc && r.is_measured() && matches!(r.variant, Variant::Engine(_))
        };
        let fastest = rows
            .iter()
            .filter(engine)
            .max_by(|a, b| a.median(gbps).total_cmp(&b.median(gbps)));
        let auto_row = find(rows, sc, Variant::Engine(Method::Auto));
        let best_explicit = rows
            .iter()
            .filter(|r| engine(r) && r.variant.is_explicit())
            .max_by(|a, b| a.median(gbps).total_cmp(&b.median(gbps)));
        let (auto, noise) = match (auto_row, best_explicit) {
            (Some(a), Some(b)) => (
                Some((
                    a.used().map_or("?".into(), |m| m.name().to_string()),
                    paired_ratio(a, b, gbps),
                )),
                a.spread().max(b.spread()),
            ),
            _ => (None, fastest.map_or(f64::NAN, Row::spread)),
        };
        let vs_rw64k = match (auto_row, find(rows, sc, Variant::Rw64k)) {
            (Some(a), Some(base)) => Some((
                paired_ratio(a, base, gbps),
                paired_ratio(a, base, cpu_per_gb),
            )),
            _ => None,
        };
        let cache = auto_row.and_then(|keep| cache_policies(rows, sc, keep));
        let response = responses(rows, sc);
        if fastest.is_none() && response.is_none() {
            continue;
        }
        out.push(Finding {
            scenario: sc,
            fastest: fastest.map(|r| (r.label(), r.median(gbps))),
            auto,
            noise,
            vs_rw64k,
            cache,
            response,
        });
    }
    out
}

/// The cache-policy rows of a scenario against Auto with keep (`None` without any).
fn cache_policies(rows: &[Row], sc: Scenario, keep: &Row) -> Option<CachePolicies> {
    let measured: Vec<(Cache, &Row)> = [Cache::DropBehind, Cache::Direct]
        .into_iter()
        .filter_map(|c| Some((c, find(rows, sc, Variant::AutoCache(c))?)))
        .collect();
    if measured.is_empty() {
        return None;
    }
    Some(CachePolicies {
        vs_keep: measured
            .iter()
            .map(|(c, r)| (*c, paired_ratio(r, keep, gbps)))
            .collect(),
        noise: measured
            .iter()
            .map(|(_, r)| r.spread())
            .fold(keep.spread(), f64::max),
    })
}

/// `send_parts` against `write` + `sendfile` where a scenario measured both.
fn responses(rows: &[Row], sc: Scenario) -> Option<Responses> {
    if !sc.counts_segments() {
        return None;
    }
    let engine = find(rows, sc, Variant::SendParts)?;
    let reference = find(rows, sc, Variant::WriteSendfile)?;
    let cost = |r: &Row| ResponseCost {
        label: r.variant.label().into(),
        id: r.variant.id(),
        segments: r.median(segments_per_op),
        syscalls: r.median(syscalls_per_op),
    };
    Some(Responses {
        engine: cost(engine),
        reference: cost(reference),
        ops_ratio: paired_ratio(engine, reference, ops_per_sec),
        noise: engine.spread().max(reference.spread()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::scenarios::Sample;
    use crate::bench::table::Status;

    /// A measured row whose rounds took these seconds for 1 GB (or for `ops` transfers).
    fn row(sc: Scenario, v: Variant, secs: &[f64], ops: u64, segments: u64) -> Row {
        Row {
            scenario: sc,
            variant: v,
            samples: secs
                .iter()
                .map(|s| {
                    Some(Sample {
                        bytes: 1_000_000_000,
                        wall: Duration::from_secs_f64(*s),
                        cpu: Duration::from_secs_f64(*s),
                        syscalls: 4 * ops,
                        ops,
                        segments,
                        used: Some(Method::Sendfile),
                        reps: 1,
                    })
                })
                .collect(),
            status: Status::Measured,
        }
    }

    #[test]
    fn cache_policies_are_paired_ratios_to_keep() {
        let sc = Scenario::FileTcp;
        let rows = [
            row(
                sc,
                Variant::Engine(Method::Sendfile),
                &[0.5, 0.5, 0.5],
                1,
                0,
            ),
            row(sc, Variant::Engine(Method::Auto), &[1.0, 2.0, 1.0], 1, 0),
            row(
                sc,
                Variant::AutoCache(Cache::DropBehind),
                &[2.0, 4.0, 2.0],
                1,
                0,
            ),
            row(
                sc,
                Variant::AutoCache(Cache::Direct),
                &[1.0, 2.0, 1.0],
                1,
                0,
            ),
        ];
        let f = findings(&rows);
        assert_eq!(f.len(), 1);
        let c = f[0].cache.as_ref().expect("cache policies");
        assert_eq!(
            c.vs_keep,
            vec![(Cache::DropBehind, 0.5), (Cache::Direct, 1.0)]
        );
        // The policies are not methods: the fastest method stays a method.
        assert_eq!(
            f[0].fastest.as_ref().map(|x| x.0.as_str()),
            Some("sendfile")
        );
        let text = f[0].text();
        assert!(
            text.contains(
                "cache policies on a cached file: drop_behind 0.50x, direct 1.00x of keep's GB/s (±"
            ),
            "{text}"
        );
    }

    #[test]
    fn responses_report_segments_and_ops_without_pass_fail() {
        let sc = Scenario::Response;
        let rows = [
            row(sc, Variant::SendParts, &[1.0, 1.0, 1.0], 1000, 1000),
            row(sc, Variant::WriteSendfile, &[2.0, 2.0, 2.0], 1000, 2000),
        ];
        let f = findings(&rows);
        assert_eq!(f.len(), 1);
        assert!(f[0].fastest.is_none() && f[0].auto.is_none());
        let r = f[0].response.as_ref().expect("responses");
        assert_eq!((r.engine.segments, r.reference.segments), (1.0, 2.0));
        assert_eq!(r.ops_ratio, 2.0);
        assert!(r.gap_is_real());
        let lines = f[0].lines();
        assert_eq!(
            lines,
            [
                "request/response on a keep-alive connection: send_parts 1.00 TCP segments and \
                 4.0 syscalls each, write + sendfile (libc) 2.00 and 4.0",
                "send_parts: 2.00x the responses per second of write + sendfile (libc), a real \
                 difference (±0 %)",
            ]
        );
        assert!(!f[0].text().contains("PASS") && !f[0].text().contains("FAIL"));
    }
}
