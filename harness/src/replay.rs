//! The two ways a trace's pods become a run's workload.
//!
//! - [`fgd_resample`]: the FGD paper's method, as `datasets/README.md` (section 1, "How
//!   the FGD paper used this trace") describes it: timestamps are not replayed; the pod
//!   list is pruned, or padded by seeded random resampling, until the total GPU request
//!   equals a target fraction ([`FGD_TARGET_RATIO`] = 1.3) of the cluster's GPU
//!   capacity; the order is shuffled; pods are scheduled one after another with no
//!   departures; several seeds ([`FGD_SEEDS`]).
//! - [`time_replay`]: arrivals and departures at trace times in simulated time,
//!   optionally shifted so a chosen instant is 0 (the README suggests day 115 for
//!   openb); pods that outlive the trace are censored: they arrive and never depart.

use crate::model::PodSpec;
use crate::rng::SimRng;

/// The FGD paper's target: total GPU request = 1.3 × cluster GPU capacity.
pub const FGD_TARGET_RATIO: f64 = 1.3;
/// The seeds the FGD paper ran (42–51).
pub const FGD_SEEDS: std::ops::RangeInclusive<u64> = 42..=51;
/// Upper bound on the pods one resample may produce.
pub const MAX_RESAMPLED_PODS: usize = 10_000_000;
/// Day 115 of the openb trace in ms: where its dense window starts (README, "Time span").
pub const OPENB_DAY_115_MS: u64 = 115 * 86_400 * 1000;

/// Why a workload could not be built.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error("FGD resample: target ratio {0} is not a finite number >= 0")]
    BadRatio(f64),
    #[error("FGD resample: no pod requests a GPU, so no GPU target can be reached")]
    NoGpuPods,
    #[error(
        "FGD resample: reaching {target_gpu_milli} milli-GPU needs over {MAX_RESAMPLED_PODS} pods"
    )]
    TooManyPods { target_gpu_milli: u64 },
    #[error("time replay: pod {pod} has no arrival time (its source has no times)")]
    NoArrivalTime { pod: String },
    #[error(
        "time replay: pod {pod} departs at {departure_ms} ms, before it arrives at {arrival_ms} ms"
    )]
    DepartsBeforeArrival {
        pod: String,
        arrival_ms: u64,
        departure_ms: u64,
    },
}

/// An FGD-style workload.
#[derive(Clone, Debug, PartialEq)]
pub struct FgdConfig {
    /// Total GPU request as a multiple of the cluster's GPU capacity.
    pub target_ratio: f64,
    pub seed: u64,
}

impl Default for FgdConfig {
    fn default() -> Self {
        FgdConfig {
            target_ratio: FGD_TARGET_RATIO,
            seed: *FGD_SEEDS.start(),
        }
    }
}

/// The GPU request, in milli-GPU, an FGD resample aims at.
pub fn fgd_target_gpu_milli(cluster_gpu_milli: u64, target_ratio: f64) -> u64 {
    (cluster_gpu_milli as f64 * target_ratio).round() as u64
}

/// Pods in the order to schedule them, no departures, whose total GPU request reaches
/// `target_ratio × cluster_gpu_milli` and exceeds it by less than the last pod's request.
///
/// The pods are shuffled with the seed; if their total is over the target, the shortest
/// shuffled prefix that reaches it is kept (pruning); if under, pods drawn uniformly with
/// replacement from `pods` are appended (renamed `<name>-r<k>`) until it is reached,
/// and the whole list is shuffled again so the copies mix in. Same inputs and seed, same
/// output. Arrival and departure times are cleared: the order is the schedule.
pub fn fgd_resample(
    pods: &[PodSpec],
    cluster_gpu_milli: u64,
    config: &FgdConfig,
) -> Result<Vec<PodSpec>, ReplayError> {
    if !config.target_ratio.is_finite() || config.target_ratio < 0.0 {
        return Err(ReplayError::BadRatio(config.target_ratio));
    }
    let target = fgd_target_gpu_milli(cluster_gpu_milli, config.target_ratio);
    if target > 0 && pods.iter().all(|p| p.gpu.milli() == 0) {
        return Err(ReplayError::NoGpuPods);
    }
    let mut rng = SimRng::new(config.seed);
    let mut order: Vec<usize> = (0..pods.len()).collect();
    rng.shuffle(&mut order);
    let mut total = 0u64;
    let mut kept = 0;
    while kept < order.len() && total < target {
        total += pods[order[kept]].gpu.milli();
        kept += 1;
    }
    let mut out: Vec<PodSpec> = order[..kept]
        .iter()
        .map(|&i| timeless(&pods[i], None))
        .collect();
    if total < target {
        let mut copy = 0u64;
        while total < target {
            if out.len() >= MAX_RESAMPLED_PODS {
                return Err(ReplayError::TooManyPods {
                    target_gpu_milli: target,
                });
            }
            let pod = &pods[rng.index(pods.len())];
            total += pod.gpu.milli();
            copy += 1;
            out.push(timeless(pod, Some(copy)));
        }
        rng.shuffle(&mut out);
    }
    debug_assert!(total >= target);
    Ok(out)
}

fn timeless(pod: &PodSpec, copy: Option<u64>) -> PodSpec {
    let mut pod = pod.clone();
    if let Some(k) = copy {
        pod.name = format!("{}-r{k}", pod.name);
    }
    pod.arrival_ms = None;
    pod.departure_ms = None;
    pod
}

/// What happens to a pod at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Arrive,
    Depart,
}

/// One event of a time replay; `pod_idx` indexes the pod slice given to [`time_replay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub time_ms: u64,
    pub kind: EventKind,
    pub pod_idx: u32,
}

/// How to replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeReplayConfig {
    /// Trace time that becomes 0. Pods that departed before it are dropped; pods alive
    /// at it arrive at 0.
    pub origin_ms: u64,
}

/// A time-ordered stream of arrivals and departures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeReplay {
    pub events: Vec<Event>,
    /// The last event's time (shifted); censored pods are still running then.
    pub end_ms: u64,
    /// Pods that arrive and never depart (alive at the trace end).
    pub censored: usize,
    /// Pods dropped because they departed before `origin_ms`.
    pub dropped: usize,
}

/// Events at trace times: each pod arrives at `arrival_ms` and departs at `departure_ms`
/// unless censored (`None`). Events are ordered by time; at one instant, departures of
/// pods that arrived earlier come first (freeing room), then arrivals, then departures
/// of pods that arrived at that same instant (zero-lifetime pods), each group by pod
/// index; so every departure follows its own pod's arrival.
pub fn time_replay(pods: &[PodSpec], config: TimeReplayConfig) -> Result<TimeReplay, ReplayError> {
    assert!(pods.len() <= u32::MAX as usize, "pod index must fit in u32");
    // (shifted time, group 0 = earlier-arrival departure / 1 = arrival / 2 = same-instant departure, idx)
    let mut keyed: Vec<(u64, u8, u32)> = Vec::with_capacity(pods.len() * 2);
    let (mut censored, mut dropped) = (0, 0);
    for (idx, pod) in pods.iter().enumerate() {
        let Some(arrival_ms) = pod.arrival_ms else {
            return Err(ReplayError::NoArrivalTime {
                pod: pod.name.clone(),
            });
        };
        if let Some(departure_ms) = pod.departure_ms
            && departure_ms < arrival_ms
        {
            return Err(ReplayError::DepartsBeforeArrival {
                pod: pod.name.clone(),
                arrival_ms,
                departure_ms,
            });
        }
        if pod.departure_ms.is_some_and(|d| d < config.origin_ms) {
            dropped += 1;
            continue;
        }
        let arrive = arrival_ms.saturating_sub(config.origin_ms);
        keyed.push((arrive, 1, idx as u32));
        match pod.departure_ms {
            Some(d) => {
                let depart = d - config.origin_ms;
                keyed.push((depart, if depart == arrive { 2 } else { 0 }, idx as u32));
            }
            None => censored += 1,
        }
    }
    keyed.sort_unstable();
    let end_ms = keyed.last().map_or(0, |k| k.0);
    let events = keyed
        .into_iter()
        .map(|(time_ms, group, pod_idx)| Event {
            time_ms,
            kind: if group == 1 {
                EventKind::Arrive
            } else {
                EventKind::Depart
            },
            pod_idx,
        })
        .collect();
    Ok(TimeReplay {
        events,
        end_ms,
        censored,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GpuRequest;

    fn pod(name: &str, arrival_ms: Option<u64>, departure_ms: Option<u64>) -> PodSpec {
        let mut p = PodSpec::new(name, 100, 100);
        p.arrival_ms = arrival_ms;
        p.departure_ms = departure_ms;
        p
    }

    #[test]
    fn zero_lifetime_pod_departs_after_it_arrives() {
        let pods = [
            pod("a", Some(0), Some(5)),
            pod("b", Some(5), Some(5)),
            pod("c", Some(5), None),
        ];
        let r = time_replay(&pods, TimeReplayConfig::default()).unwrap();
        let got: Vec<(u64, EventKind, u32)> = r
            .events
            .iter()
            .map(|e| (e.time_ms, e.kind, e.pod_idx))
            .collect();
        use EventKind::*;
        assert_eq!(
            got,
            [
                (0, Arrive, 0),
                (5, Depart, 0),
                (5, Arrive, 1),
                (5, Arrive, 2),
                (5, Depart, 1)
            ]
        );
        assert_eq!((r.censored, r.dropped, r.end_ms), (1, 0, 5));
    }

    #[test]
    fn origin_shifts_and_drops() {
        let pods = [
            pod("gone", Some(0), Some(10)),
            pod("alive", Some(5), Some(30)),
            pod("late", Some(40), None),
        ];
        let r = time_replay(&pods, TimeReplayConfig { origin_ms: 20 }).unwrap();
        let got: Vec<(u64, u32)> = r.events.iter().map(|e| (e.time_ms, e.pod_idx)).collect();
        assert_eq!(got, [(0, 1), (10, 1), (20, 2)]);
        assert_eq!((r.censored, r.dropped), (1, 1));
    }

    #[test]
    fn errors_name_the_pod() {
        let err = time_replay(&[pod("x", None, None)], TimeReplayConfig::default()).unwrap_err();
        assert_eq!(err, ReplayError::NoArrivalTime { pod: "x".into() });
        let mut cpu_only = vec![pod("c", None, None)];
        let err = fgd_resample(&cpu_only, 1000, &FgdConfig::default()).unwrap_err();
        assert_eq!(err, ReplayError::NoGpuPods);
        cpu_only[0].gpu = GpuRequest::Fraction(500);
        let bad = FgdConfig {
            target_ratio: f64::NAN,
            seed: 1,
        };
        assert!(matches!(
            fgd_resample(&cpu_only, 1000, &bad),
            Err(ReplayError::BadRatio(_))
        ));
    }

    #[test]
    fn pads_and_prunes_to_the_target() {
        let pods: Vec<PodSpec> = (0..10)
            .map(|i| {
                let mut p = pod(&format!("p{i}"), Some(i), None);
                p.gpu = if i % 2 == 0 {
                    GpuRequest::Whole(1)
                } else {
                    GpuRequest::Fraction(250)
                };
                p
            })
            .collect();
        // Total 6.25 GPUs. Pad to 2 × 10 GPUs; prune to 0.5 × 4 GPUs.
        for (cluster_milli, ratio) in [(10_000, 2.0), (4_000, 0.5)] {
            let config = FgdConfig {
                target_ratio: ratio,
                seed: 9,
            };
            let out = fgd_resample(&pods, cluster_milli, &config).unwrap();
            let total: u64 = out.iter().map(|p| p.gpu.milli()).sum();
            let target = fgd_target_gpu_milli(cluster_milli, ratio);
            assert!(
                total >= target && total < target + 1000,
                "{total} vs {target}"
            );
            assert!(out.iter().all(|p| p.arrival_ms.is_none()));
            assert_eq!(out, fgd_resample(&pods, cluster_milli, &config).unwrap());
        }
    }
}
