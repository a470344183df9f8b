//! Latency recording: hdrhistogram in microseconds, summarised as percentiles and as a
//! compact CDF for plots.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly (longer ones saturate): 10 minutes.
const MAX_LATENCY_US: u64 = 600_000_000;

/// Quantiles of a [`Latency::cdf`]: every hundredth below 0.99, then the tail.
const CDF_STEPS: u32 = 100;
const CDF_TAIL: [f64; 3] = [0.995, 0.999, 0.9999];

/// Most points in a [`Latency::cdf`]: the steps, the tail and the maximum.
pub const MAX_CDF_POINTS: usize = CDF_STEPS as usize + CDF_TAIL.len() + 1;
const _: () = assert!(MAX_CDF_POINTS <= 128, "a CDF stays small in the JSON");

/// A latency histogram in microseconds.
#[derive(Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
        }
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        self.hist.saturating_record(us);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let q = |p: f64| {
            if self.hist.is_empty() {
                0
            } else {
                self.hist.value_at_quantile(p)
            }
        };
        LatencySummary {
            count: self.hist.len(),
            latency_us_p50: q(0.50),
            latency_us_p90: q(0.90),
            latency_us_p99: q(0.99),
            latency_us_p999: q(0.999),
            latency_us_max: self.hist.max(),
            latency_us_mean: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.mean()
            },
        }
    }

    /// The distribution at fixed quantiles (0, 0.01, ..., 0.99, 0.995, 0.999, 0.9999 and
    /// 1 for the maximum), at most [`MAX_CDF_POINTS`]. Of a run of points with the same
    /// latency only the first and the last are kept, so a narrow distribution stays
    /// short. Empty when nothing was recorded. Both fields never decrease.
    pub fn cdf(&self) -> Vec<CdfPoint> {
        if self.hist.is_empty() {
            return Vec::new();
        }
        let quantiles = (0..CDF_STEPS)
            .map(|i| f64::from(i) / f64::from(CDF_STEPS))
            .chain(CDF_TAIL)
            .chain([1.0]);
        let mut points: Vec<CdfPoint> = Vec::with_capacity(MAX_CDF_POINTS);
        for quantile in quantiles {
            let latency_us = self.hist.value_at_quantile(quantile);
            let point = CdfPoint {
                quantile,
                latency_us,
            };
            // Drop the middle of three points with the same latency.
            if let [.., a, b] = points.as_slice()
                && a.latency_us == latency_us
                && b.latency_us == latency_us
            {
                *points.last_mut().expect("two points") = point;
            } else {
                points.push(point);
            }
        }
        assert!(points.len() <= MAX_CDF_POINTS);
        points
    }
}

/// One point of a latency CDF: a `quantile` of the operations took at most `latency_us`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdfPoint {
    pub quantile: f64,
    pub latency_us: u64,
}

/// Percentiles of one operation's latency.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
    pub latency_us_mean: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latency::default();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.latency_us_p50, 500);
        assert_eq!(s.latency_us_p99, 990);
        assert_eq!(s.latency_us_max, 1000);
        let mut other = Latency::default();
        other.record(Duration::from_secs(2));
        l.merge(&other);
        let max = l.summary().latency_us_max;
        assert!(
            (2_000_000..2_002_000).contains(&max),
            "3 significant digits: {max}"
        );
        assert_eq!(Latency::default().summary().latency_us_p99, 0);
    }

    #[test]
    fn cdf_of_a_known_distribution() {
        let mut l = Latency::default();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let cdf = l.cdf();
        assert_eq!(
            cdf.len(),
            MAX_CDF_POINTS,
            "1000 distinct values: no run to merge"
        );
        assert_eq!(
            cdf[0],
            CdfPoint {
                quantile: 0.0,
                latency_us: 1
            }
        );
        let at = |q: f64| cdf.iter().find(|p| p.quantile == q).unwrap().latency_us;
        assert_eq!(at(0.5), 500);
        assert_eq!(at(0.99), 990);
        assert_eq!(at(1.0), 1000);
        for w in cdf.windows(2) {
            assert!(w[0].quantile < w[1].quantile, "{w:?}");
            assert!(w[0].latency_us <= w[1].latency_us, "{w:?}");
        }
        assert!(Latency::default().cdf().is_empty());
    }

    #[test]
    fn cdf_keeps_the_ends_of_a_run_of_equal_latencies() {
        let mut l = Latency::default();
        for _ in 0..90 {
            l.record(Duration::from_micros(10));
        }
        for _ in 0..10 {
            l.record(Duration::from_micros(500));
        }
        let points: Vec<(f64, u64)> = l.cdf().iter().map(|p| (p.quantile, p.latency_us)).collect();
        assert_eq!(
            points,
            [(0.0, 10), (0.9, 10), (0.91, 500), (1.0, 500)],
            "the 90 fastest are 10 µs, the rest 500 µs"
        );
    }
}
