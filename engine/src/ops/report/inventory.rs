//! `inventory`: one row per image, platform and layer, with the columns a data-lake analysis of
//! a registry uses, plus what cairn knows of each layer.

use super::{ChunkSet, ChunkSizes};
use crate::error::Result;
use crate::store::Store;
use crate::{ChunkId, Sha256Digest};
use serde::Serialize;
use std::collections::HashMap;

/// One layer of one stored image: a row of `cairn inventory`.
#[derive(Clone, Debug, Serialize)]
pub struct InventoryRow {
    /// The image's name in the store, as `cairn images` lists it.
    pub name: String,
    /// The digest of the image's source manifest; empty when it had none (a bare layer tar).
    pub manifest_digest: String,
    /// The image's CPU architecture (e.g. `amd64`); empty when the source stated no platform.
    pub architecture: String,
    /// The image's operating system (e.g. `linux`); empty when the source stated no platform.
    pub os: String,
    /// The architecture variant (e.g. `v8`); empty when there is none.
    pub variant: String,
    /// The OS version (Windows images); empty when there is none.
    pub os_version: String,
    /// The layer's position in the image, 0 = bottom.
    pub layer_index: usize,
    /// The layer's digest (`sha256:...`, of the compressed blob).
    pub layer_digest: String,
    /// Compressed size of the layer blob in bytes, as the source stored it.
    pub layer_size: u64,
    /// The digest of the layer's uncompressed tar (`sha256:...`).
    pub diff_id: String,
    /// Bytes of the layer's uncompressed tar.
    pub uncompressed_size: u64,
    /// Regular files in the layer.
    pub files: u64,
    /// Stored bytes of the chunks no other layer (by digest) of any image references.
    pub unique_stored_bytes: u64,
}

/// Images with the most layers, per platform.
#[derive(Clone, Debug, Serialize)]
pub struct LayerCount {
    /// The platform, `os/arch[/variant]` (`/` alone for images without one).
    pub platform: String,
    /// The image's name in the store.
    pub name: String,
    /// The image's number of layers.
    pub layers: usize,
}

pub(crate) fn inventory(store: &Store) -> Result<Vec<InventoryRow>> {
    let mut images = Vec::new();
    // Chunks of each distinct layer (by digest), streamed from its layer object once.
    let mut layer_chunks: HashMap<Sha256Digest, ChunkSet> = HashMap::new();
    for (name, id) in store.index().refs()? {
        let record = store.image_record(&id)?;
        let (bootstrap, layers) = store.image_layers_by_id(&id)?;
        for (layer, meta) in bootstrap.layers.iter().zip(&layers) {
            if let std::collections::hash_map::Entry::Vacant(e) = layer_chunks.entry(layer.digest) {
                e.insert(ChunkSet::of(meta)?);
            }
        }
        images.push((name, record, bootstrap, layers));
    }
    // How many distinct layers use each chunk: the layers' sets merged, sorted by id.
    let mut users: Vec<ChunkId> = layer_chunks
        .values()
        .flat_map(|s| s.iter().copied())
        .collect();
    users.sort_unstable();
    let users_of = |id: &ChunkId| {
        let start = users.partition_point(|u| u < id);
        users[start..].iter().take_while(|u| *u == id).count()
    };
    let mut rows = Vec::new();
    for (name, record, bootstrap, layers) in &images {
        let stored = ChunkSizes::of(layers)?;
        let platform = bootstrap.source.platform.clone().unwrap_or_default();
        for (i, (layer, meta)) in bootstrap.layers.iter().zip(layers).enumerate() {
            let unique_stored_bytes = layer_chunks[&layer.digest]
                .iter()
                .filter(|id| users_of(id) == 1)
                .map(|id| stored.get(id).map_or(0, |c| c.stored as u64))
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
                uncompressed_size: meta.info().source.size,
                files: meta.info().file_count,
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

/// `cairn inventory` of this store.
impl crate::store::Store {
    /// One row per image, platform and layer.
    pub fn inventory(&self) -> Result<Vec<InventoryRow>> {
        inventory(self)
    }
}
