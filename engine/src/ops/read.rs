//! Reading images back from bootstraps and blobs (no index): a layer's exact tar, and one file
//! of the merged root filesystem. Every chunk is checked against its id as it is read, and a
//! re-created layer against its diff_id.

use crate::error::{Error, Result};
use crate::format::blob::BlobReader;
use crate::format::bootstrap::ChunkRecord;
use crate::layer::{DigestWriter, EntryKind};
use crate::ops::tree::{join, normalize};
use crate::ops::view::{MemoryLayerPaths, MergedView, PathRecord};
use crate::ops::whole_image::{EntryRecord, LayerRecord, WholeImage};
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::Sha256Digest;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Reads the chunks of one bootstrap, keeping each blob mapped once opened. A chunk is read by
/// decoding its whole frame; the frames decoded last are kept (up to `CACHED_FRAMES`, most
/// recently used first), so reading the chunks of a frame one after another, or files in an
/// order close to the order they were stored in (unpack walks paths in sorted order, across
/// layers), decodes each frame about once.
pub struct ChunkReader<'a> {
    store: &'a Store,
    bootstrap: &'a WholeImage,
    blobs: HashMap<u32, BlobReader>,
    frames: std::collections::VecDeque<(FrameKey, Vec<u8>)>,
}

/// Decoded frames a `ChunkReader` keeps: at most this many MiB.
const CACHED_FRAMES: usize = 32;

/// A frame of the bootstrap: (index into its blob table, offset in that blob).
type FrameKey = (u32, u64);

fn frame_key(chunk: &ChunkRecord) -> FrameKey {
    (chunk.blob, chunk.offset)
}

impl<'a> ChunkReader<'a> {
    pub fn new(store: &'a Store, bootstrap: &'a WholeImage) -> Self {
        ChunkReader {
            store,
            bootstrap,
            blobs: HashMap::new(),
            frames: std::collections::VecDeque::new(),
        }
    }

    /// Chunk `index` of the bootstrap's chunk table, verified.
    pub fn read(&mut self, index: u32) -> Result<Vec<u8>> {
        self.open_blobs(std::iter::once(index))?;
        let chunk = &self.bootstrap.chunks[index as usize];
        let key = frame_key(chunk);
        match self.frames.iter().position(|(k, _)| *k == key) {
            Some(0) => {}
            Some(i) => {
                let hit = self.frames.remove(i).expect("position is in range");
                self.frames.push_front(hit);
            }
            None => {
                let frame = self.read_frame(index)?;
                self.frames.push_front((key, frame));
                self.frames.truncate(CACHED_FRAMES);
            }
        }
        let (_, frame) = self.frames.front().expect("frame just cached");
        self.chunk_in(index, frame).map(<[u8]>::to_vec)
    }

    /// Maps the blobs holding these chunks (each once).
    fn open_blobs(&mut self, chunks: impl Iterator<Item = u32>) -> Result<()> {
        for index in chunks {
            let blob_index = self.bootstrap.chunks[index as usize].blob;
            if let std::collections::hash_map::Entry::Vacant(e) = self.blobs.entry(blob_index) {
                let blob = &self.bootstrap.blobs[blob_index as usize];
                e.insert(BlobReader::open(&self.store.blob_path(&blob.id), blob.id)?);
            }
        }
        Ok(())
    }

    /// Decodes the frame holding chunk `index`, whose blob `open_blobs` mapped; callable from
    /// several threads at once.
    fn read_frame(&self, index: u32) -> Result<Vec<u8>> {
        let chunk = &self.bootstrap.chunks[index as usize];
        let reader = self.blobs.get(&chunk.blob).ok_or_else(|| {
            Error::corrupt(
                format!("chunk {index}"),
                "internal: its blob was not opened",
            )
        })?;
        reader.read_frame(&self.bootstrap.location(chunk))
    }

    /// Chunk `index` out of its decoded frame, checked against its id.
    fn chunk_in<'f>(&self, index: u32, frame: &'f [u8]) -> Result<&'f [u8]> {
        let chunk = &self.bootstrap.chunks[index as usize];
        let blob = &self.bootstrap.blobs[chunk.blob as usize];
        let object = || format!("blob {} offset {}", blob.id, chunk.offset);
        crate::format::chunk_from_frame(&chunk.id, frame, chunk.skip, chunk.len, object)
    }

    /// Reads these chunks, in order, decoding each frame once; with `parallel`, on rayon's pool.
    fn read_chunks(&self, indexes: &[u32], parallel: bool) -> Result<Vec<Vec<u8>>> {
        use rayon::prelude::*;
        let mut frame_of: HashMap<FrameKey, usize> = HashMap::new();
        let mut firsts: Vec<u32> = Vec::new();
        let slots: Vec<usize> = indexes
            .iter()
            .map(|&c| {
                let key = frame_key(&self.bootstrap.chunks[c as usize]);
                *frame_of.entry(key).or_insert_with(|| {
                    firsts.push(c);
                    firsts.len() - 1
                })
            })
            .collect();
        let frames: Vec<Vec<u8>> = if parallel {
            firsts
                .par_iter()
                .map(|&c| self.read_frame(c))
                .collect::<Result<_>>()
        } else {
            firsts
                .iter()
                .map(|&c| self.read_frame(c))
                .collect::<Result<_>>()
        }?;
        let cut = |(&c, &slot): (&u32, &usize)| self.chunk_in(c, &frames[slot]).map(<[u8]>::to_vec);
        if parallel {
            indexes.par_iter().zip(&slots).map(cut).collect()
        } else {
            indexes.iter().zip(&slots).map(cut).collect()
        }
    }

    /// Writes one entry's content.
    pub fn write_entry(&mut self, entry: &EntryRecord, out: &mut dyn Write) -> Result<u64> {
        self.write_chunks(entry, out, Path::new("-"))
    }

    /// Writes one entry's content; `dest` names the output in write errors.
    fn write_chunks(
        &mut self,
        entry: &EntryRecord,
        out: &mut dyn Write,
        dest: &Path,
    ) -> Result<u64> {
        let mut written = 0;
        for &c in &entry.chunks {
            let data = self.read(c)?;
            out.write_all(&data)
                .map_err(|e| Error::io("write output", dest, e))?;
            written += data.len() as u64;
        }
        Ok(written)
    }
}

/// Content bytes decoded ahead of the writer (and held in memory) per window.
const WINDOW_BYTES: u64 = 4 << 20;

/// Splits a sequence of chunks into consecutive ranges of about `WINDOW_BYTES` of content (a
/// large file spans several windows).
fn windows(
    order: &[u32],
    chunks: &[crate::format::bootstrap::ChunkRecord],
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, &c) in order.iter().enumerate() {
        bytes += chunks[c as usize].len as u64;
        if bytes >= WINDOW_BYTES {
            out.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < order.len() {
        out.push(start..order.len());
    }
    out
}

/// Writes a layer's exact tar to `out` and returns its diff_id: for each entry its `raw_header`
/// then its chunks, then the layer's `trailer` (docs/FORMAT.md, "WholeImage"). The bytes are
/// hashed on their way out and must come to the layer's diff_id, else the error names `label`
/// (the image and layer); `out` has then received a wrong tar and the caller must discard it.
/// `dest` names the output in write errors. Only `inc`s `progress`.
pub(crate) fn write_layer_tar(
    reader: &mut ChunkReader,
    layer: &LayerRecord,
    out: &mut dyn Write,
    dest: &Path,
    label: &str,
    progress: &dyn Progress,
) -> Result<Sha256Digest> {
    let write_err = |e: std::io::Error| Error::io("write output", dest, e);
    let mut hashing = DigestWriter::new(out);
    // Chunks go in windows of about WINDOW_BYTES of content: while this thread hashes and
    // writes one window, a second thread decodes (and verifies) the next one's chunks, with
    // rayon's help unless this thread is itself one of rayon's workers (export compresses
    // layers in parallel): a worker blocked here must not wait for pool work, or the pool
    // could deadlock with every worker waiting.
    let parallel = rayon::current_thread_index().is_none();
    let order: Vec<u32> = layer
        .entries
        .iter()
        .flat_map(|e| e.chunks.iter().copied())
        .collect();
    let windows = windows(&order, &reader.bootstrap.chunks);
    reader.open_blobs(order.iter().copied())?;
    let shared = &*reader;
    let order = &order;
    let decode = move |w: std::ops::Range<usize>| shared.read_chunks(&order[w], parallel);
    let out_of_step = || Error::corrupt(label.to_string(), "internal: chunk window out of step");
    std::thread::scope(|scope| -> Result<()> {
        let mut current = Vec::new().into_iter();
        let mut next = 0;
        let mut pending = windows
            .first()
            .cloned()
            .map(|w| scope.spawn(move || decode(w)));
        for entry in &layer.entries {
            hashing.write_all(&entry.raw_header).map_err(write_err)?;
            let mut n = 0;
            for _ in &entry.chunks {
                let data = loop {
                    if let Some(data) = current.next() {
                        break data;
                    }
                    // This window is written: take the decoded next one, start the one after.
                    let handle = pending.take().ok_or_else(out_of_step)?;
                    current = handle.join().expect("chunk decoder panicked")?.into_iter();
                    next += 1;
                    pending = windows
                        .get(next)
                        .cloned()
                        .map(|w| scope.spawn(move || decode(w)));
                };
                hashing.write_all(&data).map_err(write_err)?;
                n += data.len() as u64;
            }
            progress.inc(entry.raw_header.len() as u64 + n);
        }
        if current.next().is_some() || pending.is_some() {
            return Err(out_of_step());
        }
        Ok(())
    })?;
    hashing.write_all(&layer.trailer).map_err(write_err)?;
    progress.inc(layer.trailer.len() as u64);
    let (actual, _, out) = hashing.finish();
    out.flush().map_err(write_err)?;
    if actual != layer.diff_id {
        return Err(Error::DigestMismatch {
            object: format!("{label} as re-created"),
            expected: layer.diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(actual)
}

pub fn export_layer(
    store: &Store,
    name: &str,
    layer: usize,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<Sha256Digest> {
    let bootstrap = store.whole_image(name)?;
    let record = bootstrap.layers.get(layer).ok_or_else(|| {
        Error::Usage(format!(
            "image {name:?} has {} layers (0 to {}); there is no layer {layer}",
            bootstrap.layers.len(),
            bootstrap.layers.len().saturating_sub(1)
        ))
    })?;
    progress.set_length(record.size, Unit::Bytes);
    let mut reader = ChunkReader::new(store, &bootstrap);
    let label = format!("image {name:?} layer {layer}");
    let diff_id = write_layer_tar(&mut reader, record, out, Path::new("-"), &label, progress)?;
    progress.finish();
    Ok(diff_id)
}

pub fn cat(store: &Store, name: &str, path: &str, out: &mut dyn Write) -> Result<u64> {
    let bootstrap = store.whole_image(name)?;
    let layers = MemoryLayerPaths::of_bootstrap(&bootstrap);
    let view = MergedView::new(&layers, None);
    let link_target = |layer: usize, n: u64| {
        Ok(bootstrap.layers[layer]
            .entries
            .get(n as usize)
            .and_then(|e| e.meta.link_target.clone()))
    };
    let (layer, record) = view
        .content_entry(path.as_bytes(), link_target)?
        .ok_or_else(|| Error::Usage(format!("{path}: no such file in image {name:?}")))?;
    let entry = MemoryLayerPaths::entry(&bootstrap, layer, &record)?;
    if entry.meta.kind != EntryKind::File {
        return Err(Error::Usage(format!(
            "{path} in image {name:?} is a {}, not a regular file",
            kind_name(entry.meta.kind)
        )));
    }
    let mut reader = ChunkReader::new(store, &bootstrap);
    reader.write_entry(entry, out)
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

/// The entries of directory `path` in the merged view (or the entry itself if not a directory).
pub fn ls(store: &Store, name: &str, path: &str) -> Result<Vec<ListEntry>> {
    let bootstrap = store.whole_image(name)?;
    let layers = MemoryLayerPaths::of_bootstrap(&bootstrap);
    let view = MergedView::new(&layers, None);
    let wanted = normalize(path.as_bytes());
    let rows: Vec<(Vec<u8>, usize, PathRecord)> = if view.is_dir(&wanted)? {
        view.children(&wanted)?
            .into_iter()
            .map(|(child, layer, record)| (join(&wanted, &child), layer, record))
            .collect()
    } else {
        match view.get(&wanted)? {
            Some((layer, record)) => vec![(wanted.clone(), layer, record)],
            None => {
                return Err(Error::Usage(format!(
                    "{path}: no such file or directory in image {name:?}"
                )))
            }
        }
    };
    rows.into_iter()
        .map(|(p, layer, record)| {
            let e = MemoryLayerPaths::entry(&bootstrap, layer, &record)?;
            Ok(ListEntry {
                path: String::from_utf8_lossy(&p).into_owned(),
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
                layer,
            })
        })
        .collect()
}
