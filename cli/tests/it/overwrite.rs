//! `export` and `export-layer` never replace an existing file, or an image of an OCI layout
//! with the same ref, without --force; adding a new ref to a layout needs none.

use crate::helpers::{cairn, ok, store_with_demo_v1};

fn refused(output: std::process::Output, what: &str) -> String {
    assert!(!output.status.success(), "{what}: replaced without --force");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains("--force"), "{what}: {stderr}");
    stderr
}

#[test]
fn export_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());

    let archive = tmp.path().join("app.tar");
    std::fs::write(&archive, b"precious").unwrap();
    let target = format!("docker-archive:{}", archive.display());
    let stderr = refused(cairn(&store, &["export", "app:v1", &target]), "archive");
    assert!(stderr.contains("app.tar exists"), "{stderr}");
    assert_eq!(std::fs::read(&archive).unwrap(), b"precious");
    ok(cairn(&store, &["export", "app:v1", &target, "--force"]));
    assert_ne!(std::fs::read(&archive).unwrap(), b"precious");

    // A layout is added to: a second ref goes in without --force, the same ref again does not.
    let layout = tmp.path().join("layout");
    let v1 = format!("oci:{}:v1", layout.display());
    ok(cairn(&store, &["export", "app:v1", &v1]));
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    let stderr = refused(cairn(&store, &["export", "app:v1", &v1]), "layout ref");
    assert!(
        stderr.contains("already holds an image tagged \"v1\""),
        "{stderr}"
    );
    let again = format!("oci:{}", layout.display());
    refused(
        cairn(&store, &["export", "app:v1", &again, "--ref", "v1"]),
        "layout --ref",
    );
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before
    );
    ok(cairn(
        &store,
        &["export", "app:v1", &again, "--ref", "copy"],
    ));
    ok(cairn(&store, &["export", "app:v1", &v1, "--force"]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
}

#[test]
fn export_layer_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let file = tmp.path().join("layer0.tar");
    std::fs::write(&file, b"precious").unwrap();
    let path = file.to_str().unwrap();
    let stderr = refused(
        cairn(&store, &["export-layer", "app:v1", "0", "-o", path]),
        "export-layer",
    );
    assert!(stderr.contains("layer0.tar exists"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    ok(cairn(
        &store,
        &["export-layer", "app:v1", "0", "-o", path, "--force"],
    ));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        cairn_sample::demo_layers(1).unwrap()[0]
    );
    // A device is written to, not replaced: no --force needed.
    ok(cairn(
        &store,
        &["export-layer", "app:v1", "0", "-o", "/dev/null"],
    ));
}
