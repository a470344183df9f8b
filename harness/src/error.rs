//! The harness's umbrella error for scenario runs: every variant says which scenario,
//! file or algorithm it is about.

use crate::datasets::DatasetError;
use crate::replay::ReplayError;
use crate::synth::SynthError;

/// Why a scenario could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A scenario file or text that does not parse or does not validate.
    #[error("scenario {origin}: {message}")]
    Scenario { origin: String, message: String },
    /// No shipped scenario has this name and no file has this path.
    #[error("scenario {name:?} not found (not a file, and not in {dir}); known: {known}")]
    ScenarioNotFound {
        name: String,
        dir: String,
        known: String,
    },
    #[error("scenario {origin}: cannot read: {source}")]
    Io {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {scenario}: {source}")]
    Dataset {
        scenario: String,
        #[source]
        source: DatasetError,
    },
    #[error("scenario {scenario}: {source}")]
    Replay {
        scenario: String,
        #[source]
        source: ReplayError,
    },
    #[error("scenario {scenario}: {source}")]
    Synth {
        scenario: String,
        #[source]
        source: SynthError,
    },
    /// An algorithm name nobody registered, or a profile that does not build.
    #[error("scenario {scenario}: algorithm {algorithm:?}: {message}")]
    Algorithm {
        scenario: String,
        algorithm: String,
        message: String,
    },
    /// The scheduler's cache refused an operation the driver made: a driver bug or a
    /// generated object the scheduler cannot read.
    #[error("scenario {scenario}: scheduler cache: {message}")]
    Cache { scenario: String, message: String },
}
