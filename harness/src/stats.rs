//! Latency recording: hdrhistogram in microseconds, summarised as percentiles.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly (longer ones saturate): 10 minutes.
const MAX_LATENCY_US: u64 = 600_000_000;

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
}
