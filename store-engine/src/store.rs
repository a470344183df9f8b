//! [`Store`]: the KV engine with its watch hub and lessor, as one unit to serve.

use std::path::Path;
use std::sync::Arc;

use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, TailRepair};
use crate::lease::{Clock, Lessor, SystemClock};
use crate::logfile::{HostDir, LogBackend, LogDir};
use crate::watch::{HubConfig, WatchHub};

/// Where [`Store::open`] keeps the lease log, under the data directory (the KV log is
/// in the data directory itself, as [`Engine::open`] lays it out).
pub const LEASE_SUBDIR: &str = "lease";

/// The engine, the hub fed by its commits, and the lessor.
pub struct Store<D: LogDir + Clone + Send + Sync + 'static> {
    pub kv: Arc<Engine<D>>,
    pub hub: Arc<WatchHub>,
    pub lessor: Arc<Lessor<D>>,
}

#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    pub engine: EngineConfig,
    pub hub: HubConfig,
    /// How [`Store::open`] writes its logs.
    pub log_backend: LogBackend,
}

impl Store<HostDir> {
    /// Opens (or creates) a store in `data_dir`, with the lease log in
    /// `data_dir/lease`, the configured log backend and the system clock.
    pub fn open(data_dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self, Error> {
        let kv_dir = HostDir::open(data_dir.as_ref(), config.log_backend)?;
        let lease_dir = HostDir::open(data_dir.as_ref().join(LEASE_SUBDIR), config.log_backend)?;
        Store::with_dirs(kv_dir, lease_dir, config, Arc::new(SystemClock::default()))
    }
}

impl<D: LogDir + Clone + Send + Sync + 'static> Store<D> {
    /// Opens a store over two directories (tests use [`crate::MemDir`]s) and a clock.
    pub fn with_dirs(
        kv_dir: D,
        lease_dir: D,
        config: StoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let kv = Arc::new(Engine::open(kv_dir, config.engine.clone())?);
        let hub = WatchHub::attach(&kv, config.hub);
        let lessor = Lessor::open(kv.clone(), lease_dir, config.engine, clock)?;
        Ok(Store { kv, hub, lessor })
    }

    /// The torn tails cut off the two logs when they were opened (the lease log's file
    /// named under [`LEASE_SUBDIR`]), for the caller to report.
    pub fn repaired_tails(&self) -> Vec<TailRepair> {
        let kv = self.kv.stats().repaired_tail;
        let lease = self.lessor.log_stats().repaired_tail.map(|r| TailRepair {
            file: format!("{LEASE_SUBDIR}/{}", r.file),
            ..r
        });
        kv.into_iter().chain(lease).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PutRequest, RangeRequest};

    /// On disk: the KV log in the data dir, the lease log beside it; both reopen.
    #[test]
    fn open_on_disk_and_reopen() {
        let dir = std::env::temp_dir().join(format!("bosun-store-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let id = {
            let store = Store::open(&dir, StoreConfig::default()).unwrap();
            let (id, _) = store.lessor.grant(0, 60).unwrap();
            let kv = store.kv.clone();
            let put = PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: id,
                ..Default::default()
            };
            store.lessor.write([id], || kv.put(put)).unwrap().unwrap();
            id
        };
        assert!(dir.join(LEASE_SUBDIR).is_dir());
        let store = Store::open(&dir, StoreConfig::default()).unwrap();
        let info = store.lessor.time_to_live(id, true).unwrap();
        assert_eq!(info.keys.len(), 1);
        let got = store.kv.range(&RangeRequest {
            key: b"k".to_vec(),
            ..Default::default()
        });
        assert_eq!(got.unwrap().kvs[0].lease, id);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
