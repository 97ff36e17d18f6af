//! Reading machinery (above the store layer, below `write`, `rewrite` and the commands): the
//! merged view, chunk reading (`chunks`), exact layer tars (`layer_tar`), delta bases
//! (`bases`), chunk sets (`chunk_sets`), paths (`tree`) and `WholeImage` for tests.
//!
//! The merged view of an image answered path by path from per-layer path indexes, without
//! building the whole tree in memory: the same view as `view::tree::MergedTree` (whiteouts,
//! opaque markers, a non-directory replacing what lower layers had below it, directories the
//! tars never declare), which the differential test in `tests.rs` holds it to. A layer is seen through `LayerPaths`: records
//! keyed by (parent, name) with the whiteout and opaque markers folded into flags, as the
//! format-4 path index stores them. `LayerMeta` (a layer metadata object, `disk.rs`) is what the
//! readers (`cat`, `ls`, `unpack`, `diff`) see; `MemoryLayerPaths` (tests only) builds the same
//! records from a layer's entries in memory. Path spelling and whiteout names come from
//! `view::tree`.

pub(crate) mod bases;
pub(crate) mod chunk_sets;
pub(crate) mod chunks;
mod disk;
pub(crate) mod layer_tar;
#[cfg(test)]
mod memory;
mod resolve;
#[cfg(test)]
mod tests;
pub(crate) mod tree;
pub(crate) mod whole_image;

use crate::error::{Error, Result};
use crate::layer::{EntryKind, EntryMeta};
use crate::view::tree::{join, normalize, parent_and_name};

pub use chunks::ChunkReader;
pub(crate) use disk::{record_entries, record_entry, walk_batches};
pub(crate) use layer_tar::{write_layer_tar, LayerTar};
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

    /// True if some record has parent `dir` (normalized).
    fn has_children(&self, dir: &[u8]) -> Result<bool> {
        Ok(self.children(dir)?.next().is_some())
    }
}

/// The layers `0..=top` of an image, bottom first, as one filesystem: the tree GNU tar (or
/// containerd's applier) makes by extracting the layers in order, whiteouts applied.
///
/// Rules, for a normalized path P = D/N (the root has no entry): going down from the top layer,
/// a layer's own entry at P is the visible one; otherwise the layer hides P from the layers
/// below it if it has a whiteout of P, or hides everything below D (and so P) if it has a root
/// opaque marker, or a whiteout, an opaque marker or a non-directory entry at D or any ancestor
/// of D. A layer's flags never hide its own entries.
///
/// Implicit directories: a layer with records below P but no entry at P (its tar holds `P/x`
/// without `P/`, or `P/.wh.x`, or `P/.wh..wh..opq`) has a directory at P, as extracting it
/// creates one (containerd's `mkparent`, GNU tar's `make_directories`). That directory is the
/// visible one unless a layer above has something else at P: where the first entry found below
/// it is a directory, that entry is shown (extracting keeps an existing directory and its
/// attributes); where there is none, or it is a non-directory (which the directory replaces,
/// as on overlayfs), the view shows `Found::Implicit`, whose attributes are `implicit_dir_meta`.
pub(crate) struct MergedView<'a, L: LayerPaths> {
    /// Only the layers applied.
    layers: &'a [L],
}

/// What the view shows at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// A layer's entry: the layer and its record (whose `entry` is `Some`).
    Entry(usize, PathRecord),
    /// A directory no layer has an entry for (see `MergedView`): the topmost layer that has it.
    Implicit(usize),
}

impl Found {
    /// The layer the entry (or the implicit directory) comes from.
    pub(crate) fn layer(&self) -> usize {
        match self {
            Found::Entry(l, _) | Found::Implicit(l) => *l,
        }
    }

    /// The entry's record; `None` for an implicit directory.
    pub(crate) fn record(&self) -> Option<&PathRecord> {
        match self {
            Found::Entry(_, record) => Some(record),
            Found::Implicit(_) => None,
        }
    }

    /// The entry's kind (`Directory` for an implicit directory).
    pub(crate) fn kind(&self) -> Option<EntryKind> {
        match self {
            Found::Entry(_, record) => record.kind,
            Found::Implicit(_) => Some(EntryKind::Directory),
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.kind() == Some(EntryKind::Directory)
    }
}

/// Mode of an implicit directory: containerd's `mkparent` makes it with 0755, GNU tar with
/// 0777 less the umask (0755 under the usual 022).
pub(crate) const IMPLICIT_DIR_MODE: u32 = 0o755;

/// The metadata the view gives an implicit directory at normalized `path`: mode 0755, owned by
/// root (uid and gid 0: who the applier runs as), mtime 0. containerd leaves the time of the
/// apply there, and GNU tar the time of the extraction; a view must give the same answer every
/// time it is read, so it takes the epoch. No xattrs, no names. Never written into a layer tar
/// that `export` re-creates: those come from the layer's own entries only.
pub(crate) fn implicit_dir_meta(path: &[u8]) -> EntryMeta {
    EntryMeta {
        path: [path, b"/"].concat(),
        kind: EntryKind::Directory,
        mode: IMPLICIT_DIR_MODE,
        uid: 0,
        gid: 0,
        uname: Vec::new(),
        gname: Vec::new(),
        mtime: 0,
        size: 0,
        link_target: None,
        xattrs: Vec::new(),
        dev_major: 0,
        dev_minor: 0,
    }
}

/// The answer at one path, folded from the layers' records there, top layer first.
#[derive(Default)]
struct Fold {
    /// The topmost layer seen that has an implicit directory at the path.
    implicit: Option<usize>,
}

impl Fold {
    /// Takes layer `l`'s record; `Some(answer)` once the layers below cannot change it.
    /// `implied` says whether the record makes a directory of the layer without an entry
    /// (asked only of an entry-less whiteout that is not also opaque: whether the layer has
    /// records below it).
    fn take(
        &mut self,
        l: usize,
        record: &PathRecord,
        implied: impl FnOnce() -> Result<bool>,
    ) -> Result<Option<Option<Found>>> {
        if record.entry.is_some() {
            let shown = match self.implicit {
                Some(i) if record.kind != Some(EntryKind::Directory) => Found::Implicit(i),
                _ => Found::Entry(l, record.clone()),
            };
            return Ok(Some(Some(shown)));
        }
        let implicit = !record.whiteout || record.opaque || implied()?;
        if implicit && self.implicit.is_none() {
            self.implicit = Some(l);
        }
        Ok(record.whiteout.then(|| self.end()))
    }

    /// The answer when no layer below has anything at the path, or they are hidden.
    fn end(&self) -> Option<Found> {
        self.implicit.map(Found::Implicit)
    }
}

/// One name of a directory listing: what each applied layer that has a record there says about
/// it, top layer first.
struct Child {
    name: Vec<u8>,
    records: Vec<(usize, PathRecord)>,
}

impl Child {
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
    pub(crate) fn new(layers: &'a [L], top: Option<usize>) -> Self {
        let end = top.map_or(layers.len(), |t| (t + 1).min(layers.len()));
        MergedView {
            layers: &layers[..end],
        }
    }

    /// What is visible at `path` (any spelling; see `normalize`) and the layer it comes from.
    /// At most (layers x (depth + 1)) lookups, about one per layer that has nothing on the way
    /// to `path`.
    pub(crate) fn get(&self, path: &[u8]) -> Result<Option<Found>> {
        let path = normalize(path);
        if path.is_empty() {
            return Ok(None);
        }
        let (dir, name) = parent_and_name(&path);
        let mut fold = Fold::default();
        for (l, layer) in self.layers.iter().enumerate().rev() {
            if let Some(record) = layer.lookup(dir, name)? {
                if let Some(answer) = fold.take(l, &record, || layer.has_children(&path))? {
                    return Ok(answer);
                }
            }
            if hides_below(layer, dir)? {
                return Ok(fold.end());
            }
        }
        Ok(fold.end())
    }

    /// The visible direct children of directory `dir` ("" for the root), in name order,
    /// implicit directories included: a listing of each layer not cut off at `dir`, merged by
    /// name.
    pub(crate) fn children(&self, dir: &[u8]) -> Result<Vec<(Vec<u8>, Found)>> {
        let dir = normalize(dir);
        let floor = self.floor(&dir)?;
        self.children_in(&dir, floor)
    }

    /// The lowest layer whose records below directory `dir` (normalized) count: what
    /// `child_in` and `children_in` take, so that a reader going down a tree one directory at
    /// a time (a mount) looks up each name in the layers once, not once per ancestor.
    pub(crate) fn floor_of(&self, dir: &[u8]) -> Result<usize> {
        self.floor(dir)
    }

    /// `get(dir/name)` for a directory `dir` (normalized) whose floor is `floor`, and the
    /// floor of `dir/name`: one lookup per layer from `floor` up.
    pub(crate) fn child_in(
        &self,
        dir: &[u8],
        floor: usize,
        name: &[u8],
    ) -> Result<(Option<Found>, usize)> {
        let mut child = Child {
            name: name.to_vec(),
            records: Vec::new(),
        };
        for l in (floor..self.layers.len()).rev() {
            if let Some(record) = self.layers[l].lookup(dir, name)? {
                child.records.push((l, record));
            }
        }
        Ok((self.shown(dir, &child)?, child.floor(floor)))
    }

    /// `children(dir)` for a directory `dir` (normalized) whose floor is `floor`.
    pub(crate) fn children_in(&self, dir: &[u8], floor: usize) -> Result<Vec<(Vec<u8>, Found)>> {
        let listing = self.listing(dir, (floor..self.layers.len()).rev())?;
        let mut out = Vec::with_capacity(listing.len());
        for child in listing {
            if let Some(found) = self.shown(dir, &child)? {
                out.push((child.name, found));
            }
        }
        Ok(out)
    }

    /// What the view shows for `child` of directory `dir`, from its records.
    fn shown(&self, dir: &[u8], child: &Child) -> Result<Option<Found>> {
        let mut fold = Fold::default();
        for (l, record) in &child.records {
            let implied = || self.layers[*l].has_children(&join(dir, &child.name));
            if let Some(answer) = fold.take(*l, record, implied)? {
                return Ok(answer);
            }
        }
        Ok(fold.end())
    }

    /// True if `path` is a directory of the view: the root, a visible directory entry, or an
    /// implicit directory.
    pub(crate) fn is_dir(&self, path: &[u8]) -> Result<bool> {
        let path = normalize(path);
        if path.is_empty() {
            return Ok(true);
        }
        Ok(self.get(&path)?.is_some_and(|found| found.is_dir()))
    }

    /// Follows hardlinks (within the view, by the target `link_target(layer, entry)` gives) to
    /// what holds the content; `None` if a link leads nowhere or past `MAX_LINK_DEPTH`.
    pub(crate) fn content_entry(
        &self,
        path: &[u8],
        link_target: impl Fn(usize, u64) -> Result<Option<Vec<u8>>>,
    ) -> Result<Option<Found>> {
        let mut path = normalize(path);
        for _ in 0..MAX_LINK_DEPTH {
            let Some(found) = self.get(&path)? else {
                return Ok(None);
            };
            match &found {
                Found::Entry(layer, record) if record.kind == Some(EntryKind::Hardlink) => {
                    let entry = record.entry.unwrap_or_default();
                    path = normalize(&link_target(*layer, entry)?.unwrap_or_default());
                }
                _ => return Ok(Some(found)),
            }
        }
        Ok(None)
    }

    /// Calls `visit(path, found)` for everything visible, implicit directories included, depth
    /// first in name order, parents before children. Holds the listings of the directories on
    /// the current path only, and lists a directory only in the layers that have records at it.
    pub(crate) fn walk(&self, mut visit: impl FnMut(&[u8], &Found) -> Result<()>) -> Result<()> {
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
            if let Some(found) = self.shown(dir, &child)? {
                visit(&path, &found)?;
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

/// Layer `layer` of `layers`, or a not-found error naming the ones there are.
pub(crate) fn layer_index(name: &str, count: usize, layer: usize) -> Result<usize> {
    if layer < count {
        return Ok(layer);
    }
    Err(Error::NotFound(crate::NotFound::Layer {
        image: name.to_string(),
        count,
        layer,
    }))
}

/// The word for an entry's kind in messages and listings.
pub(crate) fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Hardlink => "hardlink",
        EntryKind::Symlink => "symlink",
        EntryKind::CharDevice => "character device",
        EntryKind::BlockDevice => "block device",
        EntryKind::Directory => "directory",
        EntryKind::Fifo => "fifo",
        EntryKind::Other(_) => "special entry",
    }
}
