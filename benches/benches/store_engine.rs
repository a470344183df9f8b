//! Store engine: group-committed puts (fdatasync vs no-sync, std::fs vs io_uring log
//! files, 1 vs 8 writers), ranges, single-key index lookups, the pure MVCC apply
//! path without IO, and restart (recovery) of a store of 1M keys, from a fresh
//! checkpoint and from the log alone; the snapshot of a 1M-key store that a checkpoint
//! takes on the writer thread (the writers' only pause); a watcher's catch-up read of
//! the last revisions of a large prefix, from the newest revisions kept in memory and
//! from the index; the watch hub's publish of a revision with 10k watchers of other
//! keys.

use std::hint::black_box;
use std::sync::Arc;

use bosun_store_engine::*;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

#[global_allocator]
static ALLOC: bosun_benches::Allocator = bosun_benches::ALLOCATOR;

const N_KEYS: usize = 10_000;
const N_PUTS_PER_WRITER: usize = 64;

fn put(key: String) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: vec![b'v'; 256],
        ..Default::default()
    }
}

/// One txn putting each of `keys`.
fn puts(keys: &[String]) -> TxnRequest {
    TxnRequest {
        success: keys
            .iter()
            .map(|k| RequestOp::Put(put(k.clone())))
            .collect(),
        ..Default::default()
    }
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("bosun-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn bench_put(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_engine/put");
    g.sample_size(10);
    for (name, sync) in [
        ("fdatasync", SyncMode::Fdatasync),
        ("nosync", SyncMode::NoSyncBenchmarkOnly),
    ] {
        for (backend, n_writers) in LogBackend::ALL
            .into_iter()
            .flat_map(|b| [(b, 1usize), (b, 8)])
        {
            let path = temp_dir(&format!("{name}-{backend}-{n_writers}"));
            let config = EngineConfig {
                sync,
                ..EngineConfig::default()
            };
            let dir = HostDir::open(&path, backend).unwrap();
            let engine = Arc::new(Engine::open(dir, config).unwrap());
            g.throughput(Throughput::Elements((n_writers * N_PUTS_PER_WRITER) as u64));
            let mut round = 0u64;
            g.bench_function(format!("{name}/{backend}/{n_writers}_writers"), |b| {
                b.iter(|| {
                    round += 1;
                    std::thread::scope(|s| {
                        for w in 0..n_writers {
                            let engine = &engine;
                            s.spawn(move || {
                                for i in 0..N_PUTS_PER_WRITER {
                                    engine
                                        .put(put(format!("/registry/pods/w{w}/{round}-{i}")))
                                        .unwrap();
                                }
                            });
                        }
                    });
                })
            });
            let stats = engine.stats();
            eprintln!(
                "{name}/{backend}/{n_writers}: {} writes in {} fdatasyncs",
                stats.n_writes, stats.n_syncs
            );
            drop(engine);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    g.finish();
}

fn loaded_engine() -> Engine<MemDir> {
    let config = EngineConfig {
        sync: SyncMode::NoSyncBenchmarkOnly,
        ..EngineConfig::default()
    };
    let engine = Engine::open(MemDir::new(), config).unwrap();
    for i in 0..N_KEYS {
        engine
            .put(put(format!("/registry/pods/ns{}/p{i:06}", i % 100)))
            .unwrap();
    }
    engine
}

fn bench_read(c: &mut Criterion) {
    let engine = loaded_engine();
    let mut g = c.benchmark_group("store_engine/read");
    let get = RangeRequest {
        key: b"/registry/pods/ns7/p005007".to_vec(),
        ..Default::default()
    };
    g.bench_function("index_lookup", |b| {
        b.iter(|| black_box(engine.range(&get).unwrap()))
    });
    let ns = RangeRequest {
        key: b"/registry/pods/ns7/".to_vec(),
        range_end: b"/registry/pods/ns70".to_vec(),
        ..Default::default()
    };
    g.throughput(Throughput::Elements((N_KEYS / 100) as u64));
    g.bench_function("range_100_keys", |b| {
        b.iter(|| black_box(engine.range(&ns).unwrap()))
    });
    let count = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        count_only: true,
        ..Default::default()
    };
    g.throughput(Throughput::Elements(N_KEYS as u64));
    g.bench_function("count_all_10k", |b| {
        b.iter(|| black_box(engine.range(&count).unwrap()))
    });
    g.finish();
}

fn bench_apply(c: &mut Criterion) {
    // The pure state machine: a 128-put txn applied with no IO (the CPU ceiling).
    let txn = TxnRequest {
        success: (0..128)
            .map(|i| RequestOp::Put(put(format!("/registry/pods/ns/p{i:03}"))))
            .collect(),
        ..Default::default()
    };
    let mut g = c.benchmark_group("store_engine/mvcc");
    g.throughput(Throughput::Elements(128));
    g.bench_function("apply_txn_128_puts", |b| {
        b.iter_batched(
            Mvcc::new,
            |mut m| black_box(m.apply(&txn).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Keys in the recovery bench's store: one revision each, 256-byte values.
const N_RECOVERY_KEYS: usize = 1_000_000;
/// Puts in flight while the recovery bench fills its store.
const N_FILL_TASKS: usize = 512;

/// Nothing in the background: what is measured is the open alone.
fn recovery_config() -> EngineConfig {
    EngineConfig {
        sync: SyncMode::NoSyncBenchmarkOnly,
        checkpoint_after_bytes: 0,
        gc_min_dead_bytes: 0,
        ..EngineConfig::default()
    }
}

/// A store of [`N_RECOVERY_KEYS`] keys in `path`, written one revision per key
/// (puts in flight together, so groups are large and the fill is quick).
fn fill_store(path: &std::path::Path) {
    let dir = HostDir::open(path, LogBackend::Std).unwrap();
    let engine = Arc::new(Engine::open(dir, recovery_config()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..N_FILL_TASKS {
            let engine = engine.clone();
            tasks.spawn(async move {
                for i in (t..N_RECOVERY_KEYS).step_by(N_FILL_TASKS) {
                    let key = format!("/registry/pods/ns{}/p{i:07}", i % 1000);
                    engine.put_async(put(key)).await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    });
    let stats = engine.stats();
    assert_eq!(stats.n_writes, N_RECOVERY_KEYS as u64);
    eprintln!(
        "recovery store: {} keys, {} log bytes in {} groups",
        N_RECOVERY_KEYS, stats.n_log_bytes, stats.n_groups
    );
}

fn bench_recovery(c: &mut Criterion) {
    let log_only = temp_dir("recovery-log");
    fill_store(&log_only);
    let checkpointed = temp_dir("recovery-checkpoint");
    fill_store(&checkpointed);
    {
        let dir = HostDir::open(&checkpointed, LogBackend::Std).unwrap();
        let engine = Engine::open(dir, recovery_config()).unwrap();
        engine.checkpoint().unwrap();
        eprintln!("checkpoint: {} bytes on disk", engine.stats().n_disk_bytes);
    }
    let mut g = c.benchmark_group("store_engine/recovery_1m_keys");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N_RECOVERY_KEYS as u64));
    for (name, path) in [("log_only", &log_only), ("checkpoint", &checkpointed)] {
        g.bench_function(name, |b| {
            b.iter_with_large_drop(|| {
                let dir = HostDir::open(path, LogBackend::Std).unwrap();
                let engine = Engine::open(dir, recovery_config()).unwrap();
                assert_eq!(engine.n_indexed_keys(), N_RECOVERY_KEYS);
                engine
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&log_only);
    let _ = std::fs::remove_dir_all(&checkpointed);
}

/// The copy of the state a checkpoint (and so garbage collection) takes on the writer
/// thread, with writes paused: of a store of [`N_RECOVERY_KEYS`] keys.
fn bench_snapshot(c: &mut Criterion) {
    let mut mvcc = Mvcc::new();
    let keys: Vec<String> = (0..N_RECOVERY_KEYS)
        .map(|i| format!("/registry/pods/ns{}/p{i:07}", i % 1000))
        .collect();
    for batch in keys.chunks(128) {
        mvcc.apply(&puts(batch)).unwrap();
    }
    let mut g = c.benchmark_group("store_engine/mvcc");
    g.bench_function("snapshot_1m_keys", |b| {
        b.iter_with_large_drop(|| black_box(mvcc.clone()))
    });
    g.finish();
}

/// A watcher 10 revisions behind on a prefix of 100k keys: what its catch-up read costs
/// from the newest revisions in memory against a scan of the prefix in the index.
fn bench_catch_up(c: &mut Criterion) {
    const N: usize = 100_000;
    let mut mvcc = Mvcc::new();
    let mut recent = recent::Recent::default();
    let keys: Vec<String> = (0..N)
        .map(|i| format!("/registry/pods/ns{}/p{i:06}", i % 100))
        .collect();
    for batch in keys.chunks(128).chain(keys.chunks(1).take(10)) {
        if let Some(b) = mvcc.apply(&puts(batch)).unwrap().batch {
            recent.push(b);
        }
    }
    let newest = mvcc.current_revision();
    let (key, end) = (b"/registry/pods/".as_slice(), b"/registry/pods0".as_slice());
    let span = index::KeySpan::new(key, end);
    let mut g = c.benchmark_group("store_engine/catch_up_10_revisions_of_100k_keys");
    g.bench_function("recent", |b| {
        b.iter(|| black_box(recent.read(&span, newest - 9, newest, 1024).unwrap()))
    });
    g.bench_function("index_scan", |b| {
        b.iter(|| {
            black_box(
                mvcc.history(key, end, newest - 9, newest, newest, 1024)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

/// One revision published to a hub of 10k watchers, each of its own key, none of the
/// revision's: what the watchers of other keys cost the writer's commit hook.
fn bench_publish(c: &mut Criterion) {
    let engine = Arc::new(Engine::open(MemDir::new(), EngineConfig::default()).unwrap());
    let hub = WatchHub::new(engine.clone(), 1, HubConfig::default());
    let _watchers: Vec<Watcher> = (0..10_000)
        .map(|i| {
            hub.watch(WatchSpec {
                key: format!("/registry/leases/node-{i:05}").into_bytes(),
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    let event = Event {
        kind: EventKind::Put,
        kv: KeyValue {
            key: Bytes::from(&b"/registry/pods/ns/p"[..]),
            create_revision: 2,
            mod_revision: 2,
            version: 1,
            value: Bytes::from(&[b'v'; 256][..]),
            lease: 0,
        },
        prev_kv: None,
    };
    let mut revision = 1;
    let mut g = c.benchmark_group("store_engine/watch_publish_10k_key_watchers");
    g.bench_function("unwatched_key", |b| {
        b.iter(|| {
            revision += 1;
            hub.publish(&CommittedBatch {
                revision,
                events: vec![event.clone()],
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_put,
    bench_read,
    bench_apply,
    bench_catch_up,
    bench_publish
);
criterion_group!(recovery, bench_recovery, bench_snapshot);
criterion_main!(benches, recovery);
