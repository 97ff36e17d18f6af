//! The everyday commands end to end: init, convert, images, ls, inventory, diff, stats,
//! export-layer, cat, unpack, export, verify (and --repair-index), rm, gc, demo; errors.

use crate::helpers::{cairn, ok, store_with_demo_v1};
use std::process::Command;

#[test]
fn init_convert_images_export_cat() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    ok(cairn(&store, &["init"]));

    let out = ok(cairn(
        &store,
        &[
            "convert",
            &format!("oci:{}:v1", v1.display()),
            "--name",
            "app:v1",
            "--json",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["images"][0]["name"], "app:v1");
    let human = ok(cairn(
        &store,
        &[
            "convert",
            &format!("oci:{}", v2.display()),
            "--name",
            "app:v2",
            "--dict",
            "app:v1",
        ],
    ));
    assert!(human.contains("from dictionary [app:v1]"), "{human}");

    let images: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["images", "--json"]))).unwrap();
    let names: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["app:v1", "app:v2"]);
    assert!(images[0]["manifest_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let table = ok(cairn(&store, &["images"]));
    assert!(
        table.starts_with("NAME") && table.contains("linux/amd64"),
        "{table}"
    );

    let layers = cairn_sample::demo_layers(2).unwrap();
    let out_file = tmp.path().join("layer2.tar");
    ok(cairn(
        &store,
        &[
            "export-layer",
            "app:v2",
            "2",
            "-o",
            out_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(&out_file).unwrap(), layers[2]);
    let stdout_export = cairn(&store, &["export-layer", "app:v2", "0", "-o", "-"]);
    assert!(stdout_export.status.success());
    assert_eq!(stdout_export.stdout, layers[0]);

    let listing = ok(cairn(&store, &["ls", "app:v2", "/app"]));
    assert!(listing.lines().any(|l| l == "model.bin"), "{listing}");
    let long = ok(cairn(&store, &["ls", "--long", "app:v2", "app/bin"]));
    let has = |prefix: &str, suffix: &str| {
        long.lines()
            .any(|l| l.starts_with(prefix) && l.ends_with(suffix))
    };
    assert!(has("-rwx", " demo-server"), "{long}");
    assert!(has("h", " demo -> app/bin/demo-server"), "{long}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["ls", "--json", "app:v2", "etc"]))).unwrap();
    // etc/motd was deleted by a whiteout in the app layer.
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|e| e["path"] != "etc/motd"),
        "{json}"
    );

    let csv_text = ok(cairn(&store, &["inventory", "--format", "csv"]));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        headers,
        [
            "name",
            "manifest_digest",
            "architecture",
            "os",
            "variant",
            "os_version",
            "layer_index",
            "layer_digest",
            "layer_size",
            "diff_id",
            "uncompressed_size",
            "files",
            "unique_stored_bytes"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 6);
    assert_eq!(&records[0][0], "app:v1");
    assert_eq!(&records[0][2], "amd64");
    let diff: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["diff", "app:v1", "app:v2", "--json"]))).unwrap();
    for key in [
        "old",
        "new",
        "new_logical_bytes",
        "shared_bytes",
        "shared_chunks",
        "new_chunks",
        "shared_ratio_bytes",
        "shared_ratio_chunks",
        "added_stored_bytes",
        "layer_dedup_added_bytes",
        "file_dedup_added_bytes",
        "chunk_dedup_added_bytes",
        "layers",
        "top_files",
    ] {
        assert!(diff.get(key).is_some(), "diff --json lacks {key}");
    }
    let human = ok(cairn(&store, &["diff", "app:v1", "app:v2", "--by", "file"]));
    assert!(human.lines().all(|l| l.chars().count() <= 80), "{human}");
    let stats = ok(cairn(&store, &["stats", "--matrix", "app:v1", "app:v2"]));
    assert!(
        stats.contains("dedup ratio") && stats.contains("[1] app:v2"),
        "{stats}"
    );

    // A device is written in place, never replaced by a file.
    ok(cairn(
        &store,
        &["export-layer", "app:v2", "1", "-o", "/dev/null"],
    ));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    let model = cairn(&store, &["cat", "app:v2", "app/model.bin"]);
    assert!(model.status.success());
    assert_eq!(
        model.stdout.len(),
        cairn_sample::DEMO_MODEL_LEN + cairn_sample::DEMO_MODEL_INSERT_LEN
    );
}

#[test]
fn errors_exit_non_zero_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let out = cairn(&store, &["images"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cairn init"));
    ok(cairn(&store, &["init"]));
    let out = cairn(
        &store,
        &["convert", "oci:/nonexistent/layout", "--name", "x"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("cairn: error:") && err.contains("/nonexistent/layout"),
        "{err}"
    );
    let out = cairn(&store, &["export-layer", "nope", "0", "-o", "-"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image named \"nope\""));
}

#[test]
fn demo_runs_and_reports() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["demo", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["layers_verified"], 6);
    let v1_added = report["v1"]["added_bytes"].as_u64().unwrap();
    let v2_added = report["v2"]["added_bytes"].as_u64().unwrap();
    assert!(
        v2_added * 3 < v1_added,
        "v2 added {v2_added}, v1 {v1_added}"
    );
}

#[test]
fn unpack_writes_the_root_filesystem() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let dir = tmp.path().join("rootfs");
    let human = ok(cairn(&store, &["unpack", "app:v1", dir.to_str().unwrap()]));
    assert!(
        human.starts_with("unpacked into") && human.contains("MB/s"),
        "{human}"
    );
    let config = ok(cairn(&store, &["cat", "app:v1", "app/config.toml"]));
    assert_eq!(
        std::fs::read_to_string(dir.join("app/config.toml")).unwrap(),
        config
    );
    assert!(!dir.join("etc/motd").exists(), "whiteout applied");

    let base = tmp.path().join("base");
    let out = ok(cairn(
        &store,
        &[
            "unpack",
            "app:v1",
            base.to_str().unwrap(),
            "--layer",
            "0",
            "--json",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["files"].as_u64().unwrap() > 0, "{out}");
    assert!(base.join("etc/motd").is_file() && !base.join("app").exists());

    let again = cairn(&store, &["unpack", "app:v1", dir.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[test]
fn export_writes_an_oci_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let layout = tmp.path().join("out");
    let human = ok(cairn(
        &store,
        &["export", "app:v1", &format!("oci:{}:v1", layout.display())],
    ));
    assert!(human.contains("every diff_id verified"), "{human}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert!(layout.join("oci-layout").is_file());

    let archive = tmp.path().join("app.tar");
    let report: serde_json::Value = serde_json::from_str(&ok(cairn(
        &store,
        &[
            "export",
            "app:v1",
            &format!("docker-archive:{}", archive.display()),
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(report["reference"], "app:v1");
    assert_eq!(report["layers"].as_array().unwrap().len(), 3);
    assert!(archive.is_file());

    let out = cairn(
        &store,
        &[
            "export",
            "app:v1",
            &format!("docker-archive:{}", archive.display()),
            "--compression",
            "zstd",
            "--force",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("uncompressed layers"));
}

#[test]
fn verify_rm_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    ok(cairn(&store, &["init"]));
    for (layout, name) in [(&v1, "a:v1"), (&v2, "a:v2")] {
        ok(cairn(
            &store,
            &[
                "convert",
                &format!("oci:{}", layout.display()),
                "--name",
                name,
            ],
        ));
    }
    assert!(ok(cairn(&store, &["verify", "--full"])).contains("no problems found"));
    ok(cairn(&store, &["rm", "a:v2"]));
    let gc: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["gc", "--json"]))).unwrap();
    assert_eq!(gc["dead_bootstraps"], 1);
    assert!(gc["freed_bytes"].as_u64().unwrap() > 0);
    // One flipped byte in a blob: verify --full names it and fails.
    let blob = std::fs::read_dir(store.join("blobs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x80;
    std::fs::write(&blob, &bytes).unwrap();
    let out = cairn(&store, &["verify", "--full"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let name = blob.file_name().unwrap().to_str().unwrap();
    assert!(text.contains("DAMAGED") && text.contains(name), "{text}");
}

#[test]
fn verify_repair_index_rebuilds_a_lost_index() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let config = ok(cairn(&store, &["cat", "app:v1", "app/config.toml"]));
    std::fs::remove_dir_all(store.join("index")).unwrap();
    let out = cairn(&store, &["verify"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--repair-index"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let human = ok(cairn(&store, &["verify", "--repair-index"]));
    assert!(
        human.contains("there was no index")
            && human.contains("0 names kept, 0 dropped, 1 recovered")
            && human.contains("RECOVERED  recovered-")
            && human.ends_with("no problems found\n"),
        "{human}"
    );
    let images: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["images", "--json"]))).unwrap();
    let name = images[0]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("recovered-"), "{images}");
    assert_eq!(
        ok(cairn(&store, &["cat", &name, "app/config.toml"])),
        config
    );

    // On a sound store it keeps every name and fixes nothing.
    let json: serde_json::Value = serde_json::from_str(&ok(cairn(
        &store,
        &["verify", "--repair-index", "--full", "--json"],
    )))
    .unwrap();
    assert_eq!(json["repair"]["old_index"], "intact");
    assert_eq!(json["repair"]["refs_kept"][0]["name"], name.as_str());
    assert_eq!(json["repair"]["chunks_fixed"], 0);
    assert_eq!(json["verify"]["problems"].as_array().unwrap().len(), 0);
    assert!(json["verify"]["chunks_decoded"].as_u64().unwrap() > 0);
}
