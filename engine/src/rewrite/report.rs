//! What a rewrite did (or, in a dry run, would do): gc's report, which optimize sums over its
//! rounds.

use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct GcReport {
    pub dry_run: bool,
    pub compact_below: f64,
    pub live_images: u64,
    /// Of the live images, those kept only or also because a running mount holds them.
    pub mounted_images: u64,
    pub live_blobs: u64,
    pub dead_blobs: u64,
    pub dead_bootstraps: u64,
    /// Of the dead bootstraps, those the index has no image record for (deleted only with
    /// `force_orphans`; otherwise gc refuses to run).
    pub orphan_bootstraps: u64,
    pub dead_layer_objects: u64,
    /// Bytes of the dead files (deleted unless `dry_run`).
    pub dead_bytes: u64,
    /// Live blobs below the threshold, their bytes, and their live chunks' stored bytes.
    pub compacted_blobs: u64,
    pub compacted_bytes: u64,
    pub compacted_live_bytes: u64,
    /// What compaction wrote (zero in a dry run): new blobs and rewritten bootstraps.
    pub new_blobs: u64,
    pub new_blob_bytes: u64,
    pub rewritten_images: u64,
    /// What writers that died (a crash, a kill) had left under `tmp/`: their directories (and
    /// loose files), and bytes; removed when gc opened the store, also in a dry run.
    pub tmp_reclaimed_writers: u64,
    pub tmp_reclaimed_bytes: u64,
    /// Net bytes the store shrank by (dead files and compacted blobs and replaced bootstraps
    /// deleted, minus new blobs and bootstraps, plus `tmp_reclaimed_bytes`); in a dry run, an
    /// estimate.
    pub freed_bytes: u64,
    /// Index chunk entries dropped (their chunk is nowhere live) or re-pointed to a live copy.
    pub index_chunks_dropped: u64,
    pub index_chunks_repointed: u64,
}
