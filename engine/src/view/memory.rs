//! A layer's path index held in memory: built from its entries in tar order with the folding
//! rules the on-disk path index uses: the tests' model of `LayerMeta`'s path index.

use super::{LayerPaths, PathRecord};
use crate::error::Result;
use crate::format::layer_meta::fold_paths;
use crate::layer::EntryKind;
use crate::view::whole_image::LayerRecord;
use std::collections::BTreeMap;

/// parent -> name -> record, so a directory's records are one map in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemoryLayerPaths {
    dirs: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, PathRecord>>,
    root_opaque: bool,
}

impl MemoryLayerPaths {
    /// The records of a layer whose entries are `(tar order number, raw path, kind)`, in tar
    /// order, folded as the on-disk path index folds them (`layer_meta::fold_paths`): paths
    /// normalized, the root's own entry dropped, `D/.wh.X` a whiteout on `D/X`,
    /// `D/.wh..wh..opq` opaque on `D` (`root_opaque` for the root, as a lone `.wh.` there),
    /// the last entry at a path its entry, a directory that replaced a non-directory of the
    /// same layer opaque, and a record for every directory on the way to a record.
    pub(crate) fn new<'p>(entries: impl IntoIterator<Item = (u64, &'p [u8], EntryKind)>) -> Self {
        let (records, root_opaque) = fold_paths(entries);
        let mut dirs: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, PathRecord>> = BTreeMap::new();
        for record in records {
            dirs.entry(record.parent.clone())
                .or_default()
                .insert(record.name.clone(), record);
        }
        MemoryLayerPaths { dirs, root_opaque }
    }

    /// The records of a bootstrap layer (entry numbers are indexes into `layer.entries`).
    pub(crate) fn from_layer(layer: &LayerRecord) -> Self {
        Self::new(
            layer
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64, e.meta.path.as_slice(), e.meta.kind)),
        )
    }
}

impl LayerPaths for MemoryLayerPaths {
    fn lookup(&self, parent: &[u8], name: &[u8]) -> Result<Option<PathRecord>> {
        Ok(self.dirs.get(parent).and_then(|d| d.get(name)).cloned())
    }

    fn children(&self, dir: &[u8]) -> Result<Box<dyn Iterator<Item = Result<PathRecord>> + '_>> {
        Ok(Box::new(
            self.dirs
                .get(dir)
                .into_iter()
                .flat_map(|d| d.values().cloned().map(Ok)),
        ))
    }

    fn root_opaque(&self) -> Result<bool> {
        Ok(self.root_opaque)
    }
}
