//! What a rewrite did (or, in a dry run, would do): gc's report, which optimize sums over its
//! rounds.

use serde::Serialize;

/// What `gc` did (or, in a dry run, would do); `optimize` sums these over its rounds.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// Nothing was changed: the figures are what a run would do.
    pub dry_run: bool,
    /// The live share below which a blob was compacted (0: no compaction; optimize: 0).
    pub compact_below: f64,
    /// Distinct images named or held by a running mount (each counted once).
    pub live_images: u64,
    /// Of the live images, those kept only or also because a running mount holds them.
    pub mounted_images: u64,
    /// Blobs the live images' layer objects (and their delta bases) use.
    pub live_blobs: u64,
    /// Files in `blobs/` nothing live uses (compacted blobs not counted).
    pub dead_blobs: u64,
    /// Files in `bootstraps/` no name and no mount reaches.
    pub dead_bootstraps: u64,
    /// Of the dead bootstraps, those the index has no image record for (deleted only with
    /// `force_orphans`; otherwise gc refuses to run).
    pub orphan_bootstraps: u64,
    /// Files in `layers/` no live bootstrap names.
    pub dead_layer_objects: u64,
    /// Bytes of the dead files (deleted unless `dry_run`).
    pub dead_bytes: u64,
    /// Live blobs chosen for rewriting (below the live-share threshold, or optimize's target).
    pub compacted_blobs: u64,
    /// Bytes of those blobs' files.
    pub compacted_bytes: u64,
    /// Stored (compressed) bytes of their live chunks: about what compaction keeps of them.
    pub compacted_live_bytes: u64,
    /// New blobs compaction wrote (zero in a dry run).
    pub new_blobs: u64,
    /// Bytes of those new blob files.
    pub new_blob_bytes: u64,
    /// Images given a rewritten bootstrap (new image id, same names).
    pub rewritten_images: u64,
    /// What writers that died (a crash, a kill) had left under `tmp/`: their directories (and
    /// loose files), and bytes; removed when gc opened the store, also in a dry run.
    pub tmp_reclaimed_writers: u64,
    /// Bytes of what dead writers left under `tmp/`.
    pub tmp_reclaimed_bytes: u64,
    /// Net bytes the store shrank by (dead files and compacted blobs and replaced bootstraps
    /// deleted, minus new blobs and bootstraps, plus `tmp_reclaimed_bytes`); in a dry run, an
    /// estimate.
    pub freed_bytes: u64,
    /// Index chunk entries dropped (their chunk is nowhere live).
    pub index_chunks_dropped: u64,
    /// Index chunk entries re-pointed from a dead or compacted blob to a live copy.
    pub index_chunks_repointed: u64,
}
