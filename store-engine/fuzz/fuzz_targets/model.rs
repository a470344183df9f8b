//! Random operation sequences, crashes and restarts included, checked against the
//! BTreeMap model of MVCC (`tests/support/model.rs`). A crash found here becomes a
//! file in `fuzz/regressions/model/`, which `tests/fuzz_model.rs` replays on stable
//! with the seed inputs in `fuzz/seeds/model/`.

#![no_main]

#[path = "../../tests/support/model.rs"]
mod model_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    model_support::run(model_support::ops_from_bytes(data));
});
