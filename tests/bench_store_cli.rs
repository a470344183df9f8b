//! `bosun bench store` at small size, as an integration test: side by side with a real
//! etcd (mixed workload), and the watch workload against an endpoint. Checks that the
//! reports are complete and consistent, never how fast anything was.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

fn bench(args: &[&str], json: &std::path::Path) -> serde_json::Value {
    let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["bench", "store"])
        .args(args)
        .arg("--json")
        .arg(json)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::wait_bounded(child, Duration::from_secs(120), "bosun bench store");
    assert!(
        out.status.success(),
        "bench store {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    std::fs::remove_file(json).unwrap();
    report
}

#[test]
fn side_by_side_mixed_reports_both_servers_and_ratios() {
    let json = std::env::temp_dir().join(format!("bosun-bench-store-{}.json", std::process::id()));
    let r = bench(
        &[
            "--side-by-side",
            "--workload",
            "mixed",
            "--clients",
            "4",
            "--connections",
            "2",
            "--key-space",
            "200",
            "--duration-s",
            "1",
        ],
        &json,
    );
    for side in ["ours", "etcd"] {
        let s = &r[side];
        let report = &s["report"];
        assert_eq!(report["errors"], 0, "{side}: {report}");
        assert!(report["ops"].as_u64().unwrap() > 0, "{side}");
        assert!(
            report["n_keys"].as_u64().unwrap() >= 200,
            "{side}: preloaded"
        );
        for op in ["get", "put", "txn"] {
            assert!(
                report["per_op"][op]["count"].as_u64().unwrap() > 0,
                "{side} {op}"
            );
        }
        assert!(report["all"]["latency_us_p99"].as_u64().unwrap() > 0);
        // The run second by second, every operation in it, each second with its steal.
        let timeline = report["timeline"].as_array().unwrap();
        assert!(!timeline.is_empty(), "{side}");
        let in_timeline: u64 = timeline
            .iter()
            .map(|t| t["requests"].as_u64().unwrap())
            .sum();
        assert_eq!(in_timeline, report["ops"].as_u64().unwrap(), "{side}");
        assert!(report["machine_steal_ms"].as_f64().is_some(), "{side}");
        assert!(timeline[0]["machine_steal_ms"].as_f64().is_some(), "{side}");
        let rss = s["memory"]["rss_bytes"].as_u64().unwrap();
        assert!(rss > 0, "{side}");
        let per_key = s["rss_bytes_per_key"].as_f64().unwrap();
        let n_keys = report["n_keys"].as_u64().unwrap() as f64;
        assert!(
            (per_key * n_keys - rss as f64).abs() < 1.0,
            "{side}: {per_key} x {n_keys}"
        );
        assert!(s["disk_bytes"].as_u64().unwrap() > 0, "{side}");
    }
    for k in [
        "ops_per_s",
        "latency_us_p99",
        "rss_bytes",
        "rss_bytes_per_key",
        "disk_bytes_per_key",
    ] {
        assert!(r["ratio_ours_to_etcd"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(r["fdatasync_probe"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn watch_workload_delivers_every_event_to_every_watcher() {
    let dir = std::env::temp_dir().join(format!("bosun-bench-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["store", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::lines_of(store.stdout.take().unwrap());
    let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    let json = dir.with_extension("json");
    let url = format!("http://{addr}");
    let r = bench(
        &[
            "--endpoints",
            &url,
            "--workload",
            "watch",
            "--watchers",
            "20",
            "--watch-streams",
            "4",
            "--connections",
            "2",
            "--watch-rate",
            "50",
            "--duration-s",
            "1",
        ],
        &json,
    );
    let _ = store.kill();
    let _ = store.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let w = &r["report"]["watch"];
    let n_put = w["events_put"].as_u64().unwrap();
    assert!(n_put > 0);
    assert_eq!(w["events_expected"].as_u64().unwrap(), n_put * 20);
    assert_eq!(w["events_received"], w["events_expected"], "{w}");
    assert_eq!(w["events_missing"], 0);
    assert_eq!(w["delivery"]["count"], w["events_received"]);
}
