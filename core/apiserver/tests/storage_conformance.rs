//! The `Storage` contract (core/apiserver/src/storage/mod.rs), checked against every
//! backend: `MemoryStorage` (the reference), `EmbeddedStorage` over a temporary directory,
//! and `EtcdStorage` against (a) bosun-store-engine's etcd v3 service in this process
//! and (b) a real etcd 3.4 (`/usr/bin/etcd`, from Debian's `etcd-server`) started on
//! free loopback ports.
//!
//! Each check is one async function over `&dyn Storage`; `conformance!` turns every
//! check into one test per backend (`memory::revisions_count_every_write`,
//! `etcd_real::...`), each on a fresh store. Checks assert only the common contract:
//! where backends may differ (a slow watcher is cancelled by one and caught up by
//! another; progress notifications come on each backend's own schedule) the check
//! accepts every outcome the contract allows and asserts what they share. Time is never
//! asserted: waits are bounded by `HANG_GUARD` so that a broken backend fails instead of
//! hanging.
//!
//! Contract sources: etcd's API guarantees (https://etcd.io/docs/v3.4/learning/api_guarantees/)
//! and its `mvcc` errors, which `MemoryStorage` mirrors.

use std::any::Any;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bosun_apiserver::storage::{
    Deleted, EmbeddedStorage, EmbeddedStorageConfig, EtcdStorage, EtcdStorageConfig, KeyValue,
    ListOptions, MemoryStorage, MemoryStorageConfig, Revision, Storage, StorageError, WatchEvent,
    WatchStream,
};
use bytes::Bytes;

/// Bounds every wait for a watch item or a process, so that a broken backend fails a
/// test instead of hanging it. Not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(20);
/// How often watchers get progress notifications in these tests: short, so that the
/// progress check is quick; every other check skips them.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);
/// Watch backlog of the memory backend: small, so that its slow-watcher cancellation is
/// exercised; longer than any replay these checks ask for.
const MEMORY_BACKLOG_EVENTS: usize = 64;
/// Writes the slow-watcher check makes without reading: more than any backlog above.
const SLOW_WATCHER_WRITES: usize = 150;

// ---- Backends ----

/// A storage under test and whatever must live as long as it (a directory, a server, a
/// process). Fields drop in order: the storage first.
struct Backend {
    storage: Arc<dyn Storage>,
    _guard: Box<dyn Any + Send>,
}

async fn memory() -> Backend {
    let storage = MemoryStorage::new(MemoryStorageConfig {
        watch_backlog_events: MEMORY_BACKLOG_EVENTS,
        progress_interval: PROGRESS_INTERVAL,
        ..MemoryStorageConfig::default()
    });
    Backend {
        storage,
        _guard: Box::new(()),
    }
}

async fn embedded() -> Backend {
    let dir = TempDir::new("embedded");
    let config = EmbeddedStorageConfig {
        progress_interval: PROGRESS_INTERVAL,
        ..EmbeddedStorageConfig::default()
    };
    let storage = EmbeddedStorage::open_with(&dir.0, config).expect("open the embedded store");
    Backend {
        storage,
        _guard: Box::new(dir),
    }
}

fn etcd_config() -> EtcdStorageConfig {
    EtcdStorageConfig {
        progress_interval: PROGRESS_INTERVAL,
        ..EtcdStorageConfig::default()
    }
}

/// `EtcdStorage` against bosun-store-engine's etcd v3 service, served in this process.
async fn etcd_bosun() -> Backend {
    use bosun_store_engine::{ServerConfig, Store, StoreConfig, serve};
    let dir = TempDir::new("etcd-bosun");
    let store = Arc::new(Store::open(&dir.0, StoreConfig::default()).expect("open the store"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(serve(store, listener, ServerConfig::default(), shutdown));
    let storage = EtcdStorage::connect_with(&[endpoint], etcd_config())
        .await
        .expect("connect to the in-process store");
    Backend {
        storage,
        _guard: Box::new((stop, dir)),
    }
}

/// `EtcdStorage` against a real etcd, started for this test and killed after it. An
/// etcd that could not bind the ports picked for it (taken meanwhile by another
/// process) is started again on others, up to three times in all.
async fn etcd_real() -> Backend {
    let mut attempts = 1;
    loop {
        let mut etcd = EtcdProcess::start();
        match connect_when_ready(&mut etcd).await {
            Ok(storage) => {
                return Backend {
                    storage,
                    _guard: Box::new(etcd),
                };
            }
            Err(why) if why.contains("address already in use") && attempts < 3 => attempts += 1,
            Err(why) => panic!("etcd did not become ready: {why}"),
        }
    }
}

/// Connects to `etcd` once it answers; the reason (with its log) if it exits or hangs.
async fn connect_when_ready(etcd: &mut EtcdProcess) -> Result<Arc<EtcdStorage>, String> {
    let endpoint = etcd.client_url.clone();
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                return Err(format!("etcd exited ({status}): {}", etcd.log_tail()));
            }
            match EtcdStorage::connect_with(std::slice::from_ref(&endpoint), etcd_config()).await {
                Ok(storage) => return Ok(storage),
                Err(StorageError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("connecting to etcd: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "no answer within {HANG_GUARD:?}: {}",
            etcd.log_tail()
        ))
    })
}

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("bosun-conformance-{what}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real etcd 3.4 on two free loopback ports, in its own data directory.
struct EtcdProcess {
    child: Child,
    client_url: String,
    dir: TempDir,
}

impl EtcdProcess {
    const BINARY: &str = "/usr/bin/etcd";

    fn start() -> EtcdProcess {
        assert!(
            std::path::Path::new(Self::BINARY).exists(),
            "{} is missing: scripts/test-all installs it (apt-get install etcd-server)",
            Self::BINARY
        );
        let dir = TempDir::new("etcd-real");
        let client_url = format!("http://127.0.0.1:{}", free_port());
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.0.join("etcd.log")).unwrap();
        let child = Command::new(Self::BINARY)
            .arg("--name=conformance")
            .arg(format!("--data-dir={}", dir.0.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=conformance={peer_url}"))
            // A single member elects itself at once with short timeouts.
            .arg("--heartbeat-interval=10")
            .arg("--election-timeout=100")
            // etcd 3.4's answers to progress requests are not ordered with replayed
            // events, so EtcdStorage only counts these per-watcher notifications.
            .arg(format!(
                "--experimental-watch-progress-notify-interval={}ms",
                PROGRESS_INTERVAL.as_millis()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        EtcdProcess {
            child,
            client_url,
            dir,
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read(self.dir.0.join("etcd.log")).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed check against a dead etcd says only "unavailable": its log says why.
            let status = self.child.try_wait().ok().flatten();
            let log = std::fs::read(self.dir.0.join("etcd.log")).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let errors = log.lines().filter(|l| {
                [
                    "\"level\":\"error\"",
                    "\"level\":\"panic\"",
                    "\"level\":\"fatal\"",
                ]
                .iter()
                .any(|level| l.contains(level))
            });
            let errors: Vec<&str> = errors.take(20).collect();
            eprintln!(
                "etcd (exited: {status:?}) logged these errors:\n{}\nand its log ends:\n{}",
                errors.join("\n"),
                self.log_tail()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free right now (the kernel's choice; the race with other processes
/// binding it before etcd does is accepted).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---- Helpers ----

fn kv(key: &str, value: &str, create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Bytes::from(value.to_owned()),
        create_revision,
        mod_revision,
        version: 1 + mod_revision - create_revision,
    }
}

fn kv_v(
    key: &str,
    value: &str,
    create_revision: Revision,
    mod_revision: Revision,
    version: i64,
) -> KeyValue {
    KeyValue {
        version,
        ..kv(key, value, create_revision, mod_revision)
    }
}

fn at(revision: Revision) -> ListOptions {
    ListOptions {
        at: Some(revision),
        ..ListOptions::default()
    }
}

/// A watch stream and what the contract says about its progress notifications: a
/// `Progress { revision }` promises that every change up to `revision` came before it.
struct Watch {
    stream: WatchStream,
    /// The newest revision a change or a progress notification covered.
    covered: Revision,
}

impl Watch {
    async fn open(s: &dyn Storage, prefix: &str, after: Revision) -> Watch {
        let stream = s.watch(prefix, after).await.expect("watch");
        Watch {
            stream,
            covered: after,
        }
    }

    /// The next item, progress included.
    async fn next_item(&mut self) -> Option<Result<WatchEvent, StorageError>> {
        tokio::time::timeout(HANG_GUARD, self.stream.next())
            .await
            .expect("the watch stream stalled")
    }

    /// The next change, checking the progress notifications on the way.
    async fn next_change(&mut self) -> WatchEvent {
        loop {
            match self.next_item().await {
                Some(Ok(WatchEvent::Progress { revision })) => self.saw_progress(revision),
                Some(Ok(change)) => {
                    assert!(
                        change.revision() > self.covered,
                        "change at {} after progress or changes up to {}: {change:?}",
                        change.revision(),
                        self.covered
                    );
                    self.covered = change.revision();
                    return change;
                }
                other => panic!("expected a change, got {other:?}"),
            }
        }
    }

    fn saw_progress(&mut self, revision: Revision) {
        assert!(
            revision >= self.covered,
            "progress at {revision} after changes up to {}",
            self.covered
        );
        self.covered = revision;
    }

    /// Waits for a progress notification at `revision` or later (skipping older ones).
    async fn progress_at_least(&mut self, revision: Revision) -> Revision {
        loop {
            match self.next_item().await {
                Some(Ok(WatchEvent::Progress { revision: r })) => {
                    self.saw_progress(r);
                    if r >= revision {
                        return r;
                    }
                }
                other => panic!("expected progress at {revision} or later, got {other:?}"),
            }
        }
    }
}

// ---- Checks ----

/// An empty store is at revision 1 (etcd's and every backend's); every successful
/// write commits exactly one revision; failed ones commit none.
async fn revisions_count_every_write(s: &dyn Storage) {
    assert_eq!(s.current_revision().await, Ok(1), "an empty store");
    assert_eq!(s.compacted_revision().await, Ok(1), "never compacted");
    let a = s.create("/a", "1".into()).await.unwrap();
    assert_eq!(a, kv("/a", "1", 2, 2));
    let a = s.update("/a", "2".into(), 2).await.unwrap();
    assert_eq!(a, kv("/a", "2", 2, 3));
    assert!(s.create("/a", "x".into()).await.is_err());
    assert!(s.update("/a", "x".into(), 2).await.is_err());
    assert!(s.delete("/missing", None).await.is_err());
    assert_eq!(
        s.current_revision().await,
        Ok(3),
        "failed writes commit nothing"
    );
    let deleted = s.delete("/a", Some(3)).await.unwrap();
    assert_eq!(
        deleted,
        Deleted {
            prev: kv("/a", "2", 2, 3),
            revision: 4
        }
    );
    assert_eq!(s.current_revision().await, Ok(4));
    assert_eq!(s.get("/a", None).await, Ok((None, 4)));
}

/// Create fails on a live key; after a delete the key starts a new generation.
async fn create_preconditions(s: &dyn Storage) {
    s.create("/k", "1".into()).await.unwrap(); // 2
    assert_eq!(
        s.create("/k", "2".into()).await,
        Err(StorageError::AlreadyExists { key: "/k".into() })
    );
    s.delete("/k", None).await.unwrap(); // 3
    let again = s.create("/k", "3".into()).await.unwrap(); // 4
    assert_eq!(again, kv("/k", "3", 4, 4), "a new generation at version 1");
    assert_eq!(s.get("/k", None).await, Ok((Some(again), 4)));
}

/// Update: `NotFound` on a missing or deleted key, `Conflict` naming both revisions on
/// a stale one; success keeps the generation and counts the version.
async fn update_preconditions(s: &dyn Storage) {
    assert_eq!(
        s.update("/k", "v".into(), 1).await,
        Err(StorageError::NotFound { key: "/k".into() })
    );
    s.create("/k", "1".into()).await.unwrap(); // 2
    s.update("/k", "2".into(), 2).await.unwrap(); // 3
    assert_eq!(
        s.update("/k", "x".into(), 2).await,
        Err(StorageError::Conflict {
            key: "/k".into(),
            expected: 2,
            actual: 3
        })
    );
    let updated = s.update("/k", "3".into(), 3).await.unwrap(); // 4
    assert_eq!(updated, kv_v("/k", "3", 2, 4, 3));
    s.delete("/k", None).await.unwrap(); // 5
    assert_eq!(
        s.update("/k", "x".into(), 4).await,
        Err(StorageError::NotFound { key: "/k".into() }),
        "a deleted key is not found, whatever revision is expected"
    );
}

/// Delete: `NotFound`, `Conflict` with an expectation, and the last live value.
async fn delete_preconditions(s: &dyn Storage) {
    assert_eq!(
        s.delete("/k", None).await,
        Err(StorageError::NotFound { key: "/k".into() })
    );
    s.create("/k", "1".into()).await.unwrap(); // 2
    s.update("/k", "2".into(), 2).await.unwrap(); // 3
    assert_eq!(
        s.delete("/k", Some(2)).await,
        Err(StorageError::Conflict {
            key: "/k".into(),
            expected: 2,
            actual: 3
        })
    );
    let deleted = s.delete("/k", Some(3)).await.unwrap();
    assert_eq!(
        deleted,
        Deleted {
            prev: kv("/k", "2", 2, 3),
            revision: 4
        }
    );
    assert_eq!(
        s.delete("/k", Some(3)).await,
        Err(StorageError::NotFound { key: "/k".into() })
    );
}

/// Reads at any revision from the compacted one to the current one see exactly the
/// state then, and say which revision they were served at; later ones are refused.
async fn reads_at_past_revisions(s: &dyn Storage) {
    s.create("/p/a", "1".into()).await.unwrap(); // 2
    s.create("/p/b", "1".into()).await.unwrap(); // 3
    s.update("/p/a", "2".into(), 2).await.unwrap(); // 4
    s.delete("/p/b", None).await.unwrap(); // 5
    let cases: &[(Revision, &[KeyValue])] = &[
        (1, &[]),
        (2, &[kv("/p/a", "1", 2, 2)]),
        (3, &[kv("/p/a", "1", 2, 2), kv("/p/b", "1", 3, 3)]),
        (4, &[kv_v("/p/a", "2", 2, 4, 2), kv("/p/b", "1", 3, 3)]),
        (5, &[kv_v("/p/a", "2", 2, 4, 2)]),
    ];
    for &(revision, expected) in cases {
        let listed = s.list("/p/", at(revision)).await.unwrap();
        assert_eq!(listed.items, expected, "list at {revision}");
        assert_eq!(listed.revision, revision);
        assert_eq!(listed.remaining, 0);
        let a = expected.iter().find(|kv| kv.key == "/p/a").cloned();
        assert_eq!(s.get("/p/a", Some(revision)).await, Ok((a, revision)));
    }
    let future = StorageError::FutureRevision {
        requested: 6,
        current: 5,
    };
    assert_eq!(s.get("/p/a", Some(6)).await, Err(future.clone()));
    assert_eq!(s.list("/p/", at(6)).await, Err(future));
    let latest = s.list("/p/", ListOptions::default()).await.unwrap();
    assert_eq!(
        latest.revision, 5,
        "a latest read is served at the current revision"
    );
}

/// Compaction: reads and watches below the compacted revision fail with `Compacted`
/// naming it; at it they work; compacting again lower is a no-op, later is refused.
async fn compaction(s: &dyn Storage) {
    s.create("/c/a", "1".into()).await.unwrap(); // 2
    s.update("/c/a", "2".into(), 2).await.unwrap(); // 3
    s.create("/c/b", "1".into()).await.unwrap(); // 4
    s.delete("/c/b", None).await.unwrap(); // 5
    s.create("/c/c", "1".into()).await.unwrap(); // 6
    s.compact(4).await.unwrap();
    assert_eq!(s.compacted_revision().await, Ok(4));
    let compacted = |requested| StorageError::Compacted {
        requested,
        compacted: 4,
    };
    assert_eq!(s.get("/c/a", Some(3)).await, Err(compacted(3)));
    assert_eq!(s.list("/c/", at(2)).await, Err(compacted(2)));
    assert_eq!(s.watch("/c/", 2).await.err(), Some(compacted(2)));
    assert_eq!(
        s.get("/c/a", Some(4)).await,
        Ok((Some(kv("/c/a", "2", 2, 3)), 4)),
        "the compacted revision itself stays readable"
    );
    let at_4 = s.list("/c/", at(4)).await.unwrap().items;
    assert_eq!(at_4, [kv("/c/a", "2", 2, 3), kv("/c/b", "1", 4, 4)]);
    assert_eq!(s.compact(3).await, Ok(()), "lower: a no-op");
    assert_eq!(s.compact(4).await, Ok(()), "the same: a no-op");
    assert_eq!(s.compacted_revision().await, Ok(4));
    assert_eq!(
        s.compact(7).await,
        Err(StorageError::FutureRevision {
            requested: 7,
            current: 6
        })
    );
    s.compact(6).await.unwrap();
    assert_eq!(s.compacted_revision().await, Ok(6));
    assert_eq!(
        s.list("/c/", ListOptions::default()).await.unwrap().items,
        [kv("/c/a", "2", 2, 3), kv("/c/c", "1", 6, 6)],
        "compaction keeps the live values"
    );
}

/// LIST with prefix, limit and start: keys in byte order, `remaining` counting the keys
/// under the prefix after the last one returned. One row per case.
async fn list_limit_start_remaining(s: &dyn Storage) {
    // Keys that share prefixes awkwardly: "/a" < "/a/1" < "/a/10" < "/a/2" < "/ab".
    for key in ["/a", "/a/1", "/a/10", "/a/2", "/a/b/1", "/ab", "/b/1"] {
        s.create(key, "v".into()).await.unwrap();
    }
    struct Case {
        prefix: &'static str,
        limit: Option<usize>,
        start: Option<&'static str>,
        keys: &'static [&'static str],
        remaining: usize,
    }
    let case = |prefix, limit, start, keys, remaining| Case {
        prefix,
        limit,
        start,
        keys,
        remaining,
    };
    let all: &[&str] = &["/a", "/a/1", "/a/10", "/a/2", "/a/b/1", "/ab", "/b/1"];
    let cases = [
        case("/a/", None, None, &["/a/1", "/a/10", "/a/2", "/a/b/1"], 0),
        case(
            "/a/",
            Some(0),
            None,
            &["/a/1", "/a/10", "/a/2", "/a/b/1"],
            0,
        ),
        case("/a/", Some(2), None, &["/a/1", "/a/10"], 2),
        case(
            "/a/",
            Some(4),
            None,
            &["/a/1", "/a/10", "/a/2", "/a/b/1"],
            0,
        ),
        case(
            "/a/",
            Some(9),
            None,
            &["/a/1", "/a/10", "/a/2", "/a/b/1"],
            0,
        ),
        case("/a/", Some(2), Some("/a/10\0"), &["/a/2", "/a/b/1"], 0),
        case("/a/", Some(1), Some("/a/2"), &["/a/2"], 1),
        case("/a/", None, Some("/a/zz"), &[], 0),
        case(
            "/a/",
            None,
            Some("/"),
            &["/a/1", "/a/10", "/a/2", "/a/b/1"],
            0,
        ),
        case("/a/", None, Some("/b"), &[], 0),
        case("/a", Some(3), None, &["/a", "/a/1", "/a/10"], 3),
        case("/a/b/", None, None, &["/a/b/1"], 0),
        case("/c/", Some(1), None, &[], 0),
        case("", None, None, all, 0),
        case(
            "",
            Some(5),
            Some("/a/1"),
            &["/a/1", "/a/10", "/a/2", "/a/b/1", "/ab"],
            1,
        ),
    ];
    for c in cases {
        let opts = ListOptions {
            at: None,
            limit: c.limit,
            start: c.start.map(str::to_owned),
        };
        let listed = s.list(c.prefix, opts).await.unwrap();
        let keys: Vec<&str> = listed.items.iter().map(|kv| kv.key.as_str()).collect();
        let what = format!(
            "prefix {:?} limit {:?} start {:?}",
            c.prefix, c.limit, c.start
        );
        assert_eq!(keys, c.keys, "{what}");
        assert_eq!(listed.remaining, c.remaining, "{what}: remaining");
        assert_eq!(listed.revision, 8, "{what}: revision");
    }
}

/// Paging a LIST at one revision (as the API server's continue tokens do) sees the
/// state of that revision even while writes go on.
async fn list_pages_at_one_revision(s: &dyn Storage) {
    for i in 0..7 {
        s.create(&format!("/pg/{i}"), "v".into()).await.unwrap(); // 2..=8
    }
    let mut opts = ListOptions {
        at: None,
        limit: Some(3),
        start: None,
    };
    let mut seen = Vec::new();
    loop {
        let page = s.list("/pg/", opts.clone()).await.unwrap();
        assert_eq!(page.revision, 8);
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        // A write between pages must not show in the listing at revision 8.
        s.create(&format!("/pg/x{}", seen.len()), "v".into())
            .await
            .unwrap();
        let Some(last) = page.items.last() else { break };
        if page.remaining == 0 {
            break;
        }
        opts.at = Some(page.revision);
        opts.start = Some(format!("{}\0", last.key));
    }
    let expected: Vec<String> = (0..7).map(|i| format!("/pg/{i}")).collect();
    assert_eq!(seen, expected);
}

/// A watch replays the retained history after `after`, then streams live changes, with
/// every revision once and in order: no gap and no duplicate at the hand-over.
async fn watch_replays_then_streams_live(s: &dyn Storage) {
    for i in 0..4 {
        s.create(&format!("/w/{i}"), "v".into()).await.unwrap(); // 2..=5
    }
    let mut watch = Watch::open(s, "/w/", 3).await;
    s.create("/w/4", "v".into()).await.unwrap(); // 6
    s.create("/w/5", "v".into()).await.unwrap(); // 7
    for expected in 4..=7 {
        assert_eq!(watch.next_change().await.revision(), expected);
    }
    // Nothing extra in between: the next change is the next write.
    s.create("/w/6", "v".into()).await.unwrap(); // 8
    assert_eq!(watch.next_change().await.revision(), 8);
    let mut from_now = Watch::open(s, "/w/", 8).await;
    s.create("/w/7", "v".into()).await.unwrap(); // 9
    assert_eq!(
        from_now.next_change().await.revision(),
        9,
        "from the present"
    );
}

/// Registration while other tasks write: the watcher still sees every revision after
/// its starting point once, in order.
async fn watch_registered_during_writes_misses_nothing(s: &dyn Storage) {
    const WRITES: usize = 40;
    let writer = async {
        for i in 0..WRITES {
            s.create(&format!("/r/{i}"), "v".into()).await.unwrap();
        }
    };
    let watcher = async {
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        let after = s.current_revision().await.unwrap();
        (after, Watch::open(s, "/r/", after).await)
    };
    let ((), (after, mut watch)) = tokio::join!(writer, watcher);
    let last = s.current_revision().await.unwrap();
    assert_eq!(last, 1 + WRITES as Revision);
    for expected in after + 1..=last {
        assert_eq!(watch.next_change().await.revision(), expected);
    }
}

/// A watcher sees only the keys under its prefix (a byte prefix, as etcd's).
async fn watch_sees_only_its_prefix(s: &dyn Storage) {
    let mut watch = Watch::open(s, "/a/", 1).await;
    s.create("/a", "v".into()).await.unwrap(); // 2
    s.create("/a/1", "v".into()).await.unwrap(); // 3
    s.create("/ab", "v".into()).await.unwrap(); // 4
    s.create("/b/1", "v".into()).await.unwrap(); // 5
    s.create("/a/2", "v".into()).await.unwrap(); // 6
    assert_eq!(watch.next_change().await.revision(), 3);
    assert_eq!(watch.next_change().await.revision(), 6);
    let mut everything = Watch::open(s, "", 1).await;
    for expected in 2..=6 {
        assert_eq!(everything.next_change().await.revision(), expected);
    }
}

/// Events carry the value before the change (etcd's `prev_kv`), live and replayed; a
/// delete carries the last live value and its own revision.
async fn watch_events_carry_prev_values(s: &dyn Storage) {
    let mut live = Watch::open(s, "/k", 1).await;
    s.create("/k", "1".into()).await.unwrap(); // 2
    s.update("/k", "2".into(), 2).await.unwrap(); // 3
    s.delete("/k", Some(3)).await.unwrap(); // 4
    s.create("/k", "3".into()).await.unwrap(); // 5, a new generation
    let expected = [
        WatchEvent::Put {
            kv: kv("/k", "1", 2, 2),
            prev: None,
        },
        WatchEvent::Put {
            kv: kv("/k", "2", 2, 3),
            prev: Some(kv("/k", "1", 2, 2)),
        },
        WatchEvent::Delete {
            prev: kv("/k", "2", 2, 3),
            revision: 4,
        },
        WatchEvent::Put {
            kv: kv("/k", "3", 5, 5),
            prev: None,
        },
    ];
    for event in &expected {
        assert_eq!(&live.next_change().await, event, "live");
    }
    let mut replayed = Watch::open(s, "/k", 1).await;
    for event in &expected {
        assert_eq!(&replayed.next_change().await, event, "replayed");
    }
}

/// A watch from before the compacted revision, or from the future, is refused; one from
/// the compacted revision itself starts right after it.
async fn watch_start_is_checked(s: &dyn Storage) {
    for i in 0..4 {
        s.create(&format!("/s/{i}"), "v".into()).await.unwrap(); // 2..=5
    }
    s.compact(3).await.unwrap();
    assert_eq!(
        s.watch("/s/", 1).await.err(),
        Some(StorageError::Compacted {
            requested: 1,
            compacted: 3
        })
    );
    assert_eq!(
        s.watch("/s/", 6).await.err(),
        Some(StorageError::FutureRevision {
            requested: 6,
            current: 5
        })
    );
    let mut watch = Watch::open(s, "/s/", 3).await;
    assert_eq!(watch.next_change().await.revision(), 4);
    assert_eq!(watch.next_change().await.revision(), 5);
}

/// Progress notifications: each says that every change up to its revision was
/// delivered (checked by `Watch` on every item), and an idle watcher is told the
/// current revision, even when nothing under its prefix changed.
async fn watch_progress_reports_the_current_revision(s: &dyn Storage) {
    let mut watch = Watch::open(s, "/q/", 1).await;
    s.create("/q/a", "v".into()).await.unwrap(); // 2
    s.create("/elsewhere", "v".into()).await.unwrap(); // 3
    assert_eq!(watch.next_change().await.revision(), 2);
    assert_eq!(watch.progress_at_least(3).await, 3, "the current revision");
    s.create("/q/b", "v".into()).await.unwrap(); // 4
    let next = watch.next_change().await;
    assert_eq!(next.revision(), 4, "after the progress, the next write");
}

/// Writers never wait for watchers: a watcher that reads nothing while many writes
/// commit either gets every change (caught up from history) or a prefix of them and
/// then `WatcherTooSlow` (or `Compacted`, if the history it needed is gone), and ends.
async fn slow_watcher_never_blocks_writers(s: &dyn Storage) {
    let mut slow = Watch::open(s, "/slow/", 1).await;
    for i in 0..SLOW_WATCHER_WRITES {
        let key = format!("/slow/{i:03}");
        tokio::time::timeout(HANG_GUARD, s.create(&key, "v".into()))
            .await
            .expect("a write waited for a watcher")
            .unwrap();
    }
    let last = 1 + SLOW_WATCHER_WRITES as Revision;
    let mut expected = 2;
    while expected <= last {
        match slow.next_item().await {
            Some(Ok(WatchEvent::Progress { revision })) => slow.saw_progress(revision),
            Some(Ok(change)) => {
                assert_eq!(change.revision(), expected, "in order, without gaps");
                slow.covered = expected;
                expected += 1;
            }
            Some(Err(StorageError::WatcherTooSlow | StorageError::Compacted { .. })) => {
                assert_eq!(
                    slow.next_item().await,
                    None,
                    "the stream ends after the error"
                );
                return;
            }
            other => panic!("expected change {expected}, got {other:?}"),
        }
    }
}

/// An endpoint where nothing listens is `Unavailable`, at connect time, promptly.
#[tokio::test]
async fn etcd_unreachable_endpoint_is_unavailable() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let connected = tokio::time::timeout(HANG_GUARD, EtcdStorage::connect(&[endpoint]))
        .await
        .expect("connect gave up within its timeout");
    assert!(
        matches!(connected, Err(StorageError::Unavailable(_))),
        "{connected:?}"
    );
}

macro_rules! backend_tests {
    ($backend:ident: $($check:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let backend = super::$backend().await;
                    super::$check(&*backend.storage).await;
                }
            )*
        }
    };
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        backend_tests!(memory: $($check),*);
        backend_tests!(embedded: $($check),*);
        backend_tests!(etcd_bosun: $($check),*);
        backend_tests!(etcd_real: $($check),*);
    };
}

conformance!(
    revisions_count_every_write,
    create_preconditions,
    update_preconditions,
    delete_preconditions,
    reads_at_past_revisions,
    compaction,
    list_limit_start_remaining,
    list_pages_at_one_revision,
    watch_replays_then_streams_live,
    watch_registered_during_writes_misses_nothing,
    watch_sees_only_its_prefix,
    watch_events_carry_prev_values,
    watch_start_is_checked,
    watch_progress_reports_the_current_revision,
    slow_watcher_never_blocks_writers,
);
