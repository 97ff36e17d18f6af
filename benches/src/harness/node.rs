//! What a node stores without cairn, built from an image source: a registry's layer blobs, and
//! a containerd-style node (blobs plus unpacked snapshots). `footprint` measures both as rows;
//! `mount` compares its store with the containerd node.

use crate::harness::image::{self, Layer};
use anyhow::{bail, Context, Result};
use cairn_engine::Sha256Digest;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

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
