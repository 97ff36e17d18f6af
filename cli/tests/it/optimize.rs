//! `cairn optimize`: every blob below the target rewritten once, the images read back byte for
//! byte, a dry run or a spent budget changing nothing, a stopped run resumed, and every write
//! step's fail point leaving the store whole and the run resumable.

use crate::helpers::{cairn, export_all, ok};
use std::path::Path;

fn json(store: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(cairn(store, args))).unwrap()
}

/// The demo pair converted: app:v2 has delta frames against app:v1's chunks.
fn demo_store(dir: &Path) -> std::path::PathBuf {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("images")).unwrap();
    let store = dir.join("store");
    ok(cairn(&store, &["init"]));
    for (source, name) in [(v1, "app:v1"), (v2, "app:v2")] {
        let source = format!("oci:{}", source.display());
        ok(cairn(&store, &["convert", &source, "--name", name]));
    }
    store
}

fn blob_files(store: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    crate::helpers::files(&store.join("blobs"))
}

fn assert_verify_clean(store: &Path) {
    let out = ok(cairn(store, &["verify", "--full"]));
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn optimize_rewrites_each_blob_once_and_images_read_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let before = [
        export_all(&store, "app:v1", 3),
        export_all(&store, "app:v2", 3),
    ];
    let stats = json(&store, &["stats", "app:v2", "--json"]);
    let blobs_before = blob_files(&store);

    // A dry run changes nothing and estimates from sampled frames.
    let dry = json(&store, &["optimize", "--dry-run", "--json"]);
    assert_eq!(blob_files(&store), blobs_before);
    assert_eq!(dry["blobs_below_target"], blobs_before.len(), "{dry}");
    assert!(dry["estimate_sample_frames"].as_u64().unwrap() > 0, "{dry}");
    assert!(dry["estimated_new_bytes"].as_u64().unwrap() > 0, "{dry}");

    // A budget smaller than any blob rewrites nothing and says why.
    let none = json(&store, &["optimize", "--budget-mb", "0.000001", "--json"]);
    assert_eq!(none["rewritten_blobs"], 0, "{none}");
    assert_eq!(none["stopped_by"], "budget", "{none}");
    assert_eq!(none["remaining_blobs"], blobs_before.len(), "{none}");
    assert_eq!(blob_files(&store), blobs_before);

    let done = json(&store, &["optimize", "--level", "12", "--json"]);
    assert_eq!(done["rewritten_blobs"], blobs_before.len(), "{done}");
    assert_eq!(done["remaining_blobs"], 0, "{done}");
    assert!(done["rounds"].as_u64().unwrap() >= 1, "{done}");
    assert!(
        blob_files(&store)
            .keys()
            .all(|p| !blobs_before.contains_key(p)),
        "an old blob is left"
    );
    assert_verify_clean(&store);
    assert_eq!(
        [
            export_all(&store, "app:v1", 3),
            export_all(&store, "app:v2", 3)
        ],
        before
    );
    // Delta frames were copied as they are: v2 keeps them.
    let after = json(&store, &["stats", "app:v2", "--json"]);
    for field in ["chunks", "bytes", "stored_bytes"] {
        assert_eq!(after["delta"][field], stats["delta"][field], "{after}");
    }

    // At the target now: nothing to do at that level, everything again at a higher one.
    let again = json(&store, &["optimize", "--level", "12", "--json"]);
    assert_eq!(again["blobs_below_target"], 0, "{again}");
    let blobs = blob_files(&store);
    let higher = json(
        &store,
        &["optimize", "--level", "13", "--dry-run", "--json"],
    );
    assert_eq!(higher["blobs_below_target"], blobs.len(), "{higher}");

    let text = ok(cairn(&store, &["optimize", "--level", "13"]));
    assert!(text.contains("were below the target, zstd-13"), "{text}");
    assert!(text.contains("rewrote"), "{text}");
    assert_eq!(
        [
            export_all(&store, "app:v1", 3),
            export_all(&store, "app:v2", 3)
        ],
        before
    );
}

#[test]
fn convert_optimize_stores_at_the_target_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = demo_store(tmp.path());
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("again")).unwrap();
    let store = tmp.path().join("optimized");
    ok(cairn(&store, &["init"]));
    let source = format!("oci:{}", v1.display());
    ok(cairn(
        &store,
        &["convert", &source, "--name", "app:v1", "--optimize"],
    ));
    assert_eq!(
        export_all(&store, "app:v1", 3),
        export_all(&plain, "app:v1", 3)
    );
    let dry = json(&store, &["optimize", "--dry-run", "--json"]);
    assert_eq!(dry["blobs_below_target"], 0, "{dry}");
    let text = ok(cairn(&store, &["optimize"]));
    assert!(text.contains("nothing to recompress"), "{text}");
}

#[test]
fn a_budget_stops_it_and_the_next_run_goes_on_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let before = export_all(&store, "app:v2", 3);
    let dry = json(&store, &["optimize", "--dry-run", "--json"]);
    let blobs = dry["blobs_below_target"].as_u64().unwrap();
    assert!(blobs >= 2, "{dry}");
    // The oldest blob is the first converted: the budget of exactly its size takes it alone.
    let mut sizes: Vec<(std::time::SystemTime, u64)> = std::fs::read_dir(store.join("blobs"))
        .unwrap()
        .map(|e| {
            let meta = e.unwrap().metadata().unwrap();
            (meta.modified().unwrap(), meta.len())
        })
        .collect();
    sizes.sort();
    let oldest_mb = format!("{}", sizes[0].1 as f64 / 1e6);
    let first = json(&store, &["optimize", "--budget-mb", &oldest_mb, "--json"]);
    assert_eq!(first["rewritten_blobs"], 1, "{first}");
    assert_eq!(first["rewritten_bytes"], sizes[0].1, "{first}");
    assert_eq!(first["stopped_by"], "budget", "{first}");
    assert_eq!(first["remaining_blobs"], blobs - 1, "{first}");
    assert_eq!(export_all(&store, "app:v2", 3), before);

    let rest = json(&store, &["optimize", "--json"]);
    assert_eq!(rest["blobs_below_target"], blobs - 1, "{rest}");
    assert_eq!(rest["remaining_blobs"], 0, "{rest}");
    assert_eq!(rest["stopped_by"], serde_json::Value::Null, "{rest}");
    assert_verify_clean(&store);
    assert_eq!(export_all(&store, "app:v2", 3), before);
}

#[test]
fn optimize_failing_at_any_write_step_leaves_the_store_whole_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let points = [
        "gc.compact.blob_fsync",
        "gc.compact.blob_rename",
        "gc.compact.layer_meta_fsync",
        "gc.compact.layer_meta_rename",
        "gc.compact.bootstrap_rename",
        "gc.index.batch",
        "gc.delete",
        "gc.dir_fsync",
        "gc.records.batch",
    ];
    for point in points {
        let dir = tmp.path().join(point);
        let store = demo_store(&dir);
        let before = [
            export_all(&store, "app:v1", 3),
            export_all(&store, "app:v2", 3),
        ];
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .env(cairn_engine::failpoint::ENV, point)
            .arg("--store")
            .arg(&store)
            .args(["optimize", "--quiet"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{point}: optimize succeeded");
        assert!(err.contains(point), "{point}: not reached: {err}");
        assert_verify_clean(&store);
        assert_eq!(
            [
                export_all(&store, "app:v1", 3),
                export_all(&store, "app:v2", 3)
            ],
            before,
            "{point}"
        );
        let again = json(&store, &["optimize", "--json"]);
        assert_eq!(again["remaining_blobs"], 0, "{point}: {again}");
        let gc = json(&store, &["gc", "--dry-run", "--json"]);
        assert_eq!(gc["dead_blobs"], 0, "{point}: {gc}");
        assert_verify_clean(&store);
        assert_eq!(
            [
                export_all(&store, "app:v1", 3),
                export_all(&store, "app:v2", 3)
            ],
            before,
            "{point}"
        );
    }
}

/// `cairn optimize --json` with the free-space probe saying `free` bytes.
fn optimize_with_free(store: &Path, free: u64) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .env(cairn_engine::failpoint::FREE_BYTES_ENV, free.to_string())
        .arg("--store")
        .arg(store)
        .args(["optimize", "--json"])
        .output()
        .unwrap();
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn on_a_nearly_full_disk_it_says_what_it_needs_and_rewrites_what_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let before = [
        export_all(&store, "app:v1", 3),
        export_all(&store, "app:v2", 3),
    ];
    let blobs_before = blob_files(&store);
    let blobs = blobs_before.len() as u64;
    assert!(blobs >= 2);

    // No space: nothing is written, the run succeeds and says what it needs, every time.
    for _ in 0..2 {
        let full = optimize_with_free(&store, 0);
        assert_eq!(full["rewritten_blobs"], 0, "{full}");
        assert_eq!(full["stopped_by"], "disk-space", "{full}");
        assert_eq!(full["free_bytes"], 0, "{full}");
        assert_eq!(full["skipped_for_space_blobs"], blobs, "{full}");
        assert_eq!(full["remaining_blobs"], blobs, "{full}");
        assert!(
            full["space_needed_bytes"].as_u64().unwrap() > 8 << 20,
            "{full}"
        );
        assert_eq!(blob_files(&store), blobs_before);
    }
    let text = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .env(cairn_engine::failpoint::FREE_BYTES_ENV, "0")
            .arg("--store")
            .arg(&store)
            .arg("optimize")
            .output()
            .unwrap();
        ok(out)
    };
    assert!(
        text.contains("did not fit in the") && text.contains("needs"),
        "{text}"
    );

    // Room for every blob but the one that needs the most: the others are rewritten, it is
    // named, with the space it needs.
    let needed = optimize_with_free(&store, 0)["space_needed_bytes"]
        .as_u64()
        .unwrap();
    let part = optimize_with_free(&store, needed - 1);
    let skipped = part["skipped_for_space_blobs"].as_u64().unwrap();
    assert!(skipped >= 1, "{part}");
    assert_eq!(part["stopped_by"], "disk-space", "{part}");
    let still = part["space_needed_bytes"].as_u64().unwrap();
    assert!(still >= needed, "{part}");
    assert_eq!(
        part["rewritten_blobs"].as_u64().unwrap() + skipped,
        blobs,
        "{part}"
    );
    assert_verify_clean(&store);

    // With the space it asked for, the run finishes the rest.
    let rest = optimize_with_free(&store, still);
    assert_eq!(rest["remaining_blobs"], 0, "{rest}");
    assert_eq!(rest["skipped_for_space_blobs"], 0, "{rest}");
    assert_eq!(rest["stopped_by"], serde_json::Value::Null, "{rest}");
    assert_verify_clean(&store);
    assert_eq!(
        [
            export_all(&store, "app:v1", 3),
            export_all(&store, "app:v2", 3)
        ],
        before
    );
}

#[test]
fn optimize_without_a_terminal_logs_each_round_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    // The tests' stderr is a pipe, as under cron.
    let out = cairn(&store, &["optimize", "--level", "12"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("of blobs below the target"), "{log}");
    assert!(log.contains("optimize: round 1 done: "), "{log}");
    assert!(log.contains("rewritten (100.0%)"), "{log}");
    let quiet = cairn(&store, &["--quiet", "optimize"]);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
}
