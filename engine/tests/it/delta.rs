//! Delta frames: a file changed by scattered bytes between versions is stored as differences to
//! its old version, read back exactly, kept readable by gc (bases stay live, compaction moves
//! them), and checked by verify.

use crate::helpers::*;
use cairn_engine::{DeltaMode, GcOptions, NoProgress, Store, StoreWriter};
use cairn_sample::LayerCompression;

/// v1: a 3 MB binary and a small text file; v2: the binary with a byte changed every 10 KB and
/// the text with one line changed. Returns the two layout sources.
pub(crate) fn write_pair(dir: &std::path::Path) -> (String, String) {
    write_pair_named(dir, "usr/lib.so", "usr/lib.so")
}

/// The same pair, the binary at `old` in v1 and at `new` in v2.
fn write_pair_named(dir: &std::path::Path, old: &str, new: &str) -> (String, String) {
    let binary = pseudo_random(3 << 20, 7);
    let text: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes())
        .collect();
    let mut binary2 = binary.clone();
    for i in (5000..binary2.len()).step_by(10_000) {
        binary2[i] ^= 0xff;
    }
    let mut text2 = text.clone();
    text2[1000] = b'#';
    let layer = |path: &str, bin: Vec<u8>, txt: Vec<u8>| {
        cairn_sample::build_layer_tar(
            &[
                dir_entry("usr"),
                file(path, bin),
                file("usr/notes.txt", txt),
            ],
            1_700_000_000,
        )
        .unwrap()
    };
    let v1 = dir.join("v1");
    let v2 = dir.join("v2");
    write_layout(
        &v1,
        "v1",
        &[layer(old, binary, text)],
        LayerCompression::Gzip,
    );
    write_layout(
        &v2,
        "v2",
        &[layer(new, binary2, text2)],
        LayerCompression::Gzip,
    );
    (
        format!("oci:{}:v1", v1.display()),
        format!("oci:{}:v2", v2.display()),
    )
}

fn dir_entry(path: &str) -> cairn_sample::SampleEntry {
    dir(path)
}

pub(crate) fn store_bytes(store: &Store) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    walk(&e.path())
                } else {
                    m.len()
                }
            })
            .sum()
    }
    walk(&store.root().join("blobs"))
}

/// A store holding `app:v1` and `app:v2` of `write_pair` (v2 with delta frames), v2's report
/// and its exported layers.
fn store_with_delta_pair(
    dir: &std::path::Path,
) -> (StoreWriter, cairn_engine::ConvertReport, Vec<Vec<u8>>) {
    let (v1, v2) = write_pair(dir);
    let store = new_store(dir);
    convert(&store, &v1, "app:v1", &[]).unwrap();
    let report = convert(&store, &v2, "app:v2", &[]).unwrap();
    assert!(report.images[0].totals.delta.chunks > 0, "{report:?}");
    let expected = export_all(store.store(), "app:v2");
    (store, report, expected)
}

fn convert_with(writer: &StoreWriter, source: &str, name: &str, delta: DeltaMode) {
    let mut options = options(source, name, &[]);
    options.delta = Some(delta);
    writer.convert(&options, &NoProgress).unwrap();
}

pub(crate) fn assert_verify_clean(store: &Store) {
    let report = store.verify(true, &NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_changed_file_is_stored_as_its_differences_and_read_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = write_pair(tmp.path());
    let mut added = Vec::new();
    for mode in [DeltaMode::Off, DeltaMode::Auto] {
        let store = StoreWriter::init(
            &tmp.path().join(format!("store-{mode:?}")),
            &Default::default(),
        )
        .unwrap();
        convert_with(&store, &v1, "app:v1", mode);
        let before = store_bytes(store.store());
        convert_with(&store, &v2, "app:v2", mode);
        added.push(store_bytes(store.store()) - before);
        let mut expected = Vec::new();
        let plain = tmp.path().join("v2-plain");
        if !plain.exists() {
            convert_with(
                &StoreWriter::init(&plain, &Default::default()).unwrap(),
                &v2,
                "app:v2",
                DeltaMode::Off,
            );
        }
        let reference = Store::open(&plain).unwrap();
        expected.extend(export_all(&reference, "app:v2"));
        assert_eq!(export_all(store.store(), "app:v2"), expected, "{mode:?}");
        let mut cat = Vec::new();
        store
            .store()
            .cat(
                "app:v2",
                "/usr/lib.so",
                cairn_engine::Follow::Symlinks,
                &mut cat,
            )
            .unwrap();
        let mut cat_plain = Vec::new();
        reference
            .cat(
                "app:v2",
                "/usr/lib.so",
                cairn_engine::Follow::Symlinks,
                &mut cat_plain,
            )
            .unwrap();
        assert_eq!(cat, cat_plain);
        assert_verify_clean(store.store());
    }
    // 300 scattered bytes of 3 MB changed: the delta store adds a small fraction.
    assert!(
        added[1] * 10 < added[0],
        "delta off {} / auto {}",
        added[0],
        added[1]
    );
}

#[test]
fn gc_keeps_the_bases_of_live_delta_frames_and_compaction_moves_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, report, expected) = store_with_delta_pair(tmp.path());
    // v1 goes; its chunks are v2's bases. A plain gc keeps them.
    store.remove(&["app:v1".to_string()]).unwrap();
    store
        .gc(&GcOptions::default().with_compact_below(0.0))
        .unwrap();
    assert_eq!(export_all(store.store(), "app:v2"), expected);
    assert_verify_clean(store.store());
    // Compacting every blob moves the bases, and copies the delta frames as they are.
    store
        .gc(&GcOptions::default().with_compact_below(1.0))
        .unwrap();
    assert_eq!(export_all(store.store(), "app:v2"), expected);
    assert_verify_clean(store.store());
    let stats = store.store().stats(&[], false).unwrap();
    assert_eq!(stats.delta.chunks, report.images[0].totals.delta.chunks);
    drop(store);
    let reopened = Store::open(&tmp.path().join("store")).unwrap();
    assert_eq!(export_all(&reopened, "app:v2"), expected);
}

#[test]
fn a_missing_base_is_an_error_naming_it_not_wrong_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, _) = store_with_delta_pair(tmp.path());
    // Remove v1 and delete every blob only v1's layer object names: v2's bases go with them.
    let v2_blobs: std::collections::HashSet<String> = {
        let layers = store.store().bootstrap("app:v2").unwrap().layers;
        layers
            .iter()
            .flat_map(|l| {
                store
                    .store()
                    .layer_meta(&l.meta)
                    .unwrap()
                    .blobs()
                    .iter()
                    .map(|b| b.id.to_hex())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for entry in std::fs::read_dir(store.store().root().join("blobs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !v2_blobs.contains(&name) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    // A fresh reader (the writer keeps recently decoded base frames).
    drop(store);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let mut out = Vec::new();
    let err = store
        .cat(
            "app:v2",
            "/usr/lib.so",
            cairn_engine::Follow::Symlinks,
            &mut out,
        )
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(err.contains("base"), "{err}");
    let report = store.verify(true, &NoProgress).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| format!("{p:?}").contains("base")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_renamed_file_finds_its_old_version_by_its_sketch() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = write_pair_named(tmp.path(), "usr/lib-1.0.so", "usr/lib-2.0.so");
    let store = new_store(tmp.path());
    convert(&store, &v1, "app:v1", &[]).unwrap();
    let report = convert(&store, &v2, "app:v2", &[]).unwrap();
    let delta = report.images[0].totals.delta;
    assert!(delta.by_sketch > 0, "{delta:?}");
    // Most of the 3 MB file's new bytes went into delta frames.
    assert!(delta.bytes > 2 << 20, "{delta:?}");
    assert!(
        delta.stored_bytes * 10 < delta.plain_stored_bytes,
        "{delta:?}"
    );
    let mut out = Vec::new();
    store
        .store()
        .cat(
            "app:v2",
            "/usr/lib-2.0.so",
            cairn_engine::Follow::Symlinks,
            &mut out,
        )
        .unwrap();
    assert_eq!(out.len(), 3 << 20);
    assert_verify_clean(store.store());
    // With v1 removed, gc keeps the bases and drops v1's sketch keys with its object.
    store.remove(&["app:v1".to_string()]).unwrap();
    store.gc(&GcOptions::default()).unwrap();
    let mut again = Vec::new();
    store
        .store()
        .cat(
            "app:v2",
            "/usr/lib-2.0.so",
            cairn_engine::Follow::Symlinks,
            &mut again,
        )
        .unwrap();
    assert_eq!(again, out);
    assert_verify_clean(store.store());
}

#[test]
fn the_index_repair_keeps_delta_frames_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, expected) = store_with_delta_pair(tmp.path());
    let root = store.store().root().to_path_buf();
    drop(store);
    // Rebuilt from the blobs and bootstraps (the names kept from the old index).
    StoreWriter::repair_index(&root, &NoProgress).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(export_all(&store, "app:v2"), expected);
    assert_verify_clean(&store);
}
