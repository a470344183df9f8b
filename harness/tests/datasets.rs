//! The shipped traces: every file loads with the README's row counts and facts, and a
//! corrupt, truncated or missing file is an error naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bosun_harness::datasets::dlrm::{self, LoadConfig, Role};
use bosun_harness::datasets::openb::{NodeList, PodList, TRACE_END_S};
use bosun_harness::datasets::{DatasetError, Datasets, SHIPPED_FILES, shipped_file};
use bosun_harness::model::{GpuRequest, QosClass};

fn shipped() -> Datasets {
    Datasets::shipped()
}

/// A datasets directory holding only `rel` (copied, then changed by `edit`).
fn temp_copy(rel: &str, edit: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, Datasets) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(shipped().root().join(rel)).unwrap();
    edit(&mut bytes);
    let path = dir.path().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let datasets = Datasets::at(dir.path());
    (dir, datasets)
}

#[test]
fn compiled_checksums_match_the_readme_table() {
    // The table in datasets/README.md, "Files and checksums": | `path` | bytes | rows | `sha` |
    let readme = std::fs::read_to_string(shipped().root().join("README.md")).unwrap();
    let mut listed = 0;
    for line in readme
        .lines()
        .filter(|l| l.starts_with("| `alibaba") && l.ends_with("` |"))
    {
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        if cells.len() != 6 || cells[4].len() != 64 {
            continue; // the directory table at the top
        }
        let file = shipped_file(cells[1]).unwrap_or_else(|| panic!("{} not compiled in", cells[1]));
        assert_eq!(
            file.bytes.to_string(),
            cells[2].replace(',', ""),
            "{}",
            cells[1]
        );
        let rows = if cells[3] == "–" {
            "0".to_string()
        } else {
            cells[3].replace(',', "")
        };
        assert_eq!(file.rows.to_string(), rows, "{}", cells[1]);
        assert_eq!(file.sha256, cells[4], "{}", cells[1]);
        listed += 1;
    }
    assert_eq!(listed, SHIPPED_FILES.len());
}

#[test]
fn every_shipped_file_verifies() {
    shipped().verify_all().unwrap();
    // And nothing unlisted is in the directory but the README.
    let root = shipped().root().to_path_buf();
    for dir in ["alibaba-gpu-v2023-openb", "alibaba-gpu-v2025-dlrm"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                shipped_file(&format!("{dir}/{name}")).is_some(),
                "{dir}/{name} not in the table"
            );
        }
    }
}

#[test]
fn openb_node_lists_load_with_readme_facts() {
    let all = shipped().openb_nodes(NodeList::AllNode).unwrap();
    let gpu = shipped().openb_nodes(NodeList::GpuNode).unwrap();
    assert_eq!((all.len(), gpu.len()), (1523, 1213));
    // README: the GPU cluster has 107,018 cores and 6,212 GPUs; 27 distinct shapes.
    assert_eq!(gpu.iter().map(|n| n.cpu_milli).sum::<u64>(), 107_018_000);
    assert_eq!(gpu.iter().map(|n| u64::from(n.gpus)).sum::<u64>(), 6212);
    assert!(gpu.iter().all(|n| n.gpus > 0 && n.gpu_model.is_some()));
    let shapes: BTreeSet<_> = all
        .iter()
        .map(|n| (n.cpu_milli, n.memory_mib, n.gpus, n.gpu_model.clone()))
        .collect();
    assert_eq!(shapes.len(), 27);
    let g2 = all
        .iter()
        .filter(|n| n.instance_type.as_deref() == Some("openb-96c-384Gi-8xG2"))
        .count();
    assert_eq!(g2, 549);
}

#[test]
fn every_openb_pod_list_loads_with_its_row_count() {
    for list in PodList::ALL {
        let pods = shipped().openb_pods(list).unwrap();
        let rows = shipped_file(&list.file()).unwrap().rows;
        assert_eq!(pods.len(), rows, "{}", list.name());
        assert!(
            pods.iter()
                .all(|p| p.arrival_ms.is_some() != list.is_short()),
            "{}",
            list.name()
        );
        assert_eq!(PodList::named(list.name()), Some(list));
    }
    assert_eq!(PodList::named("nope"), None);
}

#[test]
fn openb_default_matches_readme_facts() {
    let pods = shipped().openb_pods(PodList::DEFAULT).unwrap();
    let count = |f: &dyn Fn(&GpuRequest) -> bool| pods.iter().filter(|p| f(&p.gpu)).count();
    // README "Facts about default": GPU requests.
    assert_eq!(count(&|g| *g == GpuRequest::None), 1088);
    assert_eq!(count(&|g| matches!(g, GpuRequest::Fraction(_))), 3078);
    assert_eq!(
        count(&|g| matches!(g, GpuRequest::Fraction(_) | GpuRequest::Whole(1))),
        6989
    );
    for (n, want) in [(2, 16), (4, 15), (8, 44)] {
        assert_eq!(count(&|g| *g == GpuRequest::Whole(n)), want, "{n}-GPU pods");
    }
    let qos: BTreeMap<QosClass, usize> = pods.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.qos).or_default() += 1;
        m
    });
    let want = [
        (QosClass::Ls, 4647),
        (QosClass::Be, 3398),
        (QosClass::Burstable, 100),
        (QosClass::Guaranteed, 7),
    ];
    assert_eq!(qos, BTreeMap::from(want));
    assert_eq!(pods.iter().filter(|p| !p.scheduled_in_trace).count(), 897);
    assert_eq!(pods.iter().filter(|p| p.departure_ms.is_none()).count(), 34);
    // Total GPU demand 6,086.8 GPUs; the file is sorted by creation time.
    assert_eq!(pods.iter().map(|p| p.gpu.milli()).sum::<u64>(), 6_086_800);
    assert!(pods.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
    assert!(
        pods.iter()
            .all(|p| p.departure_ms.is_none_or(|d| d < TRACE_END_S * 1000))
    );
}

#[test]
fn dlrm_loads_with_readme_facts() {
    let pods = shipped().dlrm_pods(LoadConfig::default()).unwrap();
    assert_eq!(pods.len(), 23_871);
    let cn: Vec<_> = pods
        .iter()
        .filter(|p| Role::of(p) == Some(Role::Cn))
        .collect();
    assert_eq!(cn.len(), 16_485);
    assert!(cn.iter().all(|p| p.gpu == GpuRequest::None));
    assert!(
        pods.iter()
            .filter(|p| Role::of(p) == Some(Role::Hn))
            .all(|p| p.gpu == GpuRequest::Whole(1))
    );
    assert_eq!(dlrm::pods_per_app(&pods).len(), 156);
    assert_eq!(dlrm::pods_per_app(&pods).values().max(), Some(&2551));
    assert_eq!(
        pods.iter().filter(|p| p.departure_ms.is_none()).count(),
        8878
    );
    let caps: BTreeSet<_> = pods.iter().map(|p| p.max_instances_per_node).collect();
    assert_eq!(
        caps,
        BTreeSet::from([None, Some(2), Some(4), Some(8), Some(10), Some(16)])
    );
    // README "Size over time": HN peaks at about 3,414 pods and GPUs; CN at about 5,614
    // pods and 393,616 vCPU.
    let hn = dlrm::peak_demand(&pods, Role::Hn);
    assert_eq!((hn.pods, hn.gpus), (3414, 3414));
    let cn_peak = dlrm::peak_demand(&pods, Role::Cn);
    assert_eq!((cn_peak.pods, cn_peak.cpu_milli), (5614, 393_616_000));
    let n_hn = dlrm::pool_size_lower_bound(&hn, &dlrm::DEFAULT_POOLS.hn);
    assert!(n_hn >= 3414_usize.div_ceil(8), "{n_hn}");
    let unpinned = shipped()
        .dlrm_pods(LoadConfig { pin_roles: false })
        .unwrap();
    assert!(unpinned.iter().all(|p| p.node_selector.is_empty()));
}

fn assert_names(err: &DatasetError, rel: &str) {
    let msg = err.to_string();
    assert!(msg.contains(rel), "error does not name {rel}: {msg}");
    assert!(err.file().ends_with(rel), "{}", err.file());
}

#[test]
fn a_corrupt_byte_is_a_checksum_error_naming_the_file() {
    let rel = PodList::named("gpushare40").unwrap().file();
    // A digit changed in the middle of the file: still parses, so only the sum catches it.
    let (_dir, ds) = temp_copy(&rel, |b| {
        let i = b.len() / 2
            + b[b.len() / 2..]
                .iter()
                .position(u8::is_ascii_digit)
                .unwrap();
        b[i] = if b[i] == b'1' { b'2' } else { b'1' };
    });
    let err = ds
        .openb_pods(PodList::named("gpushare40").unwrap())
        .unwrap_err();
    assert!(matches!(err, DatasetError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("corrupt or modified"), "{err}");
    assert_names(&err, &rel);
}

#[test]
fn a_truncated_copy_is_a_truncation_error_naming_the_file() {
    let rel = NodeList::GpuNode.file();
    // Cut at a line boundary, so the rest would parse.
    let (_dir, ds) = temp_copy(rel, |b| {
        let cut = b[..b.len() / 2].iter().rposition(|&c| c == b'\n').unwrap() + 1;
        b.truncate(cut);
    });
    let err = ds.openb_nodes(NodeList::GpuNode).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected_bytes: 42_353,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, rel);
    let (_dir, ds) = temp_copy(dlrm::FILE, |b| b.truncate(b.len() - 1));
    let err = ds.dlrm_pods(LoadConfig::default()).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_names(&err, dlrm::FILE);
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Datasets::at(dir.path());
    let err = ds.dlrm_pods(LoadConfig::default()).unwrap_err();
    assert!(matches!(err, DatasetError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    assert_names(&err, dlrm::FILE);
    let err = ds.openb_pods(PodList::DEFAULT).unwrap_err();
    assert_names(&err, "openb_pod_list_default.csv");
    let err = ds.verify_all().unwrap_err();
    assert_names(&err, SHIPPED_FILES[0].path);
}

#[test]
fn an_appended_line_is_a_checksum_error() {
    let rel = NodeList::AllNode.file();
    let (_dir, ds) = temp_copy(rel, |b| b.extend_from_slice(b"extra,1,1,0,\n"));
    let err = ds.openb_nodes(NodeList::AllNode).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Checksum {
                actual_bytes: 52_300,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, rel);
}

#[test]
fn unverified_parsers_name_file_and_line() {
    let text = std::fs::read_to_string(shipped().root().join(PodList::DEFAULT.file())).unwrap();
    // Truncated mid-row: the last line has too few fields.
    let cut = &text[..text.len() - 20];
    let err = bosun_harness::datasets::openb::parse_pods("default.csv", cut).unwrap_err();
    let DatasetError::Parse { file, line, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((file.as_str(), *line), ("default.csv", 8153));
    assert!(Path::new(file).ends_with("default.csv"));
}
