//! `cairn inventory docker://REGISTRY/REPO --all-tags` over a repository holding an ordinary
//! image, a cairn store-format artifact and a tag whose manifest cannot be read (its config's
//! diff_ids do not match its layers): the inventory completes, in every output format, with a
//! `cairn-store` row and an `error` row, and exits with status 3.

use crate::columns::assert_fits;
use crate::helpers::{cairn, ok, store_with_demo_v1};
use cairn_engine::Sha256Digest;
use cairn_testkit::registry::LocalRegistry;
use serde_json::Value;
use std::path::Path;

/// Writes `bytes` as a blob of the OCI layout `dir`; its digest.
fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = Sha256Digest::of(bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.to_hex()), bytes).unwrap();
    digest.to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A copy of the one-image OCI layout `from` in `to`, tagged `tag`, whose config lists one
/// diff_id fewer than the manifest has layers.
pub fn layout_with_short_diff_ids(from: &Path, to: &Path, tag: &str) {
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(copy.success());
    let blob = |digest: &str| to.join("blobs/sha256").join(&digest[7..]);
    let mut index = read_json(&to.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = read_json(&blob(&manifest_digest));
    let mut config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    let diff_ids = config["rootfs"]["diff_ids"].as_array_mut().unwrap();
    assert!(diff_ids.len() > 1);
    diff_ids.pop();
    let config = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = write_blob(to, &config).into();
    manifest["config"]["size"] = config.len().into();
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let entry = &mut index["manifests"][0];
    entry["digest"] = write_blob(to, &manifest).into();
    entry["size"] = manifest.len().into();
    entry["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": tag });
    std::fs::write(to.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn remote_inventory_lists_store_format_tags_and_carries_unreadable_ones_as_error_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let store = store_with_demo_v1(tmp.path());
    let v1 = tmp.path().join("images/v1");
    registry.push(&v1, "v1", "demo:v1");
    let broken = tmp.path().join("broken");
    layout_with_short_diff_ids(&v1, &broken, "broken");
    registry.push(&broken, "broken", "demo:broken");
    let artifact = format!("{}/demo:v1-cairn", registry.address);
    let args = ["push", "--insecure", "--store-format", "app:v1", &artifact];
    ok(cairn(&store, &args));

    let repository = format!("docker://{}/demo", registry.address);
    let inventory = |format: &str| {
        let args = ["inventory", &repository, "--all-tags", "--insecure"];
        let out = cairn(&store, &[&args[..], &["--format", format]].concat());
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        // Every row is printed; the error row's reason repeated on stderr; status 3.
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("demo:broken")
                && stderr.contains("diff_ids")
                && stderr.contains("1 of the 5 rows could not be read"),
            "{stderr}"
        );
        assert_fits("inventory errors", &stderr);
        stdout
    };

    let rows: Vec<Value> = serde_json::from_str(&inventory("json")).unwrap();
    let of = |kind: &str| -> Vec<&Value> { rows.iter().filter(|r| r["kind"] == kind).collect() };
    let images = of("image");
    assert!(
        images.len() == 3 && images.iter().all(|r| r["name"] == "demo:v1"),
        "{rows:?}"
    );
    let store_rows = of("cairn-store");
    assert_eq!(store_rows.len(), 1, "{rows:?}");
    let store_row = store_rows[0];
    assert_eq!(store_row["name"], "demo:v1-cairn");
    assert!(store_row["manifest_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(store_row["layer_size"].as_u64().unwrap() > 0 && store_row["layer_index"].is_null());
    let errors = of("error");
    assert_eq!(errors.len(), 1, "{rows:?}");
    let error = errors[0]["error"].as_str().unwrap();
    assert_eq!(errors[0]["name"], "demo:broken");
    assert!(
        error.contains("3 layers")
            && error.contains("2 diff_ids")
            && error.contains(&registry.address),
        "{error}"
    );
    assert!(images.iter().chain(&store_rows).all(|r| r["error"] == ""));

    // CSV: the same rows, with the kind and error columns.
    let csv_text = inventory("csv");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let kinds: Vec<&str> = records.iter().map(|r| &r[column("kind")]).collect();
    assert_eq!(
        kinds,
        ["error", "image", "image", "image", "cairn-store"],
        "{csv_text}"
    );
    assert!(records[0][column("error")].contains("diff_ids"));

    // The table: one line a row under the header, each within 80 columns.
    let table = inventory("table");
    assert_fits("remote inventory table", &table);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(lines[0].contains("KIND"), "{table}");
    let kind_of = |tag: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{tag} ")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(kind_of("demo:broken"), "error");
    assert_eq!(kind_of("demo:v1-cairn"), "store");
    assert_eq!(kind_of("demo:v1"), "image");

    // Without the broken tag, the same inventory succeeds.
    let clean = cairn(
        &store,
        &["inventory", &repository, "--tags", "v1*", "--insecure"],
    );
    assert!(clean.status.success());
    assert_eq!(String::from_utf8(clean.stdout).unwrap().lines().count(), 5);
}
