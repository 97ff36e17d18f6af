//! `gc`: mark, compact and sweep. Live = the bootstraps of named images, the layer objects
//! they name and the blobs those objects' blob tables name; everything else in `bootstraps/`,
//! `layers/` and `blobs/` is garbage (removed images, or files a crashed convert or gc left
//! before its index batch). A live blob whose live share (its live chunks' share of its stored
//! bytes) is below `compact_below` is compacted (`compact.rs`): its live chunks are written
//! into new blobs, the layer objects that use them are rewritten, and so the bootstraps naming
//! those (which gives those images new ids; their names follow).
//!
//! Write order, the same as convert's, so that a crash at any instant leaves every named image
//! readable and the index naming no missing file:
//!   1. new blobs (compaction): written under `tmp/`, fsynced, renamed into `blobs/`, fsynced;
//!   2. rewritten layer objects, then rewritten bootstraps: the same, into `layers/` and
//!      `bootstraps/`;
//!   3. one synced index batch: names point at the rewritten images, their records move, layer
//!      keys follow rewritten objects or are dropped with dead ones, chunk entries naming dead
//!      or compacted blobs are re-pointed or dropped, records of unnamed images are dropped;
//!   4. only then are the dead files deleted and their directories fsynced;
//!   5. one more synced batch drops the image records of the deleted bootstraps.
//!
//! Orphans. A bootstrap no name (and no lease) reaches is deleted only when the index holds
//! its image record: every writer commits an image's record before its bootstrap is in place
//! (`image_write::publish_bootstrap`), `rm` keeps the record, and gc drops it only after
//! deleting the file (step 5). So a record without a name marks an image that was removed (or
//! whose convert stopped before naming it), and gc frees its space. A dead bootstrap without
//! any record is an orphan: the index never knew it or has lost it (emptied, created afresh,
//! damaged), and nothing proves it unused. gc (and optimize, which shares this code) then
//! refuses to run, naming `verify --repair-index` (which names every such image
//! `recovered-<id>`), unless told `--force-orphans`. A store last written by a cairn release
//! before this rule holds no record for images it removed: the first gc asks for
//! `--force-orphans` once.
//!
//! gc excludes every other writer (`WRITERS`, see `layout.rs`); opening the store removed
//! what dead writers left under `tmp/`, which the report counts (`tmp_reclaimed_bytes`).
//!
//! Images a running mount holds a lease on (`crate::lease`) are live like named ones, and the
//! blobs they use are never compacted: the mount reads them where it found them.
//!
//! A crash before 3 leaves new files no name reaches, after it old ones; the next gc removes
//! either. Memory: the bootstraps and the open layer objects' tables, and (for compaction and
//! the re-pointing of index entries) sets of chunk uses; entries are streamed, never held.

mod choose;
mod compact;
mod sweep;

use crate::error::{Error, Result};
use crate::format::blob::{CompressedWith, TocEntry};
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::LayerMeta;
use crate::format::ChunkLocation;
use crate::index::IndexBatch;
use crate::store::{Store, StoreWriter};
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use choose::choose_compaction;
use compact::{compact_blobs, Rewrites};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use sweep::{refuse_orphans, Sweep};

/// The compaction threshold `gc` uses unless told otherwise.
pub const DEFAULT_COMPACT_BELOW: f64 = 0.5;

#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct GcOptions {
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Rewrite live blobs whose live share is below this (0 disables compaction).
    pub compact_below: f64,
    /// Delete orphan bootstraps (no name and no image record in the index) too, instead of
    /// refusing to run.
    pub force_orphans: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            compact_below: DEFAULT_COMPACT_BELOW,
            force_orphans: false,
        }
    }
}

impl GcOptions {
    pub fn with_dry_run(self, dry_run: bool) -> Self {
        GcOptions { dry_run, ..self }
    }

    pub fn with_compact_below(self, compact_below: f64) -> Self {
        GcOptions {
            compact_below,
            ..self
        }
    }

    pub fn with_force_orphans(self, force_orphans: bool) -> Self {
        GcOptions {
            force_orphans,
            ..self
        }
    }
}

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

/// A chunk as a bootstrap uses it: which copy (blob, frame offset) of which chunk.
type ChunkUse = (BlobId, u64, ChunkId);

fn stopped(what: String, e: Error) -> Error {
    Error::Usage(format!(
        "gc stopped, nothing was deleted: {what}: {e}; run `cairn verify`"
    ))
}

/// What named images use: their bootstraps and their layer objects (open: tables only), and
/// the base chunks of the delta frames those objects use (where the index has them).
pub(super) struct LiveSet {
    pub bootstraps: HashMap<ImageId, Bootstrap>,
    pub objects: HashMap<LayerMetaId, LayerMeta>,
    pub bases: HashMap<ChunkId, ChunkLocation>,
}

impl LiveSet {
    /// Marks from the names. An image whose bootstrap or layer object cannot be read stops gc:
    /// its chunks cannot be known.
    fn mark(store: &Store, refs: &[(String, ImageId)]) -> Result<LiveSet> {
        let mut live = LiveSet {
            bootstraps: HashMap::new(),
            objects: HashMap::new(),
            bases: HashMap::new(),
        };
        for (_, id) in refs {
            if live.bootstraps.contains_key(id) {
                continue;
            }
            let bootstrap = store
                .bootstrap_by_id(id)
                .map_err(|e| stopped(format!("image {id}"), e))?;
            for layer in &bootstrap.layers {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    live.objects.entry(layer.meta)
                {
                    let object = store
                        .layer_meta(&layer.meta)
                        .map_err(|e| stopped(format!("image {id}"), e))?;
                    slot.insert(object);
                }
            }
            live.bootstraps.insert(*id, bootstrap);
        }
        live.bases = live.mark_bases(store)?;
        Ok(live)
    }

    /// The bases of every delta frame a live object uses, where the index has them: a base
    /// is live while a live delta frame names it. A base the index lacks stops gc (the delta
    /// frame could not be read; `verify --full` names it).
    fn mark_bases(&self, store: &Store) -> Result<HashMap<ChunkId, ChunkLocation>> {
        let mut bases = HashMap::new();
        crate::view::bases::for_each_delta_frame(store, self.objects.values(), |_, _, found| {
            bases.extend(found.iter().copied());
            Ok(())
        })
        .map_err(|e| stopped("the bases of live delta frames".into(), e))?;
        Ok(bases)
    }

    fn blobs(&self) -> HashSet<BlobId> {
        self.objects
            .values()
            .flat_map(|o| o.blobs().iter().map(|b| b.id))
            .chain(self.bases.values().map(|l| l.blob))
            .collect()
    }

    /// Calls `visit` with every chunk reference of every live object, then every live base:
    /// (chunk, its location).
    fn for_each_chunk(&self, mut visit: impl FnMut(&ChunkId, ChunkLocation)) -> Result<()> {
        for (id, object) in &self.objects {
            for entry in object.entries() {
                let entry = entry.map_err(|e| stopped(format!("layer object {id}"), e))?;
                for chunk in &entry.chunks {
                    visit(&chunk.id, chunk.location(object.blobs()));
                }
            }
        }
        for (id, location) in &self.bases {
            visit(id, *location);
        }
        Ok(())
    }
}

/// Which live blobs a run rewrites (never one a mount pins).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rewrite {
    /// gc: those whose live chunks hold less than this share of their stored bytes.
    Sparse(f64),
    /// optimize: those whose frames were compressed below the target (see `Recompress`).
    Recompress(Recompress),
}

/// optimize's choice: the live blobs whose frames were compressed below `target` (a lower
/// level, smaller frames, or not recorded), oldest first, while their bytes add up to at most
/// `round_bytes` (or one larger blob) and to at most `budget_bytes`, and what their rewrite
/// writes fits in `free_bytes` (a blob that does not fit is skipped, a later one may).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recompress {
    pub target: CompressedWith,
    pub round_bytes: u64,
    pub budget_bytes: u64,
    pub free_bytes: u64,
}

/// A live blob below optimize's target: its id, its bytes, whether a mount pins it.
pub(crate) type BelowTarget = (BlobId, u64, bool);

/// What gc will do, decided without changing anything: the live set (marked), the blobs to
/// compact, and the report as estimated before any write (what `--dry-run` prints).
pub(crate) struct GcPlan {
    /// The names, as the index gave them when marking.
    refs: Vec<(String, ImageId)>,
    live: LiveSet,
    /// Live blobs to rewrite, with their live ToC entries.
    pub compact: Vec<(BlobId, Vec<TocEntry>)>,
    /// With `Rewrite::Recompress`: every live blob below the target (those chosen first; those
    /// a mount pins too).
    pub below_target: Vec<BelowTarget>,
    /// With `Rewrite::Recompress`: blobs below the target left out because what their
    /// rewrite writes would not fit in the free space, with the free bytes each needs.
    pub skipped_for_space: Vec<(BlobId, u64)>,
    /// What the new blobs are compressed with (`None`: the store's own parameters).
    with: Option<CompressedWith>,
    pub report: GcReport,
}

/// Marks, chooses the blobs to compact and estimates what gc frees.
pub(crate) fn plan(store: &Store, options: &GcOptions) -> Result<GcPlan> {
    if !(0.0..=1.0).contains(&options.compact_below) {
        return Err(Error::Usage(format!(
            "--compact-below {} must be between 0 and 1",
            options.compact_below
        )));
    }
    plan_rewrite(
        store,
        options.dry_run,
        options.force_orphans,
        Rewrite::Sparse(options.compact_below),
    )
}

/// Marks, chooses the blobs `rewrite` names and estimates what the run frees. Refuses (before
/// any change) when the store holds orphan bootstraps, unless `force_orphans`.
pub(crate) fn plan_rewrite(
    store: &Store,
    dry_run: bool,
    force_orphans: bool,
    rewrite: Rewrite,
) -> Result<GcPlan> {
    let mut report = GcReport {
        dry_run,
        compact_below: match rewrite {
            Rewrite::Sparse(below) => below,
            Rewrite::Recompress { .. } => 0.0,
        },
        ..GcReport::default()
    };
    let refs = store.index().refs()?;
    let leased: Vec<(String, ImageId)> = crate::lease::leased_images(store.layout())?
        .into_iter()
        .map(|id| ("(mounted)".to_string(), id))
        .collect();
    let roots: Vec<(String, ImageId)> = refs.iter().chain(&leased).cloned().collect();
    let live = LiveSet::mark(store, &roots)?;
    let pinned = match leased.is_empty() {
        true => HashSet::new(),
        false => LiveSet::mark(store, &leased)?.blobs(),
    };
    report.live_images = live.bootstraps.len() as u64;
    report.mounted_images = leased.len() as u64;
    report.live_blobs = live.blobs().len() as u64;
    let mut skipped_for_space = Vec::new();
    let (compact, below_target, with) = match rewrite {
        Rewrite::Sparse(below) if below > 0.0 => {
            let compact = choose_compaction(store, &live, &pinned, below, &mut report)?;
            (compact, Vec::new(), None)
        }
        Rewrite::Sparse(_) => (Vec::new(), Vec::new(), None),
        Rewrite::Recompress(limits) => {
            let chosen = choose::recompress(store, &live, &pinned, &limits, &mut report)?;
            skipped_for_space = chosen.skipped_for_space;
            (chosen.compact, chosen.below_target, Some(limits.target))
        }
    };
    let sweep = Sweep::find(store, &live, &compact, &Rewrites::default(), &mut report)?;
    refuse_orphans(store, &sweep, force_orphans, &mut report)?;
    // Estimate: compacted blobs shrink to about their live bytes.
    report.freed_bytes =
        (report.dead_bytes + sweep.compacted_bytes).saturating_sub(report.compacted_live_bytes);
    if dry_run {
        // The index entries gc would drop or re-point (without compaction's moves).
        index_batch(
            store,
            &refs,
            &live,
            &Rewrites::default(),
            &sweep,
            &mut report,
        )?;
    }
    Ok(GcPlan {
        refs,
        live,
        compact,
        below_target,
        skipped_for_space,
        with,
        report,
    })
}

/// Runs gc: the plan, then (unless a dry run) its execution.
pub(crate) fn gc(writer: &StoreWriter, options: &GcOptions) -> Result<GcReport> {
    // Held to the end: no mount takes a lease between the marking and the deletions.
    let _guard = crate::lease::LeaseGuard::exclusive(writer.store().layout())?;
    let plan = plan(writer.store(), options)?;
    let mut report = match options.dry_run {
        true => plan.report,
        false => apply(writer, plan)?,
    };
    let reclaimed = writer.tmp_reclaimed();
    report.tmp_reclaimed_writers = reclaimed.writers + reclaimed.files;
    report.tmp_reclaimed_bytes = reclaimed.bytes;
    report.freed_bytes += reclaimed.bytes;
    Ok(report)
}

/// Carries out a plan in the write order of the module's doc: compaction's new blobs and
/// bootstraps, one synced index batch, then the deletions.
pub(crate) fn apply(writer: &StoreWriter, plan: GcPlan) -> Result<GcReport> {
    let GcPlan {
        refs,
        mut live,
        compact,
        with,
        mut report,
        ..
    } = plan;
    let rewrites = compact_blobs(writer, &compact, &mut live, &mut report, with)?;
    let sweep = Sweep::find(writer.store(), &live, &compact, &rewrites, &mut report)?;
    report.freed_bytes = (report.dead_bytes + sweep.compacted_bytes + rewrites.replaced_bytes)
        .saturating_sub(report.new_blob_bytes + rewrites.new_bytes);
    let batch = index_batch(writer.store(), &refs, &live, &rewrites, &sweep, &mut report)?;
    crate::failpoint::check("gc.index.batch")?;
    writer.store().index().commit(batch)?;
    writer.store().index().flush()?;
    // Step 4: the files.
    let dead = sweep.dead_bootstraps.iter();
    for (_, path, _) in dead
        .chain(&sweep.dead_layer_objects)
        .chain(&sweep.dead_blobs)
    {
        crate::failpoint::check("gc.delete")?;
        std::fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    }
    crate::failpoint::check("gc.dir_fsync")?;
    crate::fsutil::fsync_dir(&writer.store().layout().bootstraps_dir())?;
    crate::fsutil::fsync_dir(&writer.store().layout().layers_dir())?;
    crate::fsutil::fsync_dir(&writer.store().layout().blobs_dir())?;
    // Step 5: the records of the deleted bootstraps (kept until the files were gone, so that a
    // crash before leaves them deletable, not orphans).
    let delete_images: Vec<ImageId> = sweep
        .dead_bootstraps
        .iter()
        .filter_map(|(name, _, _)| ImageId::from_hex(name))
        .collect();
    if !delete_images.is_empty() {
        crate::failpoint::check("gc.records.batch")?;
        writer.store().index().commit(IndexBatch {
            delete_images,
            ..IndexBatch::default()
        })?;
    }
    Ok(report)
}

/// Step 3: names point at the rewritten images, their records move, chunk entries naming dead
/// blobs are re-pointed at a live copy or dropped, records of unnamed images are dropped.
fn index_batch(
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

/// `cairn gc`.
impl crate::store::StoreWriter {
    /// Deletes the blobs and bootstraps no named image uses.
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        gc(self, options)
    }
}
