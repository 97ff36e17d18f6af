//! Tar shapes at the edges of the format, converted as bare layer files: what convert accepts,
//! verify accepts and export-layer gives back byte for byte (with the diff_id); what it cannot
//! give back it refuses, leaving the store as it was. Also header floods (bounded memory, a
//! clear refusal) and GNU sparse files unpacked as GNU tar extracts them.

use crate::helpers::*;
use cairn_engine::{NoProgress, Store, UnpackOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// A tar of a few entries whose last file's size is not a multiple of 512 (so it has padding),
/// with its two-block end marker.
fn base_tar() -> Vec<u8> {
    cairn_sample::build_layer_tar(
        &[
            dir("d"),
            file("d/a.txt", b"hello".to_vec()),
            file("d/b.bin", pseudo_random(3000, 7)),
            file("d/last", pseudo_random(700, 9)),
        ],
        1_700_000_000,
    )
    .unwrap()
}

/// Converts `tar` as a bare layer file named `name`; `Ok` with the image name if accepted.
fn convert_file(store: &cairn_engine::StoreWriter, dir: &Path, name: &str, tar: &[u8]) -> bool {
    let path = dir.join(format!("{name}.tar"));
    std::fs::write(&path, tar).unwrap();
    let before = snapshot(store.store());
    match convert(store, &path.display().to_string(), name, &[]) {
        Ok(_) => true,
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(&format!("{name}.tar")), "{name}: {text}");
            assert_eq!(
                snapshot(store.store()),
                before,
                "{name}: a refused convert changed the store"
            );
            false
        }
    }
}

/// Accepted means: export-layer gives the exact bytes (its diff_id checked on the way out),
/// and the image's bootstrap and layer open.
fn assert_round_trip(store: &Store, name: &str, tar: &[u8]) {
    let bootstrap = store.bootstrap(name).unwrap();
    assert_eq!(bootstrap.layers.len(), 1, "{name}");
    assert_eq!(bootstrap.layers[0].diff_id.to_string(), sha256_hex(tar));
    assert_eq!(bootstrap.layers[0].size, tar.len() as u64, "{name}");
    let mut out = Vec::new();
    store.export_layer(name, 0, &mut out, &NoProgress).unwrap();
    assert!(
        out == tar,
        "{name}: export-layer differs from the tar converted"
    );
}

/// Where the bytes after the last entry's content begin, and that content's padding.
fn content_end(tar: &[u8]) -> (usize, usize) {
    // The end marker is the last 1024 bytes of `base_tar`; d/last holds 700 bytes.
    let end = tar.len() - 1024 - 324;
    (end, 324)
}

/// Every shape: (name, bytes). The end of the last entry's content is `end`; then its padding,
/// the end marker, and whatever a tar may carry after it.
fn shapes() -> Vec<(String, Vec<u8>)> {
    let tar = base_tar();
    let (end, pad) = content_end(&tar);
    let body = &tar[..end];
    let padded = &tar[..end + pad];
    let mut shapes = Vec::new();
    for zero_blocks in 0..=5usize {
        for tail in [0usize, 1, 100, 511, 512, 700, 4096 + 3] {
            for zero_tail in [true, false] {
                if tail == 0 && !zero_tail {
                    continue;
                }
                let mut t = padded.to_vec();
                t.extend(vec![0u8; zero_blocks * 512]);
                let fill = if zero_tail { 0 } else { 0xa5 };
                t.extend(vec![fill; tail]);
                let kind = if zero_tail { "zeros" } else { "data" };
                shapes.push((format!("marker{zero_blocks}-tail{tail}-{kind}"), t));
            }
        }
    }
    // The stream ends inside the last entry's padding, or right after its content.
    for cut in [0, 1, 100, pad - 1] {
        shapes.push((format!("pad-cut{cut}"), [body, &vec![0u8; cut]].concat()));
    }
    // The stream ends inside the last entry's content or inside a header: refused.
    shapes.push(("in-content".into(), tar[..end - 10].to_vec()));
    shapes.push(("in-header".into(), tar[..end - 700 - 100].to_vec()));
    // Non-zero bytes after a single zero block (a walker stops at the first zero block).
    let mut one = padded.to_vec();
    one.extend(vec![0u8; 512]);
    one.extend(b"trailing text, not a header".repeat(40));
    shapes.push(("one-zero-block-then-data".into(), one));
    // A tar of nothing but zero blocks, and an empty file.
    shapes.push(("only-zeros".into(), vec![0u8; 512 * 3 + 17]));
    shapes.push(("empty".into(), Vec::new()));
    shapes
}

#[test]
fn every_tar_shape_converts_exactly_or_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let work = tmp.path().join("in");
    std::fs::create_dir_all(&work).unwrap();
    let mut accepted = Vec::new();
    for (name, tar) in shapes() {
        if convert_file(&store, &work, &name, &tar) {
            assert_round_trip(store.store(), &name, &tar);
            accepted.push(name);
        }
    }
    // The shapes a tar reader meets in practice must be accepted, not refused.
    for name in [
        "marker2-tail0-zeros",
        "marker4-tail0-zeros",
        "marker2-tail100-data",
        "marker2-tail511-zeros",
        "pad-cut0",
        "pad-cut100",
        "marker0-tail0-zeros",
    ] {
        assert!(accepted.iter().any(|a| a == name), "{name} was refused");
    }
    assert!(!accepted
        .iter()
        .any(|a| a == "in-content" || a == "in-header"));
    // Every accepted layer's bootstrap, object and chunks check out, whatever its length.
    let report = store.store().verify(true, &NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // And the store opens read-only and gives them back again.
    drop(store);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    for (name, tar) in shapes().into_iter().filter(|(n, _)| accepted.contains(n)) {
        assert_round_trip(&store, &name, &tar);
    }
}

/// The two shapes of the Go archive/tar corpus that came back wrong: extra zero blocks after
/// the end marker, and a length that is not a whole number of blocks (a tar of 10648 bytes).
#[test]
fn extra_zero_blocks_and_a_partial_last_block_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let tar = base_tar();
    let extra = [tar.as_slice(), &[0u8; 512 * 18]].concat();
    let mut partial = tar.clone();
    partial.resize(10648, 0);
    assert_eq!(partial.len() % 512, 408);
    for (name, t) in [("extra-zeros", &extra), ("partial", &partial)] {
        assert!(convert_file(&store, tmp.path(), name, t), "{name} refused");
        assert_round_trip(store.store(), name, t);
    }
    let report = store.store().verify(true, &NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// A ustar header block for an extension entry of type `flag` holding `size` bytes.
fn ext_header(flag: u8, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("PaxHeaders/flood").unwrap();
    h.set_entry_type(tar::EntryType::new(flag));
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `count` PAX headers of `len` bytes each (one `comment` record), then a small tar; gzip.
pub(crate) fn pax_flood_gz(count: usize, len: usize) -> Vec<u8> {
    use std::io::Write;
    let digits = len.to_string().len();
    let record = format!("{len} comment={}\n", "v".repeat(len - digits - 10));
    assert_eq!(record.len(), len);
    let mut unit = ext_header(b'x', len as u64);
    unit.extend_from_slice(record.as_bytes());
    unit.resize(unit.len().div_ceil(512) * 512, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..count {
        gz.write_all(&unit).unwrap();
    }
    gz.write_all(&base_tar()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn header_floods_are_refused_and_leave_the_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    // 32 PAX headers of almost 16 MiB each (the flood), 40 of 1 MiB (each under the
    // old per-header bound; together over the bound on one entry's header bytes).
    for (name, count, len) in [
        ("flood16m", 32, (16 << 20) - 4096),
        ("flood1m", 40, 1 << 20),
    ] {
        let gz = pax_flood_gz(count, len);
        let path = tmp.path().join(format!("{name}.tar.gz"));
        std::fs::write(&path, &gz).unwrap();
        let before = snapshot(store.store());
        let err = convert(&store, &path.display().to_string(), name, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{name}.tar.gz")), "{err}");
        assert!(err.contains("extension entries"), "{err}");
        assert_eq!(snapshot(store.store()), before);
    }
    // A few PAX headers of modest size before one entry are fine.
    let gz = pax_flood_gz(8, 100_000);
    let path = tmp.path().join("few.tar.gz");
    std::fs::write(&path, &gz).unwrap();
    convert(&store, &path.display().to_string(), "few", &[]).unwrap();
}

/// A sparse file: `real_size` bytes, data at the given offsets, holes elsewhere.
fn write_sparse_file(path: &Path, real_size: u64, data: &[(u64, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    for (offset, bytes) in data {
        file.write_all_at(bytes, *offset).unwrap();
    }
    file.set_len(real_size).unwrap();
}

fn gnu_tar(args: &[&str], dir: &Path) {
    let status = std::process::Command::new("tar")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "tar {args:?}");
}

#[test]
fn gnu_sparse_files_unpack_as_gnu_tar_extracts_them() {
    let tar = cairn_testkit::probe::gnu_tar();
    if cairn_testkit::require("the comparison with tar -x", tar).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Holes at the start, between and after the data; more than 4 segments (so extension
    // blocks after the old GNU header); a file that is all hole.
    let segments: Vec<(u64, Vec<u8>)> = (0..30u64)
        .map(|i| (65536 + i * 3 * 65536, pseudo_random(5000 + i as usize, i)))
        .collect();
    write_sparse_file(&src.join("big.sparse"), 40 << 20, &segments);
    write_sparse_file(&src.join("holes.only"), 10 << 20, &[]);
    write_sparse_file(
        &src.join("dense.start"),
        1 << 20,
        &[(0, pseudo_random(70_000, 99))],
    );
    let names = ["big.sparse", "holes.only", "dense.start"];
    let gnu = tmp.path().join("gnu.tar");
    let mut args = vec!["--sparse", "--format=gnu", "-cf", gnu.to_str().unwrap()];
    args.extend(names);
    gnu_tar(&args, &src);
    let layer = std::fs::read(&gnu).unwrap();
    assert!(
        layer.chunks(512).any(|b| b.len() == 512 && b[156] == b'S'),
        "GNU tar wrote no old GNU sparse header"
    );
    let store = new_store(tmp.path());
    assert!(convert_file(&store, tmp.path(), "gnu", &layer));
    assert_round_trip(store.store(), "gnu", &layer);
    let out = tmp.path().join("out");
    let report = store
        .store()
        .unpack("gnu", &out, &UnpackOptions::default(), &NoProgress)
        .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let reference = tmp.path().join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    gnu_tar(&["-xf", gnu.to_str().unwrap()], &reference);
    for name in names {
        let ours = std::fs::read(out.join(name)).unwrap();
        let theirs = std::fs::read(reference.join(name)).unwrap();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        assert!(ours == theirs, "{name}: content differs from tar -x");
        let source = std::fs::read(src.join(name)).unwrap();
        assert!(ours == source, "{name}: content differs from the source");
        let meta = std::fs::metadata(out.join(name)).unwrap();
        assert_eq!(
            meta.mode() & 0o7777,
            std::fs::metadata(reference.join(name)).unwrap().mode() & 0o7777
        );
        assert_eq!(
            meta.mtime(),
            std::fs::metadata(src.join(name)).unwrap().mtime()
        );
    }
    // Holes stay holes: far fewer blocks than the 40 MiB the file spans.
    let blocks = std::fs::metadata(out.join("big.sparse")).unwrap().blocks();
    assert!(blocks * 512 < 8 << 20, "{blocks} blocks");

    // A PAX sparse format is refused by unpack, naming the file (and exported exactly).
    let pax = tmp.path().join("pax.tar");
    gnu_tar(
        &[
            "--sparse",
            "--format=pax",
            "-cf",
            pax.to_str().unwrap(),
            "big.sparse",
        ],
        &src,
    );
    let layer = std::fs::read(&pax).unwrap();
    assert!(convert_file(&store, tmp.path(), "pax", &layer));
    assert_round_trip(store.store(), "pax", &layer);
    let err = store
        .store()
        .unpack(
            "pax",
            &tmp.path().join("out-pax"),
            &UnpackOptions::default(),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("big.sparse"), "{err}");
    assert!(err.contains("PAX format 1.0"), "{err}");
}
