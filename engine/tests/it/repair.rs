//! `verify --repair-index`: the index rebuilt from blobs and bootstraps, with the index missing,
//! wrong in single entries, beside damaged files, and a swap interrupted by a crash.

use crate::helpers::*;
use cairn_engine::{
    Error, ImageId, ImageRecord, NoProgress, OldIndex, RepairReport, Store, StoreWriter,
    RECOVERED_PREFIX,
};
use cairn_sample::LayerCompression;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The demo pair converted as `v1` and `v2`; returns the store root and the v2 layout.
fn demo_store(dir: &Path) -> (PathBuf, PathBuf) {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("demo")).unwrap();
    let store = new_store(dir);
    convert(&store, &format!("oci:{}", v1.display()), "v1", &[]).unwrap();
    convert(&store, &format!("oci:{}", v2.display()), "v2", &[]).unwrap();
    (store.store().root().to_path_buf(), v2)
}

/// name -> (image id, record).
fn images(store: &Store) -> BTreeMap<String, (ImageId, ImageRecord)> {
    store
        .images()
        .unwrap()
        .into_iter()
        .map(|s| (s.name, (s.record.image_id, s.record)))
        .collect()
}

fn repair(root: &Path) -> RepairReport {
    StoreWriter::repair_index(root, &NoProgress).unwrap()
}

fn assert_clean(store: &Store) {
    let verify = store.verify(true, &NoProgress).unwrap();
    assert!(verify.is_clean(), "{:?}", verify.problems);
}

/// Opens the store's RocksDB directly, as a damaged disk would leave it.
fn raw_index(root: &Path) -> rocksdb::DB {
    let cfs = ["chunks", "blobs", "images", "refs", "layers"]
        .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, rocksdb::Options::default()));
    rocksdb::DB::open_cf_descriptors(&rocksdb::Options::default(), root.join("index"), cfs).unwrap()
}

#[test]
fn a_deleted_index_is_rebuilt_and_every_image_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, v2_layout) = demo_store(tmp.path());
    let store = StoreWriter::open(&root).unwrap();
    let before = images(store.store());
    let layers = [
        export_all(store.store(), "v1"),
        export_all(store.store(), "v2"),
    ];
    drop(store);
    std::fs::remove_dir_all(root.join("index")).unwrap();

    // Without an index the store does not open (an empty index would hide every image).
    let err = StoreWriter::open(&root).err().expect("no index");
    assert!(err.to_string().contains("--repair-index"), "{err}");
    assert!(Store::open(&root).is_err());

    let report = repair(&root);
    assert_eq!(report.old_index, OldIndex::Missing);
    assert_eq!((report.images, report.records_kept), (2, 0));
    assert!(report.refs_kept.is_empty() && report.refs_dropped.is_empty());
    assert!(report.damaged.is_empty() && report.incomplete_images.is_empty());
    assert_eq!(report.chunks, report.chunks_fixed);
    assert_eq!(report.recovered.len(), 2);

    let store = StoreWriter::open(&root).unwrap();
    assert_clean(store.store());
    let after = images(store.store());
    // Each image is back under recovered-<id>, its record derived from the bootstrap alone.
    for (i, name) in ["v1", "v2"].iter().enumerate() {
        let (id, old) = &before[*name];
        let recovered = format!("{RECOVERED_PREFIX}{}", id.short());
        let (new_id, record) = &after[&recovered];
        assert_eq!(new_id, id);
        assert_eq!(export_all(store.store(), &recovered), layers[i]);
        let derived = ImageRecord {
            created: old.created,
            ..record.clone()
        };
        // Each convert's blobs hold exactly its new chunks, so even what only the convert knew
        // is derived right; `created` comes from the bootstrap's mtime.
        assert_eq!(&derived, old, "{name}");
        assert!(record.created.abs_diff(old.created) <= 2, "{name}");
    }
    assert_eq!(after.len(), 2);

    // The rebuilt index is what convert dedups against: v2 again stores nothing new.
    let again = convert(
        &store,
        &format!("oci:{}", v2_layout.display()),
        "again",
        &[],
    )
    .unwrap();
    let image = &again.images[0];
    assert_eq!(image.totals.new.chunks, 0, "{image:?}");
    // The rebuilt `layers` entries let it reuse every layer object without reading a layer.
    assert!(image.layers.iter().all(|l| l.reused_metadata), "{image:?}");
    assert_eq!(image.blobs_written, 0);
    assert_clean(store.store());
}

#[test]
fn wrong_chunk_entries_are_fixed_and_names_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = demo_store(tmp.path());
    let other = tmp.path().join("other");
    write_layout(
        &other,
        "o",
        &[cairn_sample::build_layer_tar(&[file("o.bin", pseudo_random(100_000, 7))], 1).unwrap()],
        LayerCompression::Gzip,
    );
    let store = StoreWriter::open(&root).unwrap();
    convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    let removed = store.store().resolve("o").unwrap();
    store.remove(&["o".to_string()]).unwrap();
    let before = images(store.store());
    let v1 = store.store().whole_image("v1").unwrap();
    drop(store);

    // One chunk entry deleted, another pointing at a third chunk's ToC record (an index key is
    // the first 16 bytes of the chunk id).
    let (a, b, c) = (v1.chunks[0], v1.chunks[1], v1.chunks[2]);
    let key = |id: &cairn_engine::ChunkId| id.0[..16].to_vec();
    {
        let db = raw_index(&root);
        let chunks = db.cf_handle("chunks").unwrap();
        let c_value = db.get_cf(chunks, key(&c.id)).unwrap().unwrap();
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(chunks, key(&a.id));
        batch.put_cf(chunks, key(&b.id), c_value);
        db.write_opt(batch, &rocksdb::WriteOptions::default())
            .unwrap();
    }
    let store = Store::open(&root).unwrap();
    let verify = store.verify(false, &NoProgress).unwrap();
    assert_eq!(verify.problems.len(), 1, "{:?}", verify.problems);
    assert!(verify.problems[0].object.contains(&b.id.to_hex()[..32]));
    drop(store);

    // The entry whose record holds another chunk cannot be read as b's: the old index is
    // damaged there, and only there.
    let report = repair(&root);
    assert_eq!(report.old_index, OldIndex::Damaged);
    assert_eq!(
        report.old_index_problems.len(),
        1,
        "{:?}",
        report.old_index_problems
    );
    assert!(report.old_index_problems[0].contains(&b.id.to_hex()[..32]));
    assert_eq!((report.chunks_fixed, report.chunks_dropped), (2, 0));
    assert_eq!(report.refs_kept.len(), 2);
    // `rm` keeps a record until gc deletes the bootstrap: `o`'s is kept too.
    assert_eq!(report.records_kept, 3);
    // `o` was removed but not collected: it comes back under its recovered name.
    assert_eq!(report.recovered.len(), 1);
    let recovered = format!("{RECOVERED_PREFIX}{}", removed.short());
    assert_eq!(report.recovered[0].name, recovered);

    let store = StoreWriter::open(&root).unwrap();
    assert_clean(store.store());
    let mut after = images(store.store());
    assert_eq!(after.remove(&recovered).unwrap().0, removed);
    // The kept names' records are unchanged (created and the convert's figures kept).
    assert_eq!(after, before);
    // A second repair changes nothing.
    drop(store);
    let again = repair(&root);
    assert_eq!((again.chunks_fixed, again.chunks_dropped), (0, 0));
    assert_eq!((again.refs_kept.len(), again.recovered.len()), (3, 0));
}

#[test]
fn damaged_files_are_reported_and_left_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = demo_store(tmp.path());
    let other = tmp.path().join("other");
    write_layout(
        &other,
        "o",
        &[cairn_sample::build_layer_tar(&[file("o.bin", pseudo_random(50_000, 8))], 1).unwrap()],
        LayerCompression::Gzip,
    );
    let store = StoreWriter::open(&root).unwrap();
    convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    let v1_layers = export_all(store.store(), "v1");
    let v1_blobs: Vec<_> = store
        .store()
        .whole_image("v1")
        .unwrap()
        .blobs
        .iter()
        .map(|b| b.id)
        .collect();
    // A blob only v2 uses: its own new chunks.
    let v2_only = store
        .store()
        .whole_image("v2")
        .unwrap()
        .blobs
        .iter()
        .map(|b| b.id)
        .find(|id| !v1_blobs.contains(id))
        .unwrap();
    let (v2, o) = (
        store.store().resolve("v2").unwrap(),
        store.store().resolve("o").unwrap(),
    );
    let blob_path = store.store().blob_path(&v2_only);
    let bootstrap_path = store.store().bootstrap_path(&o);
    drop(store);

    // The blob's footer magic and one byte of the bootstrap's payload.
    let mut damaged_blob = std::fs::read(&blob_path).unwrap();
    let n = damaged_blob.len();
    damaged_blob[n - 3] ^= 0xff;
    std::fs::write(&blob_path, &damaged_blob).unwrap();
    let mut damaged_bootstrap = std::fs::read(&bootstrap_path).unwrap();
    damaged_bootstrap[30] ^= 0x01;
    std::fs::write(&bootstrap_path, &damaged_bootstrap).unwrap();

    let report = repair(&root);
    let objects: Vec<&str> = report.damaged.iter().map(|p| p.object.as_str()).collect();
    assert_eq!(
        objects,
        [format!("blob {v2_only}"), format!("bootstrap {o}")],
        "{:?}",
        report.damaged
    );
    let blob_files = std::fs::read_dir(root.join("blobs")).unwrap().count() as u64;
    assert_eq!((report.blobs, report.images), (blob_files - 1, 2));
    // v2 keeps its name (its bootstrap is whole) but is reported incomplete; o's name goes.
    let kept: Vec<&str> = report.refs_kept.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(kept, ["v1", "v2"]);
    assert_eq!(report.refs_dropped.len(), 1);
    assert_eq!(report.refs_dropped[0].name, "o");
    assert!(report.recovered.is_empty());
    assert_eq!(report.incomplete_images.len(), 1);
    assert_eq!(report.incomplete_images[0].object, format!("image {v2}"));
    // Nothing was deleted or touched.
    assert_eq!(std::fs::read(&blob_path).unwrap(), damaged_blob);
    assert_eq!(std::fs::read(&bootstrap_path).unwrap(), damaged_bootstrap);

    let store = StoreWriter::open(&root).unwrap();
    assert_eq!(export_all(store.store(), "v1"), v1_layers);
    let verify = store.store().verify(false, &NoProgress).unwrap();
    assert!(
        verify
            .problems
            .iter()
            .any(|p| p.object == format!("blob {v2_only}")),
        "{:?}",
        verify.problems
    );
    assert!(store.store().whole_image("o").is_err());
}

#[test]
fn a_swap_interrupted_by_a_crash_is_undone_or_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = demo_store(tmp.path());
    let store = StoreWriter::open(&root).unwrap();
    let before = images(store.store());
    let v1_layers = export_all(store.store(), "v1");
    // The writer lock is held: repair waits for no one and changes nothing.
    assert!(matches!(
        StoreWriter::repair_index(&root, &NoProgress),
        Err(Error::Conflict(cairn_engine::Conflict::Locked { .. }))
    ));
    drop(store);
    let (index, old, new) = (
        root.join("index"),
        root.join("index.old"),
        root.join("index.new"),
    );
    let half_built = |dir: &Path| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("000001.log"), b"half written").unwrap();
    };

    // Crash between the two renames: `index` is gone, the old one waits as `index.old`.
    std::fs::rename(&index, &old).unwrap();
    half_built(&new);
    // A reader meanwhile uses the old index.
    let reader = Store::open(&root).unwrap();
    assert_eq!(images(&reader), before);
    drop(reader);
    let store = StoreWriter::open(&root).unwrap();
    assert!(index.is_dir() && !old.exists() && !new.exists());
    assert_eq!(images(store.store()), before);
    assert_eq!(export_all(store.store(), "v1"), v1_layers);
    assert_clean(store.store());
    drop(store);

    // Crash after the swap, before `index.old` was removed; and one before it began.
    half_built(&old);
    half_built(&new);
    let store = StoreWriter::open(&root).unwrap();
    assert!(index.is_dir() && !old.exists() && !new.exists());
    assert_eq!(images(store.store()), before);
    drop(store);

    // A crash while building: repair runs again from the start.
    half_built(&new);
    let report = repair(&root);
    assert_eq!(report.refs_kept.len(), 2);
    assert!(index.is_dir() && !old.exists() && !new.exists());
    let store = StoreWriter::open(&root).unwrap();
    assert_eq!(images(store.store()), before);
    assert_clean(store.store());
}

/// Every file under `root` with its bytes' hash.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let hash = blake3::hash(&std::fs::read(&path).unwrap());
                out.insert(path, hash.to_hex().to_string());
            }
        }
    }
    out
}

#[test]
fn an_index_missing_a_column_family_is_refused_untouched_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = demo_store(tmp.path());
    let layers = {
        let store = Store::open(&root).unwrap();
        [export_all(&store, "v1"), export_all(&store, "v2")]
    };
    for family in ["refs", "images", "chunks"] {
        let mut db = raw_index(&root);
        db.drop_cf(family).unwrap();
        drop(db);
        let before = tree(&root);
        let errors = [
            Store::open(&root).err().map(|e| e.to_string()),
            StoreWriter::open(&root).err().map(|e| e.to_string()),
            cairn_engine::SharedWriter::open(&root)
                .err()
                .map(|e| e.to_string()),
        ];
        for err in errors {
            let err = err.unwrap_or_else(|| panic!("{family}: opened without it"));
            assert!(err.contains("--repair-index"), "{family}: {err}");
        }
        assert!(tree(&root) == before, "{family}: the store changed");

        let report = repair(&root);
        assert_ne!(report.old_index, OldIndex::Intact, "{family}");
        assert_eq!(report.images, 2, "{family}");
        let store = Store::open(&root).unwrap();
        assert_clean(&store);
        let mut back: Vec<Vec<Vec<u8>>> = images(&store)
            .keys()
            .map(|name| export_all(&store, name))
            .collect();
        back.sort();
        let mut expected = layers.to_vec();
        expected.sort();
        assert_eq!(back, expected, "{family}");
    }
}
