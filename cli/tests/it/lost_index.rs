//! Only `init` creates an index: with the index's files deleted, its directory deleted, or an
//! index created afresh (blank) put in its place, every command but `verify --repair-index`
//! fails naming the repair and leaves every file of the store as it was; the repair then gives
//! every image back. And gc (and optimize) refuse to delete orphan bootstraps, ones the index
//! has neither a name nor a record for, unless `--force-orphans`, while images removed with
//! `rm` are deleted as before.

use crate::helpers::{cairn, export_all, files, ok};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A store holding the demo pair as `app:v1` and `app:v2`; returns it and the v2 layout.
fn demo_store(dir: &Path) -> (PathBuf, PathBuf) {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("images")).unwrap();
    let store = dir.join("store");
    ok(cairn(&store, &["init"]));
    for (source, name) in [(&v1, "app:v1"), (&v2, "app:v2")] {
        let source = format!("oci:{}", source.display());
        ok(cairn(&store, &["convert", &source, "--name", name]));
    }
    (store, v2)
}

/// The exported layers of every named image, as a set (names may change in a repair).
fn every_image(store: &Path) -> BTreeSet<Vec<Vec<u8>>> {
    let list: serde_json::Value =
        serde_json::from_str(&ok(cairn(store, &["images", "--json"]))).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|image| export_all(store, image["name"].as_str().unwrap(), 3))
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How the index is lost.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// Its files deleted, the directory kept.
    Emptied,
    /// The directory deleted.
    Deleted,
    /// A blank index (as `init` makes) in its place.
    Blank,
}

fn lose_index(store: &Path, loss: Loss, scratch: &Path) {
    let index = store.join("index");
    std::fs::remove_dir_all(&index).unwrap();
    match loss {
        Loss::Emptied => std::fs::create_dir(&index).unwrap(),
        Loss::Deleted => {}
        Loss::Blank => {
            let fresh = scratch.join("fresh");
            ok(cairn(&fresh, &["init"]));
            std::fs::rename(fresh.join("index"), &index).unwrap();
        }
    }
}

#[test]
fn without_its_index_every_command_stops_and_changes_nothing_until_the_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, v2) = demo_store(tmp.path());
    let before = every_image(&store);
    // A bundle of app:v2 made by another store that has app:v1, for `bundle import`.
    let sender = tmp.path().join("sender");
    ok(cairn(&sender, &["init"]));
    let v1 = v2.with_file_name("v1");
    for (source, name) in [(&v1, "app:v1"), (&v2, "app:v2")] {
        let source = format!("oci:{}", source.display());
        ok(cairn(&sender, &["convert", &source, "--name", name]));
    }
    let bundle = tmp.path().join("v2.cairn");
    let bundle = bundle.to_str().unwrap();
    ok(cairn(
        &sender,
        &[
            "bundle", "create", "app:v2", "--have", "app:v1", "-o", bundle,
        ],
    ));
    let v2_source = format!("oci:{}", v2.display());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let emit = format!("oci:{}:base", out.join("bases").display());
    let dict = out.join("site.dict");
    let dict = dict.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["convert", &v2_source, "--name", "other"],
        vec!["rm", "app:v1"],
        vec!["gc"],
        vec!["gc", "--dry-run"],
        vec!["gc", "--force-orphans"],
        vec!["optimize"],
        vec!["optimize", "--dry-run"],
        vec!["bundle", "import", bundle],
        vec![
            "dict",
            "build",
            "app:v1",
            "app:v2",
            "--min-images",
            "2",
            "--name",
            "d",
        ],
        vec!["dict", "export", "--all", "-o", dict],
        vec!["plan", "app:v1", "app:v2", "--emit-base", "1", &emit],
        vec!["verify"],
        vec!["images"],
        vec!["export-layer", "app:v1", "0", "-o", "-"],
    ];

    for loss in [Loss::Emptied, Loss::Deleted, Loss::Blank] {
        let scratch = tmp.path().join(format!("{loss:?}"));
        lose_index(&store, loss, &scratch);
        let tree: BTreeMap<PathBuf, Vec<u8>> = files(&store);
        for args in &commands {
            let run = cairn(&store, args);
            assert!(
                !run.status.success(),
                "{loss:?}: `cairn {}` succeeded without an index",
                args.join(" ")
            );
            let err = stderr(&run);
            assert!(
                err.contains("verify --repair-index"),
                "{loss:?}: `cairn {}` does not name the repair: {err}",
                args.join(" ")
            );
            assert!(
                files(&store) == tree,
                "{loss:?}: `cairn {}` changed the store",
                args.join(" ")
            );
        }
        // The repair builds a new index; every image reads back (under recovered names).
        let repaired = ok(cairn(&store, &["verify", "--repair-index", "--json"]));
        assert!(repaired.contains("recovered-"), "{loss:?}: {repaired}");
        assert_eq!(every_image(&store), before, "{loss:?}");
        ok(cairn(&store, &["verify", "--full"]));
        // gc after the repair deletes nothing that an image uses.
        ok(cairn(&store, &["gc"]));
        assert_eq!(every_image(&store), before, "{loss:?}");
    }
}

/// The bootstraps of a store, by file name.
fn bootstraps(store: &Path) -> BTreeSet<String> {
    std::fs::read_dir(store.join("bootstraps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn gc_refuses_orphan_bootstraps_unless_forced_and_deletes_removed_images() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, v2) = demo_store(&tmp.path().join("full"));
    // A store holding only app:v1, then every file of `full` copied in: app:v2's bootstrap,
    // layer objects and blobs are there, but this store's index never knew them (as an index
    // that lost their records would leave them).
    let store = tmp.path().join("store");
    ok(cairn(&store, &["init"]));
    let v1 = format!("oci:{}", v2.with_file_name("v1").display());
    ok(cairn(&store, &["convert", &v1, "--name", "app:v1"]));
    let kept = export_all(&store, "app:v1", 3);
    let own = bootstraps(&store);
    for dir in ["blobs", "layers", "bootstraps"] {
        for (path, bytes) in files(&full.join(dir)) {
            let to = store.join(dir).join(path.file_name().unwrap());
            if !to.exists() {
                std::fs::write(to, bytes).unwrap();
            }
        }
    }
    let orphans = bootstraps(&store).difference(&own).count();
    assert!(orphans > 0);
    // The data (the index's own files and the lock files' texts change with any writer's open).
    let data = |store: &Path| -> Vec<BTreeMap<PathBuf, Vec<u8>>> {
        ["blobs", "layers", "bootstraps", "store.json"]
            .iter()
            .map(|d| match store.join(d).is_dir() {
                true => files(&store.join(d)),
                false => BTreeMap::from([(store.join(d), std::fs::read(store.join(d)).unwrap())]),
            })
            .collect()
    };
    let tree = data(&store);
    for args in [
        vec!["gc"],
        vec!["gc", "--dry-run"],
        vec!["optimize"],
        vec!["optimize", "--dry-run"],
    ] {
        let run = cairn(&store, &args);
        assert!(!run.status.success(), "`cairn {}` ran", args.join(" "));
        let err = stderr(&run);
        assert!(
            err.contains("--force-orphans") && err.contains("verify --repair-index"),
            "{args:?}: {err}"
        );
        assert!(
            data(&store) == tree,
            "`cairn {}` changed the store",
            args.join(" ")
        );
    }
    // Told so, gc deletes the orphans.
    let gc: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["gc", "--force-orphans", "--json"]))).unwrap();
    assert_eq!(gc["orphan_bootstraps"], orphans, "{gc}");
    assert_eq!(gc["dead_bootstraps"], orphans, "{gc}");
    assert_eq!(bootstraps(&store), own);
    assert_eq!(export_all(&store, "app:v1", 3), kept);
    ok(cairn(&store, &["verify", "--full"]));

    // Images removed with `rm` are no orphans: removing every image lets gc free everything.
    let v2_source = format!("oci:{}", v2.display());
    ok(cairn(&store, &["convert", &v2_source, "--name", "app:v2"]));
    ok(cairn(&store, &["rm", "app:v1", "app:v2"]));
    let gc: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["gc", "--json"]))).unwrap();
    assert_eq!(gc["orphan_bootstraps"], 0, "{gc}");
    assert_eq!(gc["dead_bootstraps"], 2, "{gc}");
    assert!(bootstraps(&store).is_empty());
    assert!(files(&store.join("blobs")).is_empty());
    // The store is empty and whole: it opens, and takes an image again.
    ok(cairn(&store, &["verify", "--full"]));
    ok(cairn(&store, &["convert", &v1, "--name", "app:v1"]));
    assert_eq!(export_all(&store, "app:v1", 3), kept);
}

#[test]
fn what_a_convert_stopped_before_its_name_left_is_no_orphan() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let store = tmp.path().join("store");
    ok(cairn(&store, &["init"]));
    let v1 = format!("oci:{}", v1.display());
    ok(cairn(&store, &["convert", &v1, "--name", "app:v1"]));
    let own = bootstraps(&store);
    // Stopped after its bootstrap is in place, before the batch that names it (as a crash
    // there would): its record, committed before the bootstrap, tells gc it may go.
    let stopped = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .env(cairn_engine::failpoint::ENV, "convert.index.batch")
        .arg("--store")
        .arg(&store)
        .args([
            "convert",
            &format!("oci:{}", v2.display()),
            "--name",
            "app:v2",
        ])
        .output()
        .unwrap();
    assert!(!stopped.status.success());
    assert_eq!(bootstraps(&store).difference(&own).count(), 1);
    let gc: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["gc", "--json"]))).unwrap();
    assert_eq!(gc["dead_bootstraps"], 1, "{gc}");
    assert_eq!(gc["orphan_bootstraps"], 0, "{gc}");
    assert_eq!(bootstraps(&store), own);
    ok(cairn(&store, &["verify", "--full"]));
}
