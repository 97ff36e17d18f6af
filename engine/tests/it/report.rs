//! Reports: exact figures on images with known sharing, and agreement with an independent
//! computation (sha256 of file contents, layer digests) on the demo images.

use crate::helpers::*;
use cairn_sample::LayerCompression;
use std::collections::HashSet;
use std::io::Read;

/// Each file is below the minimum chunk size (32 KiB), so it is exactly one chunk.
fn files(specs: &[(&str, usize, u64)]) -> Vec<Vec<u8>> {
    let entries: Vec<_> = specs
        .iter()
        .map(|(path, len, seed)| file(path, pseudo_random(*len, *seed)))
        .collect();
    vec![cairn_sample::build_layer_tar(&entries, 1).unwrap()]
}

#[test]
fn known_sharing_gives_exact_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let a = files(&[("f1", 10_000, 1), ("f2", 20_000, 2), ("f3", 30_000, 3)]);
    // f2 changed, f4 added, f1 and f3 unchanged.
    let b = files(&[
        ("f1", 10_000, 1),
        ("f2", 20_000, 22),
        ("f3", 30_000, 3),
        ("f4", 5_000, 4),
    ]);
    write_layout(&tmp.path().join("a"), "a", &a, LayerCompression::Gzip);
    write_layout(&tmp.path().join("b"), "b", &b, LayerCompression::Gzip);
    let store = new_store(tmp.path());
    convert(
        &store,
        &format!("oci:{}", tmp.path().join("a").display()),
        "a",
        &[],
    )
    .unwrap();
    convert(
        &store,
        &format!("oci:{}", tmp.path().join("b").display()),
        "b",
        &[],
    )
    .unwrap();

    let d = store.store().diff("a", "b", 10).unwrap();
    assert_eq!(d.new_logical_bytes, 65_000);
    assert_eq!((d.new_unique_chunks, d.new_unique_bytes), (4, 65_000));
    assert_eq!((d.shared_chunks, d.shared_bytes), (2, 40_000));
    assert_eq!((d.new_chunks, d.new_bytes), (2, 25_000));
    assert_eq!(d.shared_ratio_bytes, 40_000.0 / 65_000.0);
    assert_eq!(d.shared_ratio_chunks, 0.5);
    assert_eq!(d.file_dedup_added_bytes, 25_000);
    assert_eq!(d.chunk_dedup_added_bytes, 25_000);
    assert_eq!(d.layer_dedup_added_bytes, b[0].len() as u64);
    assert_eq!(
        (
            d.files_added,
            d.files_changed,
            d.files_removed,
            d.files_unchanged
        ),
        (1, 1, 0, 2)
    );
    let top: Vec<(&str, &str, u64)> = d
        .top_files
        .iter()
        .map(|f| (f.path.as_str(), f.status, f.new_bytes))
        .collect();
    assert_eq!(top, vec![("f2", "changed", 20_000), ("f4", "added", 5_000)]);
    assert_eq!(d.layers.len(), 1);
    assert_eq!(d.layers[0].shared_bytes, 40_000);
    assert_eq!(d.layers[0].best_match, Some(0));

    let s = store.store().stats(&[], true).unwrap();
    assert_eq!(s.images, 2);
    assert_eq!(s.unique_chunks, 5);
    assert_eq!(s.unique_chunk_bytes, 85_000);
    let owned: Vec<(&str, u64, u64)> = s
        .per_image
        .iter()
        .map(|i| (i.name.as_str(), i.owned_bytes, i.shared_bytes))
        .collect();
    assert_eq!(owned, vec![("a", 20_000, 40_000), ("b", 25_000, 40_000)]);
    let m = s.matrix.unwrap();
    assert_eq!(m.share[0][1], 40_000.0 / 60_000.0);
    assert_eq!(m.share[1][0], 40_000.0 / 65_000.0);
    assert_eq!(m.share[0][0], 1.0);

    let rows = store.store().inventory().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "a");
    assert_eq!(rows[0].os, "linux");
    assert_eq!(rows[0].architecture, "amd64");
    assert_eq!(rows[0].files, 3);
    assert_eq!(rows[0].uncompressed_size, a[0].len() as u64);
}

/// sha256 of every regular file's content in a layer tar, with sizes.
fn file_contents(tar_bytes: &[u8]) -> Vec<(String, u64)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((sha256_hex(&data), data.len() as u64));
    }
    out
}

#[test]
fn file_and_layer_figures_match_an_independent_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("demo")).unwrap();
    let store = new_store(tmp.path());
    let r1 = convert(&store, &format!("oci:{}", v1.display()), "v1", &[]).unwrap();
    let r2 = convert(&store, &format!("oci:{}", v2.display()), "v2", &["v1"]).unwrap();
    let d = store.store().diff("v1", "v2", 5).unwrap();

    let old_layers = cairn_sample::demo_layers(1).unwrap();
    let new_layers = cairn_sample::demo_layers(2).unwrap();
    let old_files: HashSet<String> = old_layers
        .iter()
        .flat_map(|l| file_contents(l))
        .map(|f| f.0)
        .collect();
    let mut seen = HashSet::new();
    let expected_file_added: u64 = new_layers
        .iter()
        .flat_map(|l| file_contents(l))
        .filter(|(sha, _)| !old_files.contains(sha) && seen.insert(sha.clone()))
        .map(|(_, len)| len)
        .sum();
    assert_eq!(d.file_dedup_added_bytes, expected_file_added);

    let old_digests: HashSet<&String> = r1.images[0].layers.iter().map(|l| &l.digest).collect();
    let expected_layer_added: u64 = r2.images[0]
        .layers
        .iter()
        .zip(&new_layers)
        .filter(|(l, _)| !old_digests.contains(&l.digest))
        .map(|(_, tar)| tar.len() as u64)
        .sum();
    assert_eq!(d.layer_dedup_added_bytes, expected_layer_added);
    // Chunk dedup finds at least what whole-file dedup finds.
    assert!(d.chunk_dedup_added_bytes <= d.file_dedup_added_bytes);
    assert_eq!(d.new_bytes, r2.images[0].totals.new.bytes);
}
