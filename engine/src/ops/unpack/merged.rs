//! The image as `unpack` writes it: the merged view (`view`) of the applied layer objects,
//! walked in the view's order (parents before children) with each visible entry decoded as it
//! is reached, and per-path lookups as of any layer for resolving hardlinks. Holds nothing per
//! entry: the view keeps the listings of the directories on the current path, the layer
//! objects a few decoded blocks.

use crate::error::Result;
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::EntryKind;
use crate::view::tree::EntryRef;
use crate::view::{record_entries, walk_batches, Found, MergedView};

pub(super) struct Merged<'l> {
    layers: &'l [LayerMeta],
    top: Option<usize>,
}

impl<'l> Merged<'l> {
    /// The view of layers `0..=top` (all when `None`).
    pub(super) fn new(layers: &'l [LayerMeta], top: Option<usize>) -> Self {
        Merged { layers, top }
    }

    /// Calls `visit(normalized path, where it comes from, the entry)` for every visible entry
    /// but hardlinks, parents before children, implicit directories included (as
    /// `view::implicit_dir_meta` entries, with the `EntryRef` of the layer that has them
    /// and index 0: never looked up); the entries are decoded a batch at a time
    /// (`view::walk_batches`).
    pub(super) fn walk_but_hardlinks(
        &self,
        mut visit: impl FnMut(&[u8], EntryRef, LayerEntry) -> Result<()>,
    ) -> Result<()> {
        let view = MergedView::new(self.layers, self.top);
        let want = |f: &Found| f.kind() != Some(EntryKind::Hardlink);
        walk_batches(&view, want, |batch| {
            let found: Vec<_> = batch.iter().map(|(p, f)| (&p[..], f)).collect();
            let entries = record_entries(self.layers, &found)?;
            for ((path, found), entry) in batch.iter().zip(entries) {
                let index = found.record().and_then(|r| r.entry).unwrap_or_default() as usize;
                let layer = found.layer();
                visit(path, EntryRef { layer, index }, entry)?;
            }
            Ok(())
        })
    }

    /// The entry `r` names (one entry block decoded, or taken from the layer's block cache).
    pub(super) fn entry(&self, r: EntryRef) -> Result<LayerEntry> {
        self.layers[r.layer].entry(r.index as u64)
    }

    /// The blob table the chunks of layer `layer`'s entries index.
    pub(super) fn blobs(&self, layer: usize) -> &'l [crate::format::bootstrap::BlobRecord] {
        self.layers[layer].blobs()
    }

    /// The entry visible at `path` in this view.
    pub(super) fn get(&self, path: &[u8]) -> Result<Option<EntryRef>> {
        self.get_as_of(self.top, path)
    }

    /// The entry visible at `path` in the view of layers `0..=top`.
    pub(super) fn get_as_of(&self, top: Option<usize>, path: &[u8]) -> Result<Option<EntryRef>> {
        Ok(match MergedView::new(self.layers, top).get(path)? {
            Some(Found::Entry(layer, record)) => record.entry.map(|n| EntryRef {
                layer,
                index: n as usize,
            }),
            _ => None,
        })
    }
}
