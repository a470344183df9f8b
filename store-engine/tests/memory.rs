//! What the in-memory state costs per key and per version, counted exactly by a
//! counting allocator (bytes requested, not the allocator's rounding): the figures
//! against etcd's index in BENCHMARKS.md come from here, and a regression in the
//! index's layout fails it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use bosun_store_engine::*;

struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call forwards to the system allocator with the caller's own arguments;
// the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

const N_KEYS: usize = 50_000;
const VALUE_BYTES: usize = 256;
/// Versions written on top of each key's first.
const N_MORE_VERSIONS: usize = 4;

fn key(i: usize) -> Vec<u8> {
    // Kubernetes-shaped keys, not inserted in key order.
    format!("/registry/pods/ns{}/p{i:07}", i % 1000).into_bytes()
}

/// Keys inserted in ascending order (the put benchmark's sequential keys, names with
/// a growing suffix), as long as `key`'s.
fn ascending_key(i: usize) -> Vec<u8> {
    format!("/registry/pods/ns000/p{i:07}").into_bytes()
}

/// Puts every key once more, 128 to a txn, with a value of `fill`.
fn put_all(mvcc: &mut Mvcc, fill: u8) {
    put_all_of(mvcc, fill, key)
}

fn put_all_of(mvcc: &mut Mvcc, fill: u8, key: fn(usize) -> Vec<u8>) {
    for first in (0..N_KEYS).step_by(128) {
        let txn = TxnRequest {
            success: (first..(first + 128).min(N_KEYS))
                .map(|i| {
                    RequestOp::Put(PutRequest {
                        key: key(i),
                        value: vec![fill; VALUE_BYTES],
                        ..Default::default()
                    })
                })
                .collect(),
            ..Default::default()
        };
        mvcc.apply(&txn).unwrap();
    }
}

#[test]
fn bytes_per_key_and_per_version() {
    let key_bytes: usize = (0..N_KEYS).map(|i| key(i).len()).sum();
    let empty = live_bytes();
    let mut mvcc = Mvcc::new();
    put_all(&mut mvcc, 1);
    let one_version = live_bytes() - empty;
    // Beyond the key's and value's own bytes: the index's share.
    let per_key = (one_version - (key_bytes + N_KEYS * VALUE_BYTES) as i64) as f64 / N_KEYS as f64;

    for v in 0..N_MORE_VERSIONS {
        put_all(&mut mvcc, 2 + v as u8);
    }
    let n_versions = N_KEYS * N_MORE_VERSIONS;
    let more = live_bytes() - empty - one_version;
    let per_version = (more - (n_versions * VALUE_BYTES) as i64) as f64 / n_versions as f64;

    mvcc.compact(mvcc.current_revision()).unwrap();
    let compacted = live_bytes() - empty;
    let per_key_compacted =
        (compacted - (key_bytes + N_KEYS * VALUE_BYTES) as i64) as f64 / N_KEYS as f64;

    eprintln!(
        "{N_KEYS} keys of {:.1} bytes with {VALUE_BYTES}-byte values: {per_key:.1} bytes per key \
         beyond its key and value; {per_version:.1} per further version beyond its value; \
         {per_key_compacted:.1} per key after compacting to one version each \
         ({} chunks)",
        key_bytes as f64 / N_KEYS as f64,
        mvcc.index().n_chunks()
    );
    // Per key: the chunk slot (40 bytes, chunks about 70% full), the key's and the
    // value's shared-handle headers (16 each) and one entry (56): about 150. A history
    // that starts at a Vec's default four entries would add 168.
    assert!(per_key < 170.0, "{per_key:.1} bytes per key");
    // Per version: the entry and its value's header, plus the history's growth room.
    assert!(per_version < 110.0, "{per_version:.1} bytes per version");
    // Compaction gives back the versions' memory and the room their histories grew.
    assert!(
        per_key_compacted < per_key + 8.0,
        "{per_key_compacted:.1} bytes per key after compaction, {per_key:.1} before"
    );
    drop(mvcc);

    // Ascending keys fill each chunk to the bound and start the next: a full chunk
    // keeps no room for keys that will not come.
    let key_bytes: usize = (0..N_KEYS).map(|i| ascending_key(i).len()).sum();
    let empty = live_bytes();
    let mut mvcc = Mvcc::new();
    put_all_of(&mut mvcc, 1, ascending_key);
    let per_key_ascending =
        (live_bytes() - empty - (key_bytes + N_KEYS * VALUE_BYTES) as i64) as f64 / N_KEYS as f64;
    eprintln!(
        "ascending keys: {per_key_ascending:.1} bytes per key beyond its key and value ({} chunks)",
        mvcc.index().n_chunks()
    );
    // The chunk slot at full chunks (40), the entry (56) and two headers (32).
    assert!(
        per_key_ascending < 135.0,
        "{per_key_ascending:.1} bytes per key"
    );
}
