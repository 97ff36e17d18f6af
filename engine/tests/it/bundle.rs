//! Offline bundles: full and incremental bundles between stores, what they rely on, chains of
//! bundles (`--since`), dictionaries from the receiver (`--have-dict`), and damaged, truncated or
//! misplaced bundles refused with the store unchanged.

use crate::delta::assert_verify_clean;
use crate::helpers::*;
use cairn_engine::bundle::create::{BundleOptions, BundleReport};
use cairn_engine::bundle::import::BundleImportReport;
use cairn_engine::{NoProgress, SharedWriter, Store};
use std::path::{Path, PathBuf};

fn bundle(
    store: &Path,
    images: &[&str],
    have: &[&str],
    since: &[&Path],
) -> (Vec<u8>, BundleReport) {
    bundle_with(store, images, have, &[], since)
}

fn bundle_with(
    store: &Path,
    images: &[&str],
    have: &[&str],
    dicts: &[PathBuf],
    since: &[&Path],
) -> (Vec<u8>, BundleReport) {
    let mut options = BundleOptions::default();
    options.images = images.iter().map(|s| s.to_string()).collect();
    options.have = have.iter().map(|s| s.to_string()).collect();
    options.have_dicts = dicts.to_vec();
    options.since = since.iter().map(|p| p.to_path_buf()).collect();
    let mut out = Vec::new();
    let report = Store::open(store)
        .unwrap()
        .create_bundle(&options, &mut out, &NoProgress)
        .unwrap();
    assert_eq!(report.bytes, out.len() as u64);
    (out, report)
}

fn import(store: &Path, bytes: &[u8]) -> cairn_engine::Result<BundleImportReport> {
    let writer = SharedWriter::open(store).unwrap();
    writer.import_bundle(&mut &bytes[..], "test bundle", false, &NoProgress)
}

fn empty_store(dir: &Path) -> PathBuf {
    drop(new_store(dir));
    dir.join("store")
}

/// A sender store holding the demo's v1 and v2 (v2 converted against v1).
fn demo_sender(dir: &Path) -> (PathBuf, String, String) {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("images")).unwrap();
    let (v1, v2) = (
        format!("oci:{}:v1", v1.display()),
        format!("oci:{}:v2", v2.display()),
    );
    let store = new_store(&dir.join("sender"));
    convert(&store, &v1, "v1", &[]).unwrap();
    convert(&store, &v2, "v2", &["v1"]).unwrap();
    (dir.join("sender/store"), v1, v2)
}

fn assert_same_layers(receiver: &Path, sender: &Path, name: &str) {
    let (receiver, sender) = (Store::open(receiver).unwrap(), Store::open(sender).unwrap());
    assert_eq!(
        export_all(&receiver, name),
        export_all(&sender, name),
        "{name}"
    );
    assert_verify_clean(&receiver);
}

#[test]
fn an_incremental_bundle_needs_its_base_and_a_damaged_one_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (sender, _, _) = demo_sender(tmp.path());
    let (full, _) = bundle(&sender, &["v1"], &[], &[]);
    let (incremental, report) = bundle(&sender, &["v2"], &["v1"], &[]);
    assert!(report.manifest.relied_chunks > 0, "{report:?}");
    assert!(incremental.len() < full.len());

    // Without v1: refused before anything is written, naming what it expected.
    let receiver = empty_store(&tmp.path().join("receiver"));
    let before = snapshot(&Store::open(&receiver).unwrap());
    let message = import(&receiver, &incremental).unwrap_err().to_string();
    assert!(
        message.contains("missing") && message.contains("v1 ("),
        "{message}"
    );
    assert!(
        message.contains(&report.manifest.relied_chunks.to_string()),
        "{message}"
    );
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);

    // Truncated anywhere, or one bit flipped anywhere: refused, store unchanged.
    for cut in [10, full.len() / 3, full.len() - 1] {
        assert!(import(&receiver, &full[..cut]).is_err(), "cut at {cut}");
    }
    for at in [20, full.len() / 2, full.len() - 40] {
        let mut flipped = full.clone();
        flipped[at] ^= 0x10;
        assert!(import(&receiver, &flipped).is_err(), "flipped at {at}");
    }
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);

    // In order: both read back exactly; the same bundle again changes nothing.
    import(&receiver, &full).unwrap();
    import(&receiver, &incremental).unwrap();
    let snapshot_after = snapshot(&Store::open(&receiver).unwrap());
    let again = import(&receiver, &incremental).unwrap();
    assert_eq!(again.unchanged, ["v2"]);
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), snapshot_after);
    for name in ["v1", "v2"] {
        assert_same_layers(&receiver, &sender, name);
    }
}

#[test]
fn a_chain_of_three_bundles_and_a_dictionary_from_the_receiver() {
    let tmp = tempfile::tempdir().unwrap();
    let (sender, v1, v2) = demo_sender(tmp.path());
    // A third version: v2's layers plus one of new data.
    let extra = cairn_sample::build_layer_tar(
        &[dir("opt"), file("opt/new.bin", pseudo_random(300_000, 42))],
        1_700_000_500,
    )
    .unwrap();
    let v3_dir = tmp.path().join("v3");
    let mut layers = layers_of(&v2);
    layers.push(extra);
    write_layout(&v3_dir, "v3", &layers, cairn_sample::LayerCompression::Gzip);
    {
        let store = cairn_engine::StoreWriter::open(&sender).unwrap();
        convert(&store, &format!("oci:{}:v3", v3_dir.display()), "v3", &[]).unwrap();
    }
    let files = tmp.path().join("bundles");
    std::fs::create_dir_all(&files).unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let path = files.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let b1 = write("1", bundle(&sender, &["v1"], &[], &[]).0);
    let b2 = write("2", bundle(&sender, &["v2"], &[], &[&b1]).0);
    let (third, report) = bundle(&sender, &["v3"], &[], &[&b1, &b2]);
    // v2's layers are whole at the receiver: relied on as layers, their objects not carried.
    assert_eq!(report.manifest.relied_layers.len(), 3, "{report:?}");
    assert!(
        report.manifest.chunks > 0 && report.manifest.chunks < 10,
        "{report:?}"
    );
    let receiver = empty_store(&tmp.path().join("receiver"));
    for bytes in [
        std::fs::read(&b1).unwrap(),
        std::fs::read(&b2).unwrap(),
        third,
    ] {
        import(&receiver, &bytes).unwrap();
    }
    for name in ["v1", "v2", "v3"] {
        assert_same_layers(&receiver, &sender, name);
    }

    // A site that converted v1 itself sends its dictionary; the bundle of v2 relies on it.
    let site = tmp.path().join("site");
    {
        let store = new_store(&site);
        convert(&store, &v1, "mine", &[]).unwrap();
    }
    let site = site.join("store");
    let dict = Store::open(&site).unwrap().export_dict(&[], true).unwrap();
    let dict_path = files.join("site.dict");
    let mut out = Vec::new();
    dict.write(&mut out).unwrap();
    std::fs::write(&dict_path, out).unwrap();
    let (against_dict, report) = bundle_with(&sender, &["v2"], &[], &[dict_path], &[]);
    let (_, against_v1) = bundle(&sender, &["v2"], &["v1"], &[]);
    assert_eq!(report.manifest.relies_on[0].0, "mine");
    // The same chunks carried as with `--have v1` (the site holds v1's chunks).
    assert_eq!(
        (report.manifest.chunks, report.manifest.relied_chunks),
        (
            against_v1.manifest.chunks,
            against_v1.manifest.relied_chunks
        )
    );
    import(&site, &against_dict).unwrap();
    assert_same_layers(&site, &sender, "v2");
}

/// Every layer tar of an OCI layout source `oci:DIR:REF`, uncompressed.
fn layers_of(source: &str) -> Vec<Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    convert(&store, source, "x", &[]).unwrap();
    export_all(store.store(), "x")
}

#[test]
fn py_v1_full_then_v2_incremental_export_every_layer_with_its_diff_id() {
    let Some(data) = cairn_testkit::datasets::py() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sender = tmp.path().join("sender");
    {
        let store = new_store(&sender);
        convert(
            &store,
            &format!("oci:{}:v1", data.join("v1").display()),
            "py:v1",
            &[],
        )
        .unwrap();
        convert(
            &store,
            &format!("oci:{}:v2", data.join("v2").display()),
            "py:v2",
            &["py:v1"],
        )
        .unwrap();
    }
    let sender = sender.join("store");
    let (full, _) = bundle(&sender, &["py:v1"], &[], &[]);
    let (incremental, report) = bundle(&sender, &["py:v2"], &["py:v1"], &[]);
    assert!(incremental.len() * 3 < full.len(), "{report:?}");
    let receiver = empty_store(&tmp.path().join("receiver"));
    import(&receiver, &full).unwrap();
    import(&receiver, &incremental).unwrap();
    let (receiver, sender) = (
        Store::open(&receiver).unwrap(),
        Store::open(&sender).unwrap(),
    );
    let layers = sender.bootstrap("py:v2").unwrap().layers;
    for (i, layer) in layers.iter().enumerate() {
        let diff_id = receiver
            .export_layer("py:v2", i, &mut std::io::sink(), &NoProgress)
            .unwrap();
        assert_eq!(diff_id, layer.diff_id);
    }
    assert_verify_clean(&receiver);
}
