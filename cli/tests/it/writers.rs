//! Several writers at once: converts of different images into one store all succeed and every
//! image comes back exactly; converts of images sharing most of their content count the chunks
//! both stored as duplicates, and gc's compaction reclaims them; what a killed writer left in
//! `tmp/` is reclaimed and reported by the next writer.

use crate::concurrency::{live_writers, write_random_layer};
use crate::helpers::{cairn, export_all, ok};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_convert(store: &Path, source: &str, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(store)
        .args(["--quiet", "convert", source, "--name", name, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cairn")
}

/// Waits for a convert and returns its `--json` report, asserting it succeeded.
fn report(child: Child, what: &str) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn verify_clean(store: &Path) {
    let out = ok(cairn(store, &["verify", "--full"]));
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn four_converts_of_different_images_at_once_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let (a, b) = (tmp.path().join("a.tar"), tmp.path().join("b.tar"));
    write_random_layer(&a, 6, 11);
    write_random_layer(&b, 6, 12);
    ok(cairn(&store, &["init"]));
    let sources = [
        (format!("oci:{}", v1.display()), "app:v1"),
        (format!("oci:{}", v2.display()), "app:v2"),
        (a.display().to_string(), "a"),
        (b.display().to_string(), "b"),
    ];
    let children: Vec<Child> = sources
        .iter()
        .map(|(source, name)| spawn_convert(&store, source, name))
        .collect();
    for (child, (_, name)) in children.into_iter().zip(&sources) {
        let report = report(child, name);
        assert_eq!(report["images"][0]["name"], *name);
    }
    verify_clean(&store);
    for (name, version) in [("app:v1", 1), ("app:v2", 2)] {
        let source = cairn_sample::demo_layers(version).unwrap();
        assert!(export_all(&store, name, 3) == source, "{name} differs");
    }
    for (name, path) in [("a", &a), ("b", &b)] {
        let source = std::fs::read(path).unwrap();
        assert!(export_all(&store, name, 1)[0] == source, "{name} differs");
    }
    let images = ok(cairn(&store, &["images", "--json"]));
    let images: serde_json::Value = serde_json::from_str(&images).unwrap();
    assert_eq!(images.as_array().unwrap().len(), 4, "{images}");
}

#[test]
fn converts_sharing_content_count_duplicates_and_gc_reclaims_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // The same 8 random files (seed 21) in both, each with one file of its own after them.
    let (a, b) = (tmp.path().join("a.tar"), tmp.path().join("b.tar"));
    write_random_layer(&a, 8, 21);
    write_random_layer(&b, 8, 21);
    let own = |path: &Path, seed: u64| {
        let extra = tmp.path().join(format!("extra-{seed}.tar"));
        write_random_layer(&extra, 1, seed);
        let mut bytes = std::fs::read(path).unwrap();
        bytes.truncate(bytes.len() - 1024);
        bytes.extend_from_slice(&std::fs::read(&extra).unwrap());
        std::fs::write(path, bytes).unwrap();
    };
    own(&a, 22);
    own(&b, 23);
    ok(cairn(&store, &["init"]));
    let mut duplicates = 0;
    let mut duplicate_stored = 0;
    let mut rounds = 0;
    // Both start at once; whichever commits second finds the shared chunks stored by the
    // other, unless one finished before the other looked anything up (then: again).
    while duplicates == 0 {
        rounds += 1;
        assert!(rounds <= 5, "the two converts never overlapped");
        let children = [
            spawn_convert(&store, a.to_str().unwrap(), "a"),
            spawn_convert(&store, b.to_str().unwrap(), "b"),
        ];
        for (child, name) in children.into_iter().zip(["a", "b"]) {
            let image = &report(child, name)["images"][0];
            duplicates += image["duplicate"]["chunks"].as_u64().unwrap();
            duplicate_stored += image["duplicate_stored_bytes"].as_u64().unwrap();
        }
        verify_clean(&store);
        if duplicates == 0 {
            ok(cairn(&store, &["rm", "a", "b"]));
            ok(cairn(&store, &["gc"]));
        }
    }
    assert!(duplicate_stored > 0);
    let exports = |store: &Path| [export_all(store, "a", 1), export_all(store, "b", 1)];
    let before = exports(&store);
    assert!(before[0][0] == std::fs::read(&a).unwrap());
    assert!(before[1][0] == std::fs::read(&b).unwrap());
    let gc: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["gc", "--json"]))).unwrap();
    assert!(gc["compacted_blobs"].as_u64().unwrap() >= 1, "{gc}");
    let freed = gc["freed_bytes"].as_u64().unwrap();
    assert!(
        freed * 10 >= duplicate_stored * 9,
        "gc freed {freed} of {duplicate_stored} duplicate bytes: {gc}"
    );
    verify_clean(&store);
    assert!(exports(&store) == before, "an image changed in gc");
    eprintln!("{duplicates} duplicate chunks ({duplicate_stored} B) in {rounds} round(s); gc freed {freed} B");
}

#[test]
fn a_killed_writers_tmp_files_are_reclaimed_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let big = tmp.path().join("big.tar");
    write_random_layer(&big, 24, 31);
    ok(cairn(&store, &["init"]));
    let mut convert = spawn_convert(&store, big.to_str().unwrap(), "big");
    // Killed once its directory under tmp/ holds a few MB of work in progress.
    let started = Instant::now();
    let in_tmp = || walk_bytes(&store.join("tmp"));
    while in_tmp() < 8 << 20 {
        assert!(
            convert.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    convert.kill().unwrap();
    convert.wait().unwrap();
    let left = in_tmp();
    assert_eq!(
        live_writers(&store).len(),
        1,
        "the dead writer's directory is gone"
    );
    let out = ok(cairn(&store, &["gc"]));
    assert!(
        out.contains("left in tmp/ by 1 interrupted writer(s)"),
        "{out}"
    );
    assert_eq!(in_tmp(), 0, "tmp/ still holds files after gc");
    // The JSON report counts them too; another kill, then a convert's start reclaims them.
    let mut convert = spawn_convert(&store, big.to_str().unwrap(), "big");
    while in_tmp() < 1 << 20 {
        assert!(
            convert.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    convert.kill().unwrap();
    convert.wait().unwrap();
    let again = in_tmp();
    let report = report(
        spawn_convert(&store, big.to_str().unwrap(), "big"),
        "convert",
    );
    let reclaimed = &report["tmp_reclaimed"];
    assert_eq!(reclaimed["writers"], 1, "{report}");
    assert!(
        reclaimed["bytes"].as_u64().unwrap() >= again / 2,
        "{report}"
    );
    assert_eq!(in_tmp(), 0);
    verify_clean(&store);
    eprintln!("first kill left {left} bytes, the second {again}");
}

/// Bytes of the files under `dir`.
fn walk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
