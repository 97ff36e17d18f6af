//! `stats`: the store's footprint (logical, unique, stored and metadata bytes), what each image
//! owns alone or shares, and a sharing matrix between images.

use super::{ChunkSize, ChunkSizes};
use crate::error::Result;
use crate::store::Store;
use crate::{ChunkId, ImageId};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// The store's footprint and how its images share chunks (`cairn stats`).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct StatsReport {
    /// Image names in the store (an image with two names counts twice).
    pub images: u64,
    /// Bytes of the uncompressed layer tars of every image, each image counted once.
    pub logical_bytes: u64,
    /// Distinct chunks of all images, counted once per id.
    pub unique_chunks: u64,
    /// Uncompressed bytes of those distinct chunks.
    pub unique_chunk_bytes: u64,
    /// Bytes of the files under `blobs/` (compressed, as stored, dead space included).
    pub stored_bytes: u64,
    /// Bytes of the bootstraps, the layer objects and the index directory.
    pub metadata_bytes: u64,
    /// logical / (stored + metadata).
    pub dedup_ratio: f64,
    /// Read amplification of random reads: bytes decompressed per byte read when each distinct
    /// chunk is read alone (its whole frame is decoded). Sequential reads (export, unpack, cat)
    /// decode each frame once.
    pub random_read_amplification: f64,
    /// Chunks stored as differences to older versions (`format::delta`).
    pub delta: super::delta_stats::DeltaStats,
    /// One row per detailed image: the names asked for, or every name when none was given.
    pub per_image: Vec<ImageShare>,
    /// The pairwise sharing of the detailed images, when asked for.
    pub matrix: Option<SharingMatrix>,
}

/// What one image owns alone and what it shares with other images.
#[derive(Clone, Debug, Serialize)]
pub struct ImageShare {
    /// The image's name in the store, as `cairn images` lists it.
    pub name: String,
    /// Bytes of the image's uncompressed layer tars.
    pub logical_bytes: u64,
    /// Uncompressed bytes of the image's distinct chunks.
    pub unique_bytes: u64,
    /// Of those, the uncompressed bytes of the chunks no other image references.
    pub owned_bytes: u64,
    /// The stored (compressed) bytes of those same chunks.
    pub owned_stored_bytes: u64,
    /// Uncompressed bytes of its distinct chunks at least one other image also references.
    pub shared_bytes: u64,
}

/// `share[i][j]`: the part of image i's distinct chunk bytes that image j also has.
#[derive(Clone, Debug, Serialize)]
pub struct SharingMatrix {
    /// The images' names: row and column `i` are `names[i]`.
    pub names: Vec<String>,
    /// Fractions from 0 to 1; the diagonal is 1 for an image with chunks.
    pub share: Vec<Vec<f64>>,
}

pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One image of the store (however many names it has): its uncompressed layer tars (from the
/// bootstrap) and its distinct chunks (streamed from its layer objects).
struct Image {
    logical_bytes: u64,
    chunks: ChunkSizes,
}

/// Every distinct chunk of the store's images, sorted by id, with how many images use it. Its
/// frame length is that of the last image (in the order they are first named) that has it.
struct StoreChunks(Vec<(ChunkSize, u32)>);

impl StoreChunks {
    fn of(images: &[Image]) -> StoreChunks {
        let mut all: Vec<ChunkSize> = images
            .iter()
            .flat_map(|i| i.chunks.iter().copied())
            .collect();
        // Stable: of one chunk, the later image's record comes last.
        all.sort_by_key(|c| c.id);
        let mut merged: Vec<(ChunkSize, u32)> = Vec::new();
        for chunk in all {
            match merged.last_mut() {
                Some((last, users)) if last.id == chunk.id => {
                    *last = chunk;
                    *users += 1;
                }
                _ => merged.push((chunk, 1)),
            }
        }
        StoreChunks(merged)
    }

    fn users(&self, id: &ChunkId) -> u32 {
        self.0
            .binary_search_by(|(c, _)| c.id.cmp(id))
            .map_or(0, |i| self.0[i].1)
    }
}

/// `share[i][j]` of the matrix: the part of `a`'s distinct chunk bytes that `b` also has.
fn share(a: &ChunkSizes, b: &ChunkSizes) -> f64 {
    let total = a.bytes();
    let common: u64 = a
        .iter()
        .filter(|c| b.contains(&c.id))
        .map(|c| c.len as u64)
        .sum();
    if total == 0 {
        0.0
    } else {
        common as f64 / total as f64
    }
}

/// `names`: the images to detail (all when empty); `matrix`: also the pairwise sharing of them.
pub(crate) fn stats(store: &Store, names: &[String], matrix: bool) -> Result<StatsReport> {
    let refs = store.index().refs()?;
    // Each image once, in the order of its first name.
    let mut images: Vec<Image> = Vec::new();
    let mut loaded: HashMap<ImageId, usize> = HashMap::new();
    let mut objects: HashMap<crate::LayerMetaId, crate::format::layer_meta::LayerMeta> =
        HashMap::new();
    for (_, id) in &refs {
        if loaded.contains_key(id) {
            continue;
        }
        let (bootstrap, layers) = store.image_layers_by_id(id)?;
        loaded.insert(*id, images.len());
        images.push(Image {
            logical_bytes: bootstrap.logical_bytes(),
            chunks: ChunkSizes::of(&layers)?,
        });
        for (layer, meta) in bootstrap.layers.iter().zip(layers) {
            objects.entry(layer.meta).or_insert(meta);
        }
    }
    let delta = super::delta_stats::delta_stats(store, objects.values())?;
    let logical_bytes = images.iter().map(|i| i.logical_bytes).sum();
    let all = StoreChunks::of(&images);
    for name in names {
        store.resolve(name)?;
    }
    // (name, image) of every image to detail.
    let detailed: Vec<(&String, &Image)> = refs
        .iter()
        .filter(|_| names.is_empty())
        .chain(
            names
                .iter()
                .filter_map(|n| refs.iter().find(|(name, _)| name == n)),
        )
        .map(|(name, id)| (name, &images[loaded[id]]))
        .collect();
    let per_image = detailed
        .iter()
        .map(|(name, image)| {
            let mut share = ImageShare {
                name: (*name).clone(),
                logical_bytes: image.logical_bytes,
                unique_bytes: 0,
                owned_bytes: 0,
                owned_stored_bytes: 0,
                shared_bytes: 0,
            };
            for chunk in image.chunks.iter() {
                let len = chunk.len as u64;
                share.unique_bytes += len;
                if all.users(&chunk.id) <= 1 {
                    share.owned_bytes += len;
                    share.owned_stored_bytes += chunk.stored as u64;
                } else {
                    share.shared_bytes += len;
                }
            }
            share
        })
        .collect();
    let matrix = matrix.then(|| SharingMatrix {
        names: detailed.iter().map(|(n, _)| (*n).clone()).collect(),
        share: detailed
            .iter()
            .map(|(_, a)| {
                detailed
                    .iter()
                    .map(|(_, b)| share(&a.chunks, &b.chunks))
                    .collect()
            })
            .collect(),
    });
    let stored_bytes = dir_bytes(&store.layout().blobs_dir());
    let layout = store.layout();
    let metadata_bytes = dir_bytes(&layout.bootstraps_dir())
        + dir_bytes(&layout.layers_dir())
        + dir_bytes(&layout.index_dir());
    let (read, decoded) = all.0.iter().fold((0u64, 0u64), |(r, d), (c, _)| {
        (r + c.len as u64, d + c.frame as u64)
    });
    Ok(StatsReport {
        images: refs.len() as u64,
        logical_bytes,
        unique_chunks: all.0.len() as u64,
        unique_chunk_bytes: read,
        stored_bytes,
        metadata_bytes,
        dedup_ratio: logical_bytes as f64 / (stored_bytes + metadata_bytes).max(1) as f64,
        random_read_amplification: decoded as f64 / read.max(1) as f64,
        delta,
        per_image,
        matrix,
    })
}

/// `cairn stats`.
impl crate::store::Store {
    /// The store's footprint; `names` to detail (all when empty), `matrix` for pairwise sharing.
    pub fn stats(&self, names: &[String], matrix: bool) -> Result<StatsReport> {
        stats(self, names, matrix)
    }
}
