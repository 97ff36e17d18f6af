use crate::helpers::{bench, demo_sources, ok};
use serde_json::Value;

const KEYS: [&str; 8] = [
    "pipeline_limit_mbps",
    "convert_mbps",
    "convert_ratio",
    "known_limit_mbps",
    "known_mbps",
    "known_ratio",
    "tar_bytes",
    "cores",
];

const STAGES: [&str; 7] = [
    "decode",
    "sha256_blob",
    "sha256_tar",
    "fastcdc",
    "blake3",
    "zstd",
    "write",
];

fn positive(report: &Value, key: &str) -> f64 {
    let value = report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {report:#}"));
    assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    value
}

#[test]
fn limits_on_the_demo_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, _) = demo_sources(&tmp.path().join("images"));
    let out = tmp.path().join("out");
    let stdout = ok(bench(&[
        "limits",
        "--source",
        &v1,
        "--out",
        &out.display().to_string(),
        "--json",
    ]));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(!out.join("work").exists(), "the work directory is removed");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("pipeline limit"), "{md}");
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(written["tar_bytes"], report["tar_bytes"]);

    for key in KEYS {
        positive(&report, key);
    }
    let stages = report["stages"].as_array().unwrap();
    let ids: Vec<&str> = stages.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, STAGES);
    for stage in stages {
        for key in [
            "input_bytes",
            "cpu_s",
            "wall_s",
            "cpu_s_per_gb",
            "core_mbps",
        ] {
            positive(stage, key);
        }
    }
    // The second convert finds every chunk stored.
    assert_eq!(report["known_added_blob_bytes"], 0, "{report:#}");
    assert!(report["new_chunks"].as_u64().unwrap() <= report["chunks"].as_u64().unwrap());
    let converts = report["converts"].as_array().unwrap();
    assert_eq!(converts.len(), 3);
}
