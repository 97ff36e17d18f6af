//! `verify --repair-index`: rebuilds the index (`STORE/index`) from the blobs, the bootstraps
//! and the layer objects they name.
//!
//! The index is derived data except the names: every chunk location is in a blob's ToC and
//! every image record follows from a bootstrap. So the rebuild reads every blob ToC and every
//! bootstrap (a file that fails its checks is reported and skipped, never deleted) and writes:
//! - `chunks`: every chunk of every good blob, one location per chunk id, preferring a plain frame
//!   over a delta frame, then a location some good bootstrap uses, then the old index's, then
//!   the first blob in name order;
//! - `images`: a record per good bootstrap, its figures taken from the bootstrap; `created`,
//!   `new_chunks` and `added_stored_bytes` are kept from the old record when there is one, else
//!   derived: `created` from the bootstrap file's mtime, and each blob counted as added by the
//!   earliest (by `created`) image that uses it;
//! - `layers`: each good image's layers, by digest and by diff_id, to their layer objects;
//! - `refs`: the old names whose image still has a good bootstrap, when the old index can be read
//!   at all; every good bootstrap no kept name reaches gets the name
//!   `recovered-<first 12 hex digits of its image id>`, so that nothing committed is lost. An
//!   image removed with `rm` but not yet garbage-collected therefore comes back under such a
//!   name (`cairn rm` it again).
//!
//! It runs alone (`WRITERS` exclusively, and the commit lock) and never needs to open the old
//! index for writing, so it works when the old index is missing or unreadable. Crash safety:
//! the new database is built in `STORE/index.new` (not under `tmp/`, where only writers' own
//! directories live), synced, then swapped in:
//! rename `index` -> `index.old`, rename `index.new` -> `index`, fsync `STORE`, remove
//! `index.old` (`StoreLayout::swap_in_new_index`); `StoreLayout::recover_interrupted_swap`
//! (run by every writer open) undoes or finishes a swap a crash interrupted.

use crate::error::{IoContext, Result};
use crate::format::blob::{decode_toc, BlobReader, TocEntry};
use crate::format::ChunkLocation;
use crate::index::{ImageRecord, Index, IndexBatch, LayerKey, Salvage};
use crate::layout::hex_files;
use crate::layout::{StoreLayout, WriterLock};
use crate::problem::Problem;
use crate::progress::{Progress, Unit};
use crate::store::read_bootstrap;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

pub use crate::index::RECOVERED_PREFIX;
/// Chunk entries per write batch of the new index.
const CHUNKS_PER_BATCH: usize = 100_000;

/// The state the old index was found in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OldIndex {
    /// Every entry could be read.
    #[default]
    Intact,
    /// It opened, but some entries or column families could not be read.
    Damaged,
    /// It could not be opened: no name survives, every image is recovered.
    Unreadable,
    /// There was none (or its directory held no database).
    Missing,
}

/// What `verify --repair-index` rebuilt, kept, dropped and recovered.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// The state the old index was found in.
    pub old_index: OldIndex,
    /// What could not be read of the old index (or why it could not be opened).
    pub old_index_problems: Vec<String>,
    /// Good blobs (ToC decoded).
    pub blobs: u64,
    /// Bytes of the good blobs (compressed, as stored).
    pub blob_bytes: u64,
    /// Good bootstraps; each is one image record.
    pub images: u64,
    /// Chunk entries written: one per distinct chunk of the good blobs.
    pub chunks: u64,
    /// Of those, entries the old index lacked or had pointing elsewhere.
    pub chunks_fixed: u64,
    /// Entries of the old index for chunks that no good blob holds.
    pub chunks_dropped: u64,
    /// Image records whose `created`, `new_chunks` and `added_stored_bytes` came from the old
    /// index (the others are derived).
    pub records_kept: u64,
    /// Old names kept (their image has a good bootstrap).
    pub refs_kept: Vec<NamedImage>,
    /// Old names dropped: their image's bootstrap is missing or damaged.
    pub refs_dropped: Vec<NamedImage>,
    /// Images no kept name reached, now named `recovered-<id>`.
    pub recovered: Vec<NamedImage>,
    /// Good bootstraps naming chunks that no good blob holds as they say (reads of the files
    /// using them will fail; `verify` names each file).
    pub incomplete_images: Vec<Problem>,
    /// Files skipped as damaged (left on disk as they are).
    pub damaged: Vec<Problem>,
}

/// A name and the image it leads to.
#[derive(Clone, Debug, Serialize)]
pub struct NamedImage {
    /// The image's name in the store (old, or `recovered-<id>`).
    pub name: String,
    /// The image's id (hex BLAKE3 of its bootstrap).
    pub image_id: String,
    /// Where the image was converted from (empty when its bootstrap is unreadable).
    pub reference: String,
}

/// What the rebuild keeps of one good bootstrap.
struct GoodImage {
    id: ImageId,
    /// Derived from the bootstrap (created, new_chunks and added_stored_bytes are set later).
    record: ImageRecord,
    /// When the bootstrap file was written (orders images within one second).
    mtime: std::time::Duration,
    blobs: Vec<BlobId>,
    /// Its distinct layer objects, each with the bytes of its file.
    objects: Vec<(LayerMetaId, u64)>,
    /// The `layers` column family's entries for its layers.
    layers: Vec<(LayerKey, LayerMetaId)>,
}

/// The location of a ToC entry of blob `blob` (as `SealedBlob::location` gives for a new blob).
fn toc_location(blob: BlobId, entry: &TocEntry) -> ChunkLocation {
    entry.location(blob)
}

fn problem(object: impl Into<String>, detail: impl Into<String>) -> Problem {
    Problem {
        object: object.into(),
        detail: detail.into(),
    }
}

/// Rebuilds the index under the commit lock `lock` (already taken by `StoreWriter`, which
/// also recovered any interrupted swap).
pub(crate) fn repair_index(
    layout: &StoreLayout,
    lock: &WriterLock,
    progress: &dyn Progress,
) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let old = read_old_index(layout, &mut report);
    let blob_files = hex_files(&layout.blobs_dir())?;
    let bootstrap_files = hex_files(&layout.bootstraps_dir())?;
    progress.set_length(
        (blob_files.len() + bootstrap_files.len()) as u64,
        Unit::Items,
    );
    let blobs = read_blobs(&blob_files, progress, &mut report);
    let (mut images, used) =
        read_bootstraps(layout, &bootstrap_files, &blobs, progress, &mut report)?;
    let chunks = choose_locations(&blobs, &used, &old, &mut report);
    fill_records(&mut images, &blobs, &old, &mut report);
    let refs = assign_names(&images, &old, &mut report);

    // Build the new index beside the old one, then swap it in.
    progress.set_message("writing index");
    let new_path = layout.index_new_dir();
    let layers = images.iter().flat_map(|i| i.layers.clone()).collect();
    let written = write_index(
        &new_path,
        &layout.blobs_dir(),
        chunks,
        images.into_iter().map(|i| i.record).collect(),
        refs,
        layers,
    );
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&new_path);
        return Err(e);
    }
    layout.swap_in_new_index(lock)?;
    progress.finish();
    Ok(report)
}

/// The old index, as far as it can be read: names, records, and locations to prefer.
fn read_old_index(layout: &StoreLayout, report: &mut RepairReport) -> Salvage {
    let old_path = layout.index_dir();
    // A directory without a database (its files deleted) is as good as none.
    if !Index::exists(&old_path) {
        report.old_index = OldIndex::Missing;
        return Salvage::default();
    }
    match Index::open_read_only(&old_path, &layout.blobs_dir()) {
        Ok(index) => {
            let salvage = index.salvage();
            if !salvage.problems.is_empty() {
                report.old_index = OldIndex::Damaged;
                report.old_index_problems = salvage.problems.clone();
            }
            salvage
        }
        Err(e) => {
            report.old_index = OldIndex::Unreadable;
            report.old_index_problems.push(e.to_string());
            Salvage::default()
        }
    }
}

/// Every good blob's ToC and size, by blob id (sorted: the tie-break between copies of a chunk).
type GoodBlobs = BTreeMap<BlobId, (u64, Vec<TocEntry>)>;

fn read_blobs(
    blob_files: &[(String, std::path::PathBuf)],
    progress: &dyn Progress,
    report: &mut RepairReport,
) -> GoodBlobs {
    progress.set_message("blobs");
    let mut blobs = GoodBlobs::new();
    for (name, path) in blob_files {
        progress.inc(1);
        let Some(id) = BlobId::from_hex(name) else {
            report.damaged.push(problem(
                format!("blobs/{name}"),
                "not a blob name (64 hex digits)",
            ));
            continue;
        };
        let object = format!("blob {id}");
        let toc = BlobReader::open(path, id).and_then(|reader| {
            let toc = decode_toc(reader.bytes(), &object)?;
            Ok((reader.bytes().len() as u64, toc))
        });
        match toc {
            Ok(toc) => {
                report.blob_bytes += toc.0;
                blobs.insert(id, toc);
            }
            Err(e) => report.damaged.push(problem(object, e.to_string())),
        }
    }
    report.blobs = blobs.len() as u64;
    blobs
}

/// Chunk copies (id, blob, frame offset) some good bootstrap uses.
type UsedCopies = HashSet<(ChunkId, BlobId, u64)>;

/// Every good bootstrap: its record, its blobs, and the chunk locations it uses.
fn read_bootstraps(
    layout: &StoreLayout,
    bootstrap_files: &[(String, std::path::PathBuf)],
    blobs: &GoodBlobs,
    progress: &dyn Progress,
    report: &mut RepairReport,
) -> Result<(Vec<GoodImage>, UsedCopies)> {
    let toc_index: HashMap<(BlobId, ChunkId, u64), &TocEntry> = blobs
        .iter()
        .flat_map(|(blob, (_, toc))| toc.iter().map(|e| ((*blob, e.id, e.slice.offset), e)))
        .collect();
    progress.set_message("bootstraps");
    let mut images: Vec<GoodImage> = Vec::new();
    let mut used = UsedCopies::new();
    for (name, path) in bootstrap_files {
        progress.inc(1);
        let Some(id) = ImageId::from_hex(name) else {
            report.damaged.push(problem(
                format!("bootstraps/{name}"),
                "not a bootstrap name (64 hex digits)",
            ));
            continue;
        };
        let read = read_bootstrap(path, &id).and_then(|bootstrap| {
            let objects = bootstrap
                .layers
                .iter()
                .map(|l| crate::store::open_layer_meta(layout, &l.meta))
                .collect::<Result<Vec<_>>>()?;
            Ok((bootstrap, objects))
        });
        let (bootstrap, objects) = match read {
            Ok(read) => read,
            Err(e) => {
                report
                    .damaged
                    .push(problem(format!("bootstrap {id}"), e.to_string()));
                continue;
            }
        };
        let meta = std::fs::metadata(path).with_path("stat", path)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        // Every chunk reference of its layer objects, streamed: a layer object that fails a
        // check while its entries are read makes the image damaged like a bad bootstrap.
        let (mut refs, mut missing) = (0u64, 0u64);
        let mut check = || -> Result<()> {
            for object in &objects {
                for entry in object.entries() {
                    for chunk in entry?.chunks {
                        refs += 1;
                        let location = chunk.location(object.blobs());
                        let found = toc_index
                            .get(&(location.blob, chunk.id, location.slice.offset))
                            .is_some_and(|e| toc_location(location.blob, e) == location);
                        if found {
                            used.insert((chunk.id, location.blob, location.slice.offset));
                        } else {
                            missing += 1;
                        }
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = check() {
            report
                .damaged
                .push(problem(format!("bootstrap {id}"), e.to_string()));
            continue;
        }
        if missing > 0 {
            report.incomplete_images.push(problem(
                format!("image {id}"),
                format!(
                    "{missing} of its {refs} chunk references are in no good blob as its layer \
                     objects say"
                ),
            ));
        }
        let files = objects.iter().map(|o| o.info().file_count).sum();
        let blobs: HashSet<BlobId> = objects
            .iter()
            .flat_map(|o| o.blobs().iter().map(|b| b.id))
            .collect();
        let mut object_sizes = Vec::new();
        for layer in &bootstrap.layers {
            if !object_sizes.iter().any(|(id, _)| *id == layer.meta) {
                let path = layout.layer_meta(&layer.meta);
                let size = std::fs::metadata(&path).with_path("stat", &path)?.len();
                object_sizes.push((layer.meta, size));
            }
        }
        images.push(GoodImage {
            id,
            record: crate::index::derived_record(id, &bootstrap, files, meta.len(), mtime),
            mtime,
            blobs: blobs.into_iter().collect(),
            objects: object_sizes,
            layers: bootstrap
                .layers
                .iter()
                // The layers' digests are not checked here: only the keys any import would
                // index (the diff_id, checked by `verify --full`).
                .flat_map(|l| crate::index::layer_keys(l, false))
                .collect(),
        });
    }
    report.images = images.len() as u64;
    Ok((images, used))
}

/// One location per chunk id; a plain frame wins over a delta frame (a delta frame's bases are
/// found through the index and must be plain), then a location a bootstrap uses, then the old
/// index's, then the first blob in name order. Sorted by chunk id.
fn choose_locations(
    blobs: &GoodBlobs,
    used: &UsedCopies,
    old: &Salvage,
    report: &mut RepairReport,
) -> Vec<(ChunkId, ChunkLocation)> {
    let mut best: HashMap<ChunkId, ((bool, bool, bool), ChunkLocation)> = HashMap::new();
    for (blob, (_, toc)) in blobs {
        for entry in toc {
            let location = toc_location(*blob, entry);
            let rank = (
                location.slice.codec == crate::format::Codec::Delta,
                !used.contains(&(entry.id, *blob, entry.slice.offset)),
                old.chunks.get(&entry.id) != Some(&location),
            );
            match best.get(&entry.id) {
                Some((r, _)) if *r <= rank => {}
                _ => {
                    best.insert(entry.id, (rank, location));
                }
            }
        }
    }
    let mut chunks: Vec<(ChunkId, ChunkLocation)> =
        best.into_iter().map(|(id, (_, loc))| (id, loc)).collect();
    chunks.sort_by_key(|(id, _)| *id);
    report.chunks = chunks.len() as u64;
    report.chunks_fixed = chunks
        .iter()
        .filter(|(id, loc)| old.chunks.get(id) != Some(loc))
        .count() as u64;
    let new_ids: HashSet<ChunkId> = chunks.iter().map(|(id, _)| *id).collect();
    report.chunks_dropped = old.chunks.keys().filter(|id| !new_ids.contains(id)).count() as u64;
    chunks
}

/// Records keep what only the convert knew; else it is derived (each blob and each layer object
/// is counted as added by the earliest image that uses it).
fn fill_records(
    images: &mut [GoodImage],
    blobs: &GoodBlobs,
    old: &Salvage,
    report: &mut RepairReport,
) {
    for image in images.iter_mut() {
        if let Some(previous) = old.images.get(&image.id) {
            image.record.created = previous.created;
            image.record.new_chunks = previous.new_chunks;
            image.record.added_stored_bytes = previous.added_stored_bytes;
            report.records_kept += 1;
        }
    }
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by_key(|&i| (images[i].record.created, images[i].mtime, images[i].id));
    let mut claimed: HashSet<BlobId> = HashSet::new();
    let mut claimed_objects: HashSet<LayerMetaId> = HashSet::new();
    for i in order {
        let derive = !old.images.contains_key(&images[i].id);
        for o in 0..images[i].objects.len() {
            let (object, size) = images[i].objects[o];
            if claimed_objects.insert(object) && derive {
                images[i].record.added_stored_bytes += size;
            }
        }
        for b in 0..images[i].blobs.len() {
            let blob = images[i].blobs[b];
            if !claimed.insert(blob) || !derive {
                continue;
            }
            if let Some((size, toc)) = blobs.get(&blob) {
                images[i].record.new_chunks += toc.len() as u64;
                images[i].record.added_stored_bytes += size;
            }
        }
    }
}

/// Names: the old ones that still lead to a good bootstrap, then one for every other image.
fn assign_names(
    images: &[GoodImage],
    old: &Salvage,
    report: &mut RepairReport,
) -> Vec<(String, ImageId)> {
    let references: HashMap<ImageId, &str> = images
        .iter()
        .map(|i| (i.id, i.record.reference.as_str()))
        .collect();
    let named_image = |name: &str, id: &ImageId| NamedImage {
        name: name.to_string(),
        image_id: id.to_hex(),
        reference: references.get(id).unwrap_or(&"").to_string(),
    };
    let mut refs: Vec<(String, ImageId)> = Vec::new();
    for (name, id) in &old.refs {
        if references.contains_key(id) {
            report.refs_kept.push(named_image(name, id));
            refs.push((name.clone(), *id));
        } else {
            report.refs_dropped.push(named_image(name, id));
        }
    }
    let named: HashSet<ImageId> = refs.iter().map(|(_, id)| *id).collect();
    let mut taken: HashSet<String> = refs.iter().map(|(name, _)| name.clone()).collect();
    for image in images {
        if named.contains(&image.id) {
            continue;
        }
        let base = format!("{RECOVERED_PREFIX}{}", image.id.short());
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        taken.insert(name.clone());
        report.recovered.push(named_image(&name, &image.id));
        refs.push((name, image.id));
    }
    refs
}

/// Writes a complete index into the new directory `path` and makes it durable.
fn write_index(
    path: &Path,
    blobs_dir: &Path,
    chunks: Vec<(ChunkId, ChunkLocation)>,
    images: Vec<ImageRecord>,
    refs: Vec<(String, ImageId)>,
    layers: Vec<(LayerKey, LayerMetaId)>,
) -> Result<()> {
    let index = Index::create(path, blobs_dir)?;
    for part in chunks.chunks(CHUNKS_PER_BATCH) {
        index.commit(IndexBatch {
            chunks: part.to_vec(),
            ..IndexBatch::default()
        })?;
    }
    // Every commit is a synced write, so the database is durable once this one returns.
    index.commit(IndexBatch {
        images,
        refs,
        layers,
        ..IndexBatch::default()
    })?;
    index.flush()?;
    drop(index);
    crate::fsutil::fsync_dir(path)
}

/// `cairn verify --repair-index`.
impl crate::store::StoreWriter {
    /// Rebuilds the index of the store in `root` from its blobs and bootstraps, keeping the
    /// names the old index still gives (see `ops::repair`). Needs no readable index, so it
    /// opens no `StoreWriter` first; it takes `WRITERS` exclusively and the commit lock itself.
    pub fn repair_index(root: &Path, progress: &dyn crate::Progress) -> Result<RepairReport> {
        let layout = StoreLayout::new(root);
        crate::store::Store::read_config(&layout)?;
        let _writers = layout.writers_exclusive()?;
        let lock = layout.lock()?;
        layout.recover_interrupted_swap(&lock)?;
        repair_index(&layout, &lock, progress)
    }
}
