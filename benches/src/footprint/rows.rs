//! The work of the rows the benchmark computes itself. Each function is one step (one image
//! added to a row's directory) and runs in its own child process (`cairn-bench internal ...`)
//! so that GNU time measures exactly it. A row's state lives only in its directory, so the
//! parent can measure the directory between the old and the new step. The registry and
//! containerd rows' steps are `harness::node`'s.

use anyhow::{Context, Result};
use cairn_engine::{
    ChunkReader, ChunkerParams, ConvertOptions, ConvertReport, InitOptions, NoProgress, SourceSpec,
    Store, StoreWriter,
};
use std::path::Path;

/// zstd level of the whole-file row, the same as the stores' default.
pub const WHOLE_FILE_ZSTD_LEVEL: i32 = 3;
/// Nydus's chunk size.
pub const FIXED_CHUNK: u32 = 1 << 20;

/// Converts `source` into the cairn store at `root` as `name` (with `dict`), creating the store
/// with `init` first if there is none. In-process: the same engine call the `cairn` binary
/// makes.
pub fn convert(
    root: &Path,
    init: &InitOptions,
    source: &str,
    name: &str,
    dict: &[String],
    delta: Option<cairn_engine::DeltaMode>,
) -> Result<ConvertReport> {
    let store = if root.join("store.json").exists() {
        StoreWriter::open(root)?
    } else {
        StoreWriter::init(root, init)?
    };
    let mut options = ConvertOptions::new(SourceSpec::parse(source)?, name);
    options.dict = dict.to_vec();
    options.delta = delta;
    let report = store.convert(&options, &NoProgress)?;
    Ok(report)
}

/// Nydus's scheme: fixed 1 MiB chunks per file, zstd-3 per chunk (no frames of several
/// chunks), in a cairn store.
pub fn fixed_init() -> Result<InitOptions> {
    Ok(InitOptions::new(
        ChunkerParams::fixed(FIXED_CHUNK).map_err(anyhow::Error::msg)?,
        cairn_engine::CompressionParams {
            frame_size: 0,
            ..Default::default()
        },
    ))
}

/// Whole-file dedup: every distinct file content of image `name` in the cairn store `store`
/// that `dir` does not hold yet is compressed alone (zstd level 3, or kept raw when that is not
/// smaller, as cairn does for chunks) into `dir/<key>`. Two files have the same content exactly
/// when they have the same chunk list (chunking is a function of the content), so the key is
/// the BLAKE3 of the file's chunk ids.
pub fn whole_file(dir: &Path, store: &Path, name: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let store = Store::open(store)?;
    let (_, layers) = store.image_layers(name)?;
    let mut reader = ChunkReader::new(&store);
    for layer in &layers {
        for entry in layer.entries() {
            let entry = entry?;
            if entry.chunks.is_empty() {
                continue;
            }
            let mut key = blake3::Hasher::new();
            for chunk in &entry.chunks {
                key.update(&chunk.id.0);
            }
            let path = dir.join(key.finalize().to_hex().as_str());
            if path.exists() {
                continue;
            }
            let mut content = Vec::with_capacity(entry.meta.size as usize);
            reader
                .write_entry(&entry, layer.blobs(), &mut content)
                .with_context(|| format!("read {}", entry.meta.path_lossy()))?;
            let compressed = zstd::bulk::compress(&content, WHOLE_FILE_ZSTD_LEVEL)
                .with_context(|| format!("compress {}", entry.meta.path_lossy()))?;
            let stored = if compressed.len() < content.len() {
                compressed
            } else {
                content
            };
            std::fs::write(&path, stored).with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(())
}
