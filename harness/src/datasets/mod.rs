//! Real cluster traces shipped in the workspace's `datasets/` directory, and their
//! loaders. Every load reads the whole file, checks its size and SHA-256 against
//! [`SHIPPED_FILES`] (compiled in from the table in `datasets/README.md`), and only then
//! parses it; so a missing, truncated, modified or corrupt file is an error that names
//! it, and a parse error names the file and line.
//!
//! - [`openb`]: the Alibaba `cluster-trace-gpu-v2023` ("openb", FGD, ATC'23) node and
//!   pod lists, every variant.
//! - [`dlrm`]: the Alibaba `cluster-trace-gpu-v2025` DLRM inference pods, and node pools
//!   of the shapes a caller states (the trace has no node list).
//!
//! The parsers ([`openb::parse_nodes`], [`openb::parse_pods`], [`dlrm::parse_pods`])
//! take any text, for traces that are not shipped.
//!
//! ```
//! use bosun_harness::datasets::Datasets;
//! use bosun_harness::datasets::openb::{NodeList, PodList};
//! use bosun_harness::replay::{FgdConfig, fgd_resample};
//!
//! let data = Datasets::shipped();
//! let nodes = data.openb_nodes(NodeList::GpuNode)?;
//! let pods = data.openb_pods(PodList::DEFAULT)?;
//! let capacity: u64 = nodes.iter().map(|n| n.gpu_milli_capacity()).sum();
//! // The FGD paper's workload: 1.3 × the cluster's GPUs, shuffled, seed 42.
//! let workload = fgd_resample(&pods, capacity, &FgdConfig::default())?;
//! assert!(workload.iter().map(|p| p.gpu.milli()).sum::<u64>() >= capacity * 13 / 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dlrm;
pub mod openb;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};

/// Environment variable that overrides where [`Datasets::shipped`] looks.
pub const DATASETS_DIR_ENV: &str = "BOSUN_DATASETS_DIR";
/// Upper bound on the size of a dataset file this module reads into memory.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// A file shipped in `datasets/`, as listed in its README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShippedFile {
    /// Path relative to `datasets/`.
    pub path: &'static str,
    pub bytes: u64,
    /// Data rows, header excluded; 0 for text files that are not data.
    pub rows: usize,
    /// SHA-256, lowercase hex.
    pub sha256: &'static str,
}

/// Every file in `datasets/` but the README, with the sizes, row counts and SHA-256
/// sums of the README's "Files and checksums" table.
pub const SHIPPED_FILES: &[ShippedFile] = &[
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_node_list_all_node.csv",
        bytes: 52287,
        rows: 1523,
        sha256: "5a85c2af79c66a1efff8bbcbda430400aae56d8431370d738480967e1a9c6b15",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_node_list_gpu_node.csv",
        bytes: 42353,
        rows: 1213,
        sha256: "2beca64b4d3dfa342036a34b56a495c6cef9225db836c81f541282cb1df320b5",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu0.csv",
        bytes: 499765,
        rows: 7064,
        sha256: "1bc3fd9ee5c1468ccd018f624d9222746e08d59f963f66b925804734271c0eaa",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu037.csv",
        bytes: 518687,
        rows: 7336,
        sha256: "8ed554026d041b15ff21ddc104d9a21dbd9a93c496262fa23ef7b5be27e220dc",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu050.csv",
        bytes: 525811,
        rows: 7439,
        sha256: "747f43247bffc2b0bb081d7f61f0705ca8d390dafc0b647e642c92f3baf3ba1e",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu072.csv",
        bytes: 537576,
        rows: 7608,
        sha256: "f8a2b031461b54d7b9f06d55473c2371eb3357b78a255c646bdca5e0833a8a2f",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu100.csv",
        bytes: 554709,
        rows: 7853,
        sha256: "bec1c33fbdde61fd463877534ec79b393aec73e1cbb22d55fab9f166ac480982",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu200.csv",
        bytes: 622703,
        rows: 8832,
        sha256: "b7e9d8a1a601da84d6e0b4110b19ef5001be5e4796d33e7b82f166ba95161f87",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu235.csv",
        bytes: 651171,
        rows: 9240,
        sha256: "87bebd4d012faa8305ce1fd82737f51cf03361aac28b75d42e34aa656d7f4ee0",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu250.csv",
        bytes: 663708,
        rows: 9420,
        sha256: "134c21ff96d57533df8a37b67632972884fec9396e77cd0898ddc370cc8e607d",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_cpu300.csv",
        bytes: 710698,
        rows: 10094,
        sha256: "76528825f40ee662cb098b3b6e683c1efd9f87a0c8af7e628df1f32c639636d1",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_default.csv",
        bytes: 575468,
        rows: 8152,
        sha256: "1ee7ed79c27a3b0861cda8ddba86a004c6aba904caafa329a76ae93ca63834a8",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpushare100.csv",
        bytes: 561220,
        rows: 8152,
        sha256: "12dbc07d6a49bf8641e2275a2ff5bf7be74b5df7d148d531e135b140b95f9a3d",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpushare20.csv",
        bytes: 574603,
        rows: 8152,
        sha256: "9be2d0efb52e242c32e23dd184cc5fcc1983478c6c9c02cbb6b4b62925c0ffcd",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpushare40.csv",
        bytes: 572662,
        rows: 8152,
        sha256: "d83ce79a4eb6987524bedbb0c65e41aed3a36bf6c1b78b86234c3687a07e1d40",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpushare60.csv",
        bytes: 566361,
        rows: 8152,
        sha256: "d31809628128a1f24491086eda4af3e23882b9213d3ef57a56ee2d1af69492fe",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpushare80.csv",
        bytes: 563740,
        rows: 8152,
        sha256: "88b6649369ced40d0fde287d2498ea61ff4b05fccba8bdc95daf6042f2f8431e",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpuspec05.csv",
        bytes: 577176,
        rows: 8152,
        sha256: "8f1c0ef7e4e511e982bd2818898ba22ee6d273bf5fce124b7ace285b5928cf4e",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpuspec10.csv",
        bytes: 579461,
        rows: 8152,
        sha256: "2dc7e4cb9480484f08539720b433a9ec9ab5d76b396f3f7557c53a2ff78a7611",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpuspec20.csv",
        bytes: 582612,
        rows: 8152,
        sha256: "6b9b89ab8913c1c074e994e98f548cf1a872fc5f76f2442ca8cd514a478b00a9",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpuspec25.csv",
        bytes: 584915,
        rows: 8152,
        sha256: "9d030679a2ccd7e27a7ec9ff15baff34480d22a0012515691fc187e3f35ee68c",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_gpuspec33.csv",
        bytes: 587467,
        rows: 8152,
        sha256: "eca4f746db1e5b25864ad021b55ece3943e101a3ebd4574d09dcb95c46117652",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_multigpu20.csv",
        bytes: 271530,
        rows: 8324,
        sha256: "d9ec6f6c74fb980cc0b81239470c6353fceea077ea9abd610003b604c7cc2b01",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_multigpu30.csv",
        bytes: 277920,
        rows: 8508,
        sha256: "a5e479c6444b1d83eef848159cf00c3cfa13441b2d1e2c113c391b91f1cc5b11",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_multigpu40.csv",
        bytes: 286202,
        rows: 8746,
        sha256: "32c9e8731ca07ef96108aa65f2a289bb9aacb47f642ed9e3789f99b242df60eb",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/openb_pod_list_multigpu50.csv",
        bytes: 297219,
        rows: 9061,
        sha256: "206f2f5959db30ecb7c44e7f13197c8ec50b7a35558ad3777cc3662ef0fe5373",
    },
    ShippedFile {
        path: "alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv",
        bytes: 2118900,
        rows: 23871,
        sha256: "fb17bc4b3f412d5280f70f04a1bdf2adfc4429d1e61237a5b106e86206414295",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/ALIBABA_CLUSTERDATA_TERMS_README.md",
        bytes: 12585,
        rows: 0,
        sha256: "487faa1a984935aba03c490d9c396d26b3171b618a0cc3d4ba5210e2b2eee399",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/UPSTREAM_README.md",
        bytes: 5237,
        rows: 0,
        sha256: "4445ce29c045d3281f857f25c392b78880658978ea4fc420ec3f5b4bf621bc80",
    },
    ShippedFile {
        path: "alibaba-gpu-v2023-openb/LICENSE-hkust-adsl-kubernetes-scheduler-simulator-Apache-2.0.txt",
        bytes: 11357,
        rows: 0,
        sha256: "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
    },
    ShippedFile {
        path: "alibaba-gpu-v2025-dlrm/ALIBABA_CLUSTERDATA_TERMS_README.md",
        bytes: 12585,
        rows: 0,
        sha256: "487faa1a984935aba03c490d9c396d26b3171b618a0cc3d4ba5210e2b2eee399",
    },
    ShippedFile {
        path: "alibaba-gpu-v2025-dlrm/UPSTREAM_README.md",
        bytes: 5418,
        rows: 0,
        sha256: "488ca82c502e1a186a2ed673281c3d2176813adb3ad77c976259388a8aea7f98",
    },
];

/// What went wrong reading a dataset. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "dataset file {path}: missing (copy it from ../shared/datasets; see datasets/README.md)"
    )]
    Missing { path: PathBuf },
    #[error("dataset file {path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("dataset file {path}: truncated: {actual_bytes} bytes, expected {expected_bytes}")]
    Truncated {
        path: PathBuf,
        actual_bytes: u64,
        expected_bytes: u64,
    },
    #[error(
        "dataset file {path}: corrupt or modified: {actual_bytes} bytes with sha256 {actual_sha256}, \
         expected {expected_bytes} bytes with sha256 {expected_sha256}"
    )]
    Checksum {
        path: PathBuf,
        actual_bytes: u64,
        actual_sha256: String,
        expected_bytes: u64,
        expected_sha256: &'static str,
    },
    #[error("dataset file {path}: not in the table of shipped files")]
    NotShipped { path: String },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        /// 1-based; the header is line 1.
        line: usize,
        message: String,
    },
}

impl DatasetError {
    /// The file the error is about, as the message names it.
    pub fn file(&self) -> String {
        match self {
            DatasetError::Missing { path }
            | DatasetError::Io { path, .. }
            | DatasetError::Truncated { path, .. }
            | DatasetError::Checksum { path, .. } => path.display().to_string(),
            DatasetError::NotShipped { path } => path.clone(),
            DatasetError::Parse { file, .. } => file.clone(),
        }
    }
}

/// The entry of [`SHIPPED_FILES`] for `path` (relative to `datasets/`).
pub fn shipped_file(path: &str) -> Option<&'static ShippedFile> {
    SHIPPED_FILES.iter().find(|f| f.path == path)
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let sum = digest(&SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in sum.as_ref() {
        write!(out, "{b:02x}").expect("writing to a String cannot fail");
    }
    out
}

/// A datasets directory: where loaders read shipped files from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasets {
    root: PathBuf,
}

impl Datasets {
    /// The workspace's `datasets/`, or `$BOSUN_DATASETS_DIR` when set.
    pub fn shipped() -> Datasets {
        let root = match std::env::var_os(DATASETS_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets"),
        };
        Datasets { root }
    }

    /// A directory laid out like `datasets/` (e.g. a copy).
    pub fn at(root: impl Into<PathBuf>) -> Datasets {
        Datasets { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a shipped file and checks its size and SHA-256 against [`SHIPPED_FILES`].
    pub fn read_verified(
        &self,
        rel_path: &str,
    ) -> Result<(Vec<u8>, &'static ShippedFile), DatasetError> {
        let Some(expected) = shipped_file(rel_path) else {
            return Err(DatasetError::NotShipped {
                path: rel_path.to_string(),
            });
        };
        let path = self.root.join(rel_path);
        let bytes = read_bounded(&path)?;
        let actual_bytes = bytes.len() as u64;
        if actual_bytes < expected.bytes {
            return Err(DatasetError::Truncated {
                path,
                actual_bytes,
                expected_bytes: expected.bytes,
            });
        }
        let actual_sha256 = sha256_hex(&bytes);
        if actual_bytes != expected.bytes || actual_sha256 != expected.sha256 {
            return Err(DatasetError::Checksum {
                path,
                actual_bytes,
                actual_sha256,
                expected_bytes: expected.bytes,
                expected_sha256: expected.sha256,
            });
        }
        Ok((bytes, expected))
    }

    /// Reads a shipped data file as verified UTF-8 text.
    pub(crate) fn read_text(
        &self,
        rel_path: &str,
    ) -> Result<(String, &'static ShippedFile), DatasetError> {
        let (bytes, file) = self.read_verified(rel_path)?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok((text, file)),
            // Unreachable for a file whose checksum matched, but cheap to handle.
            Err(e) => Err(DatasetError::Parse {
                file: self.root.join(rel_path).display().to_string(),
                line: 0,
                message: format!("not UTF-8: {e}"),
            }),
        }
    }

    /// Verifies every shipped file; the first failure is returned.
    pub fn verify_all(&self) -> Result<(), DatasetError> {
        for file in SHIPPED_FILES {
            self.read_verified(file.path)?;
        }
        Ok(())
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, DatasetError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            DatasetError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            DatasetError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let len = std::fs::metadata(path).map_err(io_err)?.len();
    if len > MAX_FILE_BYTES {
        let msg = format!("{len} bytes is over the {MAX_FILE_BYTES}-byte bound");
        return Err(io_err(io::Error::new(io::ErrorKind::InvalidData, msg)));
    }
    std::fs::read(path).map_err(io_err)
}

/// A minimal CSV reader for the shipped traces: comma-separated, no quoting (the traces
/// have none, and a quote is reported as an error), `\n` or `\r\n` line ends.
pub(crate) struct Csv<'a> {
    file: &'a str,
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    columns: usize,
    fields: Vec<&'a str>,
}

/// One parsed row: its fields and its 1-based line number.
pub(crate) struct Row<'r, 'a> {
    pub file: &'r str,
    pub line: usize,
    pub fields: &'r [&'a str],
}

impl<'a> Csv<'a> {
    /// Checks the header against one of `headers` (alternative layouts) and returns the
    /// reader and which header matched.
    pub fn new(
        file: &'a str,
        text: &'a str,
        headers: &[&[&str]],
    ) -> Result<(Csv<'a>, usize), DatasetError> {
        let mut lines = text.split('\n').enumerate();
        let header = lines
            .next()
            .map(|(_, l)| l.trim_end_matches('\r'))
            .unwrap_or("");
        let got: Vec<&str> = header.split(',').collect();
        let Some(which) = headers.iter().position(|h| *h == got.as_slice()) else {
            let expected: Vec<String> = headers.iter().map(|h| h.join(",")).collect();
            return Err(parse_error(
                file,
                1,
                format!("unexpected header {header:?}; expected one of {expected:?}"),
            ));
        };
        let columns = headers[which].len();
        let csv = Csv {
            file,
            lines,
            columns,
            fields: Vec::with_capacity(columns),
        };
        Ok((csv, which))
    }

    /// Calls `each` for every data row; stops at the first error.
    pub fn for_each_row(
        mut self,
        mut each: impl FnMut(Row<'_, 'a>) -> Result<(), DatasetError>,
    ) -> Result<usize, DatasetError> {
        let mut rows = 0;
        let mut last_line_empty = false;
        for (idx, line) in self.lines.by_ref() {
            let line_no = idx + 1;
            if last_line_empty {
                return Err(parse_error(self.file, line_no - 1, "empty line".into()));
            }
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                // Allowed only as the end of a file that ends in a newline.
                last_line_empty = true;
                continue;
            }
            if line.contains('"') {
                return Err(parse_error(
                    self.file,
                    line_no,
                    "quoted fields are not supported".into(),
                ));
            }
            self.fields.clear();
            self.fields.extend(line.split(','));
            if self.fields.len() != self.columns {
                let msg = format!(
                    "{} fields, expected {} (truncated or corrupt row?)",
                    self.fields.len(),
                    self.columns
                );
                return Err(parse_error(self.file, line_no, msg));
            }
            each(Row {
                file: self.file,
                line: line_no,
                fields: &self.fields,
            })?;
            rows += 1;
        }
        Ok(rows)
    }
}

pub(crate) fn parse_error(file: &str, line: usize, message: String) -> DatasetError {
    DatasetError::Parse {
        file: file.to_string(),
        line,
        message,
    }
}

impl Row<'_, '_> {
    pub fn error(&self, message: String) -> DatasetError {
        parse_error(self.file, self.line, message)
    }

    /// Field `idx` parsed as `T`; `column` names it in the error.
    pub fn parse<T: std::str::FromStr>(&self, idx: usize, column: &str) -> Result<T, DatasetError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.fields[idx];
        raw.parse()
            .map_err(|e| self.error(format!("column {column}: {raw:?}: {e}")))
    }

    /// Field `idx` as `T`, or `None` when empty.
    pub fn parse_opt<T: std::str::FromStr>(
        &self,
        idx: usize,
        column: &str,
    ) -> Result<Option<T>, DatasetError>
    where
        T::Err: std::fmt::Display,
    {
        if self.fields[idx].is_empty() {
            return Ok(None);
        }
        self.parse(idx, column).map(Some)
    }

    /// Field `idx`, a non-negative decimal number of units, scaled by `scale` and rounded
    /// to an integer (e.g. GiB to MiB, seconds to milliseconds).
    pub fn scaled(&self, idx: usize, column: &str, scale: f64) -> Result<u64, DatasetError> {
        let value: f64 = self.parse(idx, column)?;
        if !value.is_finite() || value < 0.0 {
            return Err(self.error(format!(
                "column {column}: {value} is not a non-negative number"
            )));
        }
        Ok((value * scale).round() as u64)
    }

    pub fn scaled_opt(
        &self,
        idx: usize,
        column: &str,
        scale: f64,
    ) -> Result<Option<u64>, DatasetError> {
        if self.fields[idx].is_empty() {
            return Ok(None);
        }
        self.scaled(idx, column, scale).map(Some)
    }
}

/// Checks a parsed file's row count against the README's table.
pub(crate) fn check_rows(
    file: &str,
    shipped: &ShippedFile,
    rows: usize,
) -> Result<(), DatasetError> {
    if rows == shipped.rows {
        return Ok(());
    }
    let msg = format!("{rows} data rows, expected {}", shipped.rows);
    Err(parse_error(file, rows + 1, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, f) in SHIPPED_FILES.iter().enumerate() {
            assert_eq!(f.sha256.len(), 64, "{}", f.path);
            assert!(
                f.sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(f.path.ends_with(".csv"), f.rows > 0, "{}", f.path);
            let dup = SHIPPED_FILES[..i].iter().any(|g| g.path == f.path);
            assert!(!dup, "{} listed twice", f.path);
        }
    }

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn csv_reports_file_and_line() {
        let text = "a,b\n1,2\n3\n";
        let (csv, _) = Csv::new("t.csv", text, &[&["a", "b"]]).unwrap();
        let err = csv.for_each_row(|_| Ok(())).unwrap_err();
        assert!(
            err.to_string().starts_with("t.csv:3: 1 fields, expected 2"),
            "{err}"
        );
        let err = Csv::new("t.csv", "x,y\n", &[&["a", "b"]]).err().unwrap();
        assert!(
            err.to_string().starts_with("t.csv:1: unexpected header"),
            "{err}"
        );
        let (csv, _) = Csv::new("t.csv", "a,b\n1,2\n\n3,4\n", &[&["a", "b"]]).unwrap();
        let err = csv.for_each_row(|_| Ok(())).unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3: empty line"), "{err}");
    }
}
