//! `bosun bench sched` end to end on a short scenario: it prints the comparison and
//! writes JSON and Markdown reports whose figures carry their units.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn bench_sched_runs_a_short_scenario_and_writes_reports() {
    let dir = std::env::temp_dir().join(format!("bosun-bench-sched-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let json = dir.join("all.json");
    let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args([
            "bench",
            "sched",
            "--scenario",
            "SchedulingBasic-short",
            "--report",
        ])
        .arg(&dir)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::wait_bounded(child, Duration::from_secs(120), "bosun bench sched");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SchedulingBasic-short"), "{stdout}");
    let reports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let algos = reports[0]["algorithms"].as_array().unwrap();
    assert!(algos.len() >= 2, "{reports}");
    for a in algos {
        assert!(a["throughput"]["pods_per_s"].as_f64().unwrap() > 0.0, "{a}");
        assert!(a["scheduling"]["latency_us_p99"].as_u64().is_some(), "{a}");
        assert_eq!(a["counts"]["pods_unschedulable"].as_u64(), Some(0), "{a}");
    }
    assert!(dir.join("SchedulingBasic-short.md").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}
