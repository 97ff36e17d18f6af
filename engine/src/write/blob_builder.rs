//! Writing machinery (`write`).
//!
//! Writing new chunks into blobs: chunks join frames in the order they are given (a frame holds
//! up to the store's `frame_size` bytes, or one larger chunk), full frames are compressed in
//! parallel and appended in order to a blob under `STORE/tmp/`, which is sealed and a new one
//! started past `BLOB_SPLIT_BYTES`. Used by convert (new chunks of a layer) and by gc
//! (live chunks of blobs it compacts). Renaming the sealed blobs into place is the caller's
//! step of its write order. Chunks pushed with `push_shared` are recorded in a
//! `WrittenChunks` once their frame is in the file, for readers in the same convert
//! (`written_chunks.rs`).

use crate::error::{Error, Result};
use crate::format::blob::{BlobWriter, CompressedWith, FramePart, SealedBlob};
use crate::format::Codec;
use crate::store::Writer;
use crate::write::written_chunks::{WrittenChunks, WrittenPlace};
use crate::ChunkId;
use rayon::prelude::*;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

/// A blob is sealed and a new one started past this size.
pub(crate) const BLOB_SPLIT_BYTES: u64 = 256 << 20;

pub(crate) struct BlobBuilder<'a> {
    store: &'a Writer,
    /// Names the work in errors (a layer, or a blob being compacted).
    label: String,
    /// The fail point checked before each blob's fsync.
    fail_at: &'static str,
    level: i32,
    frame_size: usize,
    /// Chunks not yet in a full frame.
    open: Frame,
    /// Full frames waiting to be compressed.
    ready: Vec<Frame>,
    /// The blob being written, and its path.
    writer: Option<(BlobWriter, Arc<PathBuf>)>,
    sealed: Vec<SealedBlob>,
    /// Where shared chunks go once their frames are in the file, and those written since the
    /// last `flush`.
    shared: Option<&'a WrittenChunks>,
    unshared: Vec<(ChunkId, WrittenPlace)>,
    /// Bytes appended to blobs (stored frames).
    stored_bytes: u64,
}

/// Chunks grouped to be compressed together: their bytes back to back; or one chunk already
/// compressed as a delta frame (`format::delta`).
#[derive(Default)]
struct Frame {
    data: Vec<u8>,
    parts: Vec<FramePart>,
    /// The stored bytes of a delta frame (header and zstd frame); `data` is then empty.
    delta: Option<Vec<u8>>,
    /// Per part: its place goes to the builder's `WrittenChunks` once written.
    shared: Vec<bool>,
}

impl Frame {
    fn push(&mut self, id: ChunkId, chunk: &[u8], shared: bool) {
        self.parts.push(FramePart {
            id,
            skip: self.data.len() as u32,
            len: chunk.len() as u32,
        });
        self.shared.push(shared);
        self.data.extend_from_slice(chunk);
    }
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// Compresses a frame; `None` when zstd does not make it smaller (the frame is stored raw).
pub(crate) fn compress(data: &[u8], level: i32) -> std::io::Result<Option<Vec<u8>>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = slot.as_mut().expect("compressor just set");
        let compressed = compressor.compress(data)?;
        Ok((compressed.len() < data.len()).then_some(compressed))
    })
}

impl<'a> BlobBuilder<'a> {
    pub(crate) fn new(writer: &'a Writer, label: &str, fail_at: &'static str) -> Self {
        let compression = &writer.store().config().compression;
        BlobBuilder {
            store: writer,
            label: label.to_string(),
            fail_at,
            level: compression.level,
            frame_size: compression.frame_size as usize,
            open: Frame::default(),
            ready: Vec::new(),
            writer: None,
            sealed: Vec::new(),
            shared: None,
            unshared: Vec::new(),
            stored_bytes: 0,
        }
    }

    /// A builder that compresses with this level and frame size instead of the store's.
    pub(crate) fn compressing_with(mut self, with: CompressedWith) -> Self {
        self.level = with.level;
        self.frame_size = with.frame_size as usize;
        self
    }

    /// A builder that records the places of chunks pushed with `push_shared` in `written`.
    pub(crate) fn sharing(mut self, written: &'a WrittenChunks) -> Self {
        self.shared = Some(written);
        self
    }

    /// Adds a chunk to the open frame (nothing is written until `flush` or `finish`).
    pub(crate) fn push(&mut self, id: ChunkId, data: &[u8]) {
        self.push_chunk(id, data, false);
    }

    /// Like `push`; once the chunk's frame is written (by `flush` or `finish`), its place
    /// is recorded in the `WrittenChunks` given to `sharing`.
    pub(crate) fn push_shared(&mut self, id: ChunkId, data: &[u8]) {
        self.push_chunk(id, data, self.shared.is_some());
    }

    fn push_chunk(&mut self, id: ChunkId, data: &[u8], shared: bool) {
        if !self.open.data.is_empty() && self.open.data.len() + data.len() > self.frame_size {
            self.ready.push(std::mem::take(&mut self.open));
        }
        if self.open.data.is_empty() {
            // A frame's whole size at once: growing it by doubling copied it twice.
            self.open.data.reserve(self.frame_size.max(data.len()));
        }
        self.open.push(id, data, shared);
        if self.open.data.len() >= self.frame_size {
            self.ready.push(std::mem::take(&mut self.open));
        }
    }

    /// Adds a chunk already compressed as a delta frame (`stored`: header and zstd frame),
    /// as a frame of its own after the chunks pushed before it.
    pub(crate) fn push_delta(&mut self, id: ChunkId, len: u32, stored: Vec<u8>) {
        if !self.open.parts.is_empty() {
            self.ready.push(std::mem::take(&mut self.open));
        }
        self.ready.push(Frame {
            data: Vec::new(),
            parts: vec![FramePart { id, skip: 0, len }],
            delta: Some(stored),
            shared: vec![false],
        });
    }

    /// Bytes of full frames waiting for `flush`.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.ready
            .iter()
            .map(|f| f.data.len() + f.delta.as_ref().map_or(0, Vec::len))
            .sum()
    }

    /// Compresses the full frames (in parallel) and appends them in order; then records the
    /// places of their shared chunks.
    pub(crate) fn flush(&mut self) -> Result<()> {
        let frames = std::mem::take(&mut self.ready);
        let level = self.level;
        let stored: Vec<std::io::Result<Option<Vec<u8>>>> = frames
            .par_iter()
            .map(|frame| match frame.delta {
                Some(_) => Ok(None),
                None => compress(&frame.data, level),
            })
            .collect();
        for (frame, stored) in frames.into_iter().zip(stored) {
            let stored = stored.map_err(|e| {
                Error::corrupt(self.label.clone(), format!("zstd compression: {e}"))
            })?;
            let plain_len = frame.data.len() as u32;
            let (codec, bytes, frame_len) = match (frame.delta, stored) {
                (Some(delta), _) => (Codec::Delta, delta, frame.parts[0].len),
                (None, Some(compressed)) => (Codec::Zstd, compressed, plain_len),
                (None, None) => (Codec::Raw, frame.data, plain_len),
            };
            self.append(&frame.parts, &frame.shared, codec, &bytes, frame_len)?;
        }
        self.share_written()
    }

    fn append(
        &mut self,
        parts: &[FramePart],
        shared: &[bool],
        codec: Codec,
        bytes: &[u8],
        len: u32,
    ) -> Result<()> {
        if self
            .writer
            .as_ref()
            .is_some_and(|(w, _)| w.len() >= BLOB_SPLIT_BYTES)
        {
            let (full, _) = self.writer.take().expect("writer present");
            self.sealed.push(full.seal(self.fail_at)?);
        }
        if self.writer.is_none() {
            let path = self.store.tmp_file("blob");
            let with = CompressedWith {
                level: self.level,
                frame_size: self.frame_size as u32,
            };
            let writer = BlobWriter::create_recording(path.clone(), Some(with))?;
            self.writer = Some((writer, Arc::new(path)));
        }
        let (writer, path) = self.writer.as_mut().expect("writer present");
        let offset = writer.append_frame(codec, bytes, len, parts)?;
        self.stored_bytes += bytes.len() as u64;
        for (part, _) in parts.iter().zip(shared).filter(|(_, s)| **s) {
            let place = WrittenPlace {
                file: path.clone(),
                slice: crate::format::FrameSlice {
                    offset,
                    stored_len: bytes.len() as u32,
                    frame_len: len,
                    skip: part.skip,
                    len: part.len,
                    codec,
                },
            };
            self.unshared.push((part.id, place));
        }
        Ok(())
    }

    /// Records the places of the shared chunks appended since the last call, once their
    /// bytes are in the file (a blob sealed meanwhile holds its own already).
    fn share_written(&mut self) -> Result<()> {
        let Some(written) = self.shared else {
            return Ok(());
        };
        if self.unshared.is_empty() {
            return Ok(());
        }
        if let Some((writer, _)) = self.writer.as_mut() {
            writer.flush()?;
        }
        written.add(self.unshared.drain(..));
        Ok(())
    }

    /// Writes the last frame and seals the blobs (fsynced, still under `tmp/`). Returns them
    /// and the bytes of stored frames.
    pub(crate) fn finish(mut self) -> Result<(Vec<SealedBlob>, u64)> {
        let last = std::mem::take(&mut self.open);
        if !last.parts.is_empty() {
            self.ready.push(last);
        }
        self.flush()?;
        if let Some((writer, _)) = self.writer.take() {
            self.sealed.push(writer.seal(self.fail_at)?);
        }
        Ok((self.sealed, self.stored_bytes))
    }
}

/// Renames sealed blobs (already fsynced) into `blobs/` and fsyncs it; a blob whose very bytes
/// are already stored is dropped. `fail_at` is checked before each rename. Returns the blobs
/// and bytes actually added.
pub(crate) fn publish<'b>(
    writer: &Writer,
    sealed: impl IntoIterator<Item = &'b SealedBlob>,
    fail_at: &'static str,
    dir_fail_at: Option<&'static str>,
) -> Result<(u64, u64)> {
    let files: Vec<_> = sealed
        .into_iter()
        .map(|b| (&*b.tmp_path, writer.store().blob_path(&b.id), b.size))
        .collect();
    crate::fsutil::publish_sealed(
        &files,
        &writer.store().layout().blobs_dir(),
        fail_at,
        dir_fail_at,
    )
}
