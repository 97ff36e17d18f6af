//! The mark: what named (and leased) images use.

use super::stopped;
use crate::error::Result;
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::LayerMeta;
use crate::format::ChunkLocation;
use crate::store::Store;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use std::collections::{HashMap, HashSet};

/// What named images use: their bootstraps and their layer objects (open: tables only), and
/// the base chunks of the delta frames those objects use (where the index has them).
pub(crate) struct LiveSet {
    pub bootstraps: HashMap<ImageId, Bootstrap>,
    pub objects: HashMap<LayerMetaId, LayerMeta>,
    pub bases: HashMap<ChunkId, ChunkLocation>,
}

impl LiveSet {
    /// Marks from the names. An image whose bootstrap or layer object cannot be read stops gc:
    /// its chunks cannot be known.
    pub(super) fn mark(store: &Store, refs: &[(String, ImageId)]) -> Result<LiveSet> {
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

    pub(super) fn blobs(&self) -> HashSet<BlobId> {
        self.objects
            .values()
            .flat_map(|o| o.blobs().iter().map(|b| b.id))
            .chain(self.bases.values().map(|l| l.blob))
            .collect()
    }

    /// Calls `visit` with every chunk reference of every live object, then every live base:
    /// (chunk, its location).
    pub(super) fn for_each_chunk(
        &self,
        mut visit: impl FnMut(&ChunkId, ChunkLocation),
    ) -> Result<()> {
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
