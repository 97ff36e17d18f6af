//! `gc`: mark and sweep. Live = the bootstraps of named images and the blobs their chunk tables
//! name; everything else in `bootstraps/` and `blobs/` is garbage (removed images, or files a
//! crashed convert left before its index batch).
//!
//! Write order, so that a crash at any instant leaves every named image readable and the index
//! naming no missing blob: first one synced index batch re-points or drops the chunk entries
//! that name dead blobs (and drops records of unnamed images); only then are the dead files
//! deleted and their directories fsynced. A crash in between leaves unreferenced files, which
//! the next gc removes.

use crate::error::{Error, Result};
use crate::format::ChunkLocation;
use crate::index::IndexBatch;
use crate::store::Store;
use crate::{BlobId, ChunkId, ImageId};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub live_images: u64,
    pub live_blobs: u64,
    pub dead_blobs: u64,
    pub dead_bootstraps: u64,
    /// Bytes of the dead files (freed unless `dry_run`).
    pub freed_bytes: u64,
    /// Index chunk entries dropped (their chunk is nowhere live) or re-pointed to a live copy.
    pub index_chunks_dropped: u64,
    pub index_chunks_repointed: u64,
}

fn files(dir: &std::path::Path) -> Result<Vec<(String, std::path::PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        let size = entry
            .metadata()
            .map_err(|e| Error::io("stat", &entry.path(), e))?
            .len();
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
            size,
        ));
    }
    Ok(out)
}

pub fn gc(store: &Store, dry_run: bool) -> Result<GcReport> {
    if !store.is_writable() {
        return Err(Error::Usage(
            "internal: gc needs a store opened for writing".into(),
        ));
    }
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    // Mark. A named image whose bootstrap cannot be read stops gc: its chunks cannot be known.
    let live_images: HashSet<ImageId> = store
        .index()
        .refs()?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let mut live_blobs: HashSet<BlobId> = HashSet::new();
    let mut live_chunks: HashMap<ChunkId, ChunkLocation> = HashMap::new();
    for id in &live_images {
        let bootstrap = store.bootstrap_by_id(id).map_err(|e| {
            Error::Usage(format!(
                "gc stopped, nothing was deleted: image {id}: {e}; run `cairn verify`"
            ))
        })?;
        for blob in &bootstrap.blobs {
            live_blobs.insert(blob.id);
        }
        for chunk in &bootstrap.chunks {
            live_chunks
                .entry(chunk.id)
                .or_insert_with(|| bootstrap.location(chunk));
        }
    }
    report.live_images = live_images.len() as u64;
    report.live_blobs = live_blobs.len() as u64;

    let dead_blobs: Vec<(std::path::PathBuf, u64)> = files(&store.root().join("blobs"))?
        .into_iter()
        .filter(|(name, _, _)| BlobId::from_hex(name).is_none_or(|id| !live_blobs.contains(&id)))
        .map(|(_, path, size)| (path, size))
        .collect();
    let dead_bootstraps: Vec<(std::path::PathBuf, u64)> = files(&store.root().join("bootstraps"))?
        .into_iter()
        .filter(|(name, _, _)| ImageId::from_hex(name).is_none_or(|id| !live_images.contains(&id)))
        .map(|(_, path, size)| (path, size))
        .collect();
    report.dead_blobs = dead_blobs.len() as u64;
    report.dead_bootstraps = dead_bootstraps.len() as u64;
    report.freed_bytes = dead_blobs
        .iter()
        .chain(&dead_bootstraps)
        .map(|(_, s)| s)
        .sum();

    // Sweep step 1: the index stops naming dead blobs and unnamed images.
    let mut batch = IndexBatch::default();
    for (id, location) in store.index().chunk_locations()? {
        if live_blobs.contains(&location.blob) {
            continue;
        }
        match live_chunks.get(&id) {
            Some(live) => {
                batch.chunks.push((id, *live));
                report.index_chunks_repointed += 1;
            }
            None => {
                batch.delete_chunks.push(id);
                report.index_chunks_dropped += 1;
            }
        }
    }
    for record in store.index().image_records()? {
        if !live_images.contains(&record.image_id) {
            batch.delete_images.push(record.image_id);
        }
    }
    if dry_run {
        return Ok(report);
    }
    crate::failpoint::check("gc.index.batch")?;
    store.index().commit(batch)?;
    // Sweep step 2: the files.
    for (path, _) in dead_bootstraps.iter().chain(&dead_blobs) {
        crate::failpoint::check("gc.delete")?;
        std::fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    }
    crate::failpoint::check("gc.dir_fsync")?;
    crate::fsutil::fsync_dir(&store.root().join("bootstraps"))?;
    crate::fsutil::fsync_dir(&store.root().join("blobs"))?;
    Ok(report)
}
