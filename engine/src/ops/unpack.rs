//! `unpack`: an image's root filesystem written into a directory while walking the merged view
//! of its layer objects (`merged`, over `view`), with file content streamed chunk by
//! chunk (`view::ChunkReader`).
//!
//! Safety: nothing outside the target directory is ever written, created, linked or chmod-ed,
//! whatever the image holds. Three rules see to it. (1) Before anything is written, every entry
//! of the layers applied is checked: a path or hardlink target that is absolute or has a `..`
//! component is refused, naming the layer and entry. (2) Every file is reached from an fd of the
//! target directory, one component at a time, with `openat(O_DIRECTORY | O_NOFOLLOW)`: a
//! component that is a symlink (an image's `evil -> /etc`) or not a directory stops the unpack
//! with an error; nothing is ever resolved by path. (3) The last component is created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` (or `mkdirat`, `symlinkat`, `mknodat`, `linkat` without
//! following), and its metadata is set through the new fd or with `AT_SYMLINK_NOFOLLOW`.
//! Symlink targets are written verbatim and never followed. Hardlinks are resolved in the image,
//! not on disk: a link is made to the file the link meant, wherever this unpack wrote it.
//! GNU sparse files (old GNU format) are written with their holes (`sparse`); one in a PAX
//! sparse format stops the unpack with an error naming it.
//!
//! Order: every entry but hardlinks (parents before children), then hardlinks, then directory
//! modes and mtimes, deepest first, so that a read-only directory does not block its children
//! and writing children does not change a directory's mtime. Devices are made only as root
//! (fifos always: they need no privilege), owners are set as root or when asked.
//!
//! Memory: nothing is held per entry. Rule (1)'s check streams each applied layer's entries
//! once, noting its hardlinks; the first pass writes as the view's walk goes, its entries
//! decoded `view::WALK_BATCH` at a time.
//! What must wait is held in memory, proportional to what it is about: the planned hardlinks
//! (path, entry and source of each visible hardlink, resolved before anything is written) and
//! the directories' metadata for the last pass (path and `EntryMeta` of each directory). Both
//! are small next to the files of any real image; an image of millions of hardlinks or
//! directories would need them spilled to disk, which this does not do.

mod dirs;
mod merged;
mod sparse;
mod sys;

use crate::error::{Error, IoContext, Result};
use crate::format::bootstrap::BlobRecord;
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::entry_path::check_path;
use crate::layer::{EntryKind, EntryMeta};
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::view::tree::{normalize, EntryRef};
use crate::view::{kind_name, layer_index, ChunkReader};
use dirs::{out_path, prepare_dir, DirWalker, WalkError};
use merged::Merged;
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;
use sys::{Node, Special};

/// How many hardlinks to hardlinks are followed before giving up (a loop, or absurd input).
const MAX_LINK_DEPTH: usize = 16;

/// How `unpack` writes an image's filesystem into a directory.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Apply layers `0..=top_layer` only (the filesystem as of that layer); all when `None`.
    pub top_layer: Option<usize>,
    /// A failure to set an extended attribute stops the unpack (otherwise it is reported).
    pub strict_xattrs: bool,
    /// Set owners from the image even when not running as root.
    pub same_owner: bool,
}

/// What an unpack wrote and what it left out.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct UnpackReport {
    /// Regular files written (hard links not counted).
    pub files: u64,
    /// Directories written (created, or already there and given the image's metadata).
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Hard links created, and links written as a copy because the file they name was
    /// replaced or removed by an upper layer.
    pub hardlinks: u64,
    /// Character and block devices created (only when running as root).
    pub devices: u64,
    /// FIFOs created.
    pub fifos: u64,
    /// Entries not written (devices when not root, unsupported entry types, links to those).
    pub skipped: Vec<Skipped>,
    /// Extended attributes that could not be set (without `strict_xattrs`).
    pub xattr_failures: Vec<XattrFailure>,
    /// File content bytes written.
    pub bytes: u64,
    /// Wall-clock seconds of the unpack.
    pub seconds: f64,
}

/// An entry the unpack did not write.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// Path in the image, normalized (lossy UTF-8).
    pub path: String,
    /// Why it was left out (e.g. "devices are only created when running as root").
    pub reason: String,
}

/// An extended attribute the unpack could not set.
#[derive(Clone, Debug, Serialize)]
pub struct XattrFailure {
    /// Path in the image, normalized (lossy UTF-8).
    pub path: String,
    /// The attribute's name (lossy UTF-8), e.g. `security.capability`.
    pub name: String,
    /// The system's error, or why the name could not be used.
    pub error: String,
}

pub(crate) fn unpack(
    store: &Store,
    name: &str,
    dir: &Path,
    options: &UnpackOptions,
    progress: &dyn Progress,
) -> Result<UnpackReport> {
    let start = Instant::now();
    let (_, layers) = store.image_layers(name)?;
    let applied = match options.top_layer {
        None => &layers[..],
        Some(t) => &layers[..=layer_index(name, layers.len(), t)?],
    };
    let hardlinks = check_paths(name, applied)?;
    let tree = Merged::new(applied, None);
    let links = plan_hardlinks(name, &tree, hardlinks)?;
    let root = prepare_dir(dir)?;

    let as_root = sys::is_root();
    let mut writer = TreeWriter {
        image: name,
        out: dir,
        walker: DirWalker::new(root),
        chunks: ChunkReader::new(store),
        progress,
        devices: as_root,
        meta: MetaWriter {
            owners: as_root || options.same_owner,
            strict_xattrs: options.strict_xattrs,
            failures: Vec::new(),
        },
        report: UnpackReport::default(),
    };
    progress.set_length(content_bytes(applied, &links), Unit::Bytes);
    let dirs = writer.write_entries(&tree)?;
    writer.write_hardlinks(&tree, &links)?;
    writer.finish_dirs(&dirs)?;
    progress.finish();

    let mut report = writer.report;
    report.xattr_failures = writer.meta.failures;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// How errors name an entry: `image "x" layer 2 entry "../etc/passwd"`.
fn entry_object(image: &str, layer: usize, path: &[u8]) -> String {
    format!(
        "image {image:?} layer {layer} entry {:?}",
        String::from_utf8_lossy(path)
    )
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Rule (1) of the module doc: no entry of the applied layers (whether or not an upper layer
/// hides it) may name a path outside the root, nor hardlink to one. Streams every entry once;
/// returns the hardlinks (normalized path, entry), for `plan_hardlinks`.
fn check_paths(image: &str, layers: &[LayerMeta]) -> Result<Vec<(Vec<u8>, EntryRef)>> {
    let mut hardlinks = Vec::new();
    for (l, layer) in layers.iter().enumerate() {
        for (index, entry) in layer.entries().enumerate() {
            let meta = entry?.meta;
            let object = || entry_object(image, l, &meta.path);
            check_path(&meta.path).map_err(|why| Error::bad_input(object(), why))?;
            if meta.kind == EntryKind::Hardlink {
                let target = meta.link_target.as_deref().unwrap_or_default();
                if normalize(target).is_empty() {
                    return Err(Error::bad_input(object(), "hardlink without a target"));
                }
                check_path(target).map_err(|why| {
                    Error::bad_input(
                        object(),
                        format!("hardlink target {:?}: {why}", lossy(target)),
                    )
                })?;
                hardlinks.push((normalize(&meta.path), EntryRef { layer: l, index }));
            }
        }
    }
    Ok(hardlinks)
}

/// Where a hardlink of the merged view gets its inode from.
enum LinkSource {
    /// A path this unpack writes before the link: the meant file itself, or an earlier copy.
    Path(Vec<u8>),
    /// The meant file is not in the merged view (an upper layer replaced or removed it):
    /// write a copy of it at the link's path.
    Copy,
}

struct PlannedLink {
    /// Normalized path of the link.
    path: Vec<u8>,
    link: EntryRef,
    /// The entry holding the content (never a hardlink).
    content: EntryRef,
    /// That entry's size.
    size: u64,
    source: LinkSource,
}

/// The order of the view's walk: depth first, by name within a directory.
fn walk_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// Resolves every hardlink of the view (of `hardlinks`, those the view shows) before anything
/// is written, so that a dangling link is refused early and the progress total is known; in
/// the view's walk order, so that a copy is planned before the links made to it.
fn plan_hardlinks(
    image: &str,
    tree: &Merged,
    mut hardlinks: Vec<(Vec<u8>, EntryRef)>,
) -> Result<Vec<PlannedLink>> {
    let mut visible = Vec::new();
    for (path, link) in hardlinks.drain(..) {
        if tree.get(&path)? == Some(link) {
            visible.push((path, link));
        }
    }
    visible.sort_by(|a, b| walk_order(&a.0, &b.0));
    let mut copies: HashMap<EntryRef, Vec<u8>> = HashMap::new();
    let mut plan = Vec::with_capacity(visible.len());
    for (path, link) in visible {
        let content = resolve_link(image, tree, link)?;
        let content_meta = tree.entry(content)?.meta;
        if content_meta.kind == EntryKind::Directory {
            let link_path = tree.entry(link)?.meta.path;
            return Err(Error::bad_input(
                entry_object(image, link.layer, &link_path),
                "hardlink to a directory",
            ));
        }
        let content_path = normalize(&content_meta.path);
        let source = if tree.get(&content_path)? == Some(content) {
            LinkSource::Path(content_path)
        } else if let Some(copy) = copies.get(&content) {
            LinkSource::Path(copy.clone())
        } else {
            copies.insert(content, path.clone());
            LinkSource::Copy
        };
        plan.push(PlannedLink {
            path,
            link,
            content,
            size: content_meta.size,
            source,
        });
    }
    Ok(plan)
}

/// The entry a hardlink means: its target path as of the link's own layer (that layer's entries
/// win over lower ones), followed through hardlinks to hardlinks.
fn resolve_link(image: &str, tree: &Merged, link: EntryRef) -> Result<EntryRef> {
    let link_path = tree.entry(link)?.meta.path;
    let object = || entry_object(image, link.layer, &link_path);
    let mut current = link;
    for _ in 0..MAX_LINK_DEPTH {
        let meta = tree.entry(current)?.meta;
        if meta.kind != EntryKind::Hardlink {
            return Ok(current);
        }
        let target = meta.link_target.as_deref().unwrap_or_default();
        match tree.get_as_of(Some(current.layer), target)? {
            Some(r) if r != current => current = r,
            _ => {
                return Err(Error::bad_input(
                    object(),
                    format!(
                        "hardlink target {:?} is not in the image as of layer {}",
                        lossy(target),
                        current.layer
                    ),
                ))
            }
        }
    }
    Err(Error::bad_input(
        object(),
        format!("hardlink chain longer than {MAX_LINK_DEPTH} links, or a loop"),
    ))
}

/// Bytes of file content the unpack writes, as the progress total: the applied layers' content
/// (from their objects' info, without decoding entries; an upper bound when upper layers hide
/// or replace files) plus hardlink copies.
fn content_bytes(layers: &[LayerMeta], links: &[PlannedLink]) -> u64 {
    let files: u64 = layers.iter().map(|l| l.info().content_bytes).sum();
    let copies: u64 = links
        .iter()
        .filter(|l| matches!(l.source, LinkSource::Copy))
        .map(|l| l.size)
        .sum();
    files + copies
}

/// An entry being written: how errors name it (image, layer, path as in the layer) and where
/// it goes (its normalized path under the output directory).
#[derive(Clone, Copy)]
struct Site<'a> {
    image: &'a str,
    layer: usize,
    raw: &'a [u8],
    out: &'a Path,
    path: &'a [u8],
}

impl Site<'_> {
    fn object(&self) -> String {
        entry_object(self.image, self.layer, self.raw)
    }

    fn file(&self) -> PathBuf {
        out_path(self.out, self.path)
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::bad_input(self.object(), reason)
    }

    fn walk_error(&self, e: WalkError) -> Error {
        e.into_error(self.object(), self.out)
    }
}

/// Sets an entry's owner, mode, extended attributes and mtime, in that order: `chown` clears
/// setuid bits and file capabilities, so it goes first; the mtime goes last.
struct MetaWriter {
    owners: bool,
    strict_xattrs: bool,
    failures: Vec<XattrFailure>,
}

impl MetaWriter {
    fn apply(&mut self, node: Node, meta: &EntryMeta, site: &Site) -> Result<()> {
        if self.owners {
            let id = |n: u64, what: &str| {
                u32::try_from(n).map_err(|_| site.bad(format!("{what} {n} out of range")))
            };
            node.chown(id(meta.uid, "uid")?, id(meta.gid, "gid")?)
                .with_path("set owner of", &site.file())?;
        }
        if meta.kind != EntryKind::Symlink {
            node.chmod(meta.mode)
                .with_path("set mode of", &site.file())?;
        }
        for (name, value) in &meta.xattrs {
            self.set_xattr(node, name, value, site)?;
        }
        node.set_mtime(meta.mtime)
            .with_path("set mtime of", &site.file())
    }

    fn set_xattr(&mut self, node: Node, name: &[u8], value: &[u8], site: &Site) -> Result<()> {
        let result = match CString::new(name) {
            Ok(c) => node.set_xattr(&c, value).map_err(|e| e.to_string()),
            Err(_) => Err("name contains a NUL byte".to_string()),
        };
        let Err(error) = result else { return Ok(()) };
        if self.strict_xattrs {
            return Err(site.bad(format!("cannot set xattr {}: {error}", lossy(name))));
        }
        self.failures.push(XattrFailure {
            path: lossy(site.path),
            name: lossy(name),
            error,
        });
        Ok(())
    }
}

/// What the first pass did with an entry.
enum Written {
    File,
    Dir,
    Symlink,
    Device,
    Fifo,
    Skipped,
}

struct TreeWriter<'a> {
    image: &'a str,
    out: &'a Path,
    walker: DirWalker,
    chunks: ChunkReader<'a>,
    progress: &'a dyn Progress,
    /// Devices are made only when running as root.
    devices: bool,
    meta: MetaWriter,
    report: UnpackReport,
}

impl<'a> TreeWriter<'a> {
    fn site<'s>(&self, path: &'s [u8], layer: usize, raw: &'s [u8]) -> Site<'s>
    where
        'a: 's,
    {
        Site {
            image: self.image,
            layer,
            raw,
            out: self.out,
            path,
        }
    }

    /// First pass: everything but hardlinks, parents before children, as the walk reaches
    /// them. Returns the directories (normalized path, layer, metadata), whose metadata is set
    /// last.
    fn write_entries(&mut self, tree: &Merged) -> Result<Vec<(Vec<u8>, usize, EntryMeta)>> {
        let mut dirs = Vec::new();
        tree.walk_but_hardlinks(|path, r, entry| {
            let site = self.site(path, r.layer, &entry.meta.path);
            match self.write_entry(&site, &entry, tree.blobs(r.layer))? {
                Written::File => self.report.files += 1,
                Written::Dir => {
                    self.report.dirs += 1;
                    dirs.push((path.to_vec(), r.layer, entry.meta));
                }
                Written::Symlink => self.report.symlinks += 1,
                Written::Device => self.report.devices += 1,
                Written::Fifo => self.report.fifos += 1,
                Written::Skipped => {}
            }
            Ok(())
        })?;
        Ok(dirs)
    }

    /// Writes `entry`'s file, directory, symlink or special file at `site`.
    fn write_entry(
        &mut self,
        site: &Site,
        entry: &LayerEntry,
        blobs: &[BlobRecord],
    ) -> Result<Written> {
        match entry.meta.kind {
            EntryKind::Directory => {
                self.walker.dir(site.path).map_err(|e| site.walk_error(e))?;
                Ok(Written::Dir)
            }
            EntryKind::File => {
                sparse::refuse_pax_sparse(site, entry)?;
                self.write_file(site, entry, blobs)?;
                Ok(Written::File)
            }
            EntryKind::Other(b'S') => {
                self.write_sparse(site, entry, blobs)?;
                Ok(Written::File)
            }
            EntryKind::Symlink => self.write_node(site, entry, None),
            // A fifo needs no privilege.
            EntryKind::Fifo => self.write_node(site, entry, Some(Special::Fifo)),
            EntryKind::CharDevice | EntryKind::BlockDevice if !self.devices => {
                Ok(self.skip(site, "devices are only created when running as root"))
            }
            EntryKind::CharDevice => self.write_node(site, entry, Some(Special::Char)),
            EntryKind::BlockDevice => self.write_node(site, entry, Some(Special::Block)),
            EntryKind::Other(flag) => {
                let why = format!("unsupported tar entry type {:?}", flag as char);
                Ok(self.skip(site, &why))
            }
            EntryKind::Hardlink => Err(site.bad("a hardlink cannot be a copy of a hardlink")),
        }
    }

    /// A symlink (`special` is `None`), device or fifo: made in place, its metadata set by name.
    fn write_node(
        &mut self,
        site: &Site,
        entry: &LayerEntry,
        special: Option<Special>,
    ) -> Result<Written> {
        let meta = &entry.meta;
        let (dir, name) = self
            .walker
            .parent(site.path)
            .map_err(|e| site.walk_error(e))?;
        let made = match special {
            None => {
                let target = CString::new(meta.link_target.as_deref().unwrap_or_default())
                    .map_err(|_| site.bad("symlink target contains a NUL byte"))?;
                sys::symlink_at(&target, dir, &name).map(|()| Written::Symlink)
            }
            Some(Special::Fifo) => {
                sys::mknod_at(dir, &name, Special::Fifo, 0, 0).map(|()| Written::Fifo)
            }
            Some(kind) => sys::mknod_at(dir, &name, kind, meta.dev_major, meta.dev_minor)
                .map(|()| Written::Device),
        };
        match made {
            Ok(written) => {
                self.meta.apply(Node::At(dir, &name), meta, site)?;
                Ok(written)
            }
            // Root in a user namespace may lack CAP_MKNOD: the device is left out, as for a user.
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    && matches!(special, Some(Special::Char | Special::Block)) =>
            {
                Ok(self.skip(site, &format!("cannot create a device here: {e}")))
            }
            Err(e) => Err(Error::io("create", &site.file(), e)),
        }
    }

    /// Rule (3) of the module doc for regular files: a new file, content streamed in chunk by
    /// chunk, metadata set through the fd.
    fn write_file(&mut self, site: &Site, entry: &LayerEntry, blobs: &[BlobRecord]) -> Result<()> {
        let (dir, name) = self
            .walker
            .parent(site.path)
            .map_err(|e| site.walk_error(e))?;
        let mut file = sys::create_file_at(dir, &name).with_path("create", &site.file())?;
        for chunk in &entry.chunks {
            let data = self.chunks.read(chunk, blobs)?;
            file.write_all(&data).with_path("write", &site.file())?;
            self.report.bytes += data.len() as u64;
            self.progress.inc(data.len() as u64);
        }
        self.meta.apply(Node::Open(file.as_fd()), &entry.meta, site)
    }

    fn skip(&mut self, site: &Site, reason: &str) -> Written {
        self.report.skipped.push(Skipped {
            path: lossy(site.path),
            reason: reason.to_string(),
        });
        Written::Skipped
    }

    /// Second pass: hardlinks, to a path written before, or as a copy of the meant file.
    fn write_hardlinks(&mut self, tree: &Merged, links: &[PlannedLink]) -> Result<()> {
        for planned in links {
            let link = tree.entry(planned.link)?;
            let content = tree.entry(planned.content)?;
            let site = self.site(&planned.path, planned.link.layer, &link.meta.path);
            match &planned.source {
                LinkSource::Copy => {
                    let blobs = tree.blobs(planned.content.layer);
                    if !matches!(self.write_entry(&site, &content, blobs)?, Written::Skipped) {
                        self.report.hardlinks += 1;
                    }
                }
                LinkSource::Path(_) if !self.writes(content.meta.kind) => {
                    let kind = kind_name(content.meta.kind);
                    self.skip(&site, &format!("links to a {kind} that was skipped"));
                }
                LinkSource::Path(source) => {
                    self.link(&site, source)?;
                    self.report.hardlinks += 1;
                }
            }
        }
        Ok(())
    }

    /// A hard link at `site` to `source`, a normalized path this unpack wrote.
    fn link(&mut self, site: &Site, source: &[u8]) -> Result<()> {
        let (source_dir, source_name) =
            self.walker.parent(source).map_err(|e| site.walk_error(e))?;
        // The walker keeps one directory open at a time; the source's is kept aside.
        let source_dir = source_dir
            .try_clone_to_owned()
            .with_path("open", &out_path(self.out, source))?;
        let (dir, name) = self
            .walker
            .parent(site.path)
            .map_err(|e| site.walk_error(e))?;
        sys::link_at(source_dir.as_fd(), &source_name, dir, &name)
            .with_path("hardlink", &site.file())
    }

    /// True if the first pass writes entries of this kind (rather than skipping them).
    fn writes(&self, kind: EntryKind) -> bool {
        match kind {
            EntryKind::CharDevice | EntryKind::BlockDevice => self.devices,
            EntryKind::Other(flag) => flag == b'S',
            _ => true,
        }
    }

    /// Last pass: directory metadata, deepest first (the reverse of the view's order puts every
    /// directory after everything below it).
    fn finish_dirs(&mut self, dirs: &[(Vec<u8>, usize, EntryMeta)]) -> Result<()> {
        for (path, layer, meta) in dirs.iter().rev() {
            let site = self.site(path, *layer, &meta.path);
            let fd = self.walker.dir(path).map_err(|e| site.walk_error(e))?;
            self.meta.apply(Node::Open(fd), meta, &site)?;
        }
        Ok(())
    }
}

/// `cairn unpack`.
impl crate::store::Store {
    /// Writes the root filesystem of image `name` (as of `options.top_layer`) into `dir`.
    pub fn unpack(
        &self,
        name: &str,
        dir: &Path,
        options: &UnpackOptions,
        progress: &dyn crate::Progress,
    ) -> Result<UnpackReport> {
        unpack(self, name, dir, options, progress)
    }
}
