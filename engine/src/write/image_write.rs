//! Writing machinery (`write`), used by convert, bundles and gc's compaction.
//!
//! Writing an image's metadata into the store, shared by convert and gc's compaction: layer
//! objects' blob tables, the sealed layer objects (already fsynced under `tmp/`) renamed into
//! `layers/` and the directory fsynced, and then the bootstrap naming them (the same, into `bootstraps/`). The
//! caller's index batch comes after both: the write order of `ops::convert`'s module comment.

use crate::error::{Error, Result};
use crate::format::bootstrap::{BlobRecord, Bootstrap, ChunkRecord};
use crate::format::layer_meta::SealedLayerMeta;
use crate::index::{ImageRecord, Index, IndexBatch};
use crate::store::Writer;
use crate::{BlobId, ImageId};
use std::collections::HashMap;

/// A layer object's blob table, built as chunks name blobs.
#[derive(Default)]
pub(crate) struct BlobTable {
    pub blobs: Vec<BlobRecord>,
    index: HashMap<BlobId, u32>,
}

impl BlobTable {
    /// The table index of `blob`; `size` is asked for only the first time the blob is named.
    pub(crate) fn index_of(
        &mut self,
        blob: BlobId,
        size: impl FnOnce() -> Result<u64>,
    ) -> Result<u32> {
        if let Some(&i) = self.index.get(&blob) {
            return Ok(i);
        }
        self.blobs.push(BlobRecord {
            id: blob,
            size: size()?,
        });
        let i = (self.blobs.len() - 1) as u32;
        self.index.insert(blob, i);
        Ok(i)
    }

    /// A chunk record naming `location`'s blob in this table.
    pub(crate) fn record(
        &mut self,
        id: crate::ChunkId,
        location: &crate::format::ChunkLocation,
        size: impl FnOnce() -> Result<u64>,
    ) -> Result<ChunkRecord> {
        Ok(ChunkRecord::at(
            id,
            self.index_of(location.blob, size)?,
            location,
        ))
    }
}

/// The size of a stored blob (for a blob table naming a blob this write did not create).
pub(crate) fn stored_blob_size(writer: &Writer, blob: &BlobId) -> Result<u64> {
    let path = writer.store().blob_path(blob);
    Ok(std::fs::metadata(&path)
        .map_err(|e| Error::io("stat blob", &path, e))?
        .len())
}

/// Renames sealed layer objects into `layers/` (one already there is dropped: same id, same
/// bytes) and fsyncs the directory. Returns the objects and bytes actually added.
pub(crate) fn publish_layer_objects(
    writer: &Writer,
    sealed: &[SealedLayerMeta],
    fail_at: &'static str,
) -> Result<(u64, u64)> {
    let files: Vec<_> = sealed
        .iter()
        .map(|o| (&*o.tmp_path, writer.store().layer_meta_path(&o.id), o.size))
        .collect();
    crate::fsutil::publish_sealed(&files, &writer.store().layout().layers_dir(), fail_at, None)
}

/// Writes a bootstrap durably into `bootstraps/` (unless that very bootstrap is there), after
/// committing its image record in `index` (unless the index has one; `record` makes it from
/// the image id and the bootstrap's size); returns the image id and the bootstrap's size.
/// `fail_at` is checked before its rename.
///
/// The record goes first so that every bootstrap in place has one: gc deletes a bootstrap that
/// no name reaches only when the index has its record (see `rewrite`), and refuses one without
/// (an orphan: an index that lost its records must not make committed images look unused). A
/// crash between the two leaves a record naming no file, which the next gc drops.
pub(crate) fn publish_bootstrap(
    writer: &Writer,
    index: &Index,
    bootstrap: &Bootstrap,
    record: impl FnOnce(ImageId, u64) -> ImageRecord,
    fail_at: &'static str,
) -> Result<(ImageId, u64)> {
    let encoded = bootstrap.encode()?;
    let image_id = crate::format::bootstrap::image_id(&encoded);
    let size = encoded.len() as u64;
    if index.get_image(&image_id)?.is_none() {
        index.commit(IndexBatch {
            images: vec![record(image_id, size)],
            ..IndexBatch::default()
        })?;
    }
    let path = writer.store().bootstrap_path(&image_id);
    if !path.exists() {
        crate::fsutil::write_durably(&writer.tmp_file("bootstrap"), &path, &encoded, fail_at)?;
    }
    Ok((image_id, size))
}
