//! `push --store-format` and `pull --store-format` through a real registry on loopback: a
//! store's own files shared with other stores, only what the receiving store lacks transferred,
//! delta bases carried, and bad artifacts refused with the store unchanged.

use crate::delta::{assert_verify_clean, write_pair};
use crate::helpers::*;
use cairn_engine::remote::{PushOptions, RegistrySpec, StorePullReport};
use cairn_engine::{NoProgress, SharedWriter, Store};
use cairn_testkit::registry::*;
use std::path::Path;

fn spec(registry: &LocalRegistry, repo_tag: &str) -> RegistrySpec {
    RegistrySpec {
        reference: format!("{}/{repo_tag}", registry.address),
        insecure: true,
        credentials: None,
        timeouts: Default::default(),
    }
}

fn push_store(store: &Path, name: &str, target: &RegistrySpec) -> cairn_engine::remote::PushReport {
    let mut options = PushOptions::default();
    options.store_format = true;
    Store::open(store)
        .unwrap()
        .push(name, target, &options, &NoProgress)
        .unwrap()
}

fn pull(store: &Path, from: &RegistrySpec, name: &str) -> cairn_engine::Result<StorePullReport> {
    let writer = SharedWriter::open(store).unwrap();
    writer.pull_store_format(from, name, false, &NoProgress)
}

#[test]
fn a_store_format_pull_transfers_only_what_the_store_lacks_and_reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let (v1, v2) = (
        format!("oci:{}:v1", v1.display()),
        format!("oci:{}:v2", v2.display()),
    );
    let source = tmp.path().join("source");
    {
        let store = new_store(&source);
        convert(&store, &v1, "v1", &[]).unwrap();
        convert(&store, &v2, "v2", &["v1"]).unwrap();
    }
    let source = source.join("store");
    let first = push_store(&source, "v1", &spec(&registry, "shared:v1"));
    assert!(first.transferred.blobs_uploaded >= 4, "{first:?}");
    let second = push_store(&source, "v2", &spec(&registry, "shared:v2"));
    // v2's artifact names v1's blobs too: the registry has them.
    assert!(second.transferred.blobs_present > 0, "{second:?}");

    // Into an empty store: everything arrives; the images read back exactly.
    let empty = tmp.path().join("empty");
    drop(new_store(&empty));
    let empty = empty.join("store");
    let whole = pull(&empty, &spec(&registry, "shared:v2"), "v2").unwrap();
    assert_eq!(whole.files_present, 0, "{whole:?}");
    // A store that has v1 only (converted from the same source: the same files) gets v2's new
    // files only.
    let has_v1 = tmp.path().join("has-v1");
    {
        let store = new_store(&has_v1);
        convert(&store, &v1, "v1", &[]).unwrap();
    }
    let has_v1 = has_v1.join("store");
    let delta = pull(&has_v1, &spec(&registry, "shared:v2"), "v2").unwrap();
    assert!(delta.files_present >= 1, "{delta:?}");
    assert!(
        delta.bytes_downloaded < whole.bytes_downloaded,
        "{delta:?} against {whole:?}"
    );
    let reference = Store::open(&source).unwrap();
    for store in [&empty, &has_v1] {
        let store = Store::open(store).unwrap();
        assert_eq!(export_all(&store, "v2"), export_all(&reference, "v2"));
        assert_eq!(
            store.resolve("v2").unwrap(),
            reference.resolve("v2").unwrap()
        );
        assert_verify_clean(&store);
    }
    // Again: nothing to download, and the name is taken.
    let taken = pull(&has_v1, &spec(&registry, "shared:v2"), "v2").unwrap_err();
    assert!(taken.to_string().contains("already exists"), "{taken}");
    let again = pull(&has_v1, &spec(&registry, "shared:v2"), "v2-again").unwrap();
    assert_eq!(again.files_downloaded, 0, "{again:?}");
}

#[test]
fn delta_bases_travel_with_an_image_whose_layers_do_not_name_them() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let (v1, v2) = write_pair(&tmp.path().join("images"));
    let source = tmp.path().join("source");
    {
        let store = new_store(&source);
        convert(&store, &v1, "app:v1", &[]).unwrap();
        let report = convert(&store, &v2, "app:v2", &[]).unwrap();
        assert!(report.images[0].totals.delta.chunks > 0, "{report:?}");
    }
    let source = source.join("store");
    push_store(&source, "app:v2", &spec(&registry, "app:v2"));
    let fresh = tmp.path().join("fresh");
    drop(new_store(&fresh));
    let fresh = fresh.join("store");
    let report = pull(&fresh, &spec(&registry, "app:v2"), "app:v2").unwrap();
    // The bootstrap, the layer object, v2's blob and v1's blob of bases.
    assert_eq!(report.files_downloaded, 4, "{report:?}");
    let fresh = Store::open(&fresh).unwrap();
    let reference = Store::open(&source).unwrap();
    assert_eq!(
        export_all(&fresh, "app:v2"),
        export_all(&reference, "app:v2")
    );
    assert_verify_clean(&fresh);
}

#[test]
fn a_plain_image_or_a_damaged_artifact_is_refused_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    registry.push(&v1, "v1", "plain:v1");
    let source = tmp.path().join("source");
    {
        let store = new_store(&source);
        convert(&store, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
    }
    let source = source.join("store");
    let pushed = push_store(&source, "v1", &spec(&registry, "cairn:v1"));
    let target = tmp.path().join("target");
    drop(new_store(&target));
    let target = target.join("store");
    let before = snapshot(&Store::open(&target).unwrap());

    let plain = pull(&target, &spec(&registry, "plain:v1"), "v1").unwrap_err();
    assert!(
        plain
            .to_string()
            .contains("not a cairn store-format artifact"),
        "{plain}"
    );
    // One byte of a blob flipped in the registry's storage.
    let manifest = Store::open(&source).unwrap();
    let blob = manifest.blob_path(&first_blob(&manifest, "v1"));
    let sha = sha256_hex(&std::fs::read(&blob).unwrap());
    let stored = registry_blob_path(&tmp.path().join("registry-data"), &sha);
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    let damaged = pull(&target, &spec(&registry, "cairn:v1"), "v1").unwrap_err();
    let message = damaged.to_string();
    assert!(message.contains(&sha), "{message}");
    assert!(message.contains(&registry.address), "{message}");
    assert_eq!(snapshot(&Store::open(&target).unwrap()), before);
    assert!(pushed.transferred.blobs_uploaded > 0);
}

/// The first blob an image's first layer object names.
fn first_blob(store: &Store, name: &str) -> cairn_engine::BlobId {
    let meta = store.bootstrap(name).unwrap().layers[0].meta;
    store.layer_meta(&meta).unwrap().blobs()[0].id
}

/// Where the distribution registry keeps a blob's bytes.
fn registry_blob_path(storage: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn an_artifact_relabelling_its_layer_as_another_is_refused_with_the_store_unchanged() {
    use crate::import_trust::{one_file_image, store_at};
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let genuine = one_file_image(&tmp.path().join("genuine"), b"genuine\n");
    let evil = one_file_image(&tmp.path().join("evil"), b"evil\n");
    let source = new_store(&tmp.path().join("source"));
    convert(&source, &evil, "app", &[]).unwrap();
    convert(&source, &genuine, "g", &[]).unwrap();
    let g = source.store().bootstrap("g").unwrap().layers[0].clone();
    // The sender's own store holds "fake": the evil layer claiming the genuine one's ids.
    cairn_engine::testing::plant_relabelled_image(&source, "app", "fake", 0, (g.diff_id, g.digest))
        .unwrap();
    drop(source);
    push_store(
        &tmp.path().join("source/store"),
        "fake",
        &spec(&registry, "fake:v1"),
    );

    let receiver = store_at(&tmp.path().join("receiver"));
    let before = snapshot(&Store::open(&receiver).unwrap());
    let err = pull(&receiver, &spec(&registry, "fake:v1"), "fake")
        .unwrap_err()
        .to_string();
    for part in [
        "image \"fake\" layer 0",
        &g.diff_id.to_string(),
        "re-created",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);
}
