//! End-to-end mode: a `short` scenario through the API server and the scheduler
//! service over loopback. Checks outcomes, never times: every measured pod is bound,
//! no node is over-committed, and the counts agree with the in-process run.

use std::time::Duration;

use bosun_harness::e2e::{E2eOptions, run_e2e};
use bosun_harness::scenario::load_scenario;
use bosun_harness::sim::{RunOptions, simulate};

fn options() -> E2eOptions {
    E2eOptions {
        progress: false,
        idle_timeout: Duration::from_secs(2),
        max_duration: Duration::from_secs(120),
        ..E2eOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_basic_runs_end_to_end() {
    let scenario = load_scenario("SchedulingBasic-short").unwrap();
    let opts = RunOptions {
        algorithms: Some(vec![
            "default".into(),
            "most-allocated".into(),
            "min-cost-flow".into(),
        ]),
        ..RunOptions::quiet()
    };
    let sim = simulate(&scenario, &opts).unwrap();
    let reports = run_e2e(&sim, &options()).await.unwrap();
    assert_eq!(reports.len(), 3);
    for r in &reports[..2] {
        assert_eq!(r.skipped, None, "{r:?}");
        assert_eq!(r.nodes, 200);
        assert_eq!(r.initial_pods_bound, 200, "{r:?}");
        assert_eq!(
            (r.pods_created, r.pods_bound, r.pods_unbound),
            (300, 300, 0),
            "{r:?}"
        );
        assert_eq!(r.sim_pods_placed, 300);
        assert_eq!(r.latency.count, 300);
        assert!(r.pods_per_s > 0.0);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }
    assert!(
        reports[2].skipped.is_some(),
        "min-cost-flow has no service form"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_fit_nowhere_stay_unbound_end_to_end() {
    let scenario = load_scenario("Unschedulable-short").unwrap();
    let opts = RunOptions {
        algorithms: Some(vec!["default".into()]),
        ..RunOptions::quiet()
    };
    let sim = simulate(&scenario, &opts).unwrap();
    let run = &sim.runs[0].report;
    let reports = run_e2e(&sim, &options()).await.unwrap();
    let r = &reports[0];
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.pods_bound + r.pods_unbound, r.pods_created);
    assert_eq!(
        r.pods_bound, run.counts.pods_measured_placed,
        "{r:?} vs {run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_scenarios_are_refused() {
    let scenario = load_scenario("MixedChurn-short").unwrap();
    let opts = RunOptions {
        algorithms: Some(vec!["default".into()]),
        ..RunOptions::quiet()
    };
    let sim = simulate(&scenario, &opts).unwrap();
    let e = run_e2e(&sim, &options()).await.unwrap_err().to_string();
    assert!(e.contains("churn"), "{e}");
}
