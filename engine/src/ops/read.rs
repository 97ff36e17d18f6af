//! Reading images back from bootstraps, layer metadata objects and blobs (no index): a layer's
//! exact tar (`layer_tar`), and one file or directory of the merged root filesystem, resolved
//! path by path through `ops::view` over the layer objects, so that memory stays bounded by
//! what is in flight (a few metadata blocks, a few decoded frames) whatever the image's file
//! count. Every chunk is checked against its id as it is read, and a re-created layer against
//! its diff_id.

mod layer_tar;

use crate::error::{Error, Result};
use crate::format::blob::BlobReader;
use crate::format::bootstrap::{BlobRecord, ChunkRecord};
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::EntryKind;
use crate::ops::tree::{join, normalize};
use crate::ops::view::{record_entries, record_entry, Found, MergedView};
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::{BlobId, Sha256Digest};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::Path;

pub(crate) use layer_tar::{write_layer_tar, LayerTar};

/// Reads chunks from the store's blobs, keeping each blob mapped once opened. A chunk comes as
/// a `ChunkRecord` with the blob table its `blob` indexes (a layer object's). A chunk is read
/// by decoding its whole frame; the frames decoded last are kept (up to `CACHED_FRAMES`, most
/// recently used first), so reading the chunks of a frame one after another, or files in an
/// order close to the order they were stored in (unpack walks paths in sorted order, across
/// layers), decodes each frame about once.
pub struct ChunkReader<'a> {
    store: &'a Store,
    /// Blobs not in the store yet (an import's arriving blobs, under `tmp/`), by id.
    arriving: HashMap<BlobId, std::path::PathBuf>,
    /// Where a delta frame's bases come from: the store, or an import's arriving blobs first.
    bases: &'a dyn crate::format::BaseSource,
    /// Store blobs are held by the store (mapped for its life, shared with other readers), or,
    /// when false, mapped by this reader alone and unmapped when it is dropped (a pass over
    /// every layer, as `verify --full` makes, need not keep every blob mapped).
    hold: bool,
    blobs: HashMap<BlobId, std::sync::Arc<BlobReader>>,
    frames: VecDeque<(FrameKey, Vec<u8>)>,
}

/// Decoded frames a `ChunkReader` keeps: at most this many MiB.
const CACHED_FRAMES: usize = 32;

/// A frame: its blob and its offset there.
type FrameKey = (BlobId, u64);

/// The blob a chunk's `blob` index names in `blobs`, or an error naming the chunk.
fn blob_of<'b>(chunk: &ChunkRecord, blobs: &'b [BlobRecord]) -> Result<&'b BlobRecord> {
    blobs.get(chunk.blob as usize).ok_or_else(|| {
        Error::corrupt(
            format!("chunk {} at offset {}", chunk.id, chunk.slice.offset),
            format!("names blob {} of a table of {}", chunk.blob, blobs.len()),
        )
    })
}

impl<'a> ChunkReader<'a> {
    pub fn new(store: &'a Store) -> Self {
        ChunkReader {
            store,
            arriving: HashMap::new(),
            bases: store,
            hold: true,
            blobs: HashMap::new(),
            frames: VecDeque::new(),
        }
    }

    /// A reader that takes the blobs in `arriving` from their files (not yet in the store) and
    /// every other blob from the store, and delta bases from `bases`: an import re-creating
    /// the layers that arrived, before it commits them.
    pub(crate) fn with_arriving(
        store: &'a Store,
        arriving: HashMap<BlobId, std::path::PathBuf>,
        bases: &'a dyn crate::format::BaseSource,
    ) -> Self {
        ChunkReader {
            arriving,
            bases,
            hold: false,
            ..ChunkReader::new(store)
        }
    }

    /// A reader that maps the blobs it reads itself, unmapping them when dropped.
    pub(crate) fn unheld(store: &'a Store) -> Self {
        ChunkReader {
            hold: false,
            ..ChunkReader::new(store)
        }
    }

    /// One chunk (its `blob` an index into `blobs`), verified.
    pub fn read(&mut self, chunk: &ChunkRecord, blobs: &[BlobRecord]) -> Result<Vec<u8>> {
        let blob = blob_of(chunk, blobs)?;
        self.open_blob(blob)?;
        let key = (blob.id, chunk.slice.offset);
        match self.frames.iter().position(|(k, _)| *k == key) {
            Some(0) => {}
            Some(i) => {
                let hit = self.frames.remove(i).expect("position is in range");
                self.frames.push_front(hit);
            }
            None => {
                let frame = self.read_frame(chunk, blobs)?;
                self.frames.push_front((key, frame));
                self.frames.truncate(CACHED_FRAMES);
            }
        }
        let (_, frame) = self.frames.front().expect("frame just cached");
        chunk_in(chunk, blob, frame).map(<[u8]>::to_vec)
    }

    fn open_blob(&mut self, blob: &BlobRecord) -> Result<()> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.blobs.entry(blob.id) {
            e.insert(match self.arriving.get(&blob.id) {
                Some(path) => std::sync::Arc::new(BlobReader::open(path, blob.id)?),
                None if self.hold => self.store.hold_blob(&blob.id)?,
                None => {
                    std::sync::Arc::new(BlobReader::open(&self.store.blob_path(&blob.id), blob.id)?)
                }
            });
        }
        Ok(())
    }

    /// Maps every blob of a blob table (each once).
    fn open_blobs(&mut self, blobs: &[BlobRecord]) -> Result<()> {
        blobs.iter().try_for_each(|b| self.open_blob(b))
    }

    /// Decodes the frame holding `chunk`, whose blob is open; callable from several threads.
    fn read_frame(&self, chunk: &ChunkRecord, blobs: &[BlobRecord]) -> Result<Vec<u8>> {
        let blob = blob_of(chunk, blobs)?;
        let reader = self.blobs.get(&blob.id).ok_or_else(|| {
            Error::corrupt(
                format!("blob {} offset {}", blob.id, chunk.slice.offset),
                "internal: the blob was not opened",
            )
        })?;
        reader.read_frame(&chunk.location(blobs), self.bases)
    }

    /// Reads these chunks, in order, decoding each frame once; with `parallel`, on rayon's pool.
    fn read_chunks(
        &self,
        chunks: &[ChunkRecord],
        blobs: &[BlobRecord],
        parallel: bool,
    ) -> Result<Vec<Vec<u8>>> {
        use rayon::prelude::*;
        let mut frame_of: HashMap<(u32, u64), usize> = HashMap::new();
        let mut firsts: Vec<&ChunkRecord> = Vec::new();
        let slots: Vec<usize> = chunks
            .iter()
            .map(|c| {
                *frame_of.entry((c.blob, c.slice.offset)).or_insert_with(|| {
                    firsts.push(c);
                    firsts.len() - 1
                })
            })
            .collect();
        let read = |c: &&ChunkRecord| self.read_frame(c, blobs);
        let frames: Vec<Vec<u8>> = if parallel {
            firsts.par_iter().map(read).collect::<Result<_>>()
        } else {
            firsts.iter().map(read).collect::<Result<_>>()
        }?;
        let cut = |(c, &slot): (&ChunkRecord, &usize)| {
            chunk_in(c, blob_of(c, blobs)?, &frames[slot]).map(<[u8]>::to_vec)
        };
        if parallel {
            chunks.par_iter().zip(&slots).map(cut).collect()
        } else {
            chunks.iter().zip(&slots).map(cut).collect()
        }
    }

    /// Writes one entry's content (its chunks index `blobs`, its layer object's table).
    pub fn write_entry(
        &mut self,
        entry: &LayerEntry,
        blobs: &[BlobRecord],
        out: &mut dyn Write,
    ) -> Result<u64> {
        let mut written = 0;
        for chunk in &entry.chunks {
            let data = self.read(chunk, blobs)?;
            out.write_all(&data)
                .map_err(|e| Error::io("write output", Path::new("-"), e))?;
            written += data.len() as u64;
        }
        Ok(written)
    }
}

/// `chunk` out of its decoded frame, checked against its id.
fn chunk_in<'f>(chunk: &ChunkRecord, blob: &BlobRecord, frame: &'f [u8]) -> Result<&'f [u8]> {
    let object = || format!("blob {} offset {}", blob.id, chunk.slice.offset);
    crate::format::chunk_from_frame(&chunk.id, frame, chunk.slice.skip, chunk.slice.len, object)
}

/// Layer `layer` of `layers`, or a usage error naming the ones there are.
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

pub fn export_layer(
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
    /// Symlinks are followed as a shell in the container follows them (`ops::view::resolve`).
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

pub fn cat(
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

pub fn kind_name(kind: EntryKind) -> &'static str {
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

/// One row of `ls`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ListEntry {
    /// Path in the image, without a leading `/` (lossy UTF-8 for display).
    pub path: String,
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub link_target: Option<String>,
    /// The layer the entry comes from.
    pub layer: usize,
}

/// One row of a names-only listing (`ls` without details): what the path index alone gives.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ListName {
    /// Path in the image, without a leading `/` (lossy UTF-8 for display).
    pub path: String,
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
pub fn ls_names(store: &Store, name: &str, path: &str, follow: Follow) -> Result<Vec<ListName>> {
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
pub fn ls(store: &Store, name: &str, path: &str, follow: Follow) -> Result<Vec<ListEntry>> {
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
