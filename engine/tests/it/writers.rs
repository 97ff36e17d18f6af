//! Several writers on one store, in one process and in a chosen order: a shared writer looks
//! chunks up in the index as it opened it, so a writer opened before another commits finds
//! the other's chunks only at its own commit. Duplicates are counted and indexed once, the
//! image uses the indexed copy and gc's compaction reclaims the other; a name taken
//! meanwhile fails the commit and leaves the store as it was; gc and rm exclude converts.

use crate::helpers::{export_all, file, options, pseudo_random, snapshot};
use cairn_engine::{Error, GcOptions, InitOptions, NoProgress, SharedWriter, Store, StoreWriter};
use cairn_sample::build_layer_tar;
use std::path::{Path, PathBuf};

/// A bare layer tar of `shared` files common to every seed plus one of `seed`'s own.
fn layer(dir: &Path, seed: u64, shared: usize) -> PathBuf {
    let mut entries: Vec<_> = (0..shared)
        .map(|i| {
            file(
                &format!("shared/{i}.bin"),
                pseudo_random(1 << 20, 100 + i as u64),
            )
        })
        .collect();
    entries.push(file("own.bin", pseudo_random(256 << 10, seed)));
    let path = dir.join(format!("layer-{seed}.tar"));
    std::fs::write(&path, build_layer_tar(&entries, 1_700_000_000).unwrap()).unwrap();
    path
}

fn init(dir: &Path) -> PathBuf {
    let root = dir.join("store");
    StoreWriter::init(&root, &InitOptions::default()).unwrap();
    root
}

#[test]
fn a_chunk_two_writers_stored_is_indexed_once_and_gc_reclaims_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path());
    let (a, b) = (layer(tmp.path(), 1, 6), layer(tmp.path(), 2, 6));
    let first = SharedWriter::open(&root).unwrap();
    let second = SharedWriter::open(&root).unwrap();
    let opt = |path: &Path, name: &str| options(path.to_str().unwrap(), name, &[]);
    let one = first.convert(&opt(&a, "a"), &NoProgress).unwrap();
    // `second` opened before `first` committed: its chunks look new until its own commit.
    let two = second.convert(&opt(&b, "b"), &NoProgress).unwrap();
    let (one, two) = (&one.images[0], &two.images[0]);
    assert_eq!(one.duplicate.chunks, 0);
    assert!(two.duplicate.chunks > 0);
    assert_eq!(
        two.duplicate.bytes,
        6 << 20,
        "the shared files' chunks are the duplicates"
    );
    assert!(two.duplicate_stored_bytes >= 6 << 20);
    drop((first, second));

    let store = Store::open(&root).unwrap();
    assert!(store.verify(true, &NoProgress).unwrap().problems.is_empty());
    let records: u64 = store
        .images()
        .unwrap()
        .iter()
        .map(|i| i.record.new_chunks)
        .sum();
    assert_eq!(
        records,
        one.totals.new.chunks + two.totals.new.chunks - two.duplicate.chunks
    );
    let exports = |store: &Store| [export_all(store, "a"), export_all(store, "b")];
    let before = exports(&store);
    assert!(before[0][0] == std::fs::read(&a).unwrap());
    assert!(before[1][0] == std::fs::read(&b).unwrap());
    drop(store);

    let gc = StoreWriter::open(&root)
        .unwrap()
        .gc(&GcOptions::default())
        .unwrap();
    assert_eq!(gc.compacted_blobs, 1, "{gc:?}");
    assert!(
        gc.freed_bytes >= two.duplicate_stored_bytes * 9 / 10,
        "{gc:?}"
    );
    let store = Store::open(&root).unwrap();
    assert!(store.verify(true, &NoProgress).unwrap().problems.is_empty());
    assert!(exports(&store) == before);
}

#[test]
fn a_blob_of_duplicates_only_is_not_added() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path());
    let a = layer(tmp.path(), 1, 3);
    // The same files in another order: the same chunks in a blob of other bytes.
    let reversed = tmp.path().join("reversed.tar");
    let mut entries: Vec<_> = (0..3)
        .map(|i| {
            file(
                &format!("shared/{i}.bin"),
                pseudo_random(1 << 20, 100 + i as u64),
            )
        })
        .collect();
    entries.push(file("own.bin", pseudo_random(256 << 10, 1)));
    entries.reverse();
    std::fs::write(&reversed, build_layer_tar(&entries, 1_700_000_000).unwrap()).unwrap();
    let writers: Vec<SharedWriter> = (0..3).map(|_| SharedWriter::open(&root).unwrap()).collect();
    let opt = |path: &Path, name: &str| options(path.to_str().unwrap(), name, &[]);
    writers[0].convert(&opt(&a, "a"), &NoProgress).unwrap();
    let blobs = || std::fs::read_dir(root.join("blobs")).unwrap().count();
    let before = blobs();
    // Neither writer has seen the first commit.
    for (writer, (path, name)) in writers[1..]
        .iter()
        .zip([(&reversed, "reversed"), (&a, "same")])
    {
        let report = writer.convert(&opt(path, name), &NoProgress).unwrap();
        let image = &report.images[0];
        assert_eq!(image.blobs_written, 0, "{name}");
        assert_eq!(image.duplicate_stored_bytes, 0, "{name}");
        match name {
            // Another blob holding only chunks the index has: not added.
            "reversed" => assert_eq!(image.duplicate.chunks, image.totals.new.chunks),
            // The very same blob: already stored, nothing duplicated.
            _ => assert_eq!(image.duplicate.chunks, 0),
        }
        assert_eq!(blobs(), before, "{name}");
    }
    drop(writers);
    let store = Store::open(&root).unwrap();
    assert!(store.verify(true, &NoProgress).unwrap().problems.is_empty());
    assert!(export_all(&store, "reversed")[0] == std::fs::read(&reversed).unwrap());
    assert!(export_all(&store, "same")[0] == std::fs::read(&a).unwrap());
}

#[test]
fn a_name_taken_meanwhile_fails_the_commit_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path());
    let (a, b) = (layer(tmp.path(), 1, 2), layer(tmp.path(), 2, 2));
    let first = SharedWriter::open(&root).unwrap();
    let second = SharedWriter::open(&root).unwrap();
    first
        .convert(&options(a.to_str().unwrap(), "x", &[]), &NoProgress)
        .unwrap();
    let before = snapshot(&Store::open(&root).unwrap());
    let err = second
        .convert(&options(b.to_str().unwrap(), "x", &[]), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(snapshot(&Store::open(&root).unwrap()), before);
    // Its files in progress are gone; only the writers' liveness locks remain.
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name())
        .filter(|n| n != "LIVE")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn gc_and_rm_exclude_converts_and_converts_exclude_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path());
    let shared = SharedWriter::open(&root).unwrap();
    let refused = |e: Error| {
        let text = e.to_string();
        assert!(text.contains("in use by another writer"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
    };
    refused(
        StoreWriter::open(&root)
            .err()
            .expect("exclusive while shared"),
    );
    refused(StoreWriter::repair_index(&root, &NoProgress).expect_err("repair while shared"));
    // Another shared writer is welcome.
    let other = SharedWriter::open(&root).unwrap();
    drop((shared, other));
    let exclusive = StoreWriter::open(&root).unwrap();
    refused(
        SharedWriter::open(&root)
            .err()
            .expect("shared while exclusive"),
    );
    drop(exclusive);
    SharedWriter::open(&root).unwrap();
}
