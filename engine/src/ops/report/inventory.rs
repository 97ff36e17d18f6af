//! `inventory`: one row per image, platform and layer, with the columns a data-lake analysis of
//! a registry uses, plus what cairn knows of each layer.

use crate::error::Result;
use crate::store::Store;
use crate::ChunkId;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Serialize)]
pub struct InventoryRow {
    pub name: String,
    pub manifest_digest: String,
    pub architecture: String,
    pub os: String,
    pub variant: String,
    pub os_version: String,
    pub layer_index: usize,
    pub layer_digest: String,
    /// Compressed size of the layer blob.
    pub layer_size: u64,
    pub diff_id: String,
    pub uncompressed_size: u64,
    pub files: u64,
    /// Stored bytes of the chunks no other layer (by digest) of any image references.
    pub unique_stored_bytes: u64,
}

/// Images with the most layers, per platform.
#[derive(Clone, Debug, Serialize)]
pub struct LayerCount {
    pub platform: String,
    pub name: String,
    pub layers: usize,
}

pub fn inventory(store: &Store) -> Result<Vec<InventoryRow>> {
    let mut images = Vec::new();
    for (name, id) in store.index().refs()? {
        let record = store.image_record(&id)?;
        images.push((name, record, store.whole_image_by_id(&id)?));
    }
    // Chunks of each distinct layer (by digest), and how many distinct layers use each chunk.
    let mut layer_chunks: HashMap<crate::Sha256Digest, HashSet<ChunkId>> = HashMap::new();
    for (_, _, bootstrap) in &images {
        for layer in &bootstrap.layers {
            layer_chunks.entry(layer.digest).or_insert_with(|| {
                layer
                    .entries
                    .iter()
                    .flat_map(|e| &e.chunks)
                    .map(|&c| bootstrap.chunks[c as usize].id)
                    .collect()
            });
        }
    }
    let mut users: HashMap<ChunkId, u32> = HashMap::new();
    for chunks in layer_chunks.values() {
        for id in chunks {
            *users.entry(*id).or_default() += 1;
        }
    }
    let mut rows = Vec::new();
    for (name, record, bootstrap) in &images {
        let stored: HashMap<ChunkId, u64> = bootstrap
            .chunks
            .iter()
            .map(|c| (c.id, c.stored_share()))
            .collect();
        let platform = bootstrap.source.platform.clone().unwrap_or_default();
        for (i, layer) in bootstrap.layers.iter().enumerate() {
            let unique_stored_bytes = layer_chunks[&layer.digest]
                .iter()
                .filter(|id| users.get(id).copied() == Some(1))
                .map(|id| stored.get(id).copied().unwrap_or(0))
                .sum();
            rows.push(InventoryRow {
                name: name.clone(),
                manifest_digest: record.manifest_digest.clone().unwrap_or_default(),
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone().unwrap_or_default(),
                os_version: platform.os_version.clone().unwrap_or_default(),
                layer_index: i,
                layer_digest: layer.digest.to_string(),
                layer_size: layer.compressed_size,
                diff_id: layer.diff_id.to_string(),
                uncompressed_size: layer.size,
                files: layer.entries.iter().filter(|e| super::is_file(e)).count() as u64,
                unique_stored_bytes,
            });
        }
    }
    Ok(rows)
}

/// The `top` images with the most layers on each platform.
pub fn top_layers(rows: &[InventoryRow], top: usize) -> Vec<LayerCount> {
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for row in rows {
        let platform = if row.variant.is_empty() {
            format!("{}/{}", row.os, row.architecture)
        } else {
            format!("{}/{}/{}", row.os, row.architecture, row.variant)
        };
        *counts.entry((platform, row.name.clone())).or_default() += 1;
    }
    let mut all: Vec<LayerCount> = counts
        .into_iter()
        .map(|((platform, name), layers)| LayerCount {
            platform,
            name,
            layers,
        })
        .collect();
    all.sort_by(|a, b| {
        a.platform
            .cmp(&b.platform)
            .then(b.layers.cmp(&a.layers))
            .then(a.name.cmp(&b.name))
    });
    let mut out: Vec<LayerCount> = Vec::new();
    for entry in all {
        if out.iter().filter(|e| e.platform == entry.platform).count() < top {
            out.push(entry);
        }
    }
    out
}
