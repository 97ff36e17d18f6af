//! `diff OLD NEW`: how much of NEW is already in OLD, at three granularities.
//!
//! Definitions (all from the bootstraps; "chunks" are distinct chunks of an image):
//! - logical bytes: the bytes of NEW's file contents, every reference counted;
//! - shared / new chunks and bytes: NEW's distinct chunks that OLD has / lacks (uncompressed);
//! - `added_stored_bytes`: the stored (compressed) bytes of NEW's chunks that OLD lacks;
//! - layer dedup: NEW's layers whose digest OLD does not have (what a registry adds), in tar bytes
//!   and in compressed bytes; file dedup: NEW's distinct file contents OLD does not have;
//!   chunk dedup: NEW's distinct chunks OLD lacks. The three `*_added_bytes` are uncompressed
//!   bytes so that they compare like for like.

use super::{content_key, is_file, ChunkSet, ChunkSizes};
use crate::error::Result;
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::EntryKind;
use crate::store::Store;
use crate::view::{record_entries, walk_batches, Found, MergedView};
use crate::ChunkId;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
/// How much of image NEW is already in image OLD (see the module's definitions).
pub struct DiffReport {
    /// OLD's name, as given.
    pub old: String,
    /// NEW's name, as given.
    pub new: String,
    /// Bytes of NEW's file contents over all its layers, every chunk reference counted.
    pub new_logical_bytes: u64,
    /// Chunk references of NEW's files over all its layers, repeats counted.
    pub new_logical_chunks: u64,
    /// Uncompressed bytes of NEW's distinct chunks (each chunk id counted once).
    pub new_unique_bytes: u64,
    /// NEW's distinct chunks, counted once per id.
    pub new_unique_chunks: u64,
    /// Uncompressed bytes of the distinct chunks both images hold.
    pub shared_bytes: u64,
    /// Chunks both images hold, counted once per distinct id.
    pub shared_chunks: u64,
    /// Uncompressed bytes of NEW's distinct chunks that OLD lacks.
    pub new_bytes: u64,
    /// NEW's distinct chunks that OLD lacks.
    pub new_chunks: u64,
    /// `shared_bytes / new_unique_bytes` (0 when NEW holds no chunk).
    pub shared_ratio_bytes: f64,
    /// `shared_chunks / new_unique_chunks` (0 when NEW holds no chunk).
    pub shared_ratio_chunks: f64,
    /// Stored (compressed) bytes of NEW's distinct chunks that OLD lacks.
    pub added_stored_bytes: u64,
    /// Layer-level dedup: uncompressed tar bytes of NEW's layers whose digest OLD lacks.
    pub layer_dedup_added_bytes: u64,
    /// The same layers' compressed blob bytes (what a registry would add).
    pub layer_dedup_added_compressed_bytes: u64,
    /// File-level dedup: bytes of NEW's distinct file contents (over all its layers) that
    /// OLD's layers lack.
    pub file_dedup_added_bytes: u64,
    /// Chunk-level dedup: uncompressed bytes of NEW's distinct chunks OLD lacks (= `new_bytes`).
    pub chunk_dedup_added_bytes: u64,
    /// Regular files of NEW's merged view at paths where OLD's view has no regular file.
    pub files_added: u64,
    /// Regular files of OLD's merged view at paths where NEW's view has no regular file.
    pub files_removed: u64,
    /// Regular files at the same path in both views whose content differs.
    pub files_changed: u64,
    /// Regular files at the same path in both views with the same content.
    pub files_unchanged: u64,
    /// One row per layer of NEW, bottom first.
    pub layers: Vec<LayerDiff>,
    /// NEW's added or changed files with the most new bytes, most first (at most `top`).
    pub top_files: Vec<FileDiff>,
}

#[derive(Clone, Debug, Serialize)]
/// How one layer of NEW compares with OLD.
pub struct LayerDiff {
    /// The layer's position in NEW, 0 = bottom.
    pub index: usize,
    /// The layer's digest (`sha256:...`, of the compressed blob).
    pub digest: String,
    /// Bytes of the layer's uncompressed tar.
    pub tar_bytes: u64,
    /// Bytes of the layer's compressed blob, as the source stored it.
    pub compressed_bytes: u64,
    /// Regular files in the layer.
    pub files: u64,
    /// Uncompressed bytes of this layer's distinct chunks.
    pub unique_bytes: u64,
    /// Uncompressed bytes of those distinct chunks that OLD holds (in any layer).
    pub shared_bytes: u64,
    /// `shared_bytes / unique_bytes` (0 for a layer without chunks).
    pub shared_ratio_bytes: f64,
    /// Index of OLD's layer with the same digest, if any.
    pub same_digest_as: Option<usize>,
    /// Share of this layer's distinct chunk bytes found in OLD's layer at the same index;
    /// `None` when OLD has fewer layers.
    pub position_match_ratio: Option<f64>,
    /// Index of OLD's layer sharing the most of this layer's distinct chunk bytes; `None`
    /// when no layer of OLD shares any.
    pub best_match: Option<usize>,
    /// The share of this layer's distinct chunk bytes found in `best_match` (0 without one).
    pub best_match_ratio: f64,
}

#[derive(Clone, Debug, Serialize)]
/// A file of NEW that is added or changed, with how many bytes OLD lacks.
pub struct FileDiff {
    /// The file's path in NEW's merged view (lossily converted to UTF-8).
    pub path: String,
    /// `"added"` (no regular file at this path in OLD) or `"changed"` (different content).
    pub status: &'static str,
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes of the file's distinct chunks that OLD lacks.
    pub new_bytes: u64,
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One image being compared: its bootstrap, its layer objects, its distinct chunks.
struct Side {
    bootstrap: Bootstrap,
    layers: Vec<LayerMeta>,
    sizes: ChunkSizes,
}

impl Side {
    fn open(store: &Store, name: &str) -> Result<Side> {
        let (bootstrap, layers) = store.image_layers(name)?;
        let sizes = ChunkSizes::of(&layers)?;
        Ok(Side {
            bootstrap,
            layers,
            sizes,
        })
    }
}

pub(crate) fn diff(
    store: &Store,
    old_name: &str,
    new_name: &str,
    top: usize,
) -> Result<DiffReport> {
    let old = Side::open(store, old_name)?;
    let new = Side::open(store, new_name)?;
    let (old_sizes, new_sizes) = (&old.sizes, &new.sizes);

    let mut report = DiffReport {
        old: old_name.to_string(),
        new: new_name.to_string(),
        new_logical_bytes: 0,
        new_logical_chunks: 0,
        new_unique_bytes: 0,
        new_unique_chunks: new_sizes.len() as u64,
        shared_bytes: 0,
        shared_chunks: 0,
        new_bytes: 0,
        new_chunks: 0,
        shared_ratio_bytes: 0.0,
        shared_ratio_chunks: 0.0,
        added_stored_bytes: 0,
        layer_dedup_added_bytes: 0,
        layer_dedup_added_compressed_bytes: 0,
        file_dedup_added_bytes: 0,
        chunk_dedup_added_bytes: 0,
        files_added: 0,
        files_removed: 0,
        files_changed: 0,
        files_unchanged: 0,
        layers: Vec::new(),
        top_files: Vec::new(),
    };
    for layer in &new.layers {
        report.new_logical_chunks += layer.info().chunk_refs;
        report.new_logical_bytes += layer.info().content_bytes;
    }
    for chunk in new_sizes.iter() {
        let len = chunk.len as u64;
        report.new_unique_bytes += len;
        if old_sizes.contains(&chunk.id) {
            report.shared_chunks += 1;
            report.shared_bytes += len;
        } else {
            report.new_chunks += 1;
            report.new_bytes += len;
            report.added_stored_bytes += chunk.stored as u64;
        }
    }
    report.chunk_dedup_added_bytes = report.new_bytes;
    report.shared_ratio_bytes = ratio(report.shared_bytes, report.new_unique_bytes);
    report.shared_ratio_chunks = ratio(report.shared_chunks, report.new_unique_chunks);

    // Layer-level dedup: layers are stored whole, keyed by digest.
    let old_digests: Vec<_> = old.bootstrap.layers.iter().map(|l| l.digest).collect();
    for layer in &new.bootstrap.layers {
        if !old_digests.contains(&layer.digest) {
            report.layer_dedup_added_bytes += layer.size;
            report.layer_dedup_added_compressed_bytes += layer.compressed_size;
        }
    }
    report.file_dedup_added_bytes = file_dedup_added_bytes(&old, &new)?;
    report.layers = layer_diffs(&old, &new)?;
    file_changes(&old, &new, top, &mut report)?;
    Ok(report)
}

/// File-level dedup: the bytes of NEW's distinct file contents (of every layer: what a
/// whole-file store keeps) that OLD lacks. Holds a 32-byte content key per file of OLD and 40
/// bytes per file of NEW, sorted, not the files.
fn file_dedup_added_bytes(old: &Side, new: &Side) -> Result<u64> {
    let mut old_keys = super::Distinct::new(|k: &[u8; 32]| k);
    for layer in &old.layers {
        for entry in layer.entries() {
            let entry = entry?;
            if is_file(&entry) {
                old_keys.push(content_key(&entry));
            }
        }
    }
    let old_keys = old_keys.finish();
    let mut new_keys = super::Distinct::new(|k: &([u8; 32], u64)| &k.0);
    for layer in &new.layers {
        for entry in layer.entries() {
            let entry = entry?;
            if is_file(&entry) {
                new_keys.push((content_key(&entry), entry.meta.size));
            }
        }
    }
    Ok(new_keys
        .finish()
        .iter()
        .filter(|(key, _)| old_keys.binary_search(key).is_err())
        .map(|(_, size)| size)
        .sum())
}

/// Per layer of NEW: its distinct chunk bytes, those OLD has, and how they match OLD's layers.
/// Holds the chunk sets of OLD's layers and of one layer of NEW at a time.
fn layer_diffs(old: &Side, new: &Side) -> Result<Vec<LayerDiff>> {
    let old_layers: Vec<ChunkSet> = old.layers.iter().map(ChunkSet::of).collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(new.layers.len());
    for (i, (layer, meta)) in new.bootstrap.layers.iter().zip(&new.layers).enumerate() {
        let chunks = ChunkSet::of(meta)?;
        let bytes_where = |keep: &dyn Fn(&ChunkId) -> bool| -> u64 {
            chunks
                .iter()
                .filter(|id| keep(id))
                .map(|id| new.sizes.len_of(id))
                .sum()
        };
        let unique = bytes_where(&|_| true);
        let shared = bytes_where(&|id| old.sizes.contains(id));
        let matches: Vec<f64> = old_layers
            .iter()
            .map(|other| ratio(bytes_where(&|id| other.contains(id)), unique))
            .collect();
        let best = matches
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .filter(|(_, r)| **r > 0.0);
        out.push(LayerDiff {
            index: i,
            digest: layer.digest.to_string(),
            tar_bytes: meta.info().source.size,
            compressed_bytes: layer.compressed_size,
            files: meta.info().file_count,
            unique_bytes: unique,
            shared_bytes: shared,
            shared_ratio_bytes: ratio(shared, unique),
            same_digest_as: old
                .bootstrap
                .layers
                .iter()
                .position(|l| l.digest == layer.digest),
            position_match_ratio: matches.get(i).copied(),
            best_match: best.map(|(j, _)| j),
            best_match_ratio: best.map_or(0.0, |(_, r)| *r),
        });
    }
    Ok(out)
}

/// True if `record` is a regular file's.
fn is_file_found(found: &Found) -> bool {
    found.kind() == Some(EntryKind::File)
}

/// The `top` files with the most new bytes (ties by path), kept in a bounded heap: its
/// smallest is the first to go.
struct TopFiles {
    top: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

/// A file ordered by new bytes, then by path the other way (so the largest is the best).
struct Ranked(FileDiff);

impl Ranked {
    fn key(&self) -> (u64, Reverse<&str>) {
        (self.0.new_bytes, Reverse(self.0.path.as_str()))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl TopFiles {
    fn push(&mut self, file: FileDiff) {
        if self.top == 0 {
            return;
        }
        self.heap.push(Reverse(Ranked(file)));
        if self.heap.len() > self.top {
            self.heap.pop();
        }
    }

    /// Most new bytes first, then by path.
    fn into_sorted(self) -> Vec<FileDiff> {
        let mut files: Vec<Ranked> = self.heap.into_iter().map(|r| r.0).collect();
        files.sort_by(|a, b| b.cmp(a));
        files.into_iter().map(|r| r.0).collect()
    }
}

/// Files added, removed and changed between the two merged views, and the top files by new
/// bytes. Walks each view once, looking each file up in the other; entries are decoded a batch
/// of files at a time (`walk_batches`), each side's in entry order.
fn file_changes(old: &Side, new: &Side, top: usize, report: &mut DiffReport) -> Result<()> {
    let old_view = MergedView::new(&old.layers, None);
    let new_view = MergedView::new(&new.layers, None);
    let mut files = TopFiles {
        top,
        heap: BinaryHeap::new(),
    };
    walk_batches(&new_view, is_file_found, |batch| {
        let found: Vec<_> = batch.iter().map(|(p, f)| (&p[..], f)).collect();
        let entries = record_entries(&new.layers, &found)?;
        // The same paths in OLD, where they are files.
        let mut before = Vec::with_capacity(batch.len());
        for (path, _) in &batch {
            before.push(
                old_view
                    .get(path)?
                    .filter(is_file_found)
                    .map(|f| (&path[..], f)),
            );
        }
        let old_found: Vec<_> = before.iter().flatten().map(|(p, f)| (*p, f)).collect();
        let mut old_entries = record_entries(&old.layers, &old_found)?.into_iter();
        for (((path, _), entry), before) in batch.iter().zip(entries).zip(&before) {
            let before = match before {
                Some(_) => old_entries.next(),
                None => None,
            };
            if let Some(file) = file_change((old, new), path, entry, before, report) {
                files.push(file);
            }
        }
        Ok(())
    })?;
    old_view.walk(|path, found| {
        if is_file_found(found) && !new_view.get(path)?.is_some_and(|f| is_file_found(&f)) {
            report.files_removed += 1;
        }
        Ok(())
    })?;
    report.top_files = files.into_sorted();
    Ok(())
}

/// Counts NEW's file `entry` at `path` (OLD's file there is `before`) as added, changed or
/// unchanged; the row of an added or changed one.
fn file_change(
    (old, new): (&Side, &Side),
    path: &[u8],
    entry: LayerEntry,
    before: Option<LayerEntry>,
    report: &mut DiffReport,
) -> Option<FileDiff> {
    let status = match before {
        Some(before) if same_content(&before, &entry) => {
            report.files_unchanged += 1;
            return None;
        }
        Some(_) => {
            report.files_changed += 1;
            "changed"
        }
        None => {
            report.files_added += 1;
            "added"
        }
    };
    let mut distinct: Vec<ChunkId> = entry.chunks.iter().map(|c| c.id).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let new_bytes = distinct
        .iter()
        .filter(|id| !old.sizes.contains(id))
        .map(|id| new.sizes.len_of(id))
        .sum();
    Some(FileDiff {
        path: String::from_utf8_lossy(path).into_owned(),
        status,
        size: entry.meta.size,
        new_bytes,
    })
}

/// Equal chunk lists: the same content.
fn same_content(a: &LayerEntry, b: &LayerEntry) -> bool {
    a.chunks.len() == b.chunks.len() && a.chunks.iter().zip(&b.chunks).all(|(x, y)| x.id == y.id)
}

/// `cairn diff`.
impl crate::store::Store {
    /// What of image `new` image `old` already has (`top`: how many files to list).
    pub fn diff(&self, old: &str, new: &str, top: usize) -> Result<DiffReport> {
        diff(self, old, new, top)
    }
}
