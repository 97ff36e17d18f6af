//! The real-data round trip on the py dataset (../shared/datasets/gen_py.py: Debian packages and
//! PyPI wheels), built on first use (`cairn_testkit::datasets::py`).

use crate::helpers::*;
use cairn_engine::NoProgress;
use cairn_testkit::{datasets, probe, require};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (sha256, size) of every regular file in a gzip layer blob.
fn file_contents(blob: &Path) -> Vec<(String, u64)> {
    let file = std::fs::File::open(blob).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((sha256_hex(&data), data.len() as u64));
    }
    out
}

fn layer_blobs(layout: &Path, report: &cairn_engine::ImageReport) -> Vec<PathBuf> {
    report
        .layers
        .iter()
        .map(|l| {
            layout
                .join("blobs/sha256")
                .join(l.digest.trim_start_matches("sha256:"))
        })
        .collect()
}

#[test]
fn py_v1_v2_convert_export_and_diff() {
    let Some(data) = datasets::py() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let (v1, v2) = (data.join("v1"), data.join("v2"));
    let r1 = convert(&store, &format!("oci:{}:v1", v1.display()), "py:v1", &[])
        .unwrap()
        .images
        .remove(0);
    let r2 = convert(
        &store,
        &format!("oci:{}:v2", v2.display()),
        "py:v2",
        &["py:v1"],
    )
    .unwrap()
    .images
    .remove(0);
    assert!(r2.totals.from_dictionary.bytes > r2.totals.chunks.bytes / 2);

    // Every layer comes back byte for byte (export_layer checks the diff_id).
    for (name, report) in [("py:v1", &r1), ("py:v2", &r2)] {
        for (i, layer) in report.layers.iter().enumerate() {
            let diff_id = store
                .store()
                .export_layer(name, i, &mut std::io::sink(), &NoProgress)
                .unwrap();
            assert_eq!(diff_id.to_string(), layer.diff_id);
        }
    }

    // diff's file- and layer-level figures against an independent computation.
    let d = store.store().diff("py:v1", "py:v2", 10).unwrap();
    let old: HashSet<String> = layer_blobs(&v1, &r1)
        .iter()
        .flat_map(|b| file_contents(b))
        .map(|f| f.0)
        .collect();
    let mut seen = HashSet::new();
    let file_added: u64 = layer_blobs(&v2, &r2)
        .iter()
        .flat_map(|b| file_contents(b))
        .filter(|(sha, _)| !old.contains(sha) && seen.insert(sha.clone()))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(d.file_dedup_added_bytes, file_added);
    let old_digests: HashSet<&String> = r1.layers.iter().map(|l| &l.digest).collect();
    let layer_added: u64 = r2
        .layers
        .iter()
        .filter(|l| !old_digests.contains(&l.digest))
        .map(|l| l.tar_bytes)
        .sum();
    assert_eq!(d.layer_dedup_added_bytes, layer_added);
}

#[test]
fn py_unpack_matches_gnu_tar_and_skopeo_reads_the_export() {
    let Some(data) = datasets::py() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    for v in ["v1", "v2"] {
        let layout = data.join(v);
        convert(&store, &format!("oci:{}:{v}", layout.display()), v, &[]).unwrap();
    }
    for v in ["v1", "v2"] {
        let bootstrap = store.store().whole_image(v).unwrap();
        let out = tmp.path().join(format!("rootfs-{v}"));
        let report = store
            .store()
            .unpack(
                v,
                &out,
                &cairn_engine::UnpackOptions::default(),
                &NoProgress,
            )
            .unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        if require("the comparison with tar -x", probe::gnu_tar()).is_none() {
            continue;
        }
        let layers: Vec<Vec<u8>> = (0..bootstrap.layers.len())
            .map(|i| {
                let mut tar = Vec::new();
                store
                    .store()
                    .export_layer(v, i, &mut tar, &NoProgress)
                    .unwrap();
                tar
            })
            .collect();
        let reference =
            crate::tree::gnu_tar_reference(&layers, &tmp.path().join(format!("tar-{v}")));
        let ours = crate::tree::walk(&out);
        let theirs = crate::tree::walk(&reference);
        let ours_keys: Vec<_> = ours.keys().collect();
        let theirs_keys: Vec<_> = theirs.keys().collect();
        assert_eq!(ours_keys, theirs_keys, "{v}: the same paths");
        for (path, node) in &ours {
            assert_eq!(node, &theirs[path], "{v}: {}", path.display());
        }
        std::fs::remove_dir_all(&out).unwrap();
        std::fs::remove_dir_all(&reference).unwrap();
    }

    // Both into one OCI layout, which skopeo must read and copy.
    let layout = tmp.path().join("export");
    for v in ["v1", "v2"] {
        let target =
            cairn_engine::ExportTarget::parse(&format!("oci:{}:{v}", layout.display())).unwrap();
        store
            .store()
            .export(v, &cairn_engine::ExportOptions::new(target), &NoProgress)
            .unwrap();
    }
    let Some(skopeo) = require("the skopeo checks", probe::tool("skopeo")) else {
        return;
    };
    for v in ["v1", "v2"] {
        let inspect = Command::new(&skopeo)
            .args(["inspect", &format!("oci:{}:{v}", layout.display())])
            .output()
            .unwrap();
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let archive = tmp.path().join(format!("{v}.tar"));
        let copy = Command::new(&skopeo)
            .args(["--insecure-policy", "copy"])
            .arg(format!("oci:{}:{v}", layout.display()))
            .arg(format!("docker-archive:{}:py:{v}", archive.display()))
            .output()
            .unwrap();
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
    }
}
