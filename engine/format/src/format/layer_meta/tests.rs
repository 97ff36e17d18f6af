//! Round trips of generated layers against an in-memory model, damage detection, and the
//! writer's memory bounds.

use super::writer::SealedLayerMeta;
use super::*;
use crate::format::{Codec, FrameSlice};
use crate::{BlobId, ChunkId};
use cairn_sample::Rng;
use std::collections::BTreeMap;
use std::path::Path;

const FAIL_AT: &str = "convert.bootstrap.write";

fn chunk(rng: &mut Rng, blob: u32) -> ChunkRecord {
    let len = 1 + rng.below(1 << 20) as u32;
    ChunkRecord {
        id: ChunkId(*blake3::hash(&rng.next_u64().to_le_bytes()).as_bytes()),
        blob,
        slice: FrameSlice {
            offset: 16 + rng.below(1 << 30),
            stored_len: len / 2 + 1,
            frame_len: len,
            skip: 0,
            len,
            codec: Codec::Zstd,
        },
    }
}

fn entry(path: &[u8], kind: EntryKind, chunks: Vec<ChunkRecord>) -> LayerEntry {
    let raw_len = 512 + if path.len() > 100 { 1024 } else { 0 };
    LayerEntry {
        raw_header: vec![path.len() as u8; raw_len],
        meta: EntryMeta {
            path: path.to_vec(),
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            uname: b"user".to_vec(),
            gname: b"user".to_vec(),
            mtime: 1_700_000_000,
            size: chunks.iter().map(|c| c.slice.len as u64).sum(),
            link_target: matches!(kind, EntryKind::Symlink | EntryKind::Hardlink)
                .then(|| b"usr/lib/target".to_vec()),
            xattrs: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
        },
        chunks,
    }
}

/// A layer of `n` entries: directories, files (some with many chunks), symlinks, hardlinks,
/// long PAX-style paths, spellings with `./` and `/`, repeated paths, whiteouts and opaque
/// markers in several directories, an opaque marker at the root.
fn generated_layer(n: usize, seed: u64) -> Vec<LayerEntry> {
    let mut rng = Rng::new(seed);
    let dirs: Vec<Vec<u8>> = (0..40)
        .map(|d| format!("usr/lib/d{}/sub{}", d % 13, d).into_bytes())
        .collect();
    let mut out = Vec::with_capacity(n);
    for d in &dirs {
        out.push(entry(d, EntryKind::Directory, vec![]));
    }
    while out.len() < n {
        let dir = &dirs[rng.below(dirs.len() as u64) as usize];
        let name = format!("f{}", rng.below(n as u64 / 2 + 1));
        let path = [&dir[..], b"/", name.as_bytes()].concat();
        let e = match rng.below(20) {
            0 => entry(&[b"./", &path[..]].concat(), EntryKind::Symlink, vec![]),
            1 => entry(
                &[b"/", &path[..], b"/"].concat(),
                EntryKind::Hardlink,
                vec![],
            ),
            2 => {
                let long = format!("{}/{}", "x".repeat(120), "y".repeat(150));
                entry(
                    &[&dir[..], b"/", long.as_bytes()].concat(),
                    EntryKind::File,
                    vec![],
                )
            }
            3 => entry(
                &[&dir[..], b"/.wh.", name.as_bytes()].concat(),
                EntryKind::File,
                vec![],
            ),
            4 => entry(
                &[&dir[..], b"/.wh..wh..opq"].concat(),
                EntryKind::File,
                vec![],
            ),
            5 => {
                let chunks = (0..200).map(|_| chunk(&mut rng, 3)).collect();
                entry(&path, EntryKind::File, chunks)
            }
            _ => {
                let count = rng.below(4) as usize;
                let chunks = (0..count).map(|i| chunk(&mut rng, i as u32 % 4)).collect();
                entry(&path, EntryKind::File, chunks)
            }
        };
        out.push(e);
    }
    out.push(entry(b"./.wh..wh..opq", EntryKind::File, vec![]));
    out.push(entry(b"./", EntryKind::Directory, vec![]));
    out
}

fn source() -> LayerSource {
    LayerSource {
        diff_id: crate::Sha256Digest::of(b"layer"),
        size: 12345,
        trailer: vec![0; 1024],
    }
}

fn blobs() -> Vec<BlobRecord> {
    (0..4u8)
        .map(|b| BlobRecord {
            id: BlobId([b; 32]),
            size: 1 << 20,
        })
        .collect()
}

fn write(path: &Path, entries: &[LayerEntry], limits: WriterLimits) -> SealedLayerMeta {
    let mut writer = LayerMetaWriter::with_limits(path.to_path_buf(), limits).unwrap();
    for (n, e) in entries.iter().enumerate() {
        assert_eq!(writer.push(e.clone()).unwrap(), n as u64);
    }
    writer.finish(source(), blobs(), FAIL_AT).unwrap()
}

/// Checks every read of `meta` against `entries` and the in-memory model of its path index.
fn check_against_model(meta: &LayerMeta, entries: &[LayerEntry]) {
    let read: Vec<LayerEntry> = meta.entries().map(Result::unwrap).collect();
    assert_eq!(read, entries);
    for n in (0..entries.len()).step_by(7) {
        assert_eq!(meta.entry(n as u64).unwrap(), entries[n]);
    }
    assert!(meta.entry(entries.len() as u64).is_err());
    // Many entries at once: sparse, repeated, across blocks, all of them.
    let n = entries.len() as u64;
    let sparse: Vec<u64> = (0..n).step_by(5).flat_map(|k| [k, k]).collect();
    let all: Vec<u64> = (0..n).collect();
    for numbers in [sparse, all, vec![]] {
        let expected: Vec<LayerEntry> = numbers
            .iter()
            .map(|&k| entries[k as usize].clone())
            .collect();
        assert_eq!(meta.entries_at(&numbers).unwrap(), expected);
    }
    assert!(meta.entries_at(&[n]).is_err());
    if n > 1 {
        assert!(meta.entries_at(&[1, 0]).is_err());
    }
    let (model, root_opaque) = model_paths(entries);
    assert_eq!(meta.info().root_opaque, root_opaque);
    let paths: Vec<PathRecord> = meta.paths().map(Result::unwrap).collect();
    assert_eq!(paths, model);
    let mut by_dir: BTreeMap<&[u8], Vec<&PathRecord>> = BTreeMap::new();
    for r in &model {
        by_dir.entry(&r.parent).or_default().push(r);
        assert_eq!(meta.lookup(&r.parent, &r.name).unwrap().as_ref(), Some(r));
        let mut absent = r.name.clone();
        absent.push(b'~');
        if !model
            .iter()
            .any(|m| m.parent == r.parent && m.name == absent)
        {
            assert_eq!(meta.lookup(&r.parent, &absent).unwrap(), None);
        }
    }
    for (dir, expected) in &by_dir {
        let children: Vec<PathRecord> = meta.children(dir).map(Result::unwrap).collect();
        let expected: Vec<PathRecord> = expected.iter().map(|r| (*r).clone()).collect();
        assert_eq!(
            children,
            expected,
            "children of {:?}",
            String::from_utf8_lossy(dir)
        );
        assert_eq!(meta.children_cached(dir).unwrap(), expected);
    }
    assert_eq!(meta.children(b"no/such/dir").count(), 0);
    assert!(meta.children_cached(b"no/such/dir").unwrap().is_empty());
    assert_eq!(meta.lookup(b"", b"").unwrap(), None);
}

#[test]
fn path_records_follow_the_whiteout_rules() {
    let entries = vec![
        entry(b"./etc/", EntryKind::Directory, vec![]),
        entry(b"etc/passwd", EntryKind::File, vec![]),
        entry(b"/etc//passwd", EntryKind::Symlink, vec![]),
        entry(b"etc/.wh.passwd", EntryKind::File, vec![]),
        entry(b"etc/.wh.shadow", EntryKind::File, vec![]),
        entry(b"var/cache/.wh..wh..opq", EntryKind::File, vec![]),
        entry(b"var/.wh.", EntryKind::File, vec![]),
        entry(b"var/.wh..", EntryKind::File, vec![]),
        entry(b".", EntryKind::Directory, vec![]),
    ];
    let (records, root_opaque) = model_paths(&entries);
    assert!(!root_opaque);
    let flat: Vec<(String, Option<u64>, bool, bool)> = records
        .iter()
        .map(|r| {
            let path = [&r.parent[..], b"|", &r.name[..]].concat();
            (
                String::from_utf8(path).unwrap(),
                r.entry,
                r.whiteout,
                r.opaque,
            )
        })
        .collect();
    let expect = |p: &str, e, w, o| (p.to_string(), e, w, o);
    assert_eq!(
        flat,
        vec![
            expect("|etc", Some(0), false, false),
            // The directory on the way to var/cache's opaque marker.
            expect("|var", None, false, false),
            expect("etc|passwd", Some(2), true, false),
            expect("etc|shadow", None, true, false),
            expect("var|cache", None, false, true),
        ]
    );
    assert_eq!(records[2].kind, Some(EntryKind::Symlink));
}

#[test]
fn normalize_drops_empty_and_dot_components() {
    for (p, want) in [
        (&b"./a//b/./c/"[..], &b"a/b/c"[..]),
        (b"/", b""),
        (b"", b""),
        (b"a/../b", b"a/../b"),
        (b"./.wh..wh..opq", b".wh..wh..opq"),
    ] {
        assert_eq!(normalize(p), want);
    }
}

#[test]
fn round_trip_with_many_blocks_and_sort_runs() {
    let dir = tempfile::tempdir().unwrap();
    let entries = generated_layer(5000, 1);
    let limits = WriterLimits {
        entry_block: 16 << 10,
        path_block: 2 << 10,
        sort_run: 16 << 10,
        sort_fan_in: 3,
    };
    let sealed = write(&dir.path().join("obj"), &entries, limits);
    assert!(sealed.sort_runs > 20, "{} runs", sealed.sort_runs);
    assert!(
        sealed.entry_blocks > 50 && sealed.path_blocks > 50,
        "{sealed:?}"
    );
    // The run files are gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let meta = LayerMeta::open(&sealed.tmp_path, sealed.id, "test").unwrap();
    assert_eq!(meta.info(), &sealed.info);
    assert_eq!(meta.info().entry_count, entries.len() as u64);
    let files = entries
        .iter()
        .filter(|e| e.meta.kind == EntryKind::File)
        .count();
    assert_eq!(meta.info().file_count, files as u64);
    let refs: usize = entries.iter().map(|e| e.chunks.len()).sum();
    assert_eq!(meta.info().chunk_refs, refs as u64);
    assert_eq!(meta.blobs(), &blobs()[..]);
    check_against_model(&meta, &entries);
    // The same entries with the default limits give the same records (and one run).
    let sealed2 = write(&dir.path().join("obj2"), &entries, WriterLimits::default());
    assert_eq!(sealed2.sort_runs, 0);
    let meta2 = LayerMeta::open(&sealed2.tmp_path, sealed2.id, "test").unwrap();
    check_against_model(&meta2, &entries);
    let bytes = std::fs::read(&sealed2.tmp_path).unwrap();
    assert_eq!(bytes.len() as u64, sealed2.size);
}

#[test]
fn empty_layer_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = write(&dir.path().join("obj"), &[], WriterLimits::default());
    let meta = LayerMeta::open(&sealed.tmp_path, sealed.id, "test").unwrap();
    assert_eq!(meta.entry_count(), 0);
    assert_eq!(meta.entries().count(), 0);
    assert_eq!(meta.paths().count(), 0);
    assert_eq!(meta.lookup(b"", b"a").unwrap(), None);
    assert_eq!(meta.children(b"").count(), 0);
}

#[test]
fn bad_entries_and_blob_indexes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = LayerMetaWriter::create(dir.path().join("obj")).unwrap();
    let mut rng = Rng::new(5);
    let mut bad = entry(b"a", EntryKind::File, vec![chunk(&mut rng, 0)]);
    bad.meta.size += 1;
    assert!(writer.push(bad).is_err());
    writer
        .push(entry(b"a", EntryKind::File, vec![chunk(&mut rng, 9)]))
        .unwrap();
    assert!(writer.finish(source(), blobs(), FAIL_AT).is_err());
    let limits = WriterLimits {
        sort_fan_in: 1,
        ..WriterLimits::default()
    };
    assert!(LayerMetaWriter::with_limits(dir.path().join("x"), limits).is_err());
    let limits = WriterLimits {
        entry_block: MAX_BLOCK_LEN as usize + 1,
        ..WriterLimits::default()
    };
    assert!(LayerMetaWriter::with_limits(dir.path().join("x"), limits).is_err());
}

/// Flips one byte at `at` and says whether every read still gave the right answer.
fn reads_ok_after_flip(path: &Path, original: &[u8], sealed: &SealedLayerMeta, at: usize) -> bool {
    let mut bytes = original.to_vec();
    bytes[at] ^= 0x40;
    std::fs::write(path, &bytes).unwrap();
    let Ok(meta) = LayerMeta::open(path, sealed.id, "test") else {
        return false;
    };
    meta.entries().all(|e| e.is_ok()) && meta.paths().all(|r| r.is_ok())
}

#[test]
fn every_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let entries = generated_layer(300, 2);
    let limits = WriterLimits {
        entry_block: 4 << 10,
        path_block: 512,
        ..WriterLimits::default()
    };
    let sealed = write(&dir.path().join("obj"), &entries, limits);
    let original = std::fs::read(&sealed.tmp_path).unwrap();
    let damaged = dir.path().join("damaged");
    let footer_at = original.len() - FOOTER_LEN as usize;
    let tables_at = u64::from_le_bytes(original[footer_at..footer_at + 8].try_into().unwrap());
    let tables_at = tables_at as usize;
    // Every byte of the header, tables and footer: open fails.
    for at in (0..16).chain(tables_at..original.len()) {
        let mut bytes = original.clone();
        bytes[at] ^= 0x40;
        std::fs::write(&damaged, &bytes).unwrap();
        assert!(
            LayerMeta::open(&damaged, sealed.id, "test").is_err(),
            "byte {at}"
        );
    }
    // Every byte of the blocks (a sample): open succeeds, the read that touches it fails.
    let meta = LayerMeta::open(&sealed.tmp_path, sealed.id, "test").unwrap();
    for at in (16..tables_at).step_by(37) {
        assert!(
            !reads_ok_after_flip(&damaged, &original, &sealed, at),
            "byte {at}"
        );
    }
    // A flipped byte in the first path block: a lookup there fails, with object and offset.
    let first_path = meta.tables.path_blocks[0].offset as usize;
    let mut bytes = original.clone();
    bytes[first_path + 3] ^= 1;
    std::fs::write(&damaged, &bytes).unwrap();
    let broken = LayerMeta::open(&damaged, sealed.id, "layer-x").unwrap();
    let first = meta.paths().next().unwrap().unwrap();
    let err = broken
        .lookup(&first.parent, &first.name)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer-x") && err.contains(&format!("offset {first_path}")),
        "{err}"
    );
    // An entry in an untouched block still reads.
    assert_eq!(broken.entry(0).unwrap(), entries[0]);
    // A wrong id fails open.
    assert!(LayerMeta::open(&sealed.tmp_path, crate::LayerMetaId([0; 32]), "t").is_err());
}

#[test]
fn writer_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let limits = WriterLimits {
        sort_run: 1 << 20,
        ..WriterLimits::default()
    };
    let mut writer = LayerMetaWriter::with_limits(dir.path().join("obj"), limits).unwrap();
    let mut rng = Rng::new(3);
    let mut largest_entry = 0;
    for n in 0..200_000u64 {
        let path = format!("usr/share/d{}/file-{n}", rng.below(500));
        let chunks = (0..rng.below(3))
            .map(|i| chunk(&mut rng, i as u32))
            .collect();
        let e = entry(path.as_bytes(), EntryKind::File, chunks);
        largest_entry = largest_entry.max(e.raw_header.len() + 600);
        writer.push(e).unwrap();
    }
    let peak = writer.peak_buffered();
    let bound = limits.entry_block + largest_entry + limits.sort_run + 200;
    assert!(peak <= bound, "peak {peak} over {bound}");
    let sealed = writer.finish(source(), blobs(), FAIL_AT).unwrap();
    assert!(sealed.sort_runs >= 10, "{} runs", sealed.sort_runs);
    let meta = LayerMeta::open(&sealed.tmp_path, sealed.id, "test").unwrap();
    assert_eq!(meta.entries().count(), 200_000);
    // One record per file, one per directory on the way (usr, usr/share, 500 d<N>).
    assert_eq!(meta.paths().count(), 200_000 + 2 + 500);
    let per_entry = sealed.size as f64 / 200_000.0;
    eprintln!(
        "200k entries: {} bytes, {per_entry:.1} bytes/entry",
        sealed.size
    );
}

/// Seeds for the `layer_meta` fuzz target: `CAIRN_FUZZ_SEEDS=fuzz/corpus/layer_meta cargo test
/// --release -p cairn-engine --lib write_fuzz_seeds -- --ignored` writes a few small objects
/// with many small blocks.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir =
        std::path::PathBuf::from(std::env::var("CAIRN_FUZZ_SEEDS").expect("CAIRN_FUZZ_SEEDS"));
    std::fs::create_dir_all(&dir).unwrap();
    for (seed, n) in [(1u64, 45usize), (2, 60), (3, 90)] {
        let mut entries = generated_layer(n, seed);
        entries.retain(|e| e.chunks.len() < 4);
        let limits = WriterLimits {
            entry_block: 1500,
            path_block: 120,
            ..WriterLimits::default()
        };
        let sealed = write(&dir.join(format!("seed-{seed}")), &entries, limits);
        assert!(sealed.size < 65536);
    }
}
