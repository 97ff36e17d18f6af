//! `Content` against the store's own chunk reader, on a store with frames of several chunks
//! and several zstd blocks, files spanning frames, and delta frames: reads at every offset
//! (partial frames resumed, pushed out and started again in a small cache) give the file's
//! bytes, and a damaged frame is an error, never other bytes.

use super::content::{Content, OpenFile};
use super::stats::Stats;
use crate::format::layer_meta::LayerMeta;
use crate::format::Codec;
use crate::progress::NoProgress;
use crate::source::SourceSpec;
use crate::store::{InitOptions, Store, StoreWriter};
use crate::view::chunks::ChunkReader;
use crate::{ConvertOptions, DeltaMode, EntryKind, PlatformChoice};
use cairn_sample::{LayerCompression, OciLayoutWriter, SampleEntry};
use std::path::Path;
use std::sync::Arc;

/// Text-like bytes: compressible, so stored as zstd frames of several blocks.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut n = seed;
    while out.len() < len {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(
            format!("line {} of {seed}: value {}\n", out.len(), n >> 40).as_bytes(),
        );
    }
    out.truncate(len);
    out
}

/// v1: a 3 MB library and 40 small modules; v2: the library with a byte changed every 10 KB
/// (stored as deltas against v1's) and the modules as they were.
fn store_with_pair(dir: &Path) -> StoreWriter {
    let lib = text(3 << 20, 1);
    let mut lib2 = lib.clone();
    for i in (5000..lib2.len()).step_by(10_000) {
        lib2[i] ^= 0x20;
    }
    let modules: Vec<SampleEntry> = (0..40)
        .map(|i| {
            SampleEntry::file(
                format!("app/m{i:02}.pyc"),
                0o644,
                text(3000 + i * 997, i as u64 + 10),
            )
        })
        .collect();
    let store = StoreWriter::init(&dir.join("store"), &InitOptions::default()).unwrap();
    for (name, lib) in [("v1", lib), ("v2", lib2)] {
        let mut entries = vec![SampleEntry::file("app/lib.so", 0o755, lib)];
        entries.extend(modules.iter().cloned());
        let tar = cairn_sample::build_layer_tar(&entries, 1_700_000_000).unwrap();
        let layout = dir.join(name);
        let mut writer = OciLayoutWriter::create(&layout).unwrap();
        let platform = cairn_sample::SamplePlatform::new("linux", "amd64");
        writer
            .add_image(Some(name), &platform, &[(tar, LayerCompression::Gzip)])
            .unwrap();
        writer.finish().unwrap();
        let options = ConvertOptions {
            source: SourceSpec::parse(&format!("oci:{}", layout.display())).unwrap(),
            name: name.into(),
            dict: if name == "v2" {
                vec!["v1".into()]
            } else {
                Vec::new()
            },
            platform: PlatformChoice::Default,
            replace: false,
            delta: Some(DeltaMode::Auto),
            layers_in_flight: None,
            optimize: false,
        };
        store.convert(&options, &NoProgress).unwrap();
    }
    store
}

/// The regular files of an image's one layer: their content through `Content`, and the bytes
/// the store's chunk reader gives.
fn files(store: &Store, layer: &LayerMeta) -> Vec<(Arc<OpenFile>, Vec<u8>)> {
    let blobs: Arc<[_]> = Arc::from(layer.blobs());
    let mut reader = ChunkReader::new(store);
    let mut out = Vec::new();
    for entry in layer.entries() {
        let entry = entry.unwrap();
        if entry.meta.kind != EntryKind::File {
            continue;
        }
        let mut bytes = Vec::new();
        for chunk in &entry.chunks {
            bytes.extend(reader.read(chunk, &blobs).unwrap());
        }
        out.push((
            Arc::new(OpenFile::new(entry.chunks.clone(), blobs.clone())),
            bytes,
        ));
    }
    out
}

fn layer(store: &Store, name: &str) -> LayerMeta {
    let id = store.resolve(name).unwrap();
    let (_, mut layers) = store.image_layers_by_id(&id).unwrap();
    layers.remove(0)
}

#[test]
fn reads_at_every_offset_give_the_files_bytes_frames_partial_or_whole() {
    let dir = tempfile::tempdir().unwrap();
    let writer = store_with_pair(dir.path());
    let store = Arc::new(Store::open(writer.store().root()).unwrap());
    let mut codecs = Vec::new();
    for name in ["v1", "v2"] {
        let layer = layer(&store, name);
        let files = files(&store, &layer);
        for (file, _) in &files {
            codecs.extend(file.codecs());
        }
        // A cache of two frames: partial frames are pushed out and started again; no
        // read-ahead, so what a read decodes is its own (and the background's completion).
        for (cache, readahead) in [(2 << 20, 0), (64 << 20, 8 << 20)] {
            let content =
                Content::new(store.clone(), cache, readahead, Arc::new(Stats::from_env()));
            for (file, bytes) in &files {
                let len = bytes.len() as u64;
                // Every offset for small files; a prime stride (crossing every block and chunk
                // boundary at different points) for the large one; sizes from 1 byte to 200 KB.
                let stride = if len > 1 << 20 { 4099 } else { 1 };
                let sizes = [1u32, 4096, 131_072, 200_000];
                let mut offset = 0u64;
                let mut turn = 0;
                while offset < len {
                    let size = sizes[turn % sizes.len()];
                    let got = content.read(file, offset, size).unwrap();
                    let end = (offset + size as u64).min(len) as usize;
                    assert!(
                        got == bytes[offset as usize..end],
                        "{name}: {size} bytes at {offset} of {len}"
                    );
                    offset += stride;
                    turn += 1;
                }
                assert!(content.read(file, len, 10).unwrap().is_empty());
            }
        }
    }
    assert!(
        codecs.contains(&Codec::Zstd) && codecs.contains(&Codec::Delta),
        "zstd and delta frames: {codecs:?}"
    );
}

#[test]
fn a_damaged_frame_is_an_error_for_the_reads_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let writer = store_with_pair(dir.path());
    let root = writer.store().root().to_path_buf();
    let (lib, lib_bytes) = {
        let store = Store::open(&root).unwrap();
        let layer = layer(&store, "v1");
        files(&store, &layer).swap_remove(0)
    };
    assert!(lib_bytes.len() > 2 << 20, "app/lib.so comes first");
    // One byte, late in the library's second frame: reads before it in the frame may decode
    // and check, a read of the damaged chunk may not give bytes.
    let second = lib
        .locations()
        .into_iter()
        .find(|l| l.slice.offset > lib.locations()[0].slice.offset)
        .unwrap();
    assert_eq!(second.slice.codec, Codec::Zstd);
    let path = Store::open(&root).unwrap().blob_path(&second.blob);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (second.slice.offset + second.slice.stored_len as u64 * 3 / 4) as usize;
    bytes[at] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let store = Arc::new(Store::open(&root).unwrap());
    let content = Content::new(store, 64 << 20, 0, Arc::new(Stats::from_env()));
    let (mut failed, mut read) = (0, 0);
    for offset in (0..lib_bytes.len() as u64).step_by(64 << 10) {
        match content.read(&lib, offset, 64 << 10) {
            Ok(got) => {
                let end = (offset as usize + got.len()).min(lib_bytes.len());
                assert!(got == lib_bytes[offset as usize..end], "at {offset}");
                read += 1;
            }
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains(&second.blob.to_string()), "{message}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0 && read > 0, "failed {failed}, read {read}");
}
