//! `cairn dict export`: the dictionary (`format::dict`) of what this store holds.

use crate::error::{Error, Result};
pub use crate::format::dict::{ChunkDictionary, DictImage};
use crate::store::Store;
use crate::ChunkId;

/// The dictionary of the named images' chunks, or with `all` of every chunk in the store.
pub(crate) fn export_dict(store: &Store, names: &[String], all: bool) -> Result<ChunkDictionary> {
    let mut images = Vec::new();
    let mut chunks: Vec<(ChunkId, u32)> = Vec::new();
    for name in names {
        let id = store.resolve(name)?;
        images.push(DictImage {
            name: name.clone(),
            id: id.to_hex(),
        });
        let (_, layers) = store.image_layers_by_id(&id)?;
        for layer in &layers {
            for entry in layer.entries() {
                chunks.extend(entry?.chunks.iter().map(|c| (c.id, c.slice.len)));
            }
        }
    }
    if all {
        store.index().for_each_chunk_entry(|entry| {
            let (id, location) = entry.resolved.map_err(|e| {
                Error::corrupt(
                    "chunk index",
                    format!("{e}; `cairn verify --repair-index` rebuilds it"),
                )
            })?;
            chunks.push((id, location.slice.len));
            Ok(())
        })?;
        for (name, id) in store.index().refs()? {
            images.push(DictImage {
                name,
                id: id.to_hex(),
            });
        }
    }
    Ok(ChunkDictionary::new(images, all, chunks))
}

impl Store {
    /// The chunk dictionary of `names` (or, with `all`, of every image): what a sender may
    /// leave out of a bundle for this store.
    pub fn export_dict(&self, names: &[String], all: bool) -> Result<ChunkDictionary> {
        export_dict(self, names, all)
    }
}
