//! A load run second by second: each second's latency percentiles beside the machine's
//! steal (CPU time a shared VM's host took away) in that second, to tell steady queueing
//! from stalls. Shared by the API and the store load generators.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// One second of a run: the requests due in it and their latency.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineSecond {
    pub second: u32,
    pub requests: u64,
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
    pub latency_us_max: u64,
    /// CPU time the hypervisor took from this machine in this second, summed over its
    /// CPUs (`/proc/stat`'s steal, in 10 ms ticks); `None` where it is not reported.
    pub machine_steal_ms: Option<f64>,
}

/// Groups `(due offset in ms, latency)` samples into windows of `window_ms`, with
/// nearest-rank percentiles. Its memory is the samples' (a histogram per window would
/// cost far more on a long run).
pub(crate) fn timeline(samples: &[(u32, Duration)], window_ms: u32) -> Vec<TimelineSecond> {
    let mut sorted: Vec<(u32, u64)> = samples
        .iter()
        .map(|&(at, took)| (at / window_ms, took.as_micros() as u64))
        .collect();
    sorted.sort_unstable();
    sorted
        .chunk_by(|a, b| a.0 == b.0)
        .map(|w| {
            let rank = |p: f64| w[((p * w.len() as f64).ceil() as usize).clamp(1, w.len()) - 1].1;
            TimelineSecond {
                second: w[0].0,
                requests: w.len() as u64,
                latency_us_p50: rank(0.50),
                latency_us_p99: rank(0.99),
                latency_us_max: w[w.len() - 1].1,
                machine_steal_ms: None,
            }
        })
        .collect()
}

/// The machine's steal in each second of the run, read once a second until the deadline
/// or until the workers are `done` (a run that hit its operation cap early), whose last
/// partial second is read then; empty where the kernel does not report it.
pub(crate) async fn steal_by_second(
    start: Instant,
    deadline: Instant,
    mut done: tokio::sync::oneshot::Receiver<()>,
) -> Vec<f64> {
    let Some(mut last) = crate::metrics::machine_steal_ms() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    while Instant::now() < deadline {
        let finished = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut done => true,
        };
        let Some(now) = crate::metrics::machine_steal_ms() else {
            break;
        };
        out.push(now - last);
        last = now;
        if finished {
            break;
        }
    }
    out
}

/// Joins each second of `timeline` with its steal reading (by index).
pub(crate) fn with_steal(mut timeline: Vec<TimelineSecond>, steal: &[f64]) -> Vec<TimelineSecond> {
    for t in &mut timeline {
        t.machine_steal_ms = steal.get(t.second as usize).copied();
    }
    timeline
}

/// What a load report carries from a run's samples and steal readings: the run's total
/// steal (`None` where the kernel does not report it) and its one-second timeline.
pub(crate) fn run_by_second(
    samples: &[(u32, Duration)],
    steal: &[f64],
) -> (Option<f64>, Vec<TimelineSecond>) {
    let total = (!steal.is_empty()).then(|| steal.iter().sum());
    (total, with_steal(timeline(samples, 1000), steal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_groups_samples_by_window_and_skips_empty_ones() {
        let ms = Duration::from_millis;
        let samples = [(10, ms(1)), (999, ms(3)), (1000, ms(2)), (3500, ms(50))];
        let t = timeline(&samples, 1000);
        let seconds: Vec<u32> = t.iter().map(|w| w.second).collect();
        assert_eq!(seconds, [0, 1, 3]);
        assert_eq!(t[0].requests, 2);
        assert_eq!((t[0].latency_us_p50, t[0].latency_us_max), (1000, 3000));
        assert_eq!(t[2].latency_us_p99, 50_000);
        assert!(timeline(&[], 1000).is_empty());
        // Steal joins each second by its index; a second past the readings has none.
        let t = with_steal(t, &[10.0, 0.0, 0.0]);
        let steal: Vec<Option<f64>> = t.iter().map(|w| w.machine_steal_ms).collect();
        assert_eq!(steal, [Some(10.0), Some(0.0), None]);
    }

    /// Workers that stop before the deadline stop the steal readings too, with the
    /// partial second read.
    #[tokio::test]
    async fn steal_readings_end_with_the_workers() {
        let start = Instant::now();
        let (workers_done, done) = tokio::sync::oneshot::channel();
        let readings = tokio::spawn(steal_by_second(
            start,
            start + Duration::from_secs(3600),
            done,
        ));
        workers_done.send(()).unwrap();
        let readings = tokio::time::timeout(Duration::from_secs(60), readings)
            .await
            .expect("the readings stop without waiting for the deadline")
            .unwrap();
        assert_eq!(readings.len(), 1, "{readings:?}");
    }
}
