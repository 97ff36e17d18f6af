//! Paths of the merged view (normalized, split, joined) and `EntryRef`, and, in tests only,
//! `MergedTree`: the whole-image tree built the way extracting the layers in order builds it
//! (whiteouts `.wh.NAME` delete what lower layers put at NAME, opaque markers
//! `DIR/.wh..wh..opq` hide everything lower layers put under DIR, an entry replaces whatever
//! lower layers had at its path and a non-directory also removes what was under it, and the
//! directories a layer's paths go through are made where missing), kept as the reference the
//! per-path view is tested against.

#[cfg(test)]
use crate::layer::EntryKind;
#[cfg(test)]
use crate::view::whole_image::{EntryRecord, WholeImage};
#[cfg(test)]
use std::collections::BTreeMap;
#[cfg(test)]
use std::ops::Bound;

#[cfg(test)]
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
#[cfg(test)]
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Where an entry of the merged view comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct EntryRef {
    pub layer: usize,
    pub index: usize,
}

#[cfg(test)]
/// What the reference tree has at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TreeNode {
    Entry(EntryRef),
    /// A directory no layer has an entry for, made by the topmost layer that needed it.
    Implicit(usize),
}

#[cfg(test)]
/// Normalised path (no leading `/` or `./`, no empty or `.` components) -> what is there.
pub(crate) struct MergedTree<'a> {
    bootstrap: &'a WholeImage,
    entries: BTreeMap<Vec<u8>, TreeNode>,
}

/// `a/b/c` for any of `./a/b/c`, `/a/b/c/`, `a//b/c` (the layer metadata's path index is
/// keyed by it).
pub(crate) use crate::format::layer_meta::normalize;

/// Splits `a/b/c` into (`a/b`, `c`).
pub(crate) fn parent_and_name(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

#[cfg(test)]
/// What a layer entry means for the merged view (as `format::layer_meta::path_update`).
pub(crate) enum Whiteout<'p> {
    /// Deletes what lower layers have at `dir/name`; needs `dir`.
    Remove(&'p [u8], &'p [u8]),
    /// Hides everything lower layers put under this directory; needs it.
    Opaque(&'p [u8]),
    /// Hides everything lower layers have.
    RootOpaque,
    /// Nothing at all (the root's own entry, or a whiteout naming nothing).
    Nothing,
    /// An entry of the layer.
    None,
}

#[cfg(test)]
pub(crate) fn whiteout_of(path: &[u8]) -> Whiteout<'_> {
    if path.is_empty() {
        return Whiteout::Nothing;
    }
    let (dir, name) = parent_and_name(path);
    if name == OPAQUE_MARKER {
        return match dir.is_empty() {
            true => Whiteout::RootOpaque,
            false => Whiteout::Opaque(dir),
        };
    }
    let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) else {
        return Whiteout::None;
    };
    if target.is_empty() && dir.is_empty() {
        Whiteout::RootOpaque
    } else if target.is_empty() || target == b"." {
        Whiteout::Nothing
    } else {
        Whiteout::Remove(dir, target)
    }
}

#[cfg(test)]
impl<'a> MergedTree<'a> {
    /// The view of layers `0..=top` (all layers when `top` is `None`): each layer extracted
    /// onto the tree the lower ones made, the way GNU tar or containerd's applier does it.
    /// First the layer's whiteouts and opaque markers act on the lower layers; then, in tar
    /// order, every directory a marker or an entry needs is made where missing (an implicit
    /// directory, replacing a non-directory in the way; an existing directory stays), and each
    /// entry replaces whatever was at its path (a non-directory removes what was below it).
    pub(crate) fn new(bootstrap: &'a WholeImage, top: Option<usize>) -> Self {
        let mut entries: BTreeMap<Vec<u8>, TreeNode> = BTreeMap::new();
        let end = top.map_or(bootstrap.layers.len(), |t| {
            (t + 1).min(bootstrap.layers.len())
        });
        for (l, layer) in bootstrap.layers[..end].iter().enumerate() {
            let paths: Vec<Vec<u8>> = layer
                .entries
                .iter()
                .map(|e| normalize(&e.meta.path))
                .collect();
            for path in &paths {
                match whiteout_of(path) {
                    Whiteout::Remove(dir, name) => {
                        let target = join(dir, name);
                        entries.remove(&target);
                        remove_below(&mut entries, &target);
                    }
                    Whiteout::Opaque(dir) => remove_below(&mut entries, dir),
                    Whiteout::RootOpaque => entries.clear(),
                    Whiteout::Nothing | Whiteout::None => {}
                }
            }
            for (i, path) in paths.iter().enumerate() {
                match whiteout_of(path) {
                    Whiteout::Remove(dir, _) | Whiteout::Opaque(dir) => {
                        make_dirs(&mut entries, bootstrap, dir, l)
                    }
                    Whiteout::None => {
                        make_dirs(&mut entries, bootstrap, parent_and_name(path).0, l);
                        if layer.entries[i].meta.kind != EntryKind::Directory {
                            remove_below(&mut entries, path);
                        }
                        let r = EntryRef { layer: l, index: i };
                        entries.insert(path.clone(), TreeNode::Entry(r));
                    }
                    Whiteout::RootOpaque | Whiteout::Nothing => {}
                }
            }
        }
        MergedTree { bootstrap, entries }
    }

    pub(crate) fn entry(&self, r: EntryRef) -> &'a EntryRecord {
        &self.bootstrap.layers[r.layer].entries[r.index]
    }

    /// What is at `path` (any spelling; see `normalize`).
    pub(crate) fn get(&self, path: &[u8]) -> Option<TreeNode> {
        self.entries.get(&normalize(path)).copied()
    }

    /// The kind of a node.
    pub(crate) fn kind(&self, node: TreeNode) -> EntryKind {
        match node {
            TreeNode::Entry(r) => self.entry(r).meta.kind,
            TreeNode::Implicit(_) => EntryKind::Directory,
        }
    }

    /// Everything, parents before children.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], TreeNode)> + '_ {
        self.entries.iter().map(|(p, &n)| (p.as_slice(), n))
    }

    /// Direct children of directory `dir` ("" for the root), in name order.
    pub(crate) fn children(&self, dir: &[u8]) -> Vec<(&[u8], TreeNode)> {
        let dir = normalize(dir);
        let prefix = if dir.is_empty() {
            Vec::new()
        } else {
            [&dir[..], b"/"].concat()
        };
        self.entries
            .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| !p[prefix.len()..].contains(&b'/'))
            .map(|(p, &n)| (p.as_slice(), n))
            .collect()
    }

    /// True if `dir` is a directory of the view (the root always is).
    pub(crate) fn is_dir(&self, dir: &[u8]) -> bool {
        let dir = normalize(dir);
        dir.is_empty()
            || self
                .get(&dir)
                .is_some_and(|n| self.kind(n) == EntryKind::Directory)
    }

    /// Follows hardlinks (within the view) to what holds the content.
    pub(crate) fn content_entry(&self, path: &[u8]) -> Option<TreeNode> {
        let mut path = normalize(path);
        for _ in 0..16 {
            let node = self.get(&path)?;
            let TreeNode::Entry(r) = node else {
                return Some(node);
            };
            let entry = self.entry(r);
            if entry.meta.kind != EntryKind::Hardlink {
                return Some(node);
            }
            path = normalize(entry.meta.link_target.as_deref().unwrap_or_default());
        }
        None
    }
}

#[cfg(test)]
/// Makes `dir` and every directory above it a directory: an existing directory entry stays,
/// an implicit one is now layer `layer`'s, anything else is replaced by an implicit one.
fn make_dirs(
    entries: &mut BTreeMap<Vec<u8>, TreeNode>,
    bootstrap: &WholeImage,
    dir: &[u8],
    layer: usize,
) {
    let ends = dir
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .chain((!dir.is_empty()).then_some(dir.len()));
    for end in ends {
        let prefix = &dir[..end];
        let is_dir_entry = |n: &TreeNode| match n {
            TreeNode::Entry(r) => {
                bootstrap.layers[r.layer].entries[r.index].meta.kind == EntryKind::Directory
            }
            TreeNode::Implicit(_) => false,
        };
        if !entries.get(prefix).is_some_and(is_dir_entry) {
            entries.insert(prefix.to_vec(), TreeNode::Implicit(layer));
        }
    }
}

#[cfg(test)]
/// Removes every entry strictly below `dir`.
fn remove_below(entries: &mut BTreeMap<Vec<u8>, TreeNode>, dir: &[u8]) {
    let prefix = if dir.is_empty() {
        Vec::new()
    } else {
        [dir, b"/"].concat()
    };
    let doomed: Vec<Vec<u8>> = entries
        .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(p, _)| p.clone())
        .collect();
    for p in doomed {
        entries.remove(&p);
    }
}
