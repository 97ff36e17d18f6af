//! gc's compaction: the live chunks of the blobs to compact are written into new blobs (step 1),
//! every live layer object naming one of those blobs is rewritten with its chunks pointing at
//! their new places, then every live bootstrap naming a rewritten object (step 2). Objects are
//! rewritten by streaming their entries, one at a time.

use super::live::LiveSet;
use super::{ChunkUse, GcReport};
use crate::error::{Error, Result};
use crate::format::blob::{BlobReader, CompressedWith, TocEntry};
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::{LayerMeta, LayerMetaWriter, SealedLayerMeta};
use crate::format::{ChunkLocation, Codec};
use crate::store::StoreWriter;
use crate::write::blob_builder::BlobBuilder;
use crate::write::image_write::{publish_bootstrap, publish_layer_objects, BlobTable};
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use std::collections::{HashMap, HashSet};

/// What compaction rewrote.
#[derive(Default)]
pub(super) struct Rewrites {
    /// Old image id -> (new image id, new bootstrap size).
    pub images: HashMap<ImageId, (ImageId, u64)>,
    /// Old layer object -> the one rewritten from it.
    pub objects: HashMap<LayerMetaId, LayerMetaId>,
    /// Bytes of the new bootstraps and layer objects, and of the ones they replace.
    pub new_bytes: u64,
    pub replaced_bytes: u64,
}

fn file_size(path: &std::path::Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .map_err(|e| Error::io("stat", path, e))?
        .len())
}

/// Compaction steps 1 and 2: new blobs, then rewritten layer objects and bootstraps (which
/// replace the old ones in `live`).
pub(super) fn compact_blobs(
    writer: &StoreWriter,
    compact: &[(BlobId, Vec<TocEntry>)],
    live: &mut LiveSet,
    report: &mut GcReport,
    with: Option<CompressedWith>,
) -> Result<Rewrites> {
    let mut rewrites = Rewrites::default();
    if compact.is_empty() {
        return Ok(rewrites);
    }
    let moved = write_compacted(writer, compact, with)?;
    report.new_blobs = moved.blobs.len() as u64;
    report.new_blob_bytes = moved.blobs.iter().map(|b| b.size).sum();
    let compacted: HashSet<BlobId> = compact.iter().map(|(id, _)| *id).collect();
    // Live bases in compacted blobs now live where compaction put them.
    for (id, location) in live.bases.iter_mut() {
        if let Some(new) = moved
            .locations
            .get(&(location.blob, location.slice.offset, *id))
        {
            *location = *new;
        }
    }
    let mut ids: Vec<LayerMetaId> = live.objects.keys().copied().collect();
    ids.sort();
    let mut old_ids: Vec<LayerMetaId> = Vec::new();
    let mut new_objects: Vec<SealedLayerMeta> = Vec::new();
    for old_id in ids {
        let object = &live.objects[&old_id];
        if object.blobs().iter().any(|b| compacted.contains(&b.id)) {
            new_objects.push(rewrite_object(writer, object, &moved)?);
            old_ids.push(old_id);
        }
    }
    publish_layer_objects(
        writer.writer(),
        &new_objects,
        "gc.compact.layer_meta_rename",
    )?;
    for (old_id, new) in old_ids.iter().zip(&new_objects) {
        rewrites.replaced_bytes += file_size(&writer.store().layer_meta_path(old_id))?;
        rewrites.new_bytes += new.size;
        rewrites.objects.insert(*old_id, new.id);
        live.objects.remove(old_id);
        live.objects
            .insert(new.id, writer.store().layer_meta(&new.id)?);
    }
    let mut images: Vec<ImageId> = live.bootstraps.keys().copied().collect();
    images.sort();
    for old_id in images {
        let bootstrap = &live.bootstraps[&old_id];
        if !bootstrap
            .layers
            .iter()
            .any(|l| rewrites.objects.contains_key(&l.meta))
        {
            continue;
        }
        let mut new: Bootstrap = bootstrap.clone();
        for layer in &mut new.layers {
            if let Some(rewritten) = rewrites.objects.get(&layer.meta) {
                layer.meta = *rewritten;
            }
        }
        // The rewritten image's record (its old one, moved) is committed before the bootstrap
        // is in place; names follow in gc's index batch.
        let old_record = writer.store().index().get_image(&old_id)?;
        let record = |new_id, size| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let mut record = old_record
                .unwrap_or_else(|| crate::index::derived_record(old_id, &new, 0, size, now));
            record.image_id = new_id;
            record.bootstrap_size = size;
            record
        };
        let (new_id, new_size) = publish_bootstrap(
            writer.writer(),
            writer.store().index(),
            &new,
            record,
            "gc.compact.bootstrap_rename",
        )?;
        rewrites.replaced_bytes += file_size(&writer.store().bootstrap_path(&old_id))?;
        rewrites.new_bytes += new_size;
        rewrites.images.insert(old_id, (new_id, new_size));
        live.bootstraps.remove(&old_id);
        live.bootstraps.insert(new_id, new);
    }
    report.rewritten_images = rewrites.images.len() as u64;
    Ok(rewrites)
}

/// A new layer object with the entries of `object`, every chunk compaction moved pointing at
/// its new place and a blob table of exactly the blobs its chunks use now (fsynced, in `tmp/`).
fn rewrite_object(
    writer: &StoreWriter,
    object: &LayerMeta,
    moved: &Moved,
) -> Result<SealedLayerMeta> {
    let sizes: HashMap<BlobId, u64> = object
        .blobs()
        .iter()
        .map(|b| (b.id, b.size))
        .chain(moved.blobs.iter().map(|b| (b.id, b.size)))
        .collect();
    let mut writer = LayerMetaWriter::create(writer.writer().tmp_file("layer"))?;
    let mut table = BlobTable::default();
    for entry in object.entries() {
        let mut entry = entry?;
        for chunk in entry.chunks.iter_mut() {
            let old = chunk.location(object.blobs());
            let location = moved
                .locations
                .get(&(old.blob, old.slice.offset, chunk.id))
                .copied()
                .unwrap_or(old);
            let size = sizes.get(&location.blob).copied().unwrap_or(0);
            *chunk = table.record(chunk.id, &location, || Ok(size))?;
        }
        writer.push(entry)?;
    }
    writer.finish(
        object.info().source.clone(),
        table.blobs,
        "gc.compact.layer_meta_fsync",
    )
}

/// Where compaction put the chunks it moved.
pub(super) struct Moved {
    /// (old blob, old frame offset, chunk) -> new location.
    locations: HashMap<ChunkUse, ChunkLocation>,
    blobs: Vec<crate::format::blob::SealedBlob>,
}

/// Writes the live chunks of the blobs to compact into new blobs (each chunk once, read back
/// and verified on the way; compressed `with` these parameters, else the store's), and renames them into `blobs/` (step 1). A delta frame is copied
/// as stored (after it decoded and verified against its bases), so it stays a delta.
fn write_compacted(
    writer: &StoreWriter,
    compact: &[(BlobId, Vec<TocEntry>)],
    with: Option<CompressedWith>,
) -> Result<Moved> {
    let mut builder = BlobBuilder::new(writer.writer(), "gc compaction", "gc.compact.blob_fsync");
    if let Some(with) = with {
        builder = builder.compressing_with(with);
    }
    let mut written: HashSet<ChunkId> = HashSet::new();
    for (blob, live) in compact {
        let reader = BlobReader::open(&writer.store().blob_path(blob), *blob)?;
        let mut frame: Option<(u64, Vec<u8>)> = None;
        for entry in live {
            if frame
                .as_ref()
                .is_none_or(|(offset, _)| *offset != entry.slice.offset)
            {
                frame = Some((
                    entry.slice.offset,
                    reader.read_frame(&entry.location(*blob), writer.store())?,
                ));
            }
            let (_, data) = frame.as_ref().expect("frame just read");
            let object = || format!("blob {blob} offset {}", entry.slice.offset);
            let chunk = crate::format::chunk_from_frame(
                &entry.id,
                data,
                entry.slice.skip,
                entry.slice.len,
                object,
            )?;
            if written.insert(entry.id) {
                if entry.slice.codec == Codec::Delta {
                    let stored = reader.read_stored(&entry.location(*blob))?;
                    builder.push_delta(entry.id, entry.slice.len, stored);
                } else {
                    builder.push(entry.id, chunk);
                }
            }
            if builder.pending_bytes() >= 8 << 20 {
                builder.flush()?;
            }
        }
    }
    let (sealed, _) = builder.finish()?;
    let mut new_location: HashMap<ChunkId, ChunkLocation> = HashMap::new();
    for blob in &sealed {
        for entry in &blob.toc {
            new_location.insert(entry.id, blob.location(entry));
        }
    }
    let mut locations = HashMap::new();
    for (blob, live) in compact {
        for entry in live {
            let location = new_location.get(&entry.id).ok_or_else(|| {
                Error::corrupt(
                    format!("chunk {}", entry.id),
                    "internal: compaction lost it",
                )
            })?;
            locations.insert((*blob, entry.slice.offset, entry.id), *location);
        }
    }
    crate::write::blob_builder::publish(writer.writer(), &sealed, "gc.compact.blob_rename", None)?;
    Ok(Moved {
        locations,
        blobs: sealed,
    })
}
