//! `cairn push` gives the original image back: into a registry that holds the original layer
//! blobs (in the repository pushed to, or mounted with --mount-from) it sends the original
//! manifest and config byte for byte and uploads no layer; where they are missing it says
//! before uploading that it re-compresses, and prints the new and the original digests.

use crate::columns::assert_fits;
use crate::helpers::{cairn, export_all, ok, store_with_demo_v1};
use cairn_testkit::registry::{served_manifest, LocalRegistry};
use serde_json::Value;
use std::path::Path;

/// The digest and bytes of the one manifest of the OCI layout `dir`.
fn layout_manifest(dir: &Path) -> (String, Vec<u8>) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap();
    (digest, bytes)
}

fn push_json(store: &Path, target: &str, extra: &[&str]) -> (Value, String) {
    let args = ["push", "--insecure", "--json", "app:v1", target];
    let out = cairn(store, &[&args[..], extra].concat());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (serde_json::from_str(&ok(out)).unwrap(), stderr)
}

#[test]
fn push_sends_the_original_manifest_when_the_registry_has_the_original_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let store = store_with_demo_v1(tmp.path());
    let v1 = tmp.path().join("images/v1");
    let (original, original_bytes) = layout_manifest(&v1);
    registry.push(&v1, "v1", "orig/demo:v1");
    let address = &registry.address;
    assert_eq!(
        served_manifest(&format!("{address}/orig/demo:v1")),
        original_bytes
    );

    // The repository has every blob: nothing is sent; the tag names the original manifest.
    let (same, stderr) = push_json(&store, &format!("{address}/orig/demo:again"), &[]);
    assert_eq!(same["pushed_as"], "original", "{same}");
    assert_eq!(same["manifest_digest"], original.as_str());
    assert_eq!(same["original_manifest_digest"], original.as_str());
    assert_eq!(
        (
            same["blobs_uploaded"].as_u64(),
            same["blobs_present"].as_u64()
        ),
        (Some(0), Some(4))
    );
    assert!(!stderr.contains("re-compress"), "{stderr}");

    // Another repository, mounting from the first: the same, mounted rather than sent.
    let copy = format!("{address}/copy/demo:v1");
    let (mounted, _) = push_json(&store, &copy, &["--mount-from", "orig/demo"]);
    assert_eq!(mounted["pushed_as"], "original", "{mounted}");
    assert_eq!(mounted["manifest_digest"], original.as_str());
    assert_eq!(
        (
            mounted["blobs_uploaded"].as_u64(),
            mounted["blobs_mounted"].as_u64()
        ),
        (Some(0), Some(4)),
        "{mounted}"
    );
    assert_eq!(mounted["bytes_uploaded"], 0);
    // The registry serves the original manifest byte for byte, and the image pulled back
    // is the one in the store.
    assert_eq!(served_manifest(&copy), original_bytes);
    let fresh = tmp.path().join("fresh");
    ok(cairn(&fresh, &["init"]));
    ok(cairn(
        &fresh,
        &["pull", "--insecure", &copy, "--name", "app:v1"],
    ));
    assert_eq!(
        export_all(&fresh, "app:v1", 3),
        export_all(&store, "app:v1", 3)
    );
    let inventory = ok(cairn(&fresh, &["inventory", "--format", "json"]));
    let rows: Vec<Value> = serde_json::from_str(&inventory).unwrap();
    assert!(
        rows.iter()
            .all(|r| r["manifest_digest"] == original.as_str()),
        "{inventory}"
    );

    // The human report names the manifest within 80 columns.
    let human = ok(cairn(&store, &["push", "--insecure", "app:v1", &copy]));
    assert!(
        human.contains("as it came") && human.contains(&original),
        "{human}"
    );
    assert_fits("push", &human);
}

#[test]
fn push_without_the_original_layers_says_it_recompresses_and_prints_both_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let store = store_with_demo_v1(tmp.path());
    let (original, _) = layout_manifest(&tmp.path().join("images/v1"));
    let target = format!("{}/fresh/demo:v1", registry.address);
    let out = cairn(&store, &["push", "--insecure", "app:v1", &target]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let human = ok(out);
    let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("re-compressing the layers of app:v1")
            && flat.contains("new manifest digest")
            && flat.contains("lacks 3 of the 3 original layers"),
        "{stderr}"
    );
    assert_fits("push note", &stderr);
    assert_fits("push", &human);
    let lines: Vec<&str> = human.lines().collect();
    let new = lines
        .iter()
        .position(|l| l.trim() == "manifest")
        .map(|i| lines[i + 1].trim())
        .unwrap();
    let was = lines
        .iter()
        .position(|l| l.trim() == "the original manifest was")
        .map(|i| lines[i + 1].trim())
        .unwrap();
    assert_eq!(was, original, "{human}");
    assert!(new.starts_with("sha256:") && new != original, "{human}");
    assert!(human.contains("layers re-compressed"), "{human}");

    // The JSON report says the same, with every blob sent.
    let (again, _) = push_json(&store, &format!("{}/other/demo:v1", registry.address), &[]);
    assert_eq!(again["pushed_as"], "recompressed", "{again}");
    assert_eq!(again["manifest_digest"], new);
    assert_eq!(again["original_manifest_digest"], original.as_str());
    assert_eq!(again["blobs_uploaded"], 4, "{again}");
    assert!(again["recompressed_because"]
        .as_str()
        .unwrap()
        .contains("lacks"));
}
