//! The API load against an in-process Bosun API server on plain HTTP/2 (h2c, as `bosun
//! bench api --insecure-http` runs it): every request succeeds, the mix alternates
//! creates and updates, and the load cleans up after itself.

use std::time::Duration;

use bosun_apiserver::server::{ApiServer, ServerConfig};
use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig, Storage};
use bosun_harness::apiload::{ApiLoadConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_load_creates_and_updates_then_cleans_up() {
    let storage = MemoryStorage::new(MemoryStorageConfig::default());
    let server = ApiServer::new(storage.clone(), ServerConfig::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bosun_apiserver::serve(server, listener, None, async {
        let _ = stopped.await;
    }));

    let cfg = ApiLoadConfig {
        clients: 4,
        connections: 2,
        rate_per_s: 400,
        duration: Duration::from_secs(1),
        namespace: "load-test".into(),
    };
    let config = bosun_client::Config::new(&url)
        .unwrap()
        .with_http2_prior_knowledge();
    let report = run(config, &cfg).await.unwrap();
    // A server that did not take HTTP/2 with prior knowledge would fail every request.
    assert_eq!(report.transport, "h2c");
    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert!(
        report.requests >= 40,
        "a 400/s load for 1 s sent only {}",
        report.requests
    );
    // Each worker alternates create, update: the counts differ by at most one per worker.
    assert!(
        report.create.count.abs_diff(report.update.count) <= cfg.clients as u64,
        "{report:?}"
    );
    assert_eq!(report.all.count, report.create.count + report.update.count);
    assert!(report.all.latency_us_p50 <= report.all.latency_us_p99);
    assert!(report.all.latency_us_p99 <= report.all.latency_us_max);
    // The timeline accounts for every request, second by second, in order.
    assert_eq!(
        report.timeline.iter().map(|t| t.requests).sum::<u64>(),
        report.all.count
    );
    assert!(
        report
            .timeline
            .windows(2)
            .all(|w| w[0].second < w[1].second)
    );
    assert!(
        report
            .timeline
            .iter()
            .all(|t| t.latency_us_p50 <= t.latency_us_p99 && t.latency_us_p99 <= t.latency_us_max)
    );
    assert!(report.process_cpu_us_per_request > 0.0, "{report:?}");
    // The machine's steal is read every second of the run (Linux reports it).
    assert!(
        report.machine_steal_ms.is_some_and(|s| s >= 0.0),
        "{report:?}"
    );
    assert!(report.timeline[0].machine_steal_ms.is_some(), "{report:?}");

    // The namespace is marked for deletion and its pods go with it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = storage
            .list("/registry/pods/load-test/", Default::default())
            .await
            .unwrap();
        if left.items.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} pods left behind",
            left.items.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    serving.await.unwrap();
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let config = bosun_client::Config::new("http://127.0.0.1:1").unwrap();
    for cfg in [
        ApiLoadConfig {
            clients: 0,
            ..ApiLoadConfig::default()
        },
        ApiLoadConfig {
            clients: 2,
            connections: 3,
            ..ApiLoadConfig::default()
        },
        ApiLoadConfig {
            connections: 0,
            ..ApiLoadConfig::default()
        },
    ] {
        assert!(run(config.clone(), &cfg).await.is_err());
    }
}
