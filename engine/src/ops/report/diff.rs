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

use super::{chunk_sizes, content_key, is_file, ChunkSizes};
use crate::error::Result;
use crate::layer::EntryKind;
use crate::ops::view::{MemoryLayerPaths, MergedView};
use crate::ops::whole_image::{EntryRecord, WholeImage};
use crate::store::Store;
use crate::ChunkId;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub old: String,
    pub new: String,
    pub new_logical_bytes: u64,
    pub new_logical_chunks: u64,
    pub new_unique_bytes: u64,
    pub new_unique_chunks: u64,
    pub shared_bytes: u64,
    pub shared_chunks: u64,
    pub new_bytes: u64,
    pub new_chunks: u64,
    pub shared_ratio_bytes: f64,
    pub shared_ratio_chunks: f64,
    pub added_stored_bytes: u64,
    pub layer_dedup_added_bytes: u64,
    pub layer_dedup_added_compressed_bytes: u64,
    pub file_dedup_added_bytes: u64,
    pub chunk_dedup_added_bytes: u64,
    pub files_added: u64,
    pub files_removed: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    pub layers: Vec<LayerDiff>,
    pub top_files: Vec<FileDiff>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerDiff {
    pub index: usize,
    pub digest: String,
    pub tar_bytes: u64,
    pub compressed_bytes: u64,
    pub files: u64,
    /// Distinct chunk bytes of this layer, and those OLD has.
    pub unique_bytes: u64,
    pub shared_bytes: u64,
    pub shared_ratio_bytes: f64,
    /// OLD's layer with the same digest, if any.
    pub same_digest_as: Option<usize>,
    /// Share of this layer's bytes found in OLD's layer at the same position.
    pub position_match_ratio: Option<f64>,
    /// OLD's layer sharing the most bytes with this one, and that share.
    pub best_match: Option<usize>,
    pub best_match_ratio: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// added, changed
    pub status: &'static str,
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

/// Distinct chunk ids of one layer.
fn layer_chunks(bootstrap: &WholeImage, layer: usize) -> HashSet<ChunkId> {
    bootstrap.layers[layer]
        .entries
        .iter()
        .flat_map(|e| &e.chunks)
        .map(|&c| bootstrap.chunks[c as usize].id)
        .collect()
}

fn bytes_of(ids: &HashSet<ChunkId>, sizes: &ChunkSizes) -> u64 {
    ids.iter().map(|id| sizes.get(id).map_or(0, |s| s.0)).sum()
}

pub fn diff(store: &Store, old_name: &str, new_name: &str, top: usize) -> Result<DiffReport> {
    let old = store.whole_image(old_name)?;
    let new = store.whole_image(new_name)?;
    let old_sizes = chunk_sizes(&old);
    let new_sizes = chunk_sizes(&new);

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
    for entry in new.layers.iter().flat_map(|l| &l.entries) {
        report.new_logical_chunks += entry.chunks.len() as u64;
        report.new_logical_bytes += entry.meta.size;
    }
    for (id, &(len, stored)) in &new_sizes {
        report.new_unique_bytes += len;
        if old_sizes.contains_key(id) {
            report.shared_chunks += 1;
            report.shared_bytes += len;
        } else {
            report.new_chunks += 1;
            report.new_bytes += len;
            report.added_stored_bytes += stored;
        }
    }
    report.chunk_dedup_added_bytes = report.new_bytes;
    report.shared_ratio_bytes = ratio(report.shared_bytes, report.new_unique_bytes);
    report.shared_ratio_chunks = ratio(report.shared_chunks, report.new_unique_chunks);

    // Layer-level dedup: layers are stored whole, keyed by digest.
    let old_digests: Vec<_> = old.layers.iter().map(|l| l.digest).collect();
    for layer in &new.layers {
        if !old_digests.contains(&layer.digest) {
            report.layer_dedup_added_bytes += layer.size;
            report.layer_dedup_added_compressed_bytes += layer.compressed_size;
        }
    }

    // File-level dedup: distinct file contents of every layer (what a whole-file store keeps).
    let old_contents: HashSet<Vec<ChunkId>> = old
        .layers
        .iter()
        .flat_map(|l| &l.entries)
        .filter(|e| is_file(e))
        .map(|e| content_key(&old, e))
        .collect();
    let mut seen = HashSet::new();
    for entry in new
        .layers
        .iter()
        .flat_map(|l| &l.entries)
        .filter(|e| is_file(e))
    {
        let key = content_key(&new, entry);
        if !old_contents.contains(&key) && seen.insert(key) {
            report.file_dedup_added_bytes += entry.meta.size;
        }
    }

    report.layers = layer_diffs(&old, &new, &old_sizes, &new_sizes);
    file_changes(&old, &new, (&old_sizes, &new_sizes), top, &mut report)?;
    Ok(report)
}

fn layer_diffs(
    old: &WholeImage,
    new: &WholeImage,
    old_sizes: &ChunkSizes,
    new_sizes: &ChunkSizes,
) -> Vec<LayerDiff> {
    let old_layers: Vec<HashSet<ChunkId>> = (0..old.layers.len())
        .map(|i| layer_chunks(old, i))
        .collect();
    new.layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let chunks = layer_chunks(new, i);
            let unique = bytes_of(&chunks, new_sizes);
            let shared: u64 = chunks
                .iter()
                .filter(|id| old_sizes.contains_key(id))
                .map(|id| new_sizes[id].0)
                .sum();
            let share_with = |other: &HashSet<ChunkId>| {
                ratio(
                    chunks
                        .iter()
                        .filter(|id| other.contains(id))
                        .map(|id| new_sizes[id].0)
                        .sum(),
                    unique,
                )
            };
            let matches: Vec<f64> = old_layers.iter().map(share_with).collect();
            let best = matches
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .filter(|(_, r)| **r > 0.0);
            LayerDiff {
                index: i,
                digest: layer.digest.to_string(),
                tar_bytes: layer.size,
                compressed_bytes: layer.compressed_size,
                files: layer.entries.iter().filter(|e| is_file(e)).count() as u64,
                unique_bytes: unique,
                shared_bytes: shared,
                shared_ratio_bytes: ratio(shared, unique),
                same_digest_as: old.layers.iter().position(|l| l.digest == layer.digest),
                position_match_ratio: matches.get(i).copied(),
                best_match: best.map(|(j, _)| j),
                best_match_ratio: best.map_or(0.0, |(_, r)| *r),
            }
        })
        .collect()
}

/// The regular file at `path` of a bootstrap's view, if there is one.
fn file_at<'b>(
    view: &MergedView<MemoryLayerPaths>,
    b: &'b WholeImage,
    path: &[u8],
) -> Result<Option<&'b EntryRecord>> {
    Ok(match view.get(path)? {
        Some((layer, record)) if record.kind == Some(EntryKind::File) => {
            Some(MemoryLayerPaths::entry(b, layer, &record)?)
        }
        _ => None,
    })
}

/// Files added, removed and changed between the two merged views, and the top files by new bytes.
fn file_changes(
    old: &WholeImage,
    new: &WholeImage,
    (old_sizes, new_sizes): (&ChunkSizes, &ChunkSizes),
    top: usize,
    report: &mut DiffReport,
) -> Result<()> {
    let old_layers = MemoryLayerPaths::of_bootstrap(old);
    let new_layers = MemoryLayerPaths::of_bootstrap(new);
    let old_view = MergedView::new(&old_layers, None);
    let new_view = MergedView::new(&new_layers, None);
    let mut files = Vec::new();
    new_view.walk(|path, layer, record| {
        if record.kind != Some(EntryKind::File) {
            return Ok(());
        }
        let entry = MemoryLayerPaths::entry(new, layer, record)?;
        let status = match file_at(&old_view, old, path)? {
            Some(before) => {
                if content_key(old, before) == content_key(new, entry) {
                    report.files_unchanged += 1;
                    return Ok(());
                }
                report.files_changed += 1;
                "changed"
            }
            None => {
                report.files_added += 1;
                "added"
            }
        };
        let distinct: HashSet<ChunkId> = content_key(new, entry).into_iter().collect();
        let new_bytes = distinct
            .iter()
            .filter(|id| !old_sizes.contains_key(id))
            .map(|id| new_sizes.get(id).map_or(0, |s| s.0))
            .sum();
        files.push(FileDiff {
            path: String::from_utf8_lossy(path).into_owned(),
            status,
            size: entry.meta.size,
            new_bytes,
        });
        Ok(())
    })?;
    old_view.walk(|path, _, record| {
        if record.kind == Some(EntryKind::File) && file_at(&new_view, new, path)?.is_none() {
            report.files_removed += 1;
        }
        Ok(())
    })?;
    files.sort_by(|a, b| {
        b.new_bytes
            .cmp(&a.new_bytes)
            .then_with(|| a.path.cmp(&b.path))
    });
    files.truncate(top);
    report.top_files = files;
    Ok(())
}
