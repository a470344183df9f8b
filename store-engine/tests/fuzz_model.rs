//! The libFuzzer target `fuzz/fuzz_targets/model.rs`, run on stable as a bounded,
//! deterministic test: seeded random byte strings, the fuzzer's committed seed inputs
//! (`fuzz/seeds/model/`, a sample of its corpus) and every crash it found
//! (`fuzz/regressions/model/`) go through the same decoder and model check.
//!
//! `BOSUN_FUZZ_SEED` and `BOSUN_FUZZ_CASES` override the seed and the number of
//! inputs; the seed and the failing input are printed on failure, so a run replays.
//! For open-ended, coverage-guided fuzzing: `cd store-engine/fuzz && cargo +nightly
//! fuzz run model corpus/model seeds/model` (`scripts/test-all` runs it for 30 s).

#[path = "support/model.rs"]
mod model_support;

/// Inputs per run by default: about a second of the test suite.
const N_CASES_DEFAULT: u64 = 128;
/// Bound on one generated input (libFuzzer's default `-max_len` is 4096).
const INPUT_BYTES_MAX: usize = 1024;
const SEED_DEFAULT: u64 = 0xB05E_F022;

/// splitmix64: a tiny, portable seeded generator for the inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn run_input(what: &str, data: &[u8]) {
    let ops = model_support::ops_from_bytes(data);
    let outcome = std::panic::catch_unwind(|| model_support::run(ops));
    if let Err(panic) = outcome {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("failing input ({what}), {} bytes: {hex}", data.len());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn fuzz_target_on_seeded_random_inputs() {
    let seed = env_u64("BOSUN_FUZZ_SEED").unwrap_or(SEED_DEFAULT);
    let n_cases = env_u64("BOSUN_FUZZ_CASES").unwrap_or(N_CASES_DEFAULT);
    eprintln!("seed {seed:#x}, {n_cases} inputs (BOSUN_FUZZ_SEED, BOSUN_FUZZ_CASES)");
    let mut rng = SplitMix(seed);
    for case in 0..n_cases {
        let len = (rng.next() % INPUT_BYTES_MAX as u64) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        run_input(&format!("seed {seed:#x} case {case}"), &data);
    }
}

/// The files of `fuzz/<dir>/model`, sorted; none if the directory is absent.
fn inputs_in(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join("model");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
}

#[test]
fn fuzz_seeds_and_regressions_replay() {
    let seeds = inputs_in("seeds");
    assert!(seeds.len() >= 8, "{} seed inputs committed", seeds.len());
    // Crashes the fuzzer found, once fixed (none so far: the directory may be absent).
    for path in seeds.iter().chain(&inputs_in("regressions")) {
        run_input(&path.display().to_string(), &std::fs::read(path).unwrap());
    }
}
