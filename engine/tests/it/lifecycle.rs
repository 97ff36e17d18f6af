//! verify, rm and gc.

use crate::helpers::*;
use cairn_engine::{GcOptions, NoProgress, Store, StoreWriter};
use cairn_sample::LayerCompression;

fn dry_run() -> GcOptions {
    GcOptions::default().with_dry_run(true)
}

/// Every file of the store's blobs and bootstraps, with its bytes.
fn data_files(store: &Store) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for dir in ["blobs", "layers", "bootstraps"] {
        for entry in std::fs::read_dir(store.root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            out.insert(path, bytes);
        }
    }
    out
}

fn demo_store(dir: &std::path::Path) -> StoreWriter {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("demo")).unwrap();
    let store = new_store(dir);
    convert(&store, &format!("oci:{}", v1.display()), "v1", &[]).unwrap();
    convert(&store, &format!("oci:{}", v2.display()), "v2", &[]).unwrap();
    store
}

#[test]
fn rm_then_gc_frees_only_what_no_image_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let other = tmp.path().join("other");
    write_layout(
        &other,
        "o",
        &[cairn_sample::build_layer_tar(&[file("o.bin", pseudo_random(300_000, 9))], 1).unwrap()],
        LayerCompression::Gzip,
    );
    convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    let before_v2 = export_all(store.store(), "v2");
    let o_chunks = store.store().whole_image("o").unwrap().chunks.len() as u64;
    let blobs_before = std::fs::read_dir(store.store().root().join("blobs"))
        .unwrap()
        .count();

    assert!(store.remove(&["nope".to_string()]).is_err());
    store.remove(&["o".to_string()]).unwrap();
    assert!(store.store().whole_image("o").is_err());
    let dry = store.gc(&dry_run()).unwrap();
    assert_eq!(
        (dry.dead_blobs, dry.dead_layer_objects, dry.dead_bootstraps),
        (1, 1, 1)
    );
    assert_eq!(
        std::fs::read_dir(store.store().root().join("blobs"))
            .unwrap()
            .count(),
        blobs_before
    );
    let report = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(
        (
            report.dead_blobs,
            report.dead_layer_objects,
            report.dead_bootstraps
        ),
        (1, 1, 1)
    );
    assert!(report.freed_bytes > 200_000, "{report:?}");
    assert_eq!(report.index_chunks_dropped, o_chunks);
    assert_eq!(
        std::fs::read_dir(store.store().root().join("blobs"))
            .unwrap()
            .count(),
        blobs_before - 1
    );
    assert_eq!(export_all(store.store(), "v2"), before_v2);
    // gc dropped the removed layer's index keys with its object: converting it again reads it.
    let again = convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    assert!(!again.images[0].layers[0].reused_metadata);
    store.remove(&["o".to_string()]).unwrap();
    store.gc(&GcOptions::default()).unwrap();
    let verify = store.store().verify(true, &NoProgress).unwrap();
    assert!(verify.is_clean(), "{:?}", verify.problems);
    // Nothing left to collect.
    let again = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(again.freed_bytes, 0);
}

#[test]
fn gc_compacts_a_blob_mostly_dead_and_rewrites_the_images_using_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let kept = pseudo_random(300_000, 1);
    let dropped = pseudo_random(700_000, 2);
    let both = tmp.path().join("both");
    write_layout(
        &both,
        "both",
        &[cairn_sample::build_layer_tar(
            &[file("kept.bin", kept.clone()), file("dropped.bin", dropped)],
            1,
        )
        .unwrap()],
        LayerCompression::Gzip,
    );
    let one = tmp.path().join("one");
    write_layout(
        &one,
        "one",
        &[cairn_sample::build_layer_tar(&[file("kept.bin", kept.clone())], 2).unwrap()],
        LayerCompression::Gzip,
    );
    convert(&store, &format!("oci:{}", both.display()), "both", &[]).unwrap();
    convert(&store, &format!("oci:{}", one.display()), "one", &[]).unwrap();
    // "one" stored nothing new: all its chunks live in the blob of "both".
    assert_eq!(store.store().whole_image("one").unwrap().blobs.len(), 1);
    let old_id = store.store().resolve("one").unwrap();
    let before = export_all(store.store(), "one");
    store.remove(&["both".to_string()]).unwrap();

    // A dry run reports the compaction and changes nothing.
    let files_before = data_files(store.store());
    let dry = store.gc(&dry_run()).unwrap();
    assert_eq!(dry.compacted_blobs, 1, "{dry:?}");
    assert_eq!((dry.new_blobs, dry.rewritten_images), (0, 0));
    assert!(dry.freed_bytes > 600_000, "{dry:?}");
    assert_eq!(data_files(store.store()), files_before);
    // Compaction off: only the bootstrap of "both" goes.
    let off = dry_run().with_compact_below(0.0);
    assert_eq!(store.gc(&off).unwrap().compacted_blobs, 0);

    let report = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(
        (
            report.compacted_blobs,
            report.new_blobs,
            report.rewritten_images
        ),
        (1, 1, 1),
        "{report:?}"
    );
    assert!(report.freed_bytes > 600_000, "{report:?}");
    let new_id = store.store().resolve("one").unwrap();
    assert_ne!(new_id, old_id);
    assert_eq!(export_all(store.store(), "one"), before);
    let verify = store.store().verify(true, &NoProgress).unwrap();
    assert!(verify.is_clean(), "{:?}", verify.problems);
    assert_eq!(store.store().images().unwrap().len(), 1);
    // The new blob holds only what "one" uses; nothing is left to collect or compact.
    let again = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(
        (again.freed_bytes, again.compacted_blobs),
        (0, 0),
        "{again:?}"
    );
    // The index points at the new blob: a convert of the same content stores nothing new.
    let report = convert(&store, &format!("oci:{}", one.display()), "one-again", &[]).unwrap();
    assert_eq!(report.images[0].totals.new.chunks, 0);
}

#[test]
fn gc_refuses_files_the_index_never_knew_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    // A bootstrap without an image record: no writer leaves one (each commits the record
    // first), so the index has lost it; with a blob and a layer object no image names.
    let orphan_blob = store.store().root().join("blobs").join("ab".repeat(32));
    let orphan_bootstrap = store
        .store()
        .root()
        .join("bootstraps")
        .join("cd".repeat(32));
    let orphan_object = store.store().root().join("layers").join("ef".repeat(32));
    std::fs::write(&orphan_blob, b"orphan blob").unwrap();
    std::fs::write(&orphan_bootstrap, b"orphan bootstrap").unwrap();
    std::fs::write(&orphan_object, b"orphan layer object").unwrap();
    let before = snapshot(store.store());
    for dry_run in [true, false] {
        let err = store
            .gc(&GcOptions::default().with_dry_run(dry_run))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--force-orphans") && err.contains("verify --repair-index"),
            "{err}"
        );
        assert!(
            snapshot(store.store()) == before,
            "a refused gc changed the store"
        );
    }
    let report = store
        .gc(&GcOptions::default().with_force_orphans(true))
        .unwrap();
    assert_eq!(
        (
            report.dead_blobs,
            report.dead_layer_objects,
            report.dead_bootstraps,
            report.orphan_bootstraps
        ),
        (1, 1, 1, 1)
    );
    assert!(!orphan_blob.exists() && !orphan_bootstrap.exists() && !orphan_object.exists());
    assert!(store.store().verify(true, &NoProgress).unwrap().is_clean());
}

#[test]
fn verify_full_reports_every_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    assert!(store.store().verify(true, &NoProgress).unwrap().is_clean());
    let mut targets: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["blobs", "layers", "bootstraps"] {
        let mut files: Vec<_> = std::fs::read_dir(store.store().root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        targets.push(files[0].clone());
    }
    for path in targets {
        let original = std::fs::read(&path).unwrap();
        let n = original.len();
        // Header, start of data, middle, ToC/checksum area, footer.
        for offset in [3, 20, n / 2, n - 60, n - 5] {
            let mut damaged = original.clone();
            damaged[offset] ^= 0x01;
            std::fs::write(&path, &damaged).unwrap();
            let report = store.store().verify(true, &NoProgress).unwrap();
            assert!(
                !report.is_clean(),
                "flip at {offset} of {} not reported",
                path.display()
            );
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                report
                    .problems
                    .iter()
                    .any(|p| p.object.contains(name) || p.detail.contains(name)),
                "{:?}",
                report.problems
            );
        }
        std::fs::write(&path, &original).unwrap();
    }
    assert!(store.store().verify(true, &NoProgress).unwrap().is_clean());
}
