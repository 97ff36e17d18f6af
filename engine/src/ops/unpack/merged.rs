//! The image as `unpack` writes it: every visible entry of the merged view (`ops::view`), in
//! the view's walk order (parents before children), with per-path lookups as of any layer for
//! resolving hardlinks.

use crate::error::Result;
use crate::ops::tree::EntryRef;
use crate::ops::view::{MemoryLayerPaths, MergedView};
use crate::ops::whole_image::{EntryRecord, WholeImage};

pub(super) struct Merged<'b> {
    bootstrap: &'b WholeImage,
    layers: Vec<MemoryLayerPaths>,
    top: Option<usize>,
    /// Visible entries, parents before children.
    entries: Vec<(Vec<u8>, EntryRef)>,
}

impl<'b> Merged<'b> {
    /// The view of layers `0..=top` (all when `None`).
    pub fn new(bootstrap: &'b WholeImage, top: Option<usize>) -> Result<Self> {
        let layers = MemoryLayerPaths::of_bootstrap(bootstrap);
        let mut entries = Vec::new();
        MergedView::new(&layers, top).walk(|path, layer, record| {
            let entry = MemoryLayerPaths::entry(bootstrap, layer, record)?;
            let index = record.entry.unwrap_or_default() as usize;
            debug_assert!(std::ptr::eq(entry, &bootstrap.layers[layer].entries[index]));
            entries.push((path.to_vec(), EntryRef { layer, index }));
            Ok(())
        })?;
        Ok(Merged {
            bootstrap,
            layers,
            top,
            entries,
        })
    }

    /// Every visible entry: its normalized path, where it comes from, the entry.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef, &'b EntryRecord)> + '_ {
        self.entries
            .iter()
            .map(|(path, r)| (path.as_slice(), *r, self.entry(*r)))
    }

    pub fn entry(&self, r: EntryRef) -> &'b EntryRecord {
        &self.bootstrap.layers[r.layer].entries[r.index]
    }

    /// The entry visible at `path` in this view.
    pub fn get(&self, path: &[u8]) -> Result<Option<EntryRef>> {
        self.get_as_of(self.top, path)
    }

    /// The entry visible at `path` in the view of layers `0..=top`.
    pub fn get_as_of(&self, top: Option<usize>, path: &[u8]) -> Result<Option<EntryRef>> {
        Ok(MergedView::new(&self.layers, top)
            .get(path)?
            .and_then(|(layer, record)| {
                record.entry.map(|n| EntryRef {
                    layer,
                    index: n as usize,
                })
            }))
    }
}
