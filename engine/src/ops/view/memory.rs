//! A layer's path index held in memory: built from its entries in tar order with the folding
//! rules the on-disk path index uses. Serves the tests, and reads a format-3 bootstrap layer
//! through `MergedView`.

use super::{prefixes, LayerPaths, PathRecord};
use crate::error::Result;
use crate::format::bootstrap::LayerRecord;
use crate::layer::EntryKind;
use crate::ops::tree::{normalize, parent_and_name, whiteout_of, Whiteout};
use std::collections::{BTreeMap, BTreeSet};

/// parent -> name -> record, so a directory's records are one map in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemoryLayerPaths {
    dirs: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, PathRecord>>,
    root_opaque: bool,
}

impl MemoryLayerPaths {
    /// The records of a layer whose entries are `(tar order number, raw path, kind)`, in tar
    /// order. Paths are normalized; the root's own entry is dropped; `D/.wh.X` sets `whiteout` on
    /// `D/X` and `D/.wh..wh..opq` sets `opaque` on `D` (`root_opaque` for the root); the last
    /// entry at a path is its entry, and a directory that replaced a non-directory of the same
    /// layer is `opaque` (the non-directory removed what lower layers had below it, as
    /// `MergedTree` applies entries one by one). A lone `.wh.` (no name) at the root removes
    /// everything below the root in `MergedTree`, so it counts as a root opaque marker;
    /// elsewhere it acts on nothing.
    pub fn new<'p>(entries: impl IntoIterator<Item = (u64, &'p [u8], EntryKind)>) -> Self {
        let mut paths = MemoryLayerPaths::default();
        let mut replaced_non_dirs = BTreeSet::new();
        for (number, raw, kind) in entries {
            let path = normalize(raw);
            if path.is_empty() {
                continue;
            }
            match whiteout_of(&path) {
                Whiteout::Opaque(dir) => paths.mark_opaque(dir),
                Whiteout::Remove(target) => match parent_and_name(&target) {
                    (b"", b"") => paths.root_opaque = true,
                    (_, b"") => {}
                    (parent, name) => paths.record_mut(parent, name).whiteout = true,
                },
                Whiteout::None => {
                    let (parent, name) = parent_and_name(&path);
                    let record = paths.record_mut(parent, name);
                    record.entry = Some(number);
                    record.kind = Some(kind);
                    if kind != EntryKind::Directory {
                        replaced_non_dirs.insert(path.clone());
                    }
                }
            }
        }
        for path in replaced_non_dirs {
            let (parent, name) = parent_and_name(&path);
            let record = paths.record_mut(parent, name);
            if record.kind == Some(EntryKind::Directory) {
                record.opaque = true;
            }
        }
        paths
    }

    /// The records of a bootstrap layer (entry numbers are indexes into `layer.entries`).
    pub fn from_layer(layer: &LayerRecord) -> Self {
        Self::new(
            layer
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64, e.meta.path.as_slice(), e.meta.kind)),
        )
    }

    fn mark_opaque(&mut self, dir: &[u8]) {
        if dir.is_empty() {
            self.root_opaque = true;
        } else {
            let (parent, name) = parent_and_name(dir);
            self.record_mut(parent, name).opaque = true;
        }
    }

    /// The record of `parent/name`, created (and those of its ancestors) if missing.
    fn record_mut(&mut self, parent: &[u8], name: &[u8]) -> &mut PathRecord {
        for dir in prefixes(parent) {
            let (p, n) = parent_and_name(dir);
            self.entry(p, n);
        }
        self.entry(parent, name)
    }

    fn entry(&mut self, parent: &[u8], name: &[u8]) -> &mut PathRecord {
        self.dirs
            .entry(parent.to_vec())
            .or_default()
            .entry(name.to_vec())
            .or_insert_with(|| PathRecord {
                parent: parent.to_vec(),
                name: name.to_vec(),
                entry: None,
                kind: None,
                whiteout: false,
                opaque: false,
            })
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
