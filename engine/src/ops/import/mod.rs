//! Adding an image whose objects (bootstrap, layer objects, blobs) arrive whole from another
//! store: a store-format pull, a bundle. The arriving files are written by the caller into
//! this writer's directory under `tmp/`; here they are checked whole (`check`) before anything
//! is committed, then committed in the write order of a convert (`ops::convert`'s module
//! comment): blobs renamed into place and their new chunks indexed, layer objects, the
//! bootstrap, then one synced index batch with the layer keys, the image record and the name.
//! Objects the store holds already are not sent again by the caller; an arriving object the
//! store has meanwhile is dropped (same name, same bytes).

mod check;

use crate::error::{IoContext, Result};
use crate::format::Codec;
use crate::index::IndexBatch;
use crate::progress::Progress;
use crate::store::Writer;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use serde::Serialize;
use std::path::PathBuf;

/// An arriving file, under this writer's directory in `tmp/`.
#[derive(Clone, Debug)]
pub(crate) struct Arriving<Id> {
    pub id: Id,
    pub path: PathBuf,
    pub size: u64,
}

/// The objects of one image that the store lacks, arrived.
#[derive(Clone, Debug)]
pub(crate) struct Incoming {
    /// Where they came from, for messages (a registry URL, a bundle file).
    pub origin: String,
    pub image: ImageId,
    /// The bootstrap's file; `None` when the store has it already.
    pub bootstrap: Option<PathBuf>,
    pub objects: Vec<Arriving<LayerMetaId>>,
    pub blobs: Vec<Arriving<BlobId>>,
}

/// What an import added.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    pub name: String,
    pub image_id: String,
    pub blobs_added: u64,
    pub blob_bytes_added: u64,
    pub layer_objects_added: u64,
    pub layer_object_bytes_added: u64,
    pub bootstrap_added: bool,
    /// Chunks of the arriving blobs that the index did not have.
    pub chunks_indexed: u64,
    /// Chunks of the arriving blobs that the store held elsewhere already.
    pub chunks_already_stored: u64,
}

/// Chunk entries per index batch (as in a convert's commit).
const CHUNK_BATCH: usize = 65_536;

/// Checks the arriving objects whole, then commits them under `name`. On an error nothing is
/// committed (the caller clears its directory under `tmp/`).
pub(crate) fn import(
    store: &Writer,
    incoming: &Incoming,
    name: &str,
    replace: bool,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    for file in incoming
        .blobs
        .iter()
        .map(|b| &b.path)
        .chain(incoming.objects.iter().map(|o| &o.path))
        .chain(&incoming.bootstrap)
    {
        std::fs::File::open(file)
            .and_then(|f| f.sync_all())
            .with_path("sync", file)?;
    }
    let checked = check::check(store, incoming, progress)?;
    let index = store.commit_access()?;
    crate::ops::convert::commit::check_name(&index, name, replace)?;
    let mut report = ImportReport {
        name: name.to_string(),
        image_id: incoming.image.to_string(),
        ..ImportReport::default()
    };
    // Step 1: blobs, then their chunks the index lacks (or has only in a delta frame while
    // this copy is plain: a delta frame's bases must be plain in the index).
    let mut to_index: Vec<(ChunkId, BlobId, u64)> = Vec::new();
    for (blob, toc) in incoming.blobs.iter().zip(&checked.tocs) {
        for (record, entry) in toc.iter().enumerate() {
            match index.get_chunk(&entry.id)? {
                Some(found) if found.codec != Codec::Delta || entry.codec == Codec::Delta => {
                    report.chunks_already_stored += 1
                }
                _ => to_index.push((entry.id, blob.id, record as u64)),
            }
        }
    }
    let files: Vec<_> = incoming
        .blobs
        .iter()
        .map(|b| (&*b.path, store.blob_path(&b.id), b.size))
        .collect();
    (report.blobs_added, report.blob_bytes_added) = crate::fsutil::publish_sealed(
        &files,
        &store.layout().blobs_dir(),
        "import.blob.rename",
        None,
    )?;
    report.chunks_indexed = to_index.len() as u64;
    for records in to_index.chunks(CHUNK_BATCH) {
        index.commit(IndexBatch {
            chunk_records: records.to_vec(),
            ..IndexBatch::default()
        })?;
    }
    // Steps 2 and 3: the layer objects, then the bootstrap naming them.
    let files: Vec<_> = incoming
        .objects
        .iter()
        .map(|o| (&*o.path, store.layer_meta_path(&o.id), o.size))
        .collect();
    (report.layer_objects_added, report.layer_object_bytes_added) = crate::fsutil::publish_sealed(
        &files,
        &store.layout().layers_dir(),
        "import.layer_meta.rename",
        None,
    )?;
    let bootstrap_path = store.bootstrap_path(&incoming.image);
    if let Some(path) = &incoming.bootstrap {
        let size = std::fs::metadata(path).with_path("stat", path)?.len();
        let files = [(&**path, bootstrap_path.clone(), size)];
        let dir = store.layout().bootstraps_dir();
        report.bootstrap_added =
            crate::fsutil::publish_sealed(&files, &dir, "import.bootstrap.rename", None)?.0 > 0;
    }
    // Step 4: one synced index batch.
    let bootstrap = &checked.bootstrap;
    let mut batch = IndexBatch::default();
    batch.add_layer_keys(bootstrap);
    if index.get_image(&incoming.image)?.is_none() {
        let size = std::fs::metadata(&bootstrap_path)
            .with_path("stat", &bootstrap_path)?
            .len();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut record =
            crate::ops::repair::derived_record(incoming.image, bootstrap, checked.files, size, now);
        record.new_chunks = report.chunks_indexed;
        record.added_stored_bytes = report.blob_bytes_added;
        batch.images.push(record);
    }
    batch.refs.push((name.to_string(), incoming.image));
    crate::failpoint::check("import.index.batch")?;
    index.commit(batch)?;
    index.flush()?;
    progress.finish();
    Ok(report)
}
