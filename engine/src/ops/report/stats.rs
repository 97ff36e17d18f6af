//! `stats`: the store's footprint (logical, unique, stored and metadata bytes), what each image
//! owns alone or shares, and a sharing matrix between images.

use super::{chunk_sizes, ChunkSizes};
use crate::error::Result;
use crate::store::Store;
use crate::ChunkId;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    pub images: u64,
    /// Uncompressed layer tars of every image.
    pub logical_bytes: u64,
    /// Distinct chunks of all images, and their uncompressed bytes.
    pub unique_chunks: u64,
    pub unique_chunk_bytes: u64,
    /// Bytes of the blob files.
    pub stored_bytes: u64,
    /// Bytes of the bootstraps and of the index directory.
    pub metadata_bytes: u64,
    /// logical / (stored + metadata).
    pub dedup_ratio: f64,
    /// Read amplification of random reads: bytes decompressed per byte read when each distinct
    /// chunk is read alone (its whole frame is decoded). Sequential reads (export, unpack, cat)
    /// decode each frame once.
    pub random_read_amplification: f64,
    pub per_image: Vec<ImageShare>,
    pub matrix: Option<SharingMatrix>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImageShare {
    pub name: String,
    pub logical_bytes: u64,
    /// Distinct chunk bytes of the image.
    pub unique_bytes: u64,
    /// Of those, bytes no other image references, uncompressed and as stored.
    pub owned_bytes: u64,
    pub owned_stored_bytes: u64,
    /// Bytes it shares with at least one other image.
    pub shared_bytes: u64,
}

/// `share[i][j]`: the part of image i's distinct chunk bytes that image j also has.
#[derive(Clone, Debug, Serialize)]
pub struct SharingMatrix {
    pub names: Vec<String>,
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

/// `names`: the images to detail (all when empty); `matrix`: also the pairwise sharing of them.
pub fn stats(store: &Store, names: &[String], matrix: bool) -> Result<StatsReport> {
    let refs = store.index().refs()?;
    // (name, logical bytes, distinct chunks) of every named image.
    let mut per_image_chunks: Vec<(String, u64, ChunkSizes)> = Vec::new();
    let mut loaded: HashMap<crate::ImageId, usize> = HashMap::new();
    // Distinct chunk -> (its length, its frame's decoded length).
    let mut frames: HashMap<ChunkId, (u64, u64)> = HashMap::new();
    for (name, id) in &refs {
        let bootstrap = store.whole_image_by_id(id)?;
        for chunk in &bootstrap.chunks {
            frames.insert(chunk.id, (chunk.len as u64, chunk.frame_len as u64));
        }
        loaded.insert(*id, per_image_chunks.len());
        per_image_chunks.push((
            name.clone(),
            bootstrap.logical_bytes(),
            chunk_sizes(&bootstrap),
        ));
    }
    // How many images reference each chunk (two names of one image count once).
    let mut users: HashMap<ChunkId, u32> = HashMap::new();
    let mut seen_images = std::collections::HashSet::new();
    let mut logical_bytes = 0;
    for (_, id) in &refs {
        if !seen_images.insert(*id) {
            continue;
        }
        let (_, logical, chunks) = &per_image_chunks[loaded[id]];
        logical_bytes += logical;
        for chunk in chunks.keys() {
            *users.entry(*chunk).or_default() += 1;
        }
    }
    let mut all_sizes: HashMap<ChunkId, u64> = HashMap::new();
    for (_, _, chunks) in &per_image_chunks {
        for (id, (len, _)) in chunks {
            all_sizes.insert(*id, *len);
        }
    }
    for name in names {
        store.resolve(name)?;
    }
    let detailed: Vec<&(String, u64, ChunkSizes)> = if names.is_empty() {
        per_image_chunks.iter().collect()
    } else {
        names
            .iter()
            .filter_map(|n| per_image_chunks.iter().find(|(name, _, _)| name == n))
            .collect()
    };
    let per_image = detailed
        .iter()
        .map(|(name, logical, chunks)| {
            let mut share = ImageShare {
                name: name.clone(),
                logical_bytes: *logical,
                unique_bytes: 0,
                owned_bytes: 0,
                owned_stored_bytes: 0,
                shared_bytes: 0,
            };
            for (id, (len, stored)) in chunks {
                share.unique_bytes += len;
                if users.get(id).copied().unwrap_or(0) <= 1 {
                    share.owned_bytes += len;
                    share.owned_stored_bytes += stored;
                } else {
                    share.shared_bytes += len;
                }
            }
            share
        })
        .collect();
    let matrix = matrix.then(|| SharingMatrix {
        names: detailed.iter().map(|(n, _, _)| n.clone()).collect(),
        share: detailed
            .iter()
            .map(|(_, _, a)| {
                let total: u64 = a.values().map(|s| s.0).sum();
                detailed
                    .iter()
                    .map(|(_, _, b)| {
                        let common: u64 = a
                            .iter()
                            .filter(|(id, _)| b.contains_key(id))
                            .map(|(_, s)| s.0)
                            .sum();
                        if total == 0 {
                            0.0
                        } else {
                            common as f64 / total as f64
                        }
                    })
                    .collect()
            })
            .collect(),
    });
    let stored_bytes = dir_bytes(&store.layout().blobs_dir());
    let metadata_bytes =
        dir_bytes(&store.layout().bootstraps_dir()) + dir_bytes(&store.layout().index_dir());
    Ok(StatsReport {
        images: refs.len() as u64,
        logical_bytes,
        unique_chunks: all_sizes.len() as u64,
        unique_chunk_bytes: all_sizes.values().sum(),
        stored_bytes,
        metadata_bytes,
        dedup_ratio: logical_bytes as f64 / (stored_bytes + metadata_bytes).max(1) as f64,
        random_read_amplification: {
            let (read, decoded) = frames
                .values()
                .fold((0u64, 0u64), |(r, d), (len, frame)| (r + len, d + frame));
            decoded as f64 / read.max(1) as f64
        },
        per_image,
        matrix,
    })
}
