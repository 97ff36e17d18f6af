//! Step 3 of a rewrite: the one index batch that makes it visible.

use super::compact::Rewrites;
use super::live::LiveSet;
use super::sweep::Sweep;
use super::GcReport;
use crate::error::Result;
use crate::format::ChunkLocation;
use crate::index::IndexBatch;
use crate::store::Store;
use crate::{BlobId, ChunkId, ImageId};
use std::collections::{HashMap, HashSet};

/// Step 3: names point at the rewritten images, their records move, chunk entries naming dead
/// blobs are re-pointed at a live copy or dropped, records of unnamed images are dropped.
pub(super) fn index_batch(
    store: &Store,
    refs: &[(String, ImageId)],
    live: &LiveSet,
    rewritten: &Rewrites,
    sweep: &Sweep,
    report: &mut GcReport,
) -> Result<IndexBatch> {
    let mut batch = IndexBatch::default();
    for (name, id) in refs {
        if let Some((new_id, _)) = rewritten.images.get(id) {
            batch.refs.push((name.clone(), *new_id));
        }
    }
    for (_, parsed) in store.index().layer_entries()? {
        let Some((key, meta)) = parsed else {
            continue;
        };
        if live.objects.contains_key(&meta) {
            continue;
        }
        match rewritten.objects.get(&meta) {
            Some(new) => batch.layers.push((key, *new)),
            None => batch.delete_layers.push(key),
        }
    }
    for (old_id, (new_id, size)) in &rewritten.images {
        if let Some(mut record) = store.index().get_image(old_id)? {
            record.image_id = *new_id;
            record.bootstrap_size = *size;
            batch.images.push(record);
        }
    }
    // Entries naming a blob no live object names: re-pointed at a live copy (found by one pass
    // over the live objects' entries, for just these chunks) or dropped, like one that leads
    // nowhere.
    let mut stale: Vec<(crate::id::ChunkKey, Option<ChunkId>)> = Vec::new();
    store.index().for_each_chunk_entry(|entry| {
        match entry.resolved {
            Ok((_, location)) if sweep.live_blobs.contains(&location.blob) => {}
            Ok((id, _)) => stale.push((entry.key, Some(id))),
            Err(_) => stale.push((entry.key, None)),
        }
        Ok(())
    })?;
    let mut copies: HashMap<ChunkId, Option<ChunkLocation>> = stale
        .iter()
        .filter_map(|(_, id)| id.map(|id| (id, None)))
        .collect();
    if !copies.is_empty() {
        live.for_each_chunk(|id, location| {
            if let Some(slot @ None) = copies.get_mut(id) {
                *slot = Some(location);
            }
        })?;
    }
    for (key, id) in stale {
        let copy = id.and_then(|id| copies.get(&id).copied().flatten().map(|l| (id, l)));
        match copy {
            Some(copy) => {
                batch.chunks.push(copy);
                report.index_chunks_repointed += 1;
            }
            None => {
                batch.delete_chunks.push(key);
                report.index_chunks_dropped += 1;
            }
        }
    }
    batch.delete_blobs = sweep
        .dead_blobs
        .iter()
        .filter_map(|(name, _, _)| BlobId::from_hex(name))
        .collect();
    // Records of unused images whose bootstrap is gone already (a crash after a commit of the
    // record, or after gc's deletions); the others go once their file is deleted (`apply`).
    let dead_files: HashSet<&str> = sweep
        .dead_bootstraps
        .iter()
        .map(|(name, _, _)| name.as_str())
        .collect();
    for record in store.index().image_records()? {
        let id = record.image_id;
        if !live.bootstraps.contains_key(&id) && !dead_files.contains(id.to_hex().as_str()) {
            batch.delete_images.push(id);
        }
    }
    Ok(batch)
}
