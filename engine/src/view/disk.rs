//! The on-disk path index of a layer metadata object, read through `LayerPaths`: lookups and
//! listings decode the one or few path blocks they need, each checked against its hash.

use super::{implicit_dir_meta, Found, LayerPaths, MergedView, PathRecord};
use crate::error::{Error, Result};
use crate::format::layer_meta::{LayerEntry, LayerMeta};

impl LayerPaths for LayerMeta {
    fn lookup(&self, parent: &[u8], name: &[u8]) -> Result<Option<PathRecord>> {
        LayerMeta::lookup(self, parent, name)
    }

    fn children(&self, dir: &[u8]) -> Result<Box<dyn Iterator<Item = Result<PathRecord>> + '_>> {
        if self.caches_blocks() {
            return Ok(Box::new(self.children_cached(dir)?.into_iter().map(Ok)));
        }
        if !self.has_children(dir)? {
            return Ok(Box::new(std::iter::empty()));
        }
        Ok(Box::new(LayerMeta::children(self, dir)))
    }

    fn root_opaque(&self) -> Result<bool> {
        Ok(self.info().root_opaque)
    }

    fn has_children(&self, dir: &[u8]) -> Result<bool> {
        LayerMeta::has_children(self, dir)
    }
}

/// Visible entries a walk hands over at a time (`walk_batches`): enough that the entries of
/// a batch, decoded in (layer, entry number) order, share their entry blocks; few enough that
/// a batch (paths, records, decoded entries) stays a few MiB.
pub(crate) const WALK_BATCH: usize = 4096;

/// One visible entry of a walk: its normalized path and what the view shows there.
type Visit = (Vec<u8>, Found);

/// `MergedView::walk` over layer objects, handing the visible entries `want`ed to
/// `on_batch` in walk order, `WALK_BATCH` at a time, so that their entries can be decoded
/// together (`record_entries`): the walk goes in path order, the entry blocks in tar order,
/// and decoding entries one by one in path order would decode a block per entry.
pub(crate) fn walk_batches(
    view: &MergedView<LayerMeta>,
    want: impl Fn(&Found) -> bool,
    mut on_batch: impl FnMut(Vec<Visit>) -> Result<()>,
) -> Result<()> {
    let mut batch = Vec::with_capacity(WALK_BATCH);
    view.walk(|path, found| {
        if want(found) {
            batch.push((path.to_vec(), found.clone()));
            if batch.len() >= WALK_BATCH {
                on_batch(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(WALK_BATCH),
                ))?;
            }
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        on_batch(batch)?;
    }
    Ok(())
}

/// The entries `found` (normalized path, what the view shows there) name, in that order:
/// layers' entries decoded in (layer, entry number) order with `LayerMeta::entries_at`, so each
/// entry block that holds some is decoded once; implicit directories as `implicit_dir_meta`.
pub(crate) fn record_entries(
    layers: &[LayerMeta],
    found: &[(&[u8], &Found)],
) -> Result<Vec<LayerEntry>> {
    let mut order: Vec<(usize, u64, usize)> = Vec::with_capacity(found.len());
    let mut slots: Vec<Option<LayerEntry>> = vec![None; found.len()];
    for (i, &(path, shown)) in found.iter().enumerate() {
        match shown {
            Found::Entry(layer, record) => match (*layer < layers.len(), record.entry) {
                (true, Some(n)) => order.push((*layer, n, i)),
                _ => return Err(no_entry(*layer, record)),
            },
            Found::Implicit(_) => slots[i] = Some(implicit_entry(path)),
        }
    }
    order.sort_unstable();
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        let numbers: Vec<u64> = group.iter().map(|&(_, n, _)| n).collect();
        let entries = layers[group[0].0].entries_at(&numbers)?;
        for (&(_, _, i), entry) in group.iter().zip(entries) {
            slots[i] = Some(entry);
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// An implicit directory at normalized `path` as an entry: no raw header (it is in no tar),
/// no chunks.
fn implicit_entry(path: &[u8]) -> LayerEntry {
    LayerEntry {
        raw_header: Vec::new(),
        meta: implicit_dir_meta(path),
        chunks: Vec::new(),
    }
}

fn no_entry(layer: usize, record: &PathRecord) -> Error {
    Error::corrupt(
        format!("layer {layer}"),
        format!(
            "internal: no entry for path record {:?}",
            String::from_utf8_lossy(&record.name)
        ),
    )
}

/// The entry `found` (what the view over `layers` shows at normalized `path`) names, decoding
/// its one entry block.
pub(crate) fn record_entry(layers: &[LayerMeta], path: &[u8], found: &Found) -> Result<LayerEntry> {
    match found {
        Found::Entry(layer, record) => match (layers.get(*layer), record.entry) {
            (Some(meta), Some(n)) => meta.entry(n),
            _ => Err(no_entry(*layer, record)),
        },
        Found::Implicit(_) => Ok(implicit_entry(path)),
    }
}
