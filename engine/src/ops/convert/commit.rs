//! The commit of one converted image, under the commit lock (`Writer::commit_access`), in the
//! write order of the module doc of `ops::convert`. Other writers may have committed since
//! this one looked chunks up, so the commit first checks the names again and re-checks every
//! new chunk against the index as it is now:
//! - not in the index: indexed here (the usual case);
//! - in the index in a delta frame while this copy is plain: indexed here (a delta frame finds
//!   its bases through the index and needs them plain there; this image's own delta frames may
//!   use this copy as a base, and nobody can use a delta frame as one);
//! - in the index otherwise: a duplicate. With the whole store as dictionary, the layer objects
//!   are written again to use the indexed copy, so this copy is dead space gc's compaction
//!   reclaims (and a blob holding only duplicates is not added); with `--dict` the image keeps
//!   its own copies (it may use only the named images' chunks), as with any chunk stored twice.

use super::resolve::{self, Resolved};
use super::{Count, LayerContent, LayerOutput, LayerReport};
use crate::error::Result;
use crate::format::blob::SealedBlob;
use crate::format::bootstrap::{Bootstrap, SourceRecord, StoredObject};
use crate::format::{ChunkLocation, Codec};
use crate::index::{ImageRecord, Index, IndexBatch};
use crate::source::{ImageSource, RawObject};
use crate::store::Writer;
use crate::{BlobId, ChunkId};
use std::collections::{HashMap, HashSet};

/// A converted image, ready to commit.
pub(super) struct Prepared<'a> {
    pub name: &'a str,
    pub image: &'a ImageSource,
    pub replace: bool,
    /// The whole store is the dictionary: duplicates use the indexed copy.
    pub use_indexed_copies: bool,
    pub outputs: &'a [LayerOutput],
    pub totals: &'a LayerReport,
}

/// What the commit of one image wrote.
pub(super) struct Committed {
    pub image_id: crate::ImageId,
    pub blobs_written: u64,
    pub blob_bytes: u64,
    pub objects_written: u64,
    pub object_bytes: u64,
    pub bootstrap_bytes: u64,
    pub duplicate: Count,
    pub duplicate_stored_bytes: u64,
    pub waited: std::time::Duration,
}

/// Chunk entries go to the index in batches of this many (after their blobs are in place), so
/// that the last batch does not hold every new chunk of a large image.
const CHUNK_BATCH: usize = 65_536;

/// This convert's new chunks checked against the index as it is at the commit.
#[derive(Default)]
struct Recheck {
    /// The chunks to index, as (position in the re-checked blobs, ToC record): 8 bytes each,
    /// since a large image has millions (their ids are read back from the blobs' ToCs).
    to_index: Vec<(u32, u32)>,
    /// Duplicates the image uses from where the index has them.
    elsewhere: HashMap<ChunkId, ChunkLocation>,
    /// The blobs to add: those holding a chunk the image uses from them.
    needed: HashSet<BlobId>,
    duplicate: Count,
    /// Stored bytes of the duplicates, per blob.
    duplicate_stored: HashMap<BlobId, u64>,
}

impl Recheck {
    fn run(index: &Index, blobs: &[&SealedBlob], use_indexed_copies: bool) -> Result<Recheck> {
        let mut recheck = Recheck::default();
        for (position, blob) in blobs.iter().enumerate() {
            let mut used_here = !use_indexed_copies;
            for (record, entry) in blob.toc.iter().enumerate() {
                let here = blob.location(entry);
                match index.get_chunk(&entry.id)? {
                    // This very blob is stored already (another writer wrote the same bytes).
                    Some(found) if found.blob == blob.id => used_here = true,
                    Some(found)
                        if found.slice.codec != Codec::Delta
                            || here.slice.codec == Codec::Delta =>
                    {
                        if use_indexed_copies {
                            recheck.elsewhere.insert(entry.id, found);
                            recheck.duplicate.add(entry.slice.len as u64);
                            *recheck.duplicate_stored.entry(blob.id).or_default() +=
                                here.stored_share();
                        }
                    }
                    // Not in the index, or only in a delta frame while this copy is plain.
                    _ => {
                        recheck.to_index.push((position as u32, record as u32));
                        used_here = true;
                    }
                }
            }
            if used_here {
                recheck.needed.insert(blob.id);
            }
        }
        Ok(recheck)
    }
}

/// Commits one converted image: waits for the commit lock, re-checks, then writes in the
/// module's write order (`resolved`: its layer objects as written before the lock).
pub(super) fn commit(writer: &Writer, image: &Prepared, resolved: Resolved) -> Result<Committed> {
    let index = match writer.commit_access() {
        Ok(index) => index,
        Err(e) => {
            resolved.discard();
            return Err(e);
        }
    };
    let mut committed = commit_locked(writer, &index, image, resolved)?;
    committed.waited = index.waited;
    Ok(committed)
}

fn commit_locked(
    writer: &Writer,
    index: &Index,
    image: &Prepared,
    resolved: Resolved,
) -> Result<Committed> {
    let blobs: Vec<&SealedBlob> = sealed_blobs(image.outputs).collect();
    let checked = crate::write::check_name(index, image.name, image.replace)
        .and_then(|()| Recheck::run(index, &blobs, image.use_indexed_copies));
    let recheck = match checked {
        Ok(recheck) => recheck,
        Err(e) => {
            resolved.discard();
            return Err(e);
        }
    };
    // Duplicates: the layer objects are written again to use the indexed copies.
    let resolved = match recheck.elsewhere.is_empty() {
        true => resolved,
        false => {
            resolved.discard();
            resolve::layer_objects(writer, image.outputs, &recheck.elsewhere)?
        }
    };
    let (kept, dropped): (Vec<&SealedBlob>, Vec<&SealedBlob>) =
        sealed_blobs(image.outputs).partition(|b| recheck.needed.contains(&b.id));
    for blob in dropped {
        let _ = std::fs::remove_file(&blob.tmp_path);
    }
    // Step 1: blobs, already fsynced, renamed into place; then their chunks indexed (an entry
    // naming a blob in place that no image uses yet is harmless: gc drops it with the blob).
    let (blobs_written, blob_bytes) = crate::write::blob_builder::publish(
        writer,
        kept.iter().copied(),
        "convert.blob.rename",
        Some("convert.blobs.dir_fsync"),
    )?;
    for records in recheck.to_index.chunks(CHUNK_BATCH) {
        let chunk_records = records
            .iter()
            .map(|&(position, record)| {
                let blob = blobs[position as usize];
                (blob.toc[record as usize].id, blob.id, record as u64)
            })
            .collect();
        index.commit(IndexBatch {
            chunk_records,
            ..IndexBatch::default()
        })?;
    }
    // Steps 2 and 3: the layer objects, then the bootstrap naming them.
    let bootstrap = bootstrap(image.image, resolved.layers);
    crate::failpoint::check("convert.layer_meta.write")?;
    let (objects_written, object_bytes) = crate::write::image_write::publish_layer_objects(
        writer,
        &resolved.objects.sealed,
        "convert.layer_meta.rename",
    )?;
    crate::failpoint::check("convert.bootstrap.write")?;
    let record = |image_id, bootstrap_size| ImageRecord {
        image_id,
        bootstrap_size,
        reference: image.image.reference.clone(),
        platform: image.image.platform.clone(),
        manifest_digest: image.image.manifest.as_ref().map(|m| m.digest.to_string()),
        layers: bootstrap.layers.len() as u64,
        files: image.totals.files,
        logical_bytes: bootstrap.logical_bytes(),
        new_chunks: image
            .totals
            .new
            .chunks
            .saturating_sub(recheck.duplicate.chunks),
        added_stored_bytes: blob_bytes + object_bytes,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    // The record is committed before the bootstrap is in place (see `publish_bootstrap`); the
    // same image converted again under another name keeps the record of its first convert.
    let (image_id, bootstrap_bytes) = crate::write::image_write::publish_bootstrap(
        writer,
        index,
        &bootstrap,
        record,
        "convert.bootstrap.rename",
    )?;
    // Step 4: one synced index batch.
    let mut batch = IndexBatch::default();
    // A converted layer's blob and tar were hashed as they were read; a reused one was not
    // read (its object's diff_id key is re-stated, its source digest is not indexed).
    for (layer, output) in bootstrap.layers.iter().zip(image.outputs) {
        let read = matches!(output.content, LayerContent::Converted(_));
        batch.add_layer_keys(layer, read);
    }
    batch
        .layers
        .extend(resolved.objects.sketch_keys.iter().copied());
    batch.refs.push((image.name.to_string(), image_id));
    crate::failpoint::check("convert.index.batch")?;
    index.commit(batch)?;
    index.flush()?;
    let duplicate_stored_bytes = kept
        .iter()
        .filter_map(|b| recheck.duplicate_stored.get(&b.id))
        .sum();
    Ok(Committed {
        image_id,
        blobs_written,
        blob_bytes,
        objects_written,
        object_bytes,
        bootstrap_bytes,
        duplicate: recheck.duplicate,
        duplicate_stored_bytes,
        waited: std::time::Duration::ZERO,
    })
}

/// The sealed blobs of the converted layers.
fn sealed_blobs(outputs: &[LayerOutput]) -> impl Iterator<Item = &SealedBlob> {
    outputs.iter().flat_map(|o| match &o.content {
        LayerContent::Converted(c) => c.blobs.as_slice(),
        LayerContent::Reused(_) => &[][..],
    })
}

fn bootstrap(image: &ImageSource, layers: Vec<crate::format::bootstrap::ImageLayer>) -> Bootstrap {
    Bootstrap {
        source: SourceRecord {
            reference: image.reference.clone(),
            platform: image.platform.clone(),
            manifest: image.manifest.as_ref().map(stored_object),
            config: image.config.as_ref().map(stored_object),
        },
        layers,
    }
}

fn stored_object(raw: &RawObject) -> StoredObject {
    StoredObject {
        digest: raw.digest,
        media_type: raw.media_type.clone(),
        bytes: raw.bytes.clone(),
    }
}
