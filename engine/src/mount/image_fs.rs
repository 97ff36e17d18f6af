//! One image (or its tree as of a layer) as a read-only filesystem: inode numbers, attributes,
//! lookups, listings, link targets and xattrs, answered from the layers' path indexes and entry
//! blocks through `MergedView`, the way `cat` and `ls` read an image; nothing is loaded whole.
//!
//! Inode numbers are fixed by the image: the root is 1; entry `e` of layer `l` is
//! `firsts[l] + e` (the entries of the layers below come first); a hardlink is the inode of the
//! entry holding its content, so all its names share one inode, whose link count is one plus
//! the visible hardlinks to it (counted when the image is opened). Implicit directories (a tar
//! may hold `a/b` without `a/`) get numbers from `IMPLICIT_BASE` on, as they are met.
//!
//! A lookup names a directory inode and a name: each directory looked up keeps its parent's
//! inode and its floor in the view (a few words, like the implicit directories' parent and
//! name), so that a lookup, listing or `..` in a directory costs one path lookup per layer
//! whatever its depth; found by path, it cost one per layer per ancestor, and `find` in a tree
//! 10,000 directories deep never got to the bottom.

use super::content::{Content, OpenFile};
use crate::error::{Error, Result};
use crate::format::bootstrap::BlobRecord;
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::{EntryKind, EntryMeta};
use crate::view::tree::join;
use crate::view::{Found, MergedView, IMPLICIT_DIR_MODE};
use fuser::{FileAttr, FileType, INodeNo};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) const ROOT: u64 = 1;
const FIRST_ENTRY: u64 = 2;
/// Implicit directories are numbered from here up.
const IMPLICIT_BASE: u64 = 1 << 43;
/// Every inode number of one image is below this (`mount --all` puts the image above it).
pub(super) const INODE_LIMIT: u64 = 1 << 44;
const BLOCK_SIZE: u32 = 4096;
/// Decoded metadata blocks kept per kind over all layers (blocks hold 32 to 64 KiB encoded).
const CACHED_BLOCKS_TOTAL: usize = 64;

/// An inode: its number, normalized path, and entry (none for the root and implicit
/// directories).
pub(super) struct Node {
    pub ino: u64,
    pub path: Vec<u8>,
    pub entry: Option<LayerEntry>,
    /// The layer the entry comes from.
    pub layer: usize,
}

impl Node {
    pub(super) fn kind(&self) -> FileType {
        self.entry
            .as_ref()
            .map_or(FileType::Directory, |e| file_type(e.meta.kind))
    }
}

/// One name of a directory listing.
pub(super) struct DirItem {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: FileType,
}

pub(super) struct ImageFs {
    /// The applied layers, bottom first.
    layers: Vec<LayerMeta>,
    blob_tables: Vec<Arc<[BlobRecord]>>,
    /// The inode of each layer's entry 0.
    firsts: Vec<u64>,
    /// Inode -> visible hardlinks to it.
    links: HashMap<u64, u32>,
    implicit: Mutex<Implicit>,
    /// Directory inode -> what its lookup found out (`Dir`).
    dirs: Mutex<HashMap<u64, Dir>>,
    content: Arc<Content>,
}

/// Implicit directories met, by their parent's inode and name (not their paths, which would
/// cost the square of the depth in a deep tree).
#[derive(Default)]
struct Implicit {
    inodes: HashMap<(u64, Vec<u8>), u64>,
    /// Inode - `IMPLICIT_BASE` -> (parent inode, name).
    names: Vec<(u64, Vec<u8>)>,
}

/// A directory as its lookup found it: its parent's inode and its floor in the view
/// (`MergedView::floor_of`), so that a lookup or a listing in it reads each layer once,
/// whatever its depth (a `get` by path would read each layer once per ancestor).
#[derive(Clone, Copy)]
struct Dir {
    parent: u64,
    floor: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ImageFs {
    /// The view of `layers` (already cut at the layer mounted), reading content through
    /// `content`. Counts the visible hardlinks (one pass over the path indexes).
    pub(super) fn new(
        layers: Vec<LayerMeta>,
        content: Arc<Content>,
        object: &str,
    ) -> Result<ImageFs> {
        let mut firsts = Vec::with_capacity(layers.len());
        let mut next = FIRST_ENTRY;
        for layer in &layers {
            firsts.push(next);
            next = next.saturating_add(layer.entry_count());
        }
        if next >= IMPLICIT_BASE {
            return Err(Error::Usage(format!(
                "{object} has {next} entries; a mount numbers at most {IMPLICIT_BASE}"
            )));
        }
        // Lookups come back to the same blocks in no particular order: keep more of them.
        let cache_blocks = (CACHED_BLOCKS_TOTAL / layers.len().max(1)).clamp(4, 64);
        let layers: Vec<LayerMeta> = layers
            .into_iter()
            .map(|l| l.with_block_cache(cache_blocks))
            .collect();
        let blob_tables = layers.iter().map(|l| Arc::from(l.blobs())).collect();
        let mut fs = ImageFs {
            layers,
            blob_tables,
            firsts,
            links: HashMap::new(),
            implicit: Mutex::new(Implicit::default()),
            dirs: Mutex::new(HashMap::new()),
            content,
        };
        fs.links = fs.count_hardlinks()?;
        Ok(fs)
    }

    fn view(&self) -> MergedView<'_, LayerMeta> {
        MergedView::new(&self.layers, None)
    }

    fn link_target(&self, layer: usize, n: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.layers[layer].entry(n)?.meta.link_target)
    }

    /// For every visible hardlink, one more name for the inode it leads to.
    fn count_hardlinks(&self) -> Result<HashMap<u64, u32>> {
        let view = self.view();
        let mut links = HashMap::new();
        for (l, layer) in self.layers.iter().enumerate() {
            for record in layer.paths() {
                let record = record?;
                let (Some(EntryKind::Hardlink), Some(n)) = (record.kind, record.entry) else {
                    continue;
                };
                let path = join(&record.parent, &record.name);
                let visible = view.get(&path)?;
                if !matches!(visible, Some(Found::Entry(vl, r)) if vl == l && r.entry == Some(n)) {
                    continue;
                }
                let target = view.content_entry(&path, |l, n| self.link_target(l, n))?;
                if let Some(Shown::Entry(tl, tn)) = target.and_then(shown) {
                    *links.entry(self.firsts[tl] + tn).or_insert(0) += 1;
                }
            }
        }
        Ok(links)
    }

    /// The node of inode `ino`, if the image has one.
    pub(super) fn node(&self, ino: u64) -> Result<Option<Node>> {
        if ino == ROOT {
            return Ok(Some(self.root()));
        }
        if ino >= IMPLICIT_BASE {
            return self.implicit_path(ino).map(|path| {
                path.map(|path| Node {
                    ino,
                    path,
                    entry: None,
                    layer: 0,
                })
            });
        }
        let Some(layer) = (ino >= FIRST_ENTRY)
            .then(|| self.firsts.partition_point(|&f| f <= ino) - 1)
            .filter(|&l| ino - self.firsts[l] < self.layers[l].entry_count())
        else {
            return Ok(None);
        };
        let entry = self.layers[layer].entry(ino - self.firsts[layer])?;
        let path = crate::view::tree::normalize(&entry.meta.path);
        Ok(Some(Node {
            ino,
            path,
            entry: Some(entry),
            layer,
        }))
    }

    /// The path of implicit directory `ino`: its name, its parents' up to the first that is
    /// not implicit.
    fn implicit_path(&self, mut ino: u64) -> Result<Option<Vec<u8>>> {
        let mut names = Vec::new();
        while ino >= IMPLICIT_BASE {
            let implicit = lock(&self.implicit);
            let Some((parent, name)) = implicit.names.get((ino - IMPLICIT_BASE) as usize) else {
                return Ok(None);
            };
            names.push(name.clone());
            ino = *parent;
        }
        let Some(top) = self.node(ino)? else {
            return Ok(None);
        };
        names.push(top.path);
        names.retain(|n| !n.is_empty());
        names.reverse();
        Ok(Some(names.join(&b'/')))
    }

    fn root(&self) -> Node {
        Node {
            ino: ROOT,
            path: Vec::new(),
            entry: None,
            layer: 0,
        }
    }

    /// What the lookup of directory `dir` found out; for one met otherwise (the root, or a
    /// directory reached through a hardlink's target), found now by looking it up from the root.
    fn dir(&self, dir: &Node) -> Result<Dir> {
        if dir.ino == ROOT {
            let floor = self.view().floor_of(b"")?;
            return Ok(Dir {
                parent: ROOT,
                floor,
            });
        }
        if let Some(found) = lock(&self.dirs).get(&dir.ino) {
            return Ok(*found);
        }
        let mut node = self.root();
        for name in dir.path.split(|&b| b == b'/') {
            match self.child(&node, name)? {
                Some(child) => node = child,
                None => break,
            }
        }
        if let Some(found) = lock(&self.dirs).get(&dir.ino) {
            return Ok(*found);
        }
        // Not where its path leads (a directory a hardlink names): its floor, and the root.
        let floor = self.view().floor_of(&dir.path)?;
        Ok(Dir {
            parent: ROOT,
            floor,
        })
    }

    /// The node at `name` in directory `parent`, hardlinks followed to their content.
    pub(super) fn child(&self, parent: &Node, name: &[u8]) -> Result<Option<Node>> {
        let path = join(&parent.path, name);
        let view = self.view();
        let floor = self.dir(parent)?.floor;
        let (found, child_floor) = view.child_in(&parent.path, floor, name)?;
        let (found, linked) = match found {
            Some(found) if found.kind() == Some(EntryKind::Hardlink) => (
                view.content_entry(&path, |l, n| self.link_target(l, n))?,
                true,
            ),
            found => (found, false),
        };
        let node = match found.and_then(shown) {
            Some(Shown::Implicit) => self.implicit_node(parent.ino, name, path),
            Some(Shown::Entry(layer, n)) => match self.node(self.firsts[layer] + n)? {
                Some(node) => node,
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        if node.kind() == FileType::Directory && !linked {
            let dir = Dir {
                parent: parent.ino,
                floor: child_floor,
            };
            lock(&self.dirs).insert(node.ino, dir);
        }
        Ok(Some(node))
    }

    fn implicit_node(&self, parent: u64, name: &[u8], path: Vec<u8>) -> Node {
        let mut implicit = lock(&self.implicit);
        let next = IMPLICIT_BASE + implicit.names.len() as u64;
        let key = (parent, name.to_vec());
        let ino = *implicit.inodes.entry(key).or_insert(next);
        if ino == next {
            implicit.names.push((parent, name.to_vec()));
        }
        Node {
            ino,
            path,
            entry: None,
            layer: 0,
        }
    }

    /// The names in directory `dir`, without `.` and `..`.
    pub(super) fn list(&self, dir: &Node) -> Result<Vec<DirItem>> {
        let view = self.view();
        let floor = self.dir(dir)?.floor;
        let mut items = Vec::new();
        for (name, found) in view.children_in(&dir.path, floor)? {
            let path = join(&dir.path, &name);
            let target = match found {
                found if found.kind() == Some(EntryKind::Hardlink) => {
                    view.content_entry(&path, |l, n| self.link_target(l, n))?
                }
                found => Some(found),
            };
            let kind = target.as_ref().and_then(|t| t.kind());
            let kind = kind.map_or(FileType::RegularFile, file_type);
            // A hardlink leading nowhere is not listed: it could not be looked up either.
            let ino = match target.and_then(shown) {
                Some(Shown::Implicit) => self.implicit_node(dir.ino, &name, path).ino,
                Some(Shown::Entry(layer, n)) => self.firsts[layer] + n,
                None => continue,
            };
            items.push(DirItem { name, ino, kind });
        }
        Ok(items)
    }

    /// The inode of the directory holding `node` (the root's is itself).
    pub(super) fn parent_ino(&self, node: &Node) -> Result<u64> {
        Ok(self.dir(node)?.parent)
    }

    pub(super) fn attr(&self, node: &Node) -> Result<FileAttr> {
        let Some(entry) = &node.entry else {
            return Ok(dir_attr(node.ino, 2 + self.subdirectories(node)?));
        };
        let meta = &entry.meta;
        let nlink = match meta.kind {
            EntryKind::Directory => 2 + self.subdirectories(node)?,
            _ => 1 + self.links.get(&node.ino).copied().unwrap_or(0),
        };
        Ok(entry_attr(node.ino, meta, nlink))
    }

    fn subdirectories(&self, dir: &Node) -> Result<u32> {
        let floor = self.dir(dir)?.floor;
        let listing = self.view().children_in(&dir.path, floor)?;
        Ok(listing.iter().filter(|(_, found)| found.is_dir()).count() as u32)
    }

    /// An open regular file's content.
    pub(super) fn open_file(&self, node: &Node) -> Option<Arc<OpenFile>> {
        let entry = node.entry.as_ref()?;
        matches!(entry.meta.kind, EntryKind::File | EntryKind::Other(_)).then(|| {
            Arc::new(OpenFile::new(
                entry.chunks.clone(),
                self.blob_tables[node.layer].clone(),
            ))
        })
    }

    pub(super) fn content(&self) -> &Arc<Content> {
        &self.content
    }

    /// Entries and content bytes, for `statfs`.
    pub(super) fn totals(&self) -> (u64, u64) {
        let entries = self.layers.iter().map(|l| l.entry_count()).sum();
        let bytes = self.layers.iter().map(|l| l.info().content_bytes).sum();
        (entries, bytes)
    }
}

/// What the inode of something the view shows is made of.
enum Shown {
    Implicit,
    /// Layer and entry number.
    Entry(usize, u64),
}

fn shown(found: Found) -> Option<Shown> {
    match found {
        Found::Entry(l, record) => record.entry.map(|n| Shown::Entry(l, n)),
        Found::Implicit(_) => Some(Shown::Implicit),
    }
}

pub(super) fn file_type(kind: EntryKind) -> FileType {
    match kind {
        EntryKind::Directory => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::CharDevice => FileType::CharDevice,
        EntryKind::BlockDevice => FileType::BlockDevice,
        EntryKind::Fifo => FileType::NamedPipe,
        EntryKind::File | EntryKind::Hardlink | EntryKind::Other(_) => FileType::RegularFile,
    }
}

fn time(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

pub(super) fn dir_attr(ino: u64, nlink: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: BLOCK_SIZE as u64,
        blocks: 8,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::Directory,
        perm: IMPLICIT_DIR_MODE as u16,
        nlink,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// The kernel's encoding of a device number in a FUSE attribute (`new_encode_dev`).
fn device(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

fn entry_attr(ino: u64, meta: &EntryMeta, nlink: u32) -> FileAttr {
    let kind = file_type(meta.kind);
    let size = match meta.kind {
        EntryKind::File | EntryKind::Other(_) => meta.size,
        EntryKind::Symlink => meta.link_target.as_ref().map_or(0, |t| t.len() as u64),
        EntryKind::Directory => BLOCK_SIZE as u64,
        _ => 0,
    };
    let rdev = match meta.kind {
        EntryKind::CharDevice | EntryKind::BlockDevice => device(meta.dev_major, meta.dev_minor),
        _ => 0,
    };
    let mtime = time(meta.mtime);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind,
        perm: (meta.mode & 0o7777) as u16,
        nlink,
        uid: u32::try_from(meta.uid).unwrap_or(u32::MAX),
        gid: u32::try_from(meta.gid).unwrap_or(u32::MAX),
        rdev,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}
