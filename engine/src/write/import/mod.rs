//! Writing machinery (`write`), used by `ops::bundle::import` and `remote::store_pull`.
//! Adding images whose objects (bootstraps, layer objects, blobs) arrive whole from another
//! store: a store-format pull (one image), a bundle (one or more). The arriving files are
//! written by the caller into this writer's directory under `tmp/`; here they are checked whole
//! (`check`: every blob and chunk, every layer object, every bootstrap, and every arriving
//! layer's tar re-created and hashed against its diff_id) before anything is committed, then
//! all images are committed together in the write order of a convert (`ops::convert`'s module
//! comment): blobs renamed into place and their new chunks indexed, layer objects, the image
//! records, bootstraps, then one synced index batch with every image's layer keys and names.
//! So an import commits all its images or none: an error in any of them (a bad object, a name
//! taken by another writer meanwhile) leaves the names and layer keys as they were (blobs,
//! chunk entries, and records that no name reaches are harmless, and gc drops them).
//! Objects the store holds already are not sent again by the caller; an arriving object the
//! store has meanwhile is dropped (same name, same bytes).

mod check;

use crate::error::{Error, IoContext, Result};
use crate::format::Codec;
use crate::index::IndexBatch;
use crate::progress::Progress;
use crate::store::Writer;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;

/// An arriving file, under this writer's directory in `tmp/`.
#[derive(Clone, Debug)]
pub(crate) struct Arriving<Id> {
    pub id: Id,
    pub path: PathBuf,
    pub size: u64,
}

/// The objects that the store lacks of the images of one import, arrived.
#[derive(Clone, Debug)]
pub(crate) struct Incoming {
    /// Where they came from, for messages (a registry URL, a bundle file).
    pub origin: String,
    /// The blobs, shared by the images.
    pub blobs: Vec<Arriving<BlobId>>,
    pub images: Vec<IncomingImage>,
}

/// One image of an import and the name to commit it under.
#[derive(Clone, Debug)]
pub(crate) struct IncomingImage {
    pub name: String,
    pub image: ImageId,
    /// The bootstrap's file; `None` when the store has it already.
    pub bootstrap: Option<PathBuf>,
    pub objects: Vec<Arriving<LayerMetaId>>,
}

/// What an import added.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
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

/// What a whole import did: the images committed (the blobs counted with the first), and the
/// names that already named their image (left as they were).
#[derive(Clone, Debug, Default)]
pub(crate) struct ImportOutcome {
    pub images: Vec<ImportReport>,
    pub unchanged: Vec<String>,
}

/// Chunk entries per index batch (as in a convert's commit).
const CHUNK_BATCH: usize = 65_536;

/// Checks the arriving objects whole, then commits every image under its name, all in one
/// index batch. On an error nothing is committed (the caller clears its directory in `tmp/`).
/// A name that names another image is refused unless `replace`, checked again under the commit
/// lock (another writer may take it meanwhile); one that names the same image is unchanged.
pub(crate) fn import(
    writer: &Writer,
    incoming: &Incoming,
    replace: bool,
    progress: &dyn Progress,
) -> Result<ImportOutcome> {
    check_names(incoming)?;
    for file in incoming
        .blobs
        .iter()
        .map(|b| &b.path)
        .chain(
            incoming
                .images
                .iter()
                .flat_map(|i| i.objects.iter().map(|o| &o.path)),
        )
        .chain(incoming.images.iter().flat_map(|i| &i.bootstrap))
    {
        std::fs::File::open(file)
            .and_then(|f| f.sync_all())
            .with_path("sync", file)?;
    }
    let checked = check::check(writer, incoming, progress)?;
    let index = writer.commit_access()?;
    let mut outcome = ImportOutcome::default();
    let mut todo = Vec::new();
    for (image, checked) in incoming.images.iter().zip(checked.images) {
        match index.get_ref(&image.name)? {
            Some(id) if id == image.image => outcome.unchanged.push(image.name.clone()),
            Some(_) if !replace => return Err(name_taken(&image.name)),
            _ => todo.push((image, checked)),
        }
    }
    if todo.is_empty() {
        progress.finish();
        return Ok(outcome);
    }
    let mut reports: Vec<ImportReport> = todo
        .iter()
        .map(|(image, _)| ImportReport {
            name: image.name.clone(),
            image_id: image.image.to_string(),
            ..ImportReport::default()
        })
        .collect();
    publish_blobs(writer, &index, incoming, &checked.tocs, &mut reports[0])?;
    // Steps 2 and 3: every image's layer objects, then every bootstrap naming them.
    for ((image, _), report) in todo.iter().zip(&mut reports) {
        let files: Vec<_> = image
            .objects
            .iter()
            .map(|o| (&*o.path, writer.store().layer_meta_path(&o.id), o.size))
            .collect();
        (report.layer_objects_added, report.layer_object_bytes_added) =
            crate::fsutil::publish_sealed(
                &files,
                &writer.store().layout().layers_dir(),
                "import.layer_meta.rename",
                None,
            )?;
    }
    // Step 3: every image record the index lacks, then the bootstraps (see
    // `image_write::publish_bootstrap`: a bootstrap in place always has its record).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut records = IndexBatch::default();
    let mut recorded = HashSet::new();
    for ((image, checked), report) in todo.iter().zip(&reports) {
        if index.get_image(&image.image)?.is_none() && recorded.insert(image.image) {
            let in_place = writer.store().bootstrap_path(&image.image);
            let path = image.bootstrap.as_deref().unwrap_or(&in_place);
            let size = std::fs::metadata(path).with_path("stat", path)?.len();
            let mut record = crate::index::derived_record(
                image.image,
                &checked.bootstrap,
                checked.files,
                size,
                now,
            );
            record.new_chunks = report.chunks_indexed;
            record.added_stored_bytes = report.blob_bytes_added + report.layer_object_bytes_added;
            records.images.push(record);
        }
    }
    if !records.images.is_empty() {
        index.commit(records)?;
    }
    for ((image, _), report) in todo.iter().zip(&mut reports) {
        if let Some(path) = &image.bootstrap {
            let size = std::fs::metadata(path).with_path("stat", path)?.len();
            let files = [(&**path, writer.store().bootstrap_path(&image.image), size)];
            let dir = writer.store().layout().bootstraps_dir();
            report.bootstrap_added =
                crate::fsutil::publish_sealed(&files, &dir, "import.bootstrap.rename", None)?.0 > 0;
        }
    }
    // Step 4: one synced index batch for every image's layer keys and name.
    let mut batch = IndexBatch::default();
    for (image, checked) in &todo {
        // Every layer's tar was re-created and hashed (an arriving object) or is the store's
        // own object holding that diff_id; no layer blob was read, so no digest is checked.
        for layer in &checked.bootstrap.layers {
            batch.add_layer_keys(layer, false);
        }
        batch.refs.push((image.name.clone(), image.image));
    }
    crate::failpoint::check("import.index.batch")?;
    index.commit(batch)?;
    index.flush()?;
    progress.finish();
    outcome.images = reports;
    Ok(outcome)
}

/// Step 1: the blobs renamed into place, then their chunks the index lacks (or has only in a
/// delta frame while this copy is plain: a delta frame's bases must be plain in the index)
/// indexed; counted in `first`.
fn publish_blobs(
    writer: &Writer,
    index: &crate::index::Index,
    incoming: &Incoming,
    tocs: &[Vec<crate::format::blob::TocEntry>],
    first: &mut ImportReport,
) -> Result<()> {
    let mut to_index: Vec<(ChunkId, BlobId, u64)> = Vec::new();
    for (blob, toc) in incoming.blobs.iter().zip(tocs) {
        for (record, entry) in toc.iter().enumerate() {
            match index.get_chunk(&entry.id)? {
                Some(found)
                    if found.slice.codec != Codec::Delta || entry.slice.codec == Codec::Delta =>
                {
                    first.chunks_already_stored += 1
                }
                _ => to_index.push((entry.id, blob.id, record as u64)),
            }
        }
    }
    let files: Vec<_> = incoming
        .blobs
        .iter()
        .map(|b| (&*b.path, writer.store().blob_path(&b.id), b.size))
        .collect();
    (first.blobs_added, first.blob_bytes_added) = crate::fsutil::publish_sealed(
        &files,
        &writer.store().layout().blobs_dir(),
        "import.blob.rename",
        None,
    )?;
    first.chunks_indexed = to_index.len() as u64;
    for records in to_index.chunks(CHUNK_BATCH) {
        index.commit(IndexBatch {
            chunk_records: records.to_vec(),
            ..IndexBatch::default()
        })?;
    }
    Ok(())
}

/// Every name follows the name rule, and no two images of one import share a name.
fn check_names(incoming: &Incoming) -> Result<()> {
    let mut seen = HashSet::new();
    for image in &incoming.images {
        crate::check_image_name(&image.name)
            .map_err(|e| Error::bad_input(incoming.origin.clone(), e.to_string()))?;
        if !seen.insert(&image.name) {
            return Err(Error::bad_input(
                incoming.origin.clone(),
                format!("it holds two images named {:?}", image.name),
            ));
        }
    }
    Ok(())
}

pub(crate) fn name_taken(name: &str) -> Error {
    Error::Conflict(crate::Conflict::ImageExists {
        name: name.to_string(),
        choose: "another name",
    })
}
