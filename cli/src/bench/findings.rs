//! What a run says, in users' terms: for each scenario the fastest method, what Auto chose and
//! how close it came, what that is worth against a plain read/write loop, and whether a
//! difference is larger than the run's own noise — numbers and judgement from one run, never
//! pass/fail targets (those belong to the project's own checks, not to the product's output).

use zcopy_core::Method;

use super::scenarios::{Scenario, Variant};
use super::table::{Row, cpu_per_gb, find, gbps, paired_ratio};

/// What one scenario's rows say.
pub struct Finding {
    /// The scenario.
    pub scenario: Scenario,
    /// The fastest engine method (Auto included) and its median GB/s.
    pub fastest: (String, f64),
    /// What Auto used, and its GB/s as a paired ratio to the fastest explicit method.
    pub auto: Option<(String, f64)>,
    /// The larger ±% of the two rows compared: differences below it are noise in this run.
    pub noise: f64,
    /// Auto against the read/write 64 KiB loop: (GB/s ratio, CPU/GB ratio).
    pub vs_rw64k: Option<(f64, f64)>,
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
        let (name, best) = &self.fastest;
        let mut out = vec![format!("fastest: {name}, {best:.2} GB/s")];
        if let Some((auto, ratio)) = &self.auto {
            let verdict = if self.auto_gap_is_real() {
                "a real difference"
            } else {
                "within this run's noise"
            };
            out.push(format!(
                "auto chose {auto}: {ratio:.2}x the best explicit method, {verdict} (±{:.0} %)",
                self.noise * 100.0
            ));
        }
        if let Some((g, c)) = self.vs_rw64k {
            out.push(format!(
                "auto against a 64 KiB read/write loop: {g:.2}x GB/s at {c:.2}x CPU per GB"
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
        let engine = |r: &&Row| {
            r.scenario == sc && r.is_measured() && matches!(r.variant, Variant::Engine(_))
        };
        let Some(fastest) = rows
            .iter()
            .filter(engine)
            .max_by(|a, b| a.median(gbps).total_cmp(&b.median(gbps)))
        else {
            continue;
        };
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
            _ => (None, fastest.spread()),
        };
        let vs_rw64k = match (auto_row, find(rows, sc, Variant::Rw64k)) {
            (Some(a), Some(base)) => Some((
                paired_ratio(a, base, gbps),
                paired_ratio(a, base, cpu_per_gb),
            )),
            _ => None,
        };
        out.push(Finding {
            scenario: sc,
            fastest: (fastest.label(), fastest.median(gbps)),
            auto,
            noise,
            vs_rw64k,
        });
    }
    out
}
