use crate::helpers::{bench, demo_sources, ok, sibling_cairn};
use cairn_testkit::{probe, require};
use serde_json::Value;

fn bytes(row: &Value, column: &str) -> u64 {
    row[column]["bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{column}.bytes in {row:#}"))
}

#[test]
fn bundle_bench_on_the_demo_pair() {
    let Some(cairn) = sibling_cairn("the bundle bench test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = demo_sources(&tmp.path().join("images"));
    let out = tmp.path().join("out");
    let stdout = ok(bench(&[
        "bundle",
        "--old",
        &old,
        "--new",
        &new,
        "--out",
        &out.display().to_string(),
        "--cairn",
        &cairn.display().to_string(),
        "--json",
    ]));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(!out.join("work").exists(), "the work directory is removed");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| cairn bundle "), "{md}");

    // squashfs runs where squashfs-tools is installed, and is reported skipped elsewhere.
    let squashfs = ["mksquashfs", "unsquashfs"]
        .iter()
        .all(|tool| require("the squashfs row", probe::tool(tool)).is_some());
    let mut expected = vec!["cairn-bundle", "docker-save", "layer-digest"];
    if squashfs {
        expected.push("squashfs");
    } else {
        assert!(
            report["skipped"][0].as_str().unwrap().contains("squashfs"),
            "{report:#}"
        );
    }
    let rows = report["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected);
    for row in rows {
        for column in ["full", "incremental"] {
            assert!(bytes(row, column) > 0, "{row:#}");
            for step in ["create", "import"] {
                let usage = &row[column][step];
                assert!(usage["wall_s"].as_f64().is_some(), "{row:#}");
                assert!(usage["max_rss_kib"].as_u64().unwrap() > 0, "{row:#}");
            }
        }
    }

    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
    let cairn_row = row("cairn-bundle");
    assert!(
        bytes(cairn_row, "incremental") < bytes(cairn_row, "full"),
        "{cairn_row:#}"
    );
    // The full shipment of the layer-digest row is docker save's archive of OLD.
    assert_eq!(
        bytes(row("layer-digest"), "full"),
        bytes(row("docker-save"), "full")
    );
    assert!(bytes(row("layer-digest"), "incremental") <= bytes(row("docker-save"), "incremental"));
    let store = &report["cairn_store"];
    assert!(
        store["sender_new_adds_bytes"].as_u64().unwrap() > 0,
        "{store:#}"
    );
    assert!(
        store["receiver_incremental_adds_bytes"].as_u64().unwrap() > 0,
        "{store:#}"
    );
    let goals = report["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 3, "{goals:#?}");
    // The speed goal is measured exactly when the squashfs row ran.
    assert_eq!(goals[2]["met"].is_boolean(), squashfs, "{goals:#?}");
}
