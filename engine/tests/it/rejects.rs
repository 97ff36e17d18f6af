//! Bad input is refused with an error naming the object, and the store is left as it was.

use crate::helpers::*;
use cairn_engine::StoreWriter;
use cairn_sample::LayerCompression;
use serde_json::{json, Value};
use std::path::Path;

/// The first gzip layer blob of a layout.
pub(crate) fn gzip_layer_blob(layout: &Path) -> std::path::PathBuf {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]))
        .unwrap()
}

#[test]
fn corrupt_layer_digest_leaves_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let good = tmp.path().join("good");
    write_layout(&good, "t", &tricky_layers(), LayerCompression::Gzip);
    convert(&store, &format!("oci:{}", good.display()), "good", &[]).unwrap();
    let before = snapshot(store.store());

    let bad = tmp.path().join("bad");
    let mut layers = tricky_layers();
    // New content (a layer whose digest is stored is not read at all), so its chunks would be new.
    for layer in &mut layers {
        layer.extend_from_slice(&[0u8; 512]);
    }
    write_layout(&bad, "t", &layers, LayerCompression::Gzip);
    let blob = gzip_layer_blob(&bad);
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 9] ^= 0xff; // inside the gzip trailer's CRC: decodes, but the digest is wrong
    std::fs::write(&blob, &bytes).unwrap();
    let err = convert(&store, &format!("oci:{}", bad.display()), "bad", &[])
        .unwrap_err()
        .to_string();
    let name = blob.file_name().unwrap().to_str().unwrap();
    assert!(
        err.contains(name),
        "error should name the layer digest: {err}"
    );
    assert_eq!(snapshot(store.store()), before);
    // The writer's own directory under tmp/ holds only its liveness lock.
    let left: Vec<_> = std::fs::read_dir(store.store().root().join("tmp"))
        .unwrap()
        .flat_map(|dir| std::fs::read_dir(dir.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name())
        .filter(|name| name != "LIVE")
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}

/// Rewrites the single image of `layout` through `change(manifest, config)`, fixing every
/// digest and size that names the changed documents.
pub(crate) fn rewrite_image(layout: &Path, change: impl FnOnce(&mut Value, &mut Value)) {
    let blobs = layout.join("blobs/sha256");
    let read = |digest: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(blobs.join(digest.trim_start_matches("sha256:"))).unwrap(),
        )
        .unwrap()
    };
    let write = |value: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(value).unwrap();
        let digest = sha256_hex(&bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), &bytes).unwrap();
        (digest, bytes.len())
    };
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    change(&mut manifest, &mut config);
    let (digest, size) = write(&config);
    manifest["config"]["digest"] = json!(digest);
    manifest["config"]["size"] = json!(size);
    let (digest, size) = write(&manifest);
    index["manifests"][0]["digest"] = json!(digest);
    index["manifests"][0]["size"] = json!(size);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn wrong_diff_id_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::None);
    let wrong = sha256_hex(b"not the layer");
    rewrite_image(&layout, |_, config| {
        config["rootfs"]["diff_ids"][0] = json!(wrong)
    });
    let before = snapshot(store.store());
    let err = convert(&store, &format!("oci:{}", layout.display()), "x", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("diff_id") && err.contains(&wrong), "{err}");
    assert_eq!(snapshot(store.store()), before);
}

#[test]
fn unknown_layer_media_type_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    rewrite_image(&layout, |manifest, _| {
        manifest["layers"][1]["mediaType"] = json!("application/vnd.example.layer.v1.tar+lz4")
    });
    let err = convert(&store, &format!("oci:{}", layout.display()), "x", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unsupported layer media type") && err.contains("tar+lz4"),
        "{err}"
    );
    assert!(store.store().images().unwrap().is_empty());
}

#[test]
fn truncated_gzip_layer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let layers = tricky_layers();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &layers[0]).unwrap();
    let gz = gz.finish().unwrap();
    let path = tmp.path().join("layer.tar.gz");
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let before = snapshot(store.store());
    let err = convert(&store, path.to_str().unwrap(), "x", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 0"), "{err}");
    assert_eq!(snapshot(store.store()), before);
}

#[test]
fn missing_blob_bad_json_and_unknown_media_type() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let layout = tmp.path().join("img");
    let digest = write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    let source = format!("oci:{}", layout.display());

    // Unknown ref.
    let err = convert(&store, &format!("{source}:nope"), "x", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("\"t\"") || err.contains("t"),
        "{err}"
    );

    // Missing manifest blob.
    let manifest = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let saved = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let err = convert(&store, &source, "x", &[]).unwrap_err().to_string();
    assert!(err.contains(&digest) && err.contains("missing"), "{err}");
    std::fs::write(&manifest, &saved).unwrap();

    // index.json that is not JSON.
    let index = std::fs::read(layout.join("index.json")).unwrap();
    std::fs::write(layout.join("index.json"), b"{not json").unwrap();
    let err = convert(&store, &source, "x", &[]).unwrap_err().to_string();
    assert!(
        err.contains("index.json") && err.contains("invalid JSON"),
        "{err}"
    );
    std::fs::write(layout.join("index.json"), &index).unwrap();

    // Not a layout at all.
    let err = convert(
        &store,
        &format!("oci:{}", tmp.path().join("nothing").display()),
        "x",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("index.json"), "{err}");
    assert!(store.store().images().unwrap().is_empty());
}

#[test]
fn future_format_version_and_second_writer_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = StoreWriter::init(&root, &Default::default()).unwrap();
    let err = StoreWriter::open(&root).err().unwrap().to_string();
    assert!(err.contains("in use by another writer"), "{err}");
    drop(store);
    StoreWriter::open(&root).unwrap();
    let config = std::fs::read_to_string(root.join("store.json")).unwrap();
    let current = format!("\"format_version\": {}", cairn_engine::FORMAT_VERSION);
    assert!(config.contains(&current), "{config}");
    std::fs::write(
        root.join("store.json"),
        config.replace(&current, "\"format_version\": 99"),
    )
    .unwrap();
    let err = StoreWriter::open(&root).err().unwrap().to_string();
    assert!(err.contains("format version 99"), "{err}");
    // A store of the previous format (chunks stored one per frame) is refused with the way out.
    std::fs::write(
        root.join("store.json"),
        config.replace(&current, "\"format_version\": 1"),
    )
    .unwrap();
    let err = StoreWriter::open(&root).err().unwrap().to_string();
    assert!(err.contains("format version 1,"), "{err}");
    assert!(err.contains("cairn export NAME oci:DIR"), "{err}");
    let err = StoreWriter::open(&tmp.path().join("absent"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cairn init"), "{err}");
}
