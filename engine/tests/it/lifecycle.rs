//! verify, rm and gc.

use crate::helpers::*;
use cairn_engine::sample::{self, LayerCompression};
use cairn_engine::{NoProgress, Store};

fn export_all(store: &Store, name: &str) -> Vec<Vec<u8>> {
    let layers = store.bootstrap(name).unwrap().layers.len();
    (0..layers)
        .map(|i| {
            let mut out = Vec::new();
            store.export_layer(name, i, &mut out, &NoProgress).unwrap();
            out
        })
        .collect()
}

fn demo_store(dir: &std::path::Path) -> Store {
    let (v1, v2) = sample::write_demo_layouts(&dir.join("demo")).unwrap();
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
        &[sample::build_layer_tar(&[file("o.bin", pseudo_random(300_000, 9))], 1).unwrap()],
        LayerCompression::Gzip,
    );
    convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    let before_v2 = export_all(&store, "v2");
    let o_chunks = store.bootstrap("o").unwrap().chunks.len() as u64;
    let blobs_before = std::fs::read_dir(store.root().join("blobs"))
        .unwrap()
        .count();

    assert!(store.remove(&["nope".to_string()]).is_err());
    store.remove(&["o".to_string()]).unwrap();
    assert!(store.bootstrap("o").is_err());
    let dry = store.gc(true).unwrap();
    assert_eq!((dry.dead_blobs, dry.dead_bootstraps), (1, 1));
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs"))
            .unwrap()
            .count(),
        blobs_before
    );
    let report = store.gc(false).unwrap();
    assert_eq!((report.dead_blobs, report.dead_bootstraps), (1, 1));
    assert!(report.freed_bytes > 200_000, "{report:?}");
    assert_eq!(report.index_chunks_dropped, o_chunks);
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs"))
            .unwrap()
            .count(),
        blobs_before - 1
    );
    assert_eq!(export_all(&store, "v2"), before_v2);
    let verify = store.verify(true, &NoProgress).unwrap();
    assert!(verify.is_clean(), "{:?}", verify.problems);
    // Nothing left to collect.
    let again = store.gc(false).unwrap();
    assert_eq!(again.freed_bytes, 0);
}

#[test]
fn gc_removes_what_a_crashed_convert_left() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    // What a convert killed before its index batch leaves: a renamed blob and bootstrap.
    let orphan_blob = store.root().join("blobs").join("ab".repeat(32));
    let orphan_bootstrap = store.root().join("bootstraps").join("cd".repeat(32));
    std::fs::write(&orphan_blob, b"orphan blob").unwrap();
    std::fs::write(&orphan_bootstrap, b"orphan bootstrap").unwrap();
    let report = store.gc(false).unwrap();
    assert_eq!((report.dead_blobs, report.dead_bootstraps), (1, 1));
    assert!(!orphan_blob.exists() && !orphan_bootstrap.exists());
    assert!(store.verify(true, &NoProgress).unwrap().is_clean());
}

#[test]
fn verify_full_reports_every_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    assert!(store.verify(true, &NoProgress).unwrap().is_clean());
    let mut targets: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["blobs", "bootstraps"] {
        let mut files: Vec<_> = std::fs::read_dir(store.root().join(dir))
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
            let report = store.verify(true, &NoProgress).unwrap();
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
    assert!(store.verify(true, &NoProgress).unwrap().is_clean());
}
