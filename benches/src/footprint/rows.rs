//! The work of the rows the benchmark computes itself. Each function is one step (one image
//! added to a row's directory) and runs in its own child process (`cairn-bench internal ...`)
//! so that GNU time measures exactly it. A row's state lives only in its directory, so the
//! parent can measure the directory between the old and the new step.

use super::image::{self, Layer};
use anyhow::{bail, Context, Result};
use cairn_engine::{
    ChunkReader, ChunkerParams, ConvertOptions, ConvertReport, InitOptions, NoProgress,
    PlatformChoice, Sha256Digest, SourceSpec, Store, StoreWriter,
};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// zstd level of the whole-file row, the same as the stores' default.
pub const WHOLE_FILE_ZSTD_LEVEL: i32 = 3;
/// Nydus's chunk size.
pub const FIXED_CHUNK: u32 = 1 << 20;

/// A registry: each layer blob kept once by its digest under `dir/blobs/sha256/`.
pub fn registry(dir: &Path, source: &str) -> Result<()> {
    for layer in image::layers(source)? {
        put_blob(&dir.join("blobs/sha256"), &layer)?;
    }
    Ok(())
}

/// A containerd-style node: the registry's blobs in a content store, plus each layer unpacked
/// by GNU tar into its own snapshot directory, keyed like containerd by the layer's chain id
/// (so a layer is unpacked again when anything below it differs).
pub fn containerd(dir: &Path, source: &str) -> Result<()> {
    let snapshots = dir.join("snapshots");
    let mut chain: Option<Sha256Digest> = None;
    for layer in image::layers(source)? {
        let stored = put_blob(&dir.join("content/blobs/sha256"), &layer)?;
        let diff_id = layer.diff_id.unwrap_or(stored);
        // OCI: ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
        let id = match chain {
            None => diff_id,
            Some(below) => Sha256Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        chain = Some(id);
        let target = snapshots.join(id.to_hex());
        if target.exists() {
            continue;
        }
        let partial = snapshots.join(format!("partial-{}", id.to_hex()));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("remove {}", partial.display()))?;
        }
        layer.unpack(&partial)?;
        std::fs::rename(&partial, &target)
            .with_context(|| format!("rename {} to {}", partial.display(), target.display()))?;
    }
    Ok(())
}

/// Copies a layer blob into `blobs` under its sha256 unless it is there; checks the digest the
/// source states. Returns the digest.
fn put_blob(blobs: &Path, layer: &Layer) -> Result<Sha256Digest> {
    if let Some(digest) = layer.digest {
        if blobs.join(digest.to_hex()).exists() {
            return Ok(digest);
        }
    }
    std::fs::create_dir_all(blobs).with_context(|| format!("create {}", blobs.display()))?;
    let tmp = blobs.join(".incoming");
    let mut out = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut reader = layer.open_stored()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("read layer {}", layer.name()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("write {}", tmp.display()))?;
    }
    out.sync_all()
        .with_context(|| format!("sync {}", tmp.display()))?;
    let actual = Sha256Digest(hasher.finalize().into());
    if let Some(expected) = layer.digest {
        if expected != actual {
            bail!("layer {expected}: the stored bytes hash to {actual}");
        }
    }
    std::fs::rename(&tmp, blobs.join(actual.to_hex()))
        .with_context(|| format!("rename {}", tmp.display()))?;
    Ok(actual)
}

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
    let report = store.convert(
        &ConvertOptions {
            source: SourceSpec::parse(source)?,
            name: name.into(),
            dict: dict.to_vec(),
            platform: PlatformChoice::Default,
            replace: false,
            delta,
            layers_in_flight: None,
            optimize: false,
        },
        &NoProgress,
    )?;
    Ok(report)
}

/// Nydus's scheme: fixed 1 MiB chunks per file, zstd-3 per chunk (no frames of several
/// chunks), in a cairn store.
pub fn fixed_init() -> Result<InitOptions> {
    Ok(InitOptions {
        chunker: ChunkerParams::fixed(FIXED_CHUNK).map_err(anyhow::Error::msg)?,
        compression: cairn_engine::CompressionParams {
            frame_size: 0,
            ..Default::default()
        },
    })
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
