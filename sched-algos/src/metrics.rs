//! The scheduler's Prometheus metrics, with upstream's names and buckets
//! (pkg/scheduler/metrics/metrics.go):
//! - `scheduler_schedule_attempts_total{result, profile}`: cycles by outcome,
//!   `scheduled`, `unschedulable` or `error`;
//! - `scheduler_scheduling_attempt_duration_seconds{result, profile}`: a histogram of
//!   cycle latency (snapshot, filter, score, assume; not binding), buckets 1 ms
//!   doubling to 16 s;
//! - `scheduler_pending_pods{queue}`: pods waiting, `active`, `backoff` or
//!   `unschedulable` (waiting for a cluster event, five minutes at most);
//! - `scheduler_preemption_attempts_total` and `scheduler_preemption_victims` (a
//!   histogram of victims per preemption, buckets 1 doubling to 64);
//! - `scheduler_framework_extension_point_duration_seconds{extension_point, status,
//!   profile}` for the binding cycle's points (Reserve, Permit, PreBind, Bind with its
//!   API call, PostBind), buckets 0.1 ms doubling to 204.8 ms; the scheduling cycle's
//!   points run in pure code that reads no clock, and the whole cycle is the attempt
//!   duration above;
//! - `scheduler_permit_wait_duration_seconds{result}`: how long pods held in Permit
//!   waited, by verdict (`Success`, `Unschedulable`, `Error`).
//!
//! [`SchedulerMetrics::render`] writes the Prometheus text format; `bosun up` appends
//! it to the API server's `/metrics`, `bosun scheduler --metrics-listen` serves it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upstream's `ExponentialBuckets(0.001, 2, 15)`.
const ATTEMPT_BUCKETS_S: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384,
];
/// Upstream's `ExponentialBuckets(0.0001, 2, 12)`.
const EXTENSION_POINT_BUCKETS_S: [f64; 12] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
];
/// Upstream's `ExponentialBuckets(1, 2, 7)`.
const VICTIM_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// A cycle's outcome, as upstream labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttemptResult {
    Scheduled,
    Unschedulable,
    Error,
}

impl AttemptResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Histogram<const N: usize> {
    /// Cumulative counts per bucket bound.
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl<const N: usize> Histogram<N> {
    fn observe(&mut self, bounds: &[f64; N], v: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; N];
        }
        for (b, bound) in self.buckets.iter_mut().zip(bounds) {
            if v <= *bound {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; N]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in bounds.iter().enumerate() {
            let c = self.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

#[derive(Default)]
struct Inner {
    attempts: BTreeMap<(AttemptResult, String), Histogram<15>>,
    pending_active: u64,
    pending_backoff: u64,
    pending_unschedulable: u64,
    preemption_attempts: u64,
    victims: Histogram<7>,
    /// By (extension point, status code, profile).
    extension_points: BTreeMap<(&'static str, &'static str, String), Histogram<12>>,
    /// By status code.
    permit_wait: BTreeMap<&'static str, Histogram<15>>,
}

/// The scheduler's metrics registry; shared between the scheduling loop and whoever
/// serves `/metrics`.
#[derive(Default)]
pub struct SchedulerMetrics {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SchedulerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerMetrics").finish_non_exhaustive()
    }
}

impl SchedulerMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one scheduling attempt of `profile` that took `seconds`.
    pub fn attempt(&self, profile: &str, result: AttemptResult, seconds: f64) {
        self.lock()
            .attempts
            .entry((result, profile.to_owned()))
            .or_default()
            .observe(&ATTEMPT_BUCKETS_S, seconds);
    }

    /// Sets the queue sizes.
    pub fn pending(&self, active: usize, backoff: usize, unschedulable: usize) {
        let mut m = self.lock();
        m.pending_active = active as u64;
        m.pending_backoff = backoff as u64;
        m.pending_unschedulable = unschedulable as u64;
    }

    /// Records a preemption that evicts `victims` pods.
    pub fn preemption(&self, victims: usize) {
        let mut m = self.lock();
        m.preemption_attempts += 1;
        m.victims.observe(&VICTIM_BUCKETS, victims as f64);
    }

    /// Records one run of a binding-cycle extension point (`"Reserve"`, `"Permit"`,
    /// `"PreBind"`, `"Bind"`, `"PostBind"`) that ended with `status` (a
    /// [`crate::Code`] name).
    pub fn extension_point(
        &self,
        profile: &str,
        point: &'static str,
        status: &'static str,
        seconds: f64,
    ) {
        self.lock()
            .extension_points
            .entry((point, status, profile.to_owned()))
            .or_default()
            .observe(&EXTENSION_POINT_BUCKETS_S, seconds);
    }

    /// Records how long a pod waited in Permit and the verdict's code name.
    pub fn permit_wait(&self, result: &'static str, seconds: f64) {
        self.lock()
            .permit_wait
            .entry(result)
            .or_default()
            .observe(&ATTEMPT_BUCKETS_S, seconds);
    }

    /// How many attempts of this result were recorded, over all profiles.
    pub fn attempts(&self, result: AttemptResult) -> u64 {
        self.lock()
            .attempts
            .iter()
            .filter(|((r, _), _)| *r == result)
            .map(|(_, h)| h.count)
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        out.push_str(
            "# HELP scheduler_schedule_attempts_total Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.\n# TYPE scheduler_schedule_attempts_total counter\n",
        );
        for ((result, profile), h) in &m.attempts {
            let _ = writeln!(
                out,
                "scheduler_schedule_attempts_total{{profile=\"{profile}\",result=\"{}\"}} {}",
                result.as_str(),
                h.count
            );
        }
        out.push_str(
            "# HELP scheduler_scheduling_attempt_duration_seconds Scheduling attempt latency in seconds (scheduling algorithm + binding)\n# TYPE scheduler_scheduling_attempt_duration_seconds histogram\n",
        );
        for ((result, profile), h) in &m.attempts {
            let labels = format!("profile=\"{profile}\",result=\"{}\"", result.as_str());
            h.render(
                &mut out,
                "scheduler_scheduling_attempt_duration_seconds",
                &labels,
                &ATTEMPT_BUCKETS_S,
            );
        }
        let _ = write!(
            out,
            "# HELP scheduler_pending_pods Number of pending pods, by the queue type.\n# TYPE scheduler_pending_pods gauge\nscheduler_pending_pods{{queue=\"active\"}} {}\nscheduler_pending_pods{{queue=\"backoff\"}} {}\nscheduler_pending_pods{{queue=\"unschedulable\"}} {}\n",
            m.pending_active, m.pending_backoff, m.pending_unschedulable
        );
        let _ = write!(
            out,
            "# HELP scheduler_preemption_attempts_total Total preemption attempts in the cluster till now\n# TYPE scheduler_preemption_attempts_total counter\nscheduler_preemption_attempts_total {}\n",
            m.preemption_attempts
        );
        out.push_str(
            "# HELP scheduler_preemption_victims Number of selected preemption victims\n# TYPE scheduler_preemption_victims histogram\n",
        );
        m.victims.render(
            &mut out,
            "scheduler_preemption_victims",
            "",
            &VICTIM_BUCKETS,
        );
        out.push_str(
            "# HELP scheduler_framework_extension_point_duration_seconds Latency for running all plugins of a specific extension point.\n# TYPE scheduler_framework_extension_point_duration_seconds histogram\n",
        );
        for ((point, status, profile), h) in &m.extension_points {
            let labels =
                format!("extension_point=\"{point}\",profile=\"{profile}\",status=\"{status}\"");
            h.render(
                &mut out,
                "scheduler_framework_extension_point_duration_seconds",
                &labels,
                &EXTENSION_POINT_BUCKETS_S,
            );
        }
        out.push_str(
            "# HELP scheduler_permit_wait_duration_seconds Duration of waiting on permit.\n# TYPE scheduler_permit_wait_duration_seconds histogram\n",
        );
        for (result, h) in &m.permit_wait {
            let labels = format!("result=\"{result}\"");
            h.render(
                &mut out,
                "scheduler_permit_wait_duration_seconds",
                &labels,
                &ATTEMPT_BUCKETS_S,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names_and_cumulative_buckets() {
        let m = SchedulerMetrics::default();
        m.attempt("default-scheduler", AttemptResult::Scheduled, 0.0015);
        m.attempt("default-scheduler", AttemptResult::Scheduled, 0.5);
        m.attempt("default-scheduler", AttemptResult::Unschedulable, 0.003);
        m.pending(3, 2, 1);
        m.preemption(2);
        m.extension_point("default-scheduler", "Bind", "Success", 0.0003);
        m.permit_wait("Unschedulable", 0.02);
        let text = m.render();
        for line in [
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 2",
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"} 1",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"0.001\"} 0",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"0.002\"} 1",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"0.512\"} 2",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"+Inf\"} 2",
            "scheduler_scheduling_attempt_duration_seconds_count{profile=\"default-scheduler\",result=\"scheduled\"} 2",
            "scheduler_pending_pods{queue=\"active\"} 3",
            "scheduler_pending_pods{queue=\"backoff\"} 2",
            "scheduler_pending_pods{queue=\"unschedulable\"} 1",
            "scheduler_preemption_attempts_total 1",
            "scheduler_preemption_victims_bucket{le=\"1\"} 0",
            "scheduler_preemption_victims_bucket{le=\"2\"} 1",
            "scheduler_preemption_victims_count 1",
            "scheduler_framework_extension_point_duration_seconds_bucket{extension_point=\"Bind\",profile=\"default-scheduler\",status=\"Success\",le=\"0.0002\"} 0",
            "scheduler_framework_extension_point_duration_seconds_bucket{extension_point=\"Bind\",profile=\"default-scheduler\",status=\"Success\",le=\"0.0004\"} 1",
            "scheduler_permit_wait_duration_seconds_bucket{result=\"Unschedulable\",le=\"0.016\"} 0",
            "scheduler_permit_wait_duration_seconds_count{result=\"Unschedulable\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(m.attempts(AttemptResult::Scheduled), 2);
    }
}
