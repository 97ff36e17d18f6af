//! `export-layer`, `cat`, `ls`: reading images back from bootstraps, layer metadata objects and
//! blobs (no index). A layer's exact tar comes from `view::layer_tar`; one file or directory of
//! the merged root filesystem is resolved path by path through the merged view (`view`) over
//! the layer objects and its chunks read by `view::ChunkReader`, so that memory stays bounded
//! by what is in flight (a few metadata blocks, a few decoded frames) whatever the image's file
//! count. Every chunk is checked against its id as it is read, and a re-created layer against
//! its diff_id.

use crate::error::{Error, Result};
use crate::format::layer_meta::LayerMeta;
use crate::layer::EntryKind;
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::view::tree::{join, normalize};
use crate::view::{
    kind_name, layer_index, record_entries, record_entry, write_layer_tar, ChunkReader, Found,
    LayerTar, MergedView,
};
use crate::Sha256Digest;
use std::io::Write;
use std::path::Path;

pub(crate) fn export_layer(
    store: &Store,
    name: &str,
    layer: usize,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<Sha256Digest> {
    let (bootstrap, layers) = store.image_layers(name)?;
    let i = layer_index(name, layers.len(), layer)?;
    let meta = &layers[i];
    progress.set_length(meta.info().source.size, Unit::Bytes);
    let mut reader = ChunkReader::new(store);
    let label = format!("image {name:?} layer {layer}");
    let tar = LayerTar {
        meta,
        diff_id: bootstrap.layers[i].diff_id,
        label: &label,
    };
    let diff_id = write_layer_tar(&mut reader, &tar, out, Path::new("-"), progress)?;
    progress.finish();
    Ok(diff_id)
}

/// How a path given to `cat` or `ls` is looked up in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Symlinks are followed as a shell in the container follows them (`view::resolve`).
    Symlinks,
    /// The path is taken as it is: a symlink is the symlink itself.
    No,
}

/// The normalized path `path` names in the image, symlinks followed per `follow`; `None` if a
/// directory on the way is missing.
fn image_path(
    view: &MergedView<LayerMeta>,
    layers: &[LayerMeta],
    path: &str,
    follow: Follow,
) -> Result<Option<Vec<u8>>> {
    if follow == Follow::No {
        return Ok(Some(normalize(path.as_bytes())));
    }
    let link_target = |layer: usize, n: u64| Ok(layers[layer].entry(n)?.meta.link_target);
    view.resolve(path.as_bytes(), true, link_target)
}

pub(crate) fn cat(
    store: &Store,
    name: &str,
    path: &str,
    follow: Follow,
    out: &mut dyn Write,
) -> Result<u64> {
    let (_, layers) = store.image_layers(name)?;
    let view = MergedView::new(&layers, None);
    let missing = || {
        Error::NotFound(crate::NotFound::File {
            image: name.to_string(),
            path: path.to_string(),
        })
    };
    let resolved = image_path(&view, &layers, path, follow)?.ok_or_else(missing)?;
    let link_target = |layer: usize, n: u64| Ok(layers[layer].entry(n)?.meta.link_target);
    let found = view
        .content_entry(&resolved, link_target)?
        .ok_or_else(missing)?;
    let layer = found.layer();
    let entry = record_entry(&layers, &resolved, &found)?;
    if entry.meta.kind != EntryKind::File {
        return Err(Error::Usage(format!(
            "{path} in image {name:?} is a {}, not a regular file",
            kind_name(entry.meta.kind)
        )));
    }
    let mut reader = ChunkReader::new(store);
    reader.write_entry(&entry, layers[layer].blobs(), out)
}

/// One row of `ls`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ListEntry {
    /// Path in the image, without a leading `/` (lossy UTF-8 for display).
    pub path: String,
    /// file, hardlink, symlink, character device, block device, directory, fifo, special entry
    pub kind: &'static str,
    /// The mode field of its tar header (permission, setuid, setgid and sticky bits).
    pub mode: u32,
    /// Numeric owner user id.
    pub uid: u64,
    /// Numeric owner group id.
    pub gid: u64,
    /// Content bytes that follow the entry's tar header (a regular file's size).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Target of a symlink or hard link (lossy UTF-8); `None` for other kinds.
    pub link_target: Option<String>,
    /// The layer the entry comes from.
    pub layer: usize,
}

/// One row of a names-only listing (`ls` without details): what the path index alone gives.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ListName {
    /// Path in the image, without a leading `/` (lossy UTF-8 for display).
    pub path: String,
    /// The entry's kind as `ListEntry::kind` names it (`special entry` for other kinds).
    pub kind: &'static str,
    /// The layer the entry comes from.
    pub layer: usize,
}

/// The visible rows of `path`: its children if it is a directory of the view, else itself.
type Rows = Vec<(Vec<u8>, Found)>;

fn listed_rows(
    view: &MergedView<LayerMeta>,
    layers: &[LayerMeta],
    name: &str,
    path: &str,
    follow: Follow,
) -> Result<Rows> {
    let missing = || {
        Error::NotFound(crate::NotFound::Entry {
            image: name.to_string(),
            path: path.to_string(),
        })
    };
    let wanted = image_path(view, layers, path, follow)?.ok_or_else(missing)?;
    if view.is_dir(&wanted)? {
        return Ok(view
            .children(&wanted)?
            .into_iter()
            .map(|(child, found)| (join(&wanted, &child), found))
            .collect());
    }
    match view.get(&wanted)? {
        Some(found) => Ok(vec![(wanted.to_vec(), found)]),
        None => Err(missing()),
    }
}

/// The names and kinds in directory `path` of the merged view (or the entry itself if not a
/// directory), from the layers' path indexes alone: no entry is decoded.
pub(crate) fn ls_names(
    store: &Store,
    name: &str,
    path: &str,
    follow: Follow,
) -> Result<Vec<ListName>> {
    let (_, layers) = store.image_layers(name)?;
    let view = MergedView::new(&layers, None);
    Ok(listed_rows(&view, &layers, name, path, follow)?
        .into_iter()
        .map(|(p, found)| ListName {
            path: String::from_utf8_lossy(&p).into_owned(),
            kind: found.kind().map_or("special entry", kind_name),
            layer: found.layer(),
        })
        .collect())
}

/// The entries of directory `path` in the merged view (or the entry itself if not a
/// directory), with their metadata (each entry block holding some decoded once).
pub(crate) fn ls(store: &Store, name: &str, path: &str, follow: Follow) -> Result<Vec<ListEntry>> {
    let (_, layers) = store.image_layers(name)?;
    let view = MergedView::new(&layers, None);
    let rows = listed_rows(&view, &layers, name, path, follow)?;
    let found: Vec<(&[u8], &Found)> = rows.iter().map(|(p, f)| (&p[..], f)).collect();
    let entries = record_entries(&layers, &found)?;
    Ok(rows
        .iter()
        .zip(entries)
        .map(|((p, found), e)| ListEntry {
            path: String::from_utf8_lossy(p).into_owned(),
            kind: kind_name(e.meta.kind),
            mode: e.meta.mode,
            uid: e.meta.uid,
            gid: e.meta.gid,
            size: e.meta.size,
            mtime: e.meta.mtime,
            link_target: e
                .meta
                .link_target
                .as_ref()
                .map(|t| String::from_utf8_lossy(t).into_owned()),
            layer: found.layer(),
        })
        .collect())
}

/// `cairn export-layer`, `cairn ls`, `cairn cat`.
impl Store {
    /// Writes layer `layer` of image `name` as its exact uncompressed tar; returns its diff_id.
    pub fn export_layer(
        &self,
        name: &str,
        layer: usize,
        out: &mut dyn std::io::Write,
        progress: &dyn crate::Progress,
    ) -> Result<crate::Sha256Digest> {
        export_layer(self, name, layer, out, progress)
    }

    /// Lists a directory of the merged view (or one entry).
    pub fn ls(&self, name: &str, path: &str, follow: crate::Follow) -> Result<Vec<ListEntry>> {
        ls(self, name, path, follow)
    }

    /// Names and kinds only (see `ops::read::ls_names`): no entry is decoded.
    pub fn ls_names(&self, name: &str, path: &str, follow: crate::Follow) -> Result<Vec<ListName>> {
        ls_names(self, name, path, follow)
    }

    /// Streams the content of one file of the merged image (upper layers win; whiteouts
    /// apply; symlinks followed within the image per `follow`).
    pub fn cat(
        &self,
        name: &str,
        path: &str,
        follow: crate::Follow,
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        cat(self, name, path, follow, out)
    }
}
