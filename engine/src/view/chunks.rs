//! Chunk reading (machinery, under `view`): `ChunkReader` reads chunks out of the store's blobs
//! (or an import's arriving ones) with no index, decoding whole frames and keeping the last
//! ones, so that memory stays bounded by what is in flight (a few decoded frames) whatever the
//! image's file count; `check_frames` checks every chunk of a blob. Every chunk is checked
//! against its id as it is read. The exact tar of a layer is `view::layer_tar` over it.

use crate::error::{Error, Result};
use crate::format::blob::{BlobReader, TocEntry};
use crate::format::bootstrap::{BlobRecord, ChunkRecord};
use crate::format::layer_meta::LayerEntry;
use crate::store::Store;
use crate::BlobId;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::Path;

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
    /// A reader of `store`'s blobs (held mapped by the store), with an empty frame cache.
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
    pub(super) fn open_blobs(&mut self, blobs: &[BlobRecord]) -> Result<()> {
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
    pub(super) fn read_chunks(
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

/// Decodes every frame of a blob once and checks each chunk in it against its id (a delta
/// frame's bases come from `bases`, checked against their ids, never deltas). Counts the
/// chunks checked in `decoded` and reports each problem as (object, detail).
pub(crate) fn check_frames(
    reader: &BlobReader,
    blob: BlobId,
    toc: &[TocEntry],
    bases: &dyn crate::format::BaseSource,
    decoded: &mut u64,
    problem: &mut dyn FnMut(String, String),
) {
    let mut start = 0;
    while start < toc.len() {
        let offset = toc[start].slice.offset;
        let end = start
            + toc[start..]
                .iter()
                .take_while(|e| e.slice.offset == offset)
                .count();
        let object = || format!("blob {blob} offset {offset}");
        match reader.read_frame(&toc[start].location(blob), bases) {
            Ok(frame) => {
                for entry in &toc[start..end] {
                    *decoded += 1;
                    let checked = entry.location(blob).check().map_err(|e| {
                        crate::Error::corrupt(object(), format!("chunk {}: {e}", entry.id))
                    });
                    let checked = checked.and_then(|()| {
                        crate::format::chunk_from_frame(
                            &entry.id,
                            &frame,
                            entry.slice.skip,
                            entry.slice.len,
                            object,
                        )
                        .map(|_| ())
                    });
                    if let Err(e) = checked {
                        problem(object(), e.to_string());
                    }
                }
            }
            Err(e) => problem(object(), e.to_string()),
        }
        start = end;
    }
}
