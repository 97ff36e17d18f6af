//! The merged view of an image answered path by path from per-layer path indexes, without
//! building the whole tree in memory: the same view as `ops::tree::MergedTree` (whiteouts,
//! opaque markers, a non-directory replacing what lower layers had below it), which the
//! differential test in `tests.rs` holds it to. A layer is seen through `LayerPaths`: records
//! keyed by (parent, name) with the whiteout and opaque markers folded into flags, as the
//! format-4 path index stores them. `LayerMeta` (a layer metadata object, `disk.rs`) is what the
//! readers (`cat`, `ls`, `unpack`, `diff`) see; `MemoryLayerPaths` (tests only) builds the same
//! records from a layer's entries in memory. Path spelling and whiteout names come from
//! `ops::tree`.

mod disk;
#[cfg(test)]
mod memory;
mod resolve;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::layer::EntryKind;
use crate::ops::tree::{join, normalize, parent_and_name};

pub(crate) use disk::{record_entries, record_entry, walk_batches};
#[cfg(test)]
pub(crate) use memory::MemoryLayerPaths;

/// How many hardlinks to hardlinks `content_entry` follows (as `MergedTree::content_entry`).
const MAX_LINK_DEPTH: usize = 16;

/// What one layer has at one path (`parent/name`): the on-disk path index's record.
pub(crate) use crate::format::layer_meta::PathRecord;

/// True if the layer hides what lower layers have strictly below the record's path.
fn hides_all_below(record: &PathRecord) -> bool {
    record.whiteout || record.opaque || record.kind.is_some_and(|k| k != EntryKind::Directory)
}

/// One layer's path index.
///
/// Invariants an implementation keeps: at most one record per (parent, name); no record for the
/// root, nor under a whiteout's or opaque marker's own name (they are flags of the record they
/// act on); and every proper ancestor directory of a record's path has a record too (with
/// `entry: None` where the layer has no entry there), so that a directory's subtree can be
/// found from its parent's listing without scanning the layer.
pub(crate) trait LayerPaths {
    /// The record of `parent/name` (`parent` normalized, `name` one component).
    fn lookup(&self, parent: &[u8], name: &[u8]) -> Result<Option<PathRecord>>;

    /// The records whose parent is `dir` (normalized), in name order.
    fn children(&self, dir: &[u8]) -> Result<Box<dyn Iterator<Item = Result<PathRecord>> + '_>>;

    /// True if the layer has `.wh..wh..opq` at the root: every entry of lower layers is hidden.
    fn root_opaque(&self) -> Result<bool>;
}

/// The layers `0..=top` of an image, bottom first, as one filesystem.
///
/// Rules, for a normalized path P = D/N (the root has no entry): going down from the top layer,
/// a layer's own entry at P is the visible one; otherwise the layer hides P from the layers
/// below it if it has a whiteout of P, or hides everything below D (and so P) if it has a root
/// opaque marker, or a whiteout, an opaque marker or a non-directory entry at D or any ancestor
/// of D. A layer's flags never hide its own entries.
pub(crate) struct MergedView<'a, L: LayerPaths> {
    /// Only the layers applied.
    layers: &'a [L],
}

/// A visible entry: its layer and that layer's record (whose `entry` is `Some`).
pub(crate) type Found = (usize, PathRecord);

/// One name of a directory listing: what each applied layer that has a record there says about
/// it, top layer first.
struct Child {
    name: Vec<u8>,
    records: Vec<(usize, PathRecord)>,
}

impl Child {
    /// The entry the view shows: the topmost record with an entry, unless a whiteout of the name
    /// comes first.
    fn visible(&self) -> Option<&(usize, PathRecord)> {
        for found in &self.records {
            if found.1.entry.is_some() {
                return Some(found);
            }
            if found.1.whiteout {
                return None;
            }
        }
        None
    }

    /// True if a whiteout of the name comes before any record with an entry.
    fn whited_out(&self) -> bool {
        self.records
            .iter()
            .find(|(_, r)| r.entry.is_some() || r.whiteout)
            .is_some_and(|(_, r)| r.whiteout)
    }

    /// The lowest layer whose records below this name are still visible, given `floor` for the
    /// directory holding it.
    fn floor(&self, floor: usize) -> usize {
        self.records
            .iter()
            .find(|(_, r)| hides_all_below(r))
            .map_or(floor, |&(l, _)| l.max(floor))
    }
}

impl<'a, L: LayerPaths> MergedView<'a, L> {
    /// The view of layers `0..=top` (all layers when `top` is `None` or past the last).
    pub fn new(layers: &'a [L], top: Option<usize>) -> Self {
        let end = top.map_or(layers.len(), |t| (t + 1).min(layers.len()));
        MergedView {
            layers: &layers[..end],
        }
    }

    /// The visible entry at `path` (any spelling; see `normalize`) and the layer it comes from;
    /// the record's `entry` is always `Some`. At most (layers x (depth + 1)) lookups, about one
    /// per layer that has nothing on the way to `path`.
    pub fn get(&self, path: &[u8]) -> Result<Option<(usize, PathRecord)>> {
        let path = normalize(path);
        if path.is_empty() {
            return Ok(None);
        }
        let (dir, name) = parent_and_name(&path);
        for (l, layer) in self.layers.iter().enumerate().rev() {
            if let Some(record) = layer.lookup(dir, name)? {
                if record.entry.is_some() {
                    return Ok(Some((l, record)));
                }
                if record.whiteout {
                    return Ok(None);
                }
            }
            if hides_below(layer, dir)? {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The visible direct children of directory `dir` ("" for the root), in name order, with
    /// their layers: a listing of each layer not cut off at `dir`, merged by name.
    pub fn children(&self, dir: &[u8]) -> Result<Vec<(Vec<u8>, usize, PathRecord)>> {
        let dir = normalize(dir);
        let floor = self.floor(&dir)?;
        let listing = self.listing(&dir, (floor..self.layers.len()).rev())?;
        Ok(listing
            .into_iter()
            .filter_map(|child| {
                let (l, record) = child.visible()?.clone();
                Some((child.name, l, record))
            })
            .collect())
    }

    /// Like `children`, with the implicit directories too: names without a visible entry of
    /// their own that have visible entries below them (a tar may hold `a/b` without `a/`),
    /// listed with `None`. How a filesystem lists a directory.
    pub fn children_with_implicit(&self, dir: &[u8]) -> Result<Vec<(Vec<u8>, Option<Found>)>> {
        let dir = normalize(dir);
        let floor = self.floor(&dir)?;
        let listing = self.listing(&dir, (floor..self.layers.len()).rev())?;
        let mut out = Vec::with_capacity(listing.len());
        for child in listing {
            if let Some(found) = child.visible().cloned() {
                out.push((child.name, Some(found)));
            } else if !child.whited_out() && self.is_dir(&join(&dir, &child.name))? {
                out.push((child.name, None));
            }
        }
        Ok(out)
    }

    /// True if `path` is a directory of the view: the root, a visible directory entry, or a
    /// path without a visible entry that has visible children (as `MergedTree::is_dir`: an
    /// implicit directory whose only entries are deeper than its children is not one).
    pub fn is_dir(&self, path: &[u8]) -> Result<bool> {
        let path = normalize(path);
        if path.is_empty() {
            return Ok(true);
        }
        match self.get(&path)? {
            Some((_, record)) => Ok(record.kind == Some(EntryKind::Directory)),
            None => Ok(!self.children(&path)?.is_empty()),
        }
    }

    /// Follows hardlinks (within the view, by the target `link_target(layer, entry)` gives) to
    /// the entry holding the content; `None` if a link leads nowhere or past `MAX_LINK_DEPTH`.
    pub fn content_entry(
        &self,
        path: &[u8],
        link_target: impl Fn(usize, u64) -> Result<Option<Vec<u8>>>,
    ) -> Result<Option<(usize, PathRecord)>> {
        let mut path = normalize(path);
        for _ in 0..MAX_LINK_DEPTH {
            let Some((layer, record)) = self.get(&path)? else {
                return Ok(None);
            };
            match (record.kind, record.entry) {
                (Some(EntryKind::Hardlink), Some(entry)) => {
                    path = normalize(&link_target(layer, entry)?.unwrap_or_default());
                }
                _ => return Ok(Some((layer, record))),
            }
        }
        Ok(None)
    }

    /// Calls `visit(path, layer, record)` for every visible entry, depth first in name order,
    /// parents before children. Holds the listings of the directories on the current path only,
    /// and lists a directory only in the layers that have records at it.
    pub fn walk(
        &self,
        mut visit: impl FnMut(&[u8], usize, &PathRecord) -> Result<()>,
    ) -> Result<()> {
        let floor = self.floor(b"")?;
        let root = self.listing(b"", (floor..self.layers.len()).rev())?;
        // (directory, its floor, the rest of its listing)
        let mut stack = vec![(Vec::new(), floor, root.into_iter())];
        while let Some((dir, floor, listing)) = stack.last_mut() {
            let Some(child) = listing.next() else {
                stack.pop();
                continue;
            };
            let path = join(dir, &child.name);
            if let Some((l, record)) = child.visible() {
                visit(&path, *l, record)?;
            }
            // By the ancestor invariant, only the layers with a record here have any below it.
            let floor = child.floor(*floor);
            let layers = child
                .records
                .iter()
                .map(|&(l, _)| l)
                .filter(|&l| l >= floor);
            let below = self.listing(&path, layers)?;
            if !below.is_empty() {
                stack.push((path, floor, below.into_iter()));
            }
        }
        Ok(())
    }

    /// The lowest layer whose entries below `dir` are not hidden by a layer above it.
    fn floor(&self, dir: &[u8]) -> Result<usize> {
        for (l, layer) in self.layers.iter().enumerate().rev() {
            if hides_below(layer, dir)? {
                return Ok(l);
            }
        }
        Ok(0)
    }

    /// The records with parent `dir` in `layers` (top first), merged by name.
    fn listing(&self, dir: &[u8], layers: impl Iterator<Item = usize>) -> Result<Vec<Child>> {
        let mut sources = Vec::new();
        for l in layers {
            let mut records = self.layers[l].children(dir)?;
            let head = records.next().transpose()?;
            sources.push((l, records, head));
        }
        let mut out: Vec<Child> = Vec::new();
        loop {
            let next = sources
                .iter()
                .filter_map(|(_, _, head)| head.as_ref().map(|r| &r.name))
                .min()
                .cloned();
            let Some(name) = next else {
                return Ok(out);
            };
            let mut child = Child {
                name,
                records: Vec::new(),
            };
            for (l, records, head) in &mut sources {
                if head.as_ref().is_some_and(|r| r.name == child.name) {
                    let record = head.take().expect("head matched");
                    *head = records.next().transpose()?;
                    check_listed(*l, dir, &record, head.as_ref())?;
                    child.records.push((*l, record));
                }
            }
            out.push(child);
        }
    }
}

/// True if `layer` hides what the layers below it have strictly below `dir` (normalized): it
/// has a root opaque marker, or a whiteout, opaque marker or non-directory entry at `dir` or an
/// ancestor of it. Looks from the root down and stops at the first path the layer has no
/// record for: by the ancestor invariant it has none deeper either.
fn hides_below<L: LayerPaths>(layer: &L, dir: &[u8]) -> Result<bool> {
    if layer.root_opaque()? {
        return Ok(true);
    }
    for prefix in prefixes(dir) {
        let (parent, name) = parent_and_name(prefix);
        match layer.lookup(parent, name)? {
            None => return Ok(false),
            Some(record) if hides_all_below(&record) => return Ok(true),
            Some(_) => {}
        }
    }
    Ok(false)
}

/// `a`, `a/b`, `a/b/c` for `a/b/c` (nothing for the root): a normalized path and its
/// ancestors, shallowest first.
fn prefixes(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let ends = path
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i);
    let whole = (!path.is_empty()).then_some(path.len());
    ends.chain(whole).map(move |end| &path[..end])
}

/// A listing must come in strictly increasing name order, each record under `dir`: anything
/// else is a damaged path index, and merging it would silently give a wrong view.
fn check_listed(
    layer: usize,
    dir: &[u8],
    record: &PathRecord,
    next: Option<&PathRecord>,
) -> Result<()> {
    let misplaced = record.parent != dir || record.name.is_empty();
    let unordered = next.is_some_and(|n| n.name <= record.name);
    if misplaced || unordered {
        return Err(Error::corrupt(
            format!(
                "path index of layer {layer}, directory {:?}",
                String::from_utf8_lossy(dir)
            ),
            format!(
                "record {:?} is out of place or out of order",
                String::from_utf8_lossy(&join(&record.parent, &record.name))
            ),
        ));
    }
    Ok(())
}
