//! Paths of the merged view (normalized, split, joined) and `EntryRef`, and, in tests only,
//! `MergedTree`: the whole-image tree the readers used before `ops::view` (its layers applied
//! in order: whiteouts `.wh.NAME` delete what lower layers put at NAME, opaque markers
//! `DIR/.wh..wh..opq` hide everything lower layers put under DIR, an entry replaces whatever
//! lower layers had at its path and a non-directory also removes what was under it), kept as
//! the reference the per-path view is tested against.

#[cfg(test)]
use crate::layer::EntryKind;
#[cfg(test)]
use crate::ops::whole_image::{EntryRecord, WholeImage};
#[cfg(test)]
use std::collections::BTreeMap;
#[cfg(test)]
use std::ops::Bound;

#[cfg(test)]
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
#[cfg(test)]
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Where an entry of the merged view comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryRef {
    pub layer: usize,
    pub index: usize,
}

#[cfg(test)]
/// Normalised path (no leading `/` or `./`, no empty or `.` components) -> entry.
pub struct MergedTree<'a> {
    bootstrap: &'a WholeImage,
    entries: BTreeMap<Vec<u8>, EntryRef>,
}

/// `a/b/c` for any of `./a/b/c`, `/a/b/c/`, `a//b/c` (the layer metadata's path index is
/// keyed by it).
pub use crate::format::layer_meta::normalize;

/// Splits `a/b/c` into (`a/b`, `c`).
pub fn parent_and_name(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

#[cfg(test)]
/// What a layer entry means for the merged view.
pub enum Whiteout<'p> {
    /// Deletes this path of lower layers.
    Remove(Vec<u8>),
    /// Hides everything lower layers put under this directory.
    Opaque(&'p [u8]),
    None,
}

#[cfg(test)]
pub fn whiteout_of(path: &[u8]) -> Whiteout<'_> {
    let (dir, name) = parent_and_name(path);
    if name == OPAQUE_MARKER {
        Whiteout::Opaque(dir)
    } else if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
        Whiteout::Remove(join(dir, target))
    } else {
        Whiteout::None
    }
}

#[cfg(test)]
impl<'a> MergedTree<'a> {
    /// The view of layers `0..=top` (all layers when `top` is `None`).
    pub fn new(bootstrap: &'a WholeImage, top: Option<usize>) -> Self {
        let mut entries: BTreeMap<Vec<u8>, EntryRef> = BTreeMap::new();
        let end = top.map_or(bootstrap.layers.len(), |t| {
            (t + 1).min(bootstrap.layers.len())
        });
        for (l, layer) in bootstrap.layers[..end].iter().enumerate() {
            // Whiteouts act on lower layers only, so they are applied before this layer's entries.
            for entry in &layer.entries {
                let path = normalize(&entry.meta.path);
                match whiteout_of(&path) {
                    Whiteout::Remove(target) => {
                        entries.remove(&target);
                        remove_below(&mut entries, &target);
                    }
                    Whiteout::Opaque(dir) => remove_below(&mut entries, dir),
                    Whiteout::None => {}
                }
            }
            for (i, entry) in layer.entries.iter().enumerate() {
                let path = normalize(&entry.meta.path);
                if path.is_empty() || !matches!(whiteout_of(&path), Whiteout::None) {
                    continue;
                }
                if entry.meta.kind != EntryKind::Directory {
                    remove_below(&mut entries, &path);
                }
                entries.insert(path, EntryRef { layer: l, index: i });
            }
        }
        MergedTree { bootstrap, entries }
    }

    pub fn entry(&self, r: EntryRef) -> &'a EntryRecord {
        &self.bootstrap.layers[r.layer].entries[r.index]
    }

    /// The entry at `path` (any spelling; see `normalize`).
    pub fn get(&self, path: &[u8]) -> Option<(EntryRef, &'a EntryRecord)> {
        self.entries
            .get(&normalize(path))
            .map(|&r| (r, self.entry(r)))
    }

    /// Every entry, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef, &'a EntryRecord)> + '_ {
        self.entries
            .iter()
            .map(|(p, &r)| (p.as_slice(), r, self.entry(r)))
    }

    /// Direct children of directory `dir` ("" for the root), in name order.
    pub fn children(&self, dir: &[u8]) -> Vec<(&[u8], EntryRef, &'a EntryRecord)> {
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
            .map(|(p, &r)| (p.as_slice(), r, self.entry(r)))
            .collect()
    }

    /// True if `dir` is a directory of the view (the root always is), or has entries below it.
    pub fn is_dir(&self, dir: &[u8]) -> bool {
        let dir = normalize(dir);
        if dir.is_empty() {
            return true;
        }
        match self.entries.get(&dir) {
            Some(&r) => self.entry(r).meta.kind == EntryKind::Directory,
            None => !self.children(&dir).is_empty(),
        }
    }

    /// Follows hardlinks (within the view) to the entry holding the content.
    pub fn content_entry(&self, path: &[u8]) -> Option<&'a EntryRecord> {
        let mut path = normalize(path);
        for _ in 0..16 {
            let (_, entry) = self.get(&path)?;
            if entry.meta.kind != EntryKind::Hardlink {
                return Some(entry);
            }
            path = normalize(entry.meta.link_target.as_deref().unwrap_or_default());
        }
        None
    }
}

#[cfg(test)]
/// Removes every entry strictly below `dir`.
fn remove_below(entries: &mut BTreeMap<Vec<u8>, EntryRef>, dir: &[u8]) {
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
