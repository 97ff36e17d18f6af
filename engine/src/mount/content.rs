//! File content for the mount: an open file knows its chunks and where each starts; a read
//! decodes only the frames it touches, and each only as far as the chunks it needs end
//! (`frames.rs` keeps them, partial or whole, in a cache bounded in bytes); what is left of a
//! frame is then decoded in the background, since the reads that follow mostly want it.
//! Every chunk is checked against its BLAKE3 id before its bytes are returned (once per stay
//! of its frame in the cache), so a damaged chunk is an error naming its blob and offset,
//! never wrong bytes. A delta frame's bases are read through the same frames. Read-ahead, in
//! the background: when a
//! file has been read sequentially for `SEQUENTIAL_RUN` bytes, the frames of its next bytes,
//! as many as the run so far and at most `readahead`; when reads move on
//! from one frame of a blob to the next a few times in a row (files read in the order they
//! were stored, as `tar` or an unpack does), the blob's next frames for `readahead` bytes.
//! `stats.rs` counts what was decoded, and for whom, when asked to.

use super::frames::{lock, Frame, FrameCache, FrameKey, FrameState};
use super::stats::{Count, Stats};
use crate::error::{Error, Result};
use crate::format::blob::{decode_toc, BlobReader};
use crate::format::bootstrap::{BlobRecord, ChunkRecord};
use crate::format::partial_frame::PartialFrame;
use crate::format::{BaseSource, ChunkLocation, Codec};
use crate::store::Store;
use crate::{BlobId, ChunkId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};

/// A regular file opened through the mount.
pub(super) struct OpenFile {
    chunks: Vec<ChunkRecord>,
    /// `starts[i]`: the file offset of chunk `i`; one more, the file's size.
    starts: Vec<u64>,
    /// The blob table the chunks index (their layer object's).
    blobs: Arc<[BlobRecord]>,
    /// Where the last read ended: a read starting there is sequential.
    next: AtomicU64,
    /// Bytes read sequentially up to `next`.
    run: AtomicU64,
}

impl OpenFile {
    pub(super) fn new(chunks: Vec<ChunkRecord>, blobs: Arc<[BlobRecord]>) -> OpenFile {
        let mut starts = Vec::with_capacity(chunks.len() + 1);
        let mut at = 0u64;
        for chunk in &chunks {
            starts.push(at);
            at += chunk.slice.len as u64;
        }
        starts.push(at);
        OpenFile {
            chunks,
            starts,
            blobs,
            next: AtomicU64::new(u64::MAX),
            run: AtomicU64::new(0),
        }
    }

    /// The codecs of its chunks' frames (tests).
    #[cfg(test)]
    pub(super) fn codecs(&self) -> Vec<Codec> {
        self.chunks.iter().map(|c| c.slice.codec).collect()
    }

    /// Where each chunk is (tests).
    #[cfg(test)]
    pub(super) fn locations(&self) -> Vec<ChunkLocation> {
        self.chunks
            .iter()
            .map(|c| c.location(&self.blobs))
            .collect()
    }

    fn size(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// The chunks overlapping `offset..end`, by index.
    fn chunks_in(&self, offset: u64, end: u64) -> std::ops::Range<usize> {
        let first = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let last = self.starts[..self.chunks.len()].partition_point(|&s| s < end);
        first..last.max(first)
    }
}

/// Reads file content from the store's blobs for any number of threads.
pub(super) struct Content {
    store: Arc<Store>,
    readers: Mutex<HashMap<BlobId, Arc<BlobReader>>>,
    cache: FrameCache,
    /// Frames being decoded ahead of a reader.
    ahead: Mutex<HashSet<FrameKey>>,
    readahead: u64,
    /// Each blob's frames in offset order (read from its ToC the first time it is scanned).
    frame_tables: Mutex<HashMap<BlobId, Arc<Vec<ChunkLocation>>>>,
    /// Per blob, the offset of the frame reads used last, how many times in a row reads of
    /// another file moved on from one frame to a later one close after it (a run of such
    /// moves is a scan: unpacking, `tar`), and the file read last (its `OpenFile`'s address).
    last_frame: Mutex<HashMap<BlobId, (u64, u32, usize)>>,
    /// Frames to decode ahead, for the read-ahead threads.
    to_decode: Mutex<mpsc::Sender<ChunkLocation>>,
    stats: Arc<Stats>,
}

/// Moves in a row from a blob's frame to a later one, each by a read of another file, that
/// make a scan. A program starting also moves forward now and then (a package's modules are
/// stored side by side), but in short runs: `import pandas` made runs of at most 5 (decoding
/// 8 MiB ahead from the third move on decoded 65 frames never read); a scan's run is as long
/// as the layer.
const SCAN_STREAK: u32 = 8;

/// Bytes of a file read sequentially (from its start or not) before it is read ahead. A
/// program's start reads its libraries through maps, in runs of at most the kernel's window
/// (`import pandas`: none over 480 KB); decoding 8 MiB ahead of the first read of each file
/// decoded 120 MB of frames for 53 MB read, 76 frames never read. A file read through (`tar`,
/// a copy) soon gets past this.
const SEQUENTIAL_RUN: u64 = 1 << 20;

/// Threads decoding frames ahead of readers. They block while idle (a pool that spins
/// waiting for work would take the CPU the readers need) and end with the `Content`.
const AHEAD_THREADS: usize = 2;

impl Content {
    pub(super) fn new(
        store: Arc<Store>,
        cache_bytes: usize,
        readahead: u64,
        stats: Arc<Stats>,
    ) -> Arc<Content> {
        let (sender, receiver) = mpsc::channel::<ChunkLocation>();
        let content = Arc::new(Content {
            store,
            readers: Mutex::new(HashMap::new()),
            cache: FrameCache::new(cache_bytes),
            ahead: Mutex::new(HashSet::new()),
            readahead,
            frame_tables: Mutex::new(HashMap::new()),
            last_frame: Mutex::new(HashMap::new()),
            to_decode: Mutex::new(sender),
            stats,
        });
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..AHEAD_THREADS {
            let (content, receiver) = (Arc::downgrade(&content), receiver.clone());
            std::thread::spawn(move || decode_ahead_loop(&content, &receiver));
        }
        content
    }

    /// Up to `size` bytes of `file` from `offset` (fewer at its end).
    pub(super) fn read(
        self: &Arc<Self>,
        file: &Arc<OpenFile>,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>> {
        let end = offset.saturating_add(size as u64).min(file.size());
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for i in file.chunks_in(offset, end) {
            let chunk = &file.chunks[i];
            let location = location_of(chunk, &file.blobs)?;
            self.follow_scan(&location, Arc::as_ptr(file) as usize);
            let start = file.starts[i];
            let from = offset.max(start) - start;
            let to = end.min(start + chunk.slice.len as u64) - start;
            let (whole, started) =
                self.chunk_into(&chunk.id, &location, from as u32..to as u32, &mut out)?;
            if !whole {
                // The rest of the frame, on another thread: the next reads mostly want it.
                self.decode_ahead(location);
            }
            if started {
                self.next_frame_ahead(&location);
            }
        }
        self.stats.add(Count::BytesServed, out.len() as u64);
        let run = if file.next.swap(end, Ordering::Relaxed) == offset {
            file.run.fetch_add(end - offset, Ordering::Relaxed) + (end - offset)
        } else {
            file.run.store(end - offset, Ordering::Relaxed);
            end - offset
        };
        if run >= SEQUENTIAL_RUN && self.readahead > 0 {
            self.file_ahead(file, end, run.min(self.readahead));
        }
        Ok(out)
    }

    /// Appends bytes `range` of chunk `id` at `location` to `out`: decodes its frame as far
    /// as the chunk ends (if not already) and checks the chunk against its id (if not
    /// already). Returns whether the frame is now decoded whole, and whether this read
    /// started it (read its stored bytes).
    fn chunk_into(
        &self,
        id: &ChunkId,
        location: &ChunkLocation,
        range: std::ops::Range<u32>,
        out: &mut Vec<u8>,
    ) -> Result<(bool, bool)> {
        let frame = self.frame(location, false)?;
        frame.unread.store(false, Ordering::Relaxed);
        let mut guard = lock(&frame.state);
        let state: &mut FrameState = &mut guard;
        let started = state.decoded.is_none();
        let need = location.slice.skip as usize + location.slice.len as usize;
        let decoded = self.decode_to(&mut state.decoded, location, need, false)?;
        let span = (location.slice.skip, location.slice.len);
        let data = if state.verified.contains(&span) {
            decoded.decoded().get(span.0 as usize..need)
        } else {
            None
        };
        let data = match data {
            Some(data) => data,
            None => {
                let object = || format!("blob {} offset {}", location.blob, location.slice.offset);
                let data =
                    crate::format::chunk_from_frame(id, decoded.decoded(), span.0, span.1, object)?;
                state.verified.push(span);
                data
            }
        };
        let Some(bytes) = data.get(range.start as usize..range.end as usize) else {
            return Err(Error::corrupt(
                format!("chunk {id}"),
                format!("no bytes {range:?} in a chunk of {}", data.len()),
            ));
        };
        out.extend_from_slice(bytes);
        Ok((decoded.is_whole(), started))
    }

    /// The frame at `location` (added to the cache, not decoded, if it was not there).
    fn frame(&self, location: &ChunkLocation, ahead: bool) -> Result<Arc<Frame>> {
        let (frame, wasted) = self.cache.get_or_add(location, ahead);
        self.stats.add(Count::AheadWasted, wasted);
        if !frame.agrees(location) {
            return Err(Error::corrupt(
                format!("blob {} offset {}", location.blob, location.slice.offset),
                "chunk records disagree on this frame's codec or lengths",
            ));
        }
        Ok(frame)
    }

    /// Decodes the frame in `slot` at least to byte `need` (reading its stored bytes first if
    /// no one has yet), and recharges the cache for it.
    fn decode_to<'s>(
        &self,
        slot: &'s mut Option<PartialFrame>,
        location: &ChunkLocation,
        need: usize,
        ahead: bool,
    ) -> Result<&'s PartialFrame> {
        let object = || format!("blob {} offset {}", location.blob, location.slice.offset);
        let started = self.stats.clock();
        let mut decoded = 0;
        let was_whole = slot.as_ref().is_some_and(PartialFrame::is_whole);
        if slot.is_none() {
            let stored = self.reader(&location.blob)?.read_stored(location)?;
            let bases = MountBases(self);
            let frame = PartialFrame::new(
                stored,
                location.slice.frame_len,
                location.slice.codec,
                object,
                &bases,
            )?;
            self.stats.add(
                if ahead {
                    Count::FramesAhead
                } else {
                    Count::FramesNow
                },
                1,
            );
            decoded += frame.decoded().len();
            *slot = Some(frame);
        }
        let extended = match slot.as_mut() {
            Some(frame) if frame.decoded().len() < need => Some(frame.extend_to(need, object)),
            _ => None,
        };
        match extended {
            Some(Ok(more)) => decoded += more,
            Some(Err(e)) => {
                // The decoder is spent: the next reader starts the frame again (and meets the
                // same error for the same chunks, the ones before still readable).
                *slot = None;
                return Err(e);
            }
            None => {}
        }
        let Some(frame) = slot.as_mut() else {
            return Err(Error::corrupt(object(), "frame not decoded"));
        };
        if decoded > 0 || frame.is_whole() != was_whole {
            self.stats.decoded(decoded, started, ahead);
            let wasted = self
                .cache
                .recharge(&location.frame_key(), frame.held_bytes());
            self.stats.add(Count::AheadWasted, wasted);
        }
        Ok(frame)
    }

    /// Decodes, in the background, the frames of `file` from `from` on for `ahead` bytes.
    fn file_ahead(self: &Arc<Self>, file: &Arc<OpenFile>, from: u64, ahead: u64) {
        let until = from.saturating_add(ahead).min(file.size());
        for i in file.chunks_in(from, until) {
            if let Ok(location) = location_of(&file.chunks[i], &file.blobs) {
                self.decode_ahead(location);
            }
        }
    }

    /// When reads move on from a blob's frame to a later one close after it `SCAN_STREAK`
    /// times in a row, decodes the frames after it for `readahead` bytes in the background.
    fn follow_scan(self: &Arc<Self>, location: &ChunkLocation, file: usize) {
        if self.readahead == 0 {
            return;
        }
        let at = location.slice.offset;
        let streak = {
            let mut last = lock(&self.last_frame);
            let (before, streak, by) = last.get(&location.blob).copied().unwrap_or_default();
            let streak = if before == at || by == file {
                // The same frame, or one file read through (that is `file_ahead`'s).
                return;
            } else if before < at && at - before <= self.readahead.max(4 << 20) {
                streak + 1
            } else {
                0
            };
            last.insert(location.blob, (at, streak, file));
            streak
        };
        if streak < SCAN_STREAK {
            return;
        }
        let Ok(table) = self.frame_table(&location.blob) else {
            return;
        };
        let next = table.partition_point(|f| f.slice.offset <= location.slice.offset);
        let mut decoded = 0u64;
        for frame in &table[next..] {
            if decoded >= self.readahead {
                break;
            }
            decoded += frame.slice.frame_len as u64;
            self.decode_ahead(*frame);
        }
    }

    /// Decodes the frame after `location`'s in its blob in the background, unless cached. A
    /// program's reads cluster in the blob: of the 110 frames `import pandas` reads in py
    /// v1, 95 have their next frame read too (56 of them after), mostly within milliseconds.
    fn next_frame_ahead(self: &Arc<Self>, location: &ChunkLocation) {
        if self.readahead == 0 {
            return;
        }
        let Ok(table) = self.frame_table(&location.blob) else {
            return;
        };
        let next = table.partition_point(|f| f.slice.offset <= location.slice.offset);
        if let Some(frame) = table.get(next) {
            if !self.cache.contains(&frame.frame_key()) {
                self.decode_ahead(*frame);
            }
        }
    }

    /// Decodes `location`'s frame on the thread pool unless it is cached or under way.
    fn decode_ahead(self: &Arc<Self>, location: ChunkLocation) {
        let key = location.frame_key();
        if !lock(&self.ahead).insert(key) {
            return;
        }
        if lock(&self.to_decode).send(location).is_err() {
            lock(&self.ahead).remove(&key);
        }
    }

    /// The frames of `blob`, one location each, in offset order.
    fn frame_table(&self, blob: &BlobId) -> Result<Arc<Vec<ChunkLocation>>> {
        if let Some(table) = lock(&self.frame_tables).get(blob) {
            return Ok(table.clone());
        }
        let reader = self.reader(blob)?;
        let toc = decode_toc(reader.bytes(), &format!("blob {blob}"))?;
        let mut frames: Vec<ChunkLocation> = toc.iter().map(|e| e.location(*blob)).collect();
        frames.sort_by_key(|f| f.slice.offset);
        frames.dedup_by_key(|f| f.slice.offset);
        let table = Arc::new(frames);
        lock(&self.frame_tables).insert(*blob, table.clone());
        Ok(table)
    }

    fn reader(&self, id: &BlobId) -> Result<Arc<BlobReader>> {
        if let Some(reader) = lock(&self.readers).get(id) {
            return Ok(reader.clone());
        }
        let reader = Arc::new(BlobReader::open(&self.store.blob_path(id), *id)?);
        lock(&self.readers).insert(*id, reader.clone());
        Ok(reader)
    }

    /// Decodes the rest of the frame at `location`, a block at a time so that readers of its
    /// decoded part are not kept waiting (a read-ahead thread's work).
    fn complete(&self, location: &ChunkLocation) -> Result<()> {
        let frame = self.frame(location, true)?;
        loop {
            if !self.cache.holds(&location.frame_key(), &frame) {
                // Pushed out meanwhile: whoever reads it next starts again.
                return Ok(());
            }
            let mut state = lock(&frame.state);
            let done = state.decoded.as_ref().map_or(0, |f| f.decoded().len());
            if self
                .decode_to(&mut state.decoded, location, done + 1, true)?
                .is_whole()
            {
                return Ok(());
            }
        }
    }
}

/// A read-ahead thread: decodes the frames sent to it until the `Content` is gone.
fn decode_ahead_loop(content: &Weak<Content>, receiver: &Mutex<mpsc::Receiver<ChunkLocation>>) {
    loop {
        let next = lock(receiver).recv();
        let (Ok(location), Some(content)) = (next, content.upgrade()) else {
            return;
        };
        // An error here is reported by the read that needs the frame.
        let _ = content.complete(&location);
        lock(&content.ahead).remove(&location.frame_key());
    }
}

/// The bases of a delta frame, read through the mount's frames (decoded as far as each base
/// ends, and kept for the reads and deltas that want them next), each checked against its id.
struct MountBases<'c>(&'c Content);

impl BaseSource for MountBases<'_> {
    fn base_bytes(&self, ids: &[ChunkId]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for id in ids {
            let location = self.0.store.index().get_chunk(id)?.ok_or_else(|| {
                Error::corrupt(
                    format!("base chunk {id}"),
                    "not in the index: the base is missing",
                )
            })?;
            // Depth 1: a base is never a delta itself (nor may its frame's reading wait on
            // the delta frame being decoded, `Frame::agrees`).
            if location.slice.codec == Codec::Delta {
                return Err(Error::corrupt(
                    format!("base chunk {id}"),
                    format!(
                        "stored in a delta frame (blob {} offset {}): a base must be plain",
                        location.blob, location.slice.offset
                    ),
                ));
            }
            self.0
                .chunk_into(id, &location, 0..location.slice.len, &mut out)?;
        }
        Ok(out)
    }
}

/// Where `chunk` is, its blob index checked against `blobs`.
fn location_of(chunk: &ChunkRecord, blobs: &[BlobRecord]) -> Result<ChunkLocation> {
    blob_of(chunk, blobs)?;
    Ok(chunk.location(blobs))
}

fn blob_of<'b>(chunk: &ChunkRecord, blobs: &'b [BlobRecord]) -> Result<&'b BlobRecord> {
    blobs.get(chunk.blob as usize).ok_or_else(|| {
        Error::corrupt(
            format!("chunk {} at offset {}", chunk.id, chunk.slice.offset),
            format!("names blob {} of a table of {}", chunk.blob, blobs.len()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: u32) -> ChunkRecord {
        ChunkRecord {
            id: crate::ChunkId([0; 32]),
            blob: 0,
            slice: crate::format::FrameSlice {
                offset: 0,
                stored_len: 0,
                frame_len: 0,
                skip: 0,
                len,
                codec: crate::format::Codec::Zstd,
            },
        }
    }

    #[test]
    fn chunks_in_finds_the_chunks_a_range_overlaps() {
        let file = OpenFile::new(vec![chunk(10), chunk(10), chunk(5)], Arc::from(vec![]));
        assert_eq!(file.size(), 25);
        assert_eq!(file.chunks_in(0, 10), 0..1);
        assert_eq!(file.chunks_in(9, 11), 0..2);
        assert_eq!(file.chunks_in(10, 25), 1..3);
        assert_eq!(file.chunks_in(24, 25), 2..3);
        let empty = OpenFile::new(vec![], Arc::from(vec![]));
        assert_eq!(empty.chunks_in(0, 0).len(), 0);
    }
}
