use crate::helpers::{bench, demo_sources, ok, sibling_cairn};
use cairn_testkit::{probe, require};
use serde_json::Value;
use std::path::Path;

const ROWS: [&str; 8] = [
    "registry",
    "containerd",
    "whole-file",
    "fixed-1m",
    "fastcdc-blobs",
    "cairn",
    "cairn-delta-off",
    "cairn-new-alone",
];

fn run(images: &Path, out: &Path, extra: &[&str]) -> Value {
    let (old, new) = demo_sources(images);
    let out_arg = out.display().to_string();
    let mut args = vec!["footprint", "--old", &old, "--new", &new, "--out", &out_arg];
    args.extend_from_slice(extra);
    let stdout = ok(bench(&args));
    assert!(stdout.contains("| storage |"), "{stdout}");
    assert!(!out.join("work").exists(), "the work directory is removed");
    let svg = std::fs::read_to_string(out.join("footprint.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| storage |"));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn row<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {report:#}"))
}

fn bytes(row: &Value, key: &str) -> u64 {
    row[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {row:#}"))
}

#[test]
fn footprint_on_the_demo_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let report = run(&tmp.path().join("images"), &out, &[]);

    let ids: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    // The cold rows need the cairn binary; squashfs, mksquashfs.
    let cairn = sibling_cairn("the cold rows");
    let mut expected = ROWS.to_vec();
    if cairn.is_some() {
        expected.push("cairn-optimized");
        if require("the squashfs row", probe::tool("mksquashfs")).is_some() {
            expected.push("squashfs");
        }
    }
    assert_eq!(ids, expected);
    assert!(report["peers"].is_null());
    let tar = report["old_tar_bytes"].as_u64().unwrap();
    assert!(tar > 3 << 20, "the demo holds a 3 MiB binary: {tar}");
    for id in ROWS {
        let r = row(&report, id);
        assert!(bytes(r, "new_adds_bytes") > 0, "{r:#}");
        if id != "cairn-new-alone" {
            let old = bytes(r, "after_old_bytes");
            let both = bytes(r, "after_old_and_new_bytes");
            assert!(old > 0 && both > old, "{r:#}");
        }
        if id != "fastcdc-blobs" {
            let steps = r["steps"].as_array().unwrap();
            assert!(!steps.is_empty());
            for s in steps {
                assert!(s["usage"]["max_rss_kib"].as_u64().unwrap() > 0, "{r:#}");
                assert!(s["usage"]["wall_s"].as_f64().is_some());
            }
        }
    }

    // What the schemes must show on the demo pair, whatever the machine.
    let after_old = |id| bytes(row(&report, id), "after_old_bytes");
    let adds = |id| bytes(row(&report, id), "new_adds_bytes");
    // Every layer of v2 has a new digest: the registry stores v2 whole again.
    assert!(adds("registry") * 10 >= after_old("registry") * 9);
    // Unpacked snapshots cost more than the blobs alone.
    assert!(after_old("containerd") > after_old("registry") + tar / 2);
    // Chunk dedup finds what layer dedup misses.
    assert!(adds("fastcdc-blobs") * 2 < adds("registry"));
    assert!(adds("fixed-1m") * 2 < adds("registry"));
    // With old as dictionary, new adds less than new converted alone.
    assert!(adds("cairn") < adds("cairn-new-alone"));
    assert!(adds("cairn") <= adds("cairn-delta-off"));
    // The content of the cairn store is its blobs; the store holds more (bootstraps, index).
    assert!(after_old("cairn") > after_old("fastcdc-blobs"));

    if cairn.is_some() {
        // optimize shrinks the store; the reads after it are timed against before.
        assert!(after_old("cairn-optimized") <= after_old("cairn"));
        let cold = &report["cold"];
        assert!(cold["read_speed_ratio"].as_f64().unwrap() > 0.0, "{cold:#}");
        assert_eq!(cold["optimize"][0]["remaining_blobs"], 0, "{cold:#}");
        assert!(cold["optimize"][0]["rewritten_blobs"].as_u64().unwrap() > 0);
    }

    let expected = match cairn {
        Some(path) => path.display().to_string(),
        None => "in-process".into(),
    };
    assert!(
        report["cairn"].as_str().unwrap().contains(&expected),
        "{}",
        report["cairn"]
    );
}

#[test]
fn footprint_refuses_a_foreign_work_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("mine");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("keep-me"), b"x").unwrap();
    let (old, new) = demo_sources(&tmp.path().join("images"));
    let output = bench(&[
        "footprint",
        "--old",
        &old,
        "--new",
        &new,
        "--out",
        &tmp.path().join("out").display().to_string(),
        "--work",
        &work.display().to_string(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not made by cairn-bench"));
    assert!(work.join("keep-me").exists());
}
