//! The entries an image shows (its merged view: what a container sees), each with its
//! **identity key**: what must be equal for two images to share the entry in a common base
//! image. The key covers the normalized path, kind, mode, owner, xattrs, link target, device
//! numbers, the content (its chunk ids, `report::content_key`) and the bytes it takes in a
//! tar `plan` writes (header and content); it leaves out the mtime, which separately built
//! images rarely agree on (a base takes the mtimes of one image it serves). A hardlink's key
//! holds its target's path and key, so a link is shared only where its target is, in the
//! same base or a lower one; a link whose target is not a regular file is never shared.
//!
//! The view is walked parents before children (`view`), entries decoded a batch at a time;
//! hardlinks come last, once their targets have been seen, as a tar needs them.

use super::tar_entry;
use crate::error::Result;
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::EntryKind;
use crate::view::tree::normalize;
use crate::view::{record_entries, record_entry, walk_batches, MergedView};

pub(super) type Key = [u8; 32];

/// One visible entry.
pub(super) struct Visible<'a> {
    pub path: &'a [u8],
    /// The layer the entry comes from (its chunks index that layer object's blob table).
    pub layer: usize,
    pub entry: &'a LayerEntry,
    pub key: Key,
    /// Bytes it takes in a tar `plan` writes.
    pub tar_bytes: u64,
}

/// Calls `visit` for every visible entry of the image whose layer objects are `layers`;
/// `image` (its position in the plan) makes the keys of unshareable entries its own.
pub(super) fn for_each_visible(
    layers: &[LayerMeta],
    image: u16,
    mut visit: impl FnMut(&Visible) -> Result<()>,
) -> Result<()> {
    let view = MergedView::new(layers, None);
    let mut hardlinks: Vec<(Vec<u8>, usize, LayerEntry)> = Vec::new();
    walk_batches(
        &view,
        |_| true,
        |batch| {
            let found: Vec<_> = batch.iter().map(|(p, f)| (&p[..], f)).collect();
            let entries = record_entries(layers, &found)?;
            for ((path, found), entry) in batch.iter().zip(entries) {
                let (path, layer) = (path.clone(), found.layer());
                if entry.meta.kind == EntryKind::Hardlink {
                    hardlinks.push((path, layer, entry));
                    continue;
                }
                let tar_bytes = tar_entry::entry_bytes(&entry.meta, &path);
                visit(&Visible {
                    key: entry_key(&path, &entry, tar_bytes, None),
                    tar_bytes,
                    path: &path,
                    layer,
                    entry: &entry,
                })?;
            }
            Ok(())
        },
    )?;
    for (path, layer, entry) in hardlinks {
        let target = normalize(entry.meta.link_target.as_deref().unwrap_or_default());
        let target_key = match view.get(&target)? {
            Some(found) if found.kind() == Some(EntryKind::File) => {
                let target_entry = record_entry(layers, &target, &found)?;
                let tar_bytes = tar_entry::entry_bytes(&target_entry.meta, &target);
                entry_key(&target, &target_entry, tar_bytes, None)
            }
            _ => unshared(image),
        };
        let tar_bytes = tar_entry::entry_bytes(&entry.meta, &path);
        visit(&Visible {
            key: entry_key(&path, &entry, tar_bytes, Some((&target, &target_key))),
            tar_bytes,
            path: &path,
            layer,
            entry: &entry,
        })?;
    }
    Ok(())
}

/// A key no other image's entry has.
fn unshared(image: u16) -> Key {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn plan: not shared");
    hasher.update(&image.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// `tar_bytes`: what the entry takes in a tar `plan` writes (its header's size varies with
/// fields the key also holds, and with user and group names and mtimes it does not).
fn entry_key(path: &[u8], entry: &LayerEntry, tar_bytes: u64, link: Option<(&[u8], &Key)>) -> Key {
    let meta = &entry.meta;
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(path);
    field(&[kind_code(meta.kind)]);
    field(&meta.mode.to_le_bytes());
    field(&meta.uid.to_le_bytes());
    field(&meta.gid.to_le_bytes());
    field(&meta.size.to_le_bytes());
    field(&meta.dev_major.to_le_bytes());
    field(&meta.dev_minor.to_le_bytes());
    field(meta.link_target.as_deref().unwrap_or_default());
    field(&(meta.xattrs.len() as u64).to_le_bytes());
    for (name, value) in &meta.xattrs {
        field(name);
        field(value);
    }
    field(&tar_bytes.to_le_bytes());
    if matches!(meta.kind, EntryKind::File | EntryKind::Other(_)) {
        field(&crate::view::chunk_sets::content_key(entry));
    }
    if let Some((target, key)) = link {
        field(target);
        field(key);
    }
    *h.finalize().as_bytes()
}

fn kind_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => b'0',
        EntryKind::Hardlink => b'1',
        EntryKind::Symlink => b'2',
        EntryKind::CharDevice => b'3',
        EntryKind::BlockDevice => b'4',
        EntryKind::Directory => b'5',
        EntryKind::Fifo => b'6',
        EntryKind::Other(flag) => flag,
    }
}
