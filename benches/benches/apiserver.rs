//! API server hot paths: LIST of 100k pods with a label selector through the REST layer
//! (select on cached labels, assemble the JSON from cached wire bytes; the first
//! iteration warms the cache, as the API server's first LIST does), one storage write
//! delivered to 1k watchers, and single writes through the REST layer (create, strategic
//! merge patch, server-side apply) with their admission and field management.

use std::hint::black_box;
use std::sync::Arc;

use bosun_api::patch::PatchType;
use bosun_apiserver::rest::{Params, Part, Rest, RestConfig};
use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig, Storage};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

#[global_allocator]
static ALLOC: bosun_benches::Allocator = bosun_benches::ALLOCATOR;

const N_PODS: usize = 100_000;
const N_WATCHERS: usize = 1_000;

fn pod_json(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:06}"), "namespace": "default",
            "uid": format!("00000000-0000-4000-8000-{i:012}"), "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": format!("app-{}", i % 100), "tier": if i.is_multiple_of(2) { "web" } else { "db" }}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler", "nodeName": format!("node-{}", i % 5000)},
        "status": {"phase": "Running", "qosClass": "Burstable", "podIP": "10.0.0.1"}
    }))
    .unwrap()
}

fn bench_list(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let storage = rt.block_on(async { MemoryStorage::new(MemoryStorageConfig::default()) });
    let rest = Rest::new(storage.clone() as Arc<dyn Storage>, RestConfig::default());
    rt.block_on(async {
        for i in 0..N_PODS {
            storage
                .create(
                    &format!("/registry/pods/default/pod-{i:06}"),
                    Bytes::from(pod_json(i)),
                )
                .await
                .unwrap();
        }
    });
    let pods = rest.registry.get("", "v1", "pods").unwrap().clone();
    let mut g = c.benchmark_group("apiserver/list");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N_PODS as u64));
    for (name, selector) in [("100k-pods-label-1pct", "app=app-7"), ("100k-pods-all", "")] {
        let params = Params {
            label_selector: Some(selector.to_string()),
            ..Params::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                // What the HTTP layer sends for a JSON LIST.
                let list = rt
                    .block_on(rest.list_cached(&pods, None, black_box(&params)))
                    .unwrap();
                black_box(list.to_json())
            })
        });
    }
    g.finish();
}

fn bench_fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let storage = rt.block_on(async { MemoryStorage::new(MemoryStorageConfig::default()) });
    let mut streams = rt.block_on(async {
        let mut v = Vec::with_capacity(N_WATCHERS);
        for _ in 0..N_WATCHERS {
            v.push(
                storage
                    .watch("/registry/pods/", storage.current_revision().await.unwrap())
                    .await
                    .unwrap(),
            );
        }
        v
    });
    let value = Bytes::from(pod_json(1));
    let mut g = c.benchmark_group("apiserver/watch");
    g.throughput(Throughput::Elements(N_WATCHERS as u64));
    let mut i = 0u64;
    g.bench_function("one-event-to-1k-watchers", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(async {
                storage
                    .create(&format!("/registry/pods/default/f-{i}"), value.clone())
                    .await
                    .unwrap();
                for s in streams.iter_mut() {
                    // Skip progress notifications; every watcher must see the write.
                    loop {
                        match s.next().await {
                            Some(Ok(bosun_apiserver::storage::WatchEvent::Progress { .. })) => {
                                continue;
                            }
                            Some(Ok(ev)) => {
                                black_box(ev);
                                break;
                            }
                            other => panic!("watcher ended: {other:?}"),
                        }
                    }
                }
            })
        })
    });
    g.finish();
}

/// A Deployment-managed pod as a client creates it: two containers, ports, env, resources.
fn write_pod(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
                "uid": "0b7c6f7e-3c4a-4b8e-9d55-1c5b8a8f0e11", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "name": "http"}],
             "env": [{"name": "MODE", "value": "prod"}],
             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}},
            {"name": "sidecar", "image": "busybox:1.36", "command": ["sh", "-c", "sleep infinity"],
             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
    })
}

fn bench_writes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let storage = rt.block_on(async { MemoryStorage::new(MemoryStorageConfig::default()) });
    let rest = Rest::new(storage.clone() as Arc<dyn Storage>, RestConfig::default());
    let namespaces = rest.registry.get("", "v1", "namespaces").unwrap().clone();
    let pods = rest.registry.get("", "v1", "pods").unwrap().clone();
    let params = Params::default();
    rt.block_on(async {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        rest.create(&namespaces, None, ns, &params).await.unwrap();
        rest.create(&pods, Some("default"), write_pod("patched"), &params)
            .await
            .unwrap();
    });
    let mut g = c.benchmark_group("apiserver/write");
    let mut i = 0u64;
    g.bench_function("create-pod", |b| {
        b.iter(|| {
            i += 1;
            let pod = write_pod(&format!("pod-{i}"));
            black_box(
                rt.block_on(rest.create(&pods, Some("default"), pod, &params))
                    .unwrap(),
            )
        })
    });
    let mut n = 0u64;
    g.bench_function("strategic-patch-pod-label", |b| {
        b.iter(|| {
            n += 1;
            let patch = format!(r#"{{"metadata":{{"labels":{{"rev":"r{n}"}}}}}}"#);
            black_box(
                rt.block_on(rest.patch(
                    &pods,
                    Some("default"),
                    "patched",
                    (PatchType::Strategic, patch.as_bytes()),
                    Part::Main,
                    &params,
                ))
                .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_list, bench_fanout, bench_writes);
criterion_main!(benches);
