//! `gc`: mark, compact and sweep. Live = the bootstraps of named images and the chunks their
//! chunk tables name; everything else in `bootstraps/` and `blobs/` is garbage (removed images,
//! or files a crashed convert or gc left before its index batch). A live blob whose live share
//! (its live chunks' share of its stored bytes) is below `compact_below` is compacted: its live
//! chunks are written into new blobs and the bootstraps that use them are rewritten (which gives
//! those images new ids; their names follow).
//!
//! Write order, the same as convert's, so that a crash at any instant leaves every named image
//! readable and the index naming no missing blob:
//!   1. new blobs (compaction): written under `tmp/`, fsynced, renamed into `blobs/`, fsynced;
//!   2. rewritten bootstraps: the same, into `bootstraps/`;
//!   3. one synced index batch: names point at the rewritten images, their records move, chunk
//!      entries naming dead or compacted blobs are re-pointed or dropped, records of unnamed
//!      images are dropped;
//!   4. only then are the dead files deleted and their directories fsynced.
//!
//! A crash before 3 leaves new files no name reaches, after it old ones; the next gc removes
//! either.

use crate::error::{Error, Result};
use crate::format::blob::{decode_toc, BlobReader, TocEntry};
use crate::format::bootstrap::BlobRecord;
use crate::format::ChunkLocation;
use crate::index::IndexBatch;
use crate::ops::blob_builder::BlobBuilder;
use crate::ops::whole_image::WholeImage as Bootstrap;
use crate::store::{Store, StoreWriter};
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Where compaction's rewritten layer objects and bootstraps can be made to fail (tests).
const FAIL_POINTS: crate::ops::image_write::WholeImageFailPoints =
    crate::ops::image_write::WholeImageFailPoints {
        object_fsync: "gc.compact.layer_meta_fsync",
        object_rename: "gc.compact.layer_meta_rename",
        bootstrap_rename: "gc.compact.bootstrap_rename",
    };

/// The compaction threshold `gc` uses unless told otherwise.
pub const DEFAULT_COMPACT_BELOW: f64 = 0.5;

#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Rewrite live blobs whose live share is below this (0 disables compaction).
    pub compact_below: f64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            compact_below: DEFAULT_COMPACT_BELOW,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub compact_below: f64,
    pub live_images: u64,
    pub live_blobs: u64,
    pub dead_blobs: u64,
    pub dead_bootstraps: u64,
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
    /// Net bytes the store shrank by (dead files and compacted blobs and replaced bootstraps
    /// deleted, minus new blobs and bootstraps); in a dry run, an estimate.
    pub freed_bytes: u64,
    /// Index chunk entries dropped (their chunk is nowhere live) or re-pointed to a live copy.
    pub index_chunks_dropped: u64,
    pub index_chunks_repointed: u64,
}

/// A file in `blobs/` or `bootstraps/`: (name, path, size).
type StoreFile = (String, PathBuf, u64);

fn files(dir: &std::path::Path) -> Result<Vec<StoreFile>> {
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

/// A chunk as a bootstrap uses it: which copy (blob, frame offset) of which chunk.
type ChunkUse = (BlobId, u64, ChunkId);

fn stopped(what: String, e: Error) -> Error {
    Error::Usage(format!(
        "gc stopped, nothing was deleted: {what}: {e}; run `cairn verify`"
    ))
}

/// What gc will do, decided without changing anything: the live images (marked), the blobs to
/// compact, and the report as estimated before any write (what `--dry-run` prints).
pub(crate) struct GcPlan {
    /// The names, as the index gave them when marking.
    refs: Vec<(String, ImageId)>,
    /// The bootstrap of every named image.
    bootstraps: HashMap<ImageId, Bootstrap>,
    /// Live blobs below the threshold, with their live ToC entries.
    compact: Vec<(BlobId, Vec<TocEntry>)>,
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
    let mut report = GcReport {
        dry_run: options.dry_run,
        compact_below: options.compact_below,
        ..GcReport::default()
    };
    // Mark. A named image whose bootstrap cannot be read stops gc: its chunks cannot be known.
    let refs = store.index().refs()?;
    let live_images: HashSet<ImageId> = refs.iter().map(|(_, id)| *id).collect();
    let mut bootstraps: HashMap<ImageId, Bootstrap> = HashMap::new();
    for id in &live_images {
        let bootstrap = store
            .whole_image_by_id(id)
            .map_err(|e| stopped(format!("image {id}"), e))?;
        bootstraps.insert(*id, bootstrap);
    }
    report.live_images = live_images.len() as u64;
    report.live_blobs = live_blobs(&bootstraps).len() as u64;
    let compact = if options.compact_below > 0.0 {
        choose_compaction(store, &bootstraps, options.compact_below, &mut report)?
    } else {
        Vec::new()
    };
    let sweep = Sweep::find(
        store,
        &bootstraps,
        &compact,
        &Rewrites::default(),
        &mut report,
    )?;
    // Estimate: compacted blobs shrink to about their live bytes.
    report.freed_bytes =
        (report.dead_bytes + sweep.compacted_bytes).saturating_sub(report.compacted_live_bytes);
    if options.dry_run {
        // The index entries gc would drop or re-point (without compaction's moves).
        index_batch(store, &refs, &Rewrites::default(), &sweep, &mut report)?;
    }
    Ok(GcPlan {
        refs,
        bootstraps,
        compact,
        report,
    })
}

fn live_blobs(bootstraps: &HashMap<ImageId, Bootstrap>) -> HashSet<BlobId> {
    bootstraps
        .values()
        .flat_map(|b| b.blobs.iter().map(|b| b.id))
        .collect()
}

/// The live blobs whose live chunks hold less than `compact_below` of their stored bytes, with
/// those live chunks.
fn choose_compaction(
    store: &Store,
    bootstraps: &HashMap<ImageId, Bootstrap>,
    compact_below: f64,
    report: &mut GcReport,
) -> Result<Vec<(BlobId, Vec<TocEntry>)>> {
    let mut used: HashSet<ChunkUse> = HashSet::new();
    for bootstrap in bootstraps.values() {
        for chunk in &bootstrap.chunks {
            let location = bootstrap.location(chunk);
            used.insert((location.blob, location.offset, chunk.id));
        }
    }
    let mut ids: Vec<BlobId> = live_blobs(bootstraps).into_iter().collect();
    ids.sort();
    let mut compact = Vec::new();
    for id in ids {
        let path = store.blob_path(&id);
        let reader = BlobReader::open(&path, id).map_err(|e| stopped(format!("blob {id}"), e))?;
        let toc = decode_toc(reader.bytes(), &format!("blob {id}"))
            .map_err(|e| stopped(format!("blob {id}"), e))?;
        let total: u64 = toc.iter().map(|e| e.location(id).stored_share()).sum();
        let live: Vec<TocEntry> = toc
            .into_iter()
            .filter(|e| used.contains(&(id, e.offset, e.id)))
            .collect();
        let live_bytes: u64 = live.iter().map(|e| e.location(id).stored_share()).sum();
        if total > 0 && (live_bytes as f64) < compact_below * total as f64 {
            report.compacted_blobs += 1;
            report.compacted_bytes += reader.bytes().len() as u64;
            report.compacted_live_bytes += live_bytes;
            compact.push((id, live));
        }
    }
    Ok(compact)
}

/// The files nothing live uses, and where the live chunks are.
struct Sweep {
    dead_blobs: Vec<StoreFile>,
    dead_bootstraps: Vec<StoreFile>,
    dead_layer_objects: Vec<StoreFile>,
    live_images: HashSet<ImageId>,
    live_layer_objects: HashSet<LayerMetaId>,
    live_blobs: HashSet<BlobId>,
    /// One live location per live chunk.
    live_chunks: HashMap<ChunkId, ChunkLocation>,
    /// Bytes of the compacted blobs (dead once compaction ran).
    compacted_bytes: u64,
}

impl Sweep {
    /// Lists `blobs/` and `bootstraps/` against the live `bootstraps`; counts into `report` the
    /// dead files other than compacted blobs and `rewritten` images' old bootstraps.
    fn find(
        store: &Store,
        bootstraps: &HashMap<ImageId, Bootstrap>,
        compact: &[(BlobId, Vec<TocEntry>)],
        rewritten: &Rewrites,
        report: &mut GcReport,
    ) -> Result<Sweep> {
        let live_images: HashSet<ImageId> = bootstraps.keys().copied().collect();
        let live_blobs = live_blobs(bootstraps);
        let mut live_chunks: HashMap<ChunkId, ChunkLocation> = HashMap::new();
        for bootstrap in bootstraps.values() {
            for chunk in &bootstrap.chunks {
                live_chunks
                    .entry(chunk.id)
                    .or_insert_with(|| bootstrap.location(chunk));
            }
        }
        let layout = store.layout();
        let dead_blobs: Vec<StoreFile> = files(&layout.blobs_dir())?
            .into_iter()
            .filter(|(name, _, _)| {
                BlobId::from_hex(name).is_none_or(|id| !live_blobs.contains(&id))
            })
            .collect();
        let dead_bootstraps: Vec<StoreFile> = files(&layout.bootstraps_dir())?
            .into_iter()
            .filter(|(name, _, _)| {
                ImageId::from_hex(name).is_none_or(|id| !live_images.contains(&id))
            })
            .collect();
        let live_layer_objects: HashSet<LayerMetaId> = bootstraps
            .values()
            .flat_map(|b| b.layers.iter().map(|l| l.meta))
            .collect();
        let dead_layer_objects: Vec<StoreFile> = files(&layout.layers_dir())?
            .into_iter()
            .filter(|(name, _, _)| {
                LayerMetaId::from_hex(name).is_none_or(|id| !live_layer_objects.contains(&id))
            })
            .collect();
        let compacted_ids: HashSet<String> = compact.iter().map(|(id, _)| id.to_hex()).collect();
        let rewritten_ids: HashSet<String> =
            rewritten.images.keys().map(|id| id.to_hex()).collect();
        let rewritten_objects: HashSet<String> =
            rewritten.objects.keys().map(|id| id.to_hex()).collect();
        let garbage_blobs = dead_blobs
            .iter()
            .filter(|(name, _, _)| !compacted_ids.contains(name));
        let garbage_bootstraps = dead_bootstraps
            .iter()
            .filter(|(name, _, _)| !rewritten_ids.contains(name));
        report.dead_blobs = garbage_blobs.clone().count() as u64;
        let garbage_objects = dead_layer_objects
            .iter()
            .filter(|(name, _, _)| !rewritten_objects.contains(name));
        report.dead_bootstraps = garbage_bootstraps.clone().count() as u64;
        report.dead_layer_objects = garbage_objects.clone().count() as u64;
        report.dead_bytes = garbage_blobs
            .chain(garbage_bootstraps)
            .chain(garbage_objects)
            .map(|(_, _, size)| size)
            .sum();
        Ok(Sweep {
            dead_blobs,
            dead_bootstraps,
            dead_layer_objects,
            live_images,
            live_layer_objects,
            live_blobs,
            live_chunks,
            compacted_bytes: report.compacted_bytes,
        })
    }
}

/// Runs gc: the plan, then (unless a dry run) its execution.
pub fn gc(store: &StoreWriter, options: &GcOptions) -> Result<GcReport> {
    let plan = plan(store, options)?;
    if options.dry_run {
        return Ok(plan.report);
    }
    apply(store, plan)
}

/// Carries out a plan in the write order of the module's doc: compaction's new blobs and
/// bootstraps, one synced index batch, then the deletions.
fn apply(store: &StoreWriter, plan: GcPlan) -> Result<GcReport> {
    let GcPlan {
        refs,
        mut bootstraps,
        compact,
        mut report,
    } = plan;
    let rewrites = compact_blobs(store, &compact, &mut bootstraps, &mut report)?;
    let sweep = Sweep::find(store, &bootstraps, &compact, &rewrites, &mut report)?;
    report.freed_bytes = (report.dead_bytes + sweep.compacted_bytes + rewrites.replaced_bytes)
        .saturating_sub(report.new_blob_bytes + rewrites.new_bytes);
    let batch = index_batch(store, &refs, &rewrites, &sweep, &mut report)?;
    crate::failpoint::check("gc.index.batch")?;
    store.index().commit(batch)?;
    store.index().flush()?;
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
    crate::fsutil::fsync_dir(&store.layout().bootstraps_dir())?;
    crate::fsutil::fsync_dir(&store.layout().layers_dir())?;
    crate::fsutil::fsync_dir(&store.layout().blobs_dir())?;
    Ok(report)
}

/// What compaction rewrote.
#[derive(Default)]
struct Rewrites {
    /// Old image id -> (new image id, new bootstrap size).
    images: HashMap<ImageId, (ImageId, u64)>,
    /// Old layer object -> the one rewritten from it.
    objects: HashMap<LayerMetaId, LayerMetaId>,
    /// Bytes of the new bootstraps and of the ones they replace.
    new_bytes: u64,
    replaced_bytes: u64,
}

/// Compaction steps 1 and 2: new blobs, then rewritten bootstraps (which replace the old ones
/// in `bootstraps`).
fn compact_blobs(
    store: &StoreWriter,
    compact: &[(BlobId, Vec<TocEntry>)],
    bootstraps: &mut HashMap<ImageId, Bootstrap>,
    report: &mut GcReport,
) -> Result<Rewrites> {
    let mut rewrites = Rewrites::default();
    if compact.is_empty() {
        return Ok(rewrites);
    }
    let moved = write_compacted(store, compact)?;
    report.new_blobs = moved.blobs.len() as u64;
    report.new_blob_bytes = moved.blobs.iter().map(|b| b.size).sum();
    let compacted: HashSet<BlobId> = compact.iter().map(|(id, _)| *id).collect();
    let mut ids: Vec<ImageId> = bootstraps.keys().copied().collect();
    ids.sort();
    for old_id in ids {
        let bootstrap = &bootstraps[&old_id];
        if !bootstrap.blobs.iter().any(|b| compacted.contains(&b.id)) {
            continue;
        }
        let mut new = relocate(bootstrap, &moved)?;
        let written = crate::ops::image_write::store_whole_image(store, &mut new, &FAIL_POINTS)?;
        for (old, rewritten) in bootstrap.layers.iter().zip(&new.layers) {
            if old.meta != rewritten.meta {
                rewrites.objects.insert(old.meta, rewritten.meta);
            }
        }
        let (new_id, new_size) = written.image;
        rewrites.new_bytes += new_size + written.object_bytes;
        let old_path = store.bootstrap_path(&old_id);
        rewrites.replaced_bytes += std::fs::metadata(&old_path)
            .map_err(|e| Error::io("stat", &old_path, e))?
            .len();
        rewrites.images.insert(old_id, (new_id, new_size));
        bootstraps.remove(&old_id);
        bootstraps.insert(new_id, new);
    }
    report.rewritten_images = rewrites.images.len() as u64;
    Ok(rewrites)
}

/// Step 3: names point at the rewritten images, their records move, chunk entries naming dead
/// blobs are re-pointed at a live copy or dropped, records of unnamed images are dropped.
fn index_batch(
    store: &Store,
    refs: &[(String, ImageId)],
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
        if sweep.live_layer_objects.contains(&meta) {
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
    for entry in store.index().chunk_entries()? {
        // An entry that leads nowhere is dropped like one naming a dead blob.
        let live = match entry.resolved {
            Ok((_, location)) if sweep.live_blobs.contains(&location.blob) => continue,
            Ok((id, _)) => sweep.live_chunks.get(&id).map(|live| (id, *live)),
            Err(_) => None,
        };
        match live {
            Some(copy) => {
                batch.chunks.push(copy);
                report.index_chunks_repointed += 1;
            }
            None => {
                batch.delete_chunks.push(entry.key);
                report.index_chunks_dropped += 1;
            }
        }
    }
    batch.delete_blobs = sweep
        .dead_blobs
        .iter()
        .filter_map(|(name, _, _)| BlobId::from_hex(name))
        .collect();
    for record in store.index().image_records()? {
        if !sweep.live_images.contains(&record.image_id) {
            batch.delete_images.push(record.image_id);
        }
    }
    Ok(batch)
}

/// Where compaction put the chunks it moved.
struct Moved {
    /// (old blob, old frame offset, chunk) -> new location.
    locations: HashMap<ChunkUse, ChunkLocation>,
    blobs: Vec<crate::format::blob::SealedBlob>,
}

/// Writes the live chunks of the blobs to compact into new blobs (each chunk once, read back
/// and verified on the way), and renames them into `blobs/` (step 1).
fn write_compacted(store: &StoreWriter, compact: &[(BlobId, Vec<TocEntry>)]) -> Result<Moved> {
    let mut builder = BlobBuilder::new(store, "gc compaction", "gc.compact.blob_fsync");
    let mut written: HashSet<ChunkId> = HashSet::new();
    for (blob, live) in compact {
        let reader = BlobReader::open(&store.blob_path(blob), *blob)?;
        let mut frame: Option<(u64, Vec<u8>)> = None;
        for entry in live {
            if frame
                .as_ref()
                .is_none_or(|(offset, _)| *offset != entry.offset)
            {
                frame = Some((entry.offset, reader.read_frame(&entry.location(*blob))?));
            }
            let (_, data) = frame.as_ref().expect("frame just read");
            let object = || format!("blob {blob} offset {}", entry.offset);
            let chunk =
                crate::format::chunk_from_frame(&entry.id, data, entry.skip, entry.len, object)?;
            if written.insert(entry.id) {
                builder.push(entry.id, chunk);
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
            locations.insert((*blob, entry.offset, entry.id), *location);
        }
    }
    crate::ops::blob_builder::publish(store, &sealed, "gc.compact.blob_rename", None)?;
    Ok(Moved {
        locations,
        blobs: sealed,
    })
}

/// The bootstrap with every chunk that compaction moved pointing at its new place, and a blob
/// table of exactly the blobs its chunks use now.
fn relocate(bootstrap: &Bootstrap, moved: &Moved) -> Result<Bootstrap> {
    let mut new = bootstrap.clone();
    let mut blobs: Vec<BlobRecord> = Vec::new();
    let mut blob_index: HashMap<BlobId, u32> = HashMap::new();
    let sizes: HashMap<BlobId, u64> = bootstrap
        .blobs
        .iter()
        .map(|b| (b.id, b.size))
        .chain(moved.blobs.iter().map(|b| (b.id, b.size)))
        .collect();
    for chunk in new.chunks.iter_mut() {
        let old = bootstrap.location(chunk);
        let location = moved
            .locations
            .get(&(old.blob, old.offset, chunk.id))
            .copied()
            .unwrap_or(old);
        let index = *blob_index.entry(location.blob).or_insert_with(|| {
            blobs.push(BlobRecord {
                id: location.blob,
                size: sizes.get(&location.blob).copied().unwrap_or(0),
            });
            (blobs.len() - 1) as u32
        });
        chunk.blob = index;
        chunk.offset = location.offset;
        chunk.stored_len = location.stored_len;
        chunk.frame_len = location.frame_len;
        chunk.skip = location.skip;
        chunk.codec = location.codec;
    }
    new.blobs = blobs;
    Ok(new)
}
