//! File content for the mount: an open file knows its chunks and where each starts; a read
//! decodes only the frames it touches, through a cache of decoded frames bounded in bytes
//! (least recently used out first). Every chunk is checked against its BLAKE3 id before its
//! bytes are returned (once per stay of its frame in the cache), so a damaged chunk is an
//! error naming its blob and offset, never wrong bytes. Read-ahead, in the background: when a
//! file is read sequentially, the frames of its next `readahead` bytes; when reads move on
//! from one frame of a blob to the next a few times in a row (files read in the order they
//! were stored, as `tar` or an unpack does), the blob's next frames for `readahead` bytes.
//! `stats.rs` counts what was decoded, and for whom, when asked to.

use super::stats::{Count, Stats};
use crate::error::{Error, Result};
use crate::format::blob::{decode_toc, BlobReader};
use crate::format::bootstrap::{BlobRecord, ChunkRecord};
use crate::format::ChunkLocation;
use crate::store::Store;
use crate::BlobId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};

/// A frame: its blob and its offset there.
type FrameKey = (BlobId, u64);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A regular file opened through the mount.
pub(super) struct OpenFile {
    chunks: Vec<ChunkRecord>,
    /// `starts[i]`: the file offset of chunk `i`; one more, the file's size.
    starts: Vec<u64>,
    /// The blob table the chunks index (their layer object's).
    blobs: Arc<[BlobRecord]>,
    /// Where the last read ended: a read starting there is sequential.
    next: AtomicU64,
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
            next: AtomicU64::new(0),
        }
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

/// A decoded frame, and the chunks of it already checked against their ids.
struct Frame {
    data: Vec<u8>,
    verified: Mutex<Vec<(u32, u32)>>,
    /// Decoded ahead and not read yet.
    unread: AtomicBool,
}

/// Decoded frames, at most `budget` bytes of them.
struct FrameCache {
    budget: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Frame, and when it was last used.
    frames: HashMap<FrameKey, (Arc<Frame>, u64)>,
    /// The frames by when they were last used, oldest first.
    by_use: BTreeMap<u64, FrameKey>,
    bytes: usize,
    clock: u64,
}

impl CacheState {
    /// Marks `key` (cached, last used at `used`) as used now.
    fn touch(&mut self, key: FrameKey, used: u64) -> u64 {
        self.clock += 1;
        self.by_use.remove(&used);
        self.by_use.insert(self.clock, key);
        self.clock
    }
}

impl FrameCache {
    fn get(&self, key: &FrameKey) -> Option<Arc<Frame>> {
        let mut state = lock(&self.state);
        let (frame, used) = state.frames.get(key).map(|(f, u)| (f.clone(), *u))?;
        let now = state.touch(*key, used);
        if let Some(entry) = state.frames.get_mut(key) {
            entry.1 = now;
        }
        Some(frame)
    }

    /// Keeps `frame`; returns how many frames decoded ahead left unread to make room.
    fn insert(&self, key: FrameKey, frame: Arc<Frame>) -> u64 {
        let mut unread = 0;
        let mut state = lock(&self.state);
        let len = frame.data.len();
        let previous = state.frames.get(&key).map(|(f, u)| (f.data.len(), *u));
        let now = state.touch(key, previous.map_or(u64::MAX, |(_, u)| u));
        if let Some((old_len, _)) = previous {
            state.bytes -= old_len;
        }
        state.frames.insert(key, (frame, now));
        state.bytes += len;
        while state.bytes > self.budget && state.frames.len() > 1 {
            let Some((_, oldest)) = state.by_use.pop_first() else {
                break;
            };
            if let Some((old, _)) = state.frames.remove(&oldest) {
                state.bytes -= old.data.len();
                unread += old.unread.load(Ordering::Relaxed) as u64;
            }
        }
        unread
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
/// make a scan. A program starting
/// (`import pandas`: 470 frames over 3 blobs) also moves forward now and then, but seldom
/// three times in a row; decoding 8 MiB ahead at each of its moves decoded 570 MB of frames
/// for 53 MB read, 2,600 of 3,100 frames never read, and doubled its start time.
const SCAN_STREAK: u32 = 3;

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
            cache: FrameCache {
                budget: cache_bytes,
                state: Mutex::new(CacheState::default()),
            },
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
            let frame = self.frame(&location, false)?;
            frame.unread.store(false, Ordering::Relaxed);
            self.follow_scan(&location, Arc::as_ptr(file) as usize);
            let start = file.starts[i];
            let from = offset.max(start) - start;
            let to = end.min(start + chunk.slice.len as u64) - start;
            let data = verified(&frame, chunk, &location)?;
            out.extend_from_slice(&data[from as usize..to as usize]);
        }
        self.stats.add(Count::BytesServed, out.len() as u64);
        if file.next.swap(end, Ordering::Relaxed) == offset && self.readahead > 0 {
            self.file_ahead(file, end);
        }
        Ok(out)
    }

    /// Decodes, in the background, the frames of `file` from `from` on for `readahead` bytes.
    fn file_ahead(self: &Arc<Self>, file: &Arc<OpenFile>, from: u64) {
        let until = from.saturating_add(self.readahead).min(file.size());
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

    /// Decodes `location`'s frame on the thread pool unless it is cached or under way.
    fn decode_ahead(self: &Arc<Self>, location: ChunkLocation) {
        let key = location.frame_key();
        if self.cache.get(&key).is_some() || !lock(&self.ahead).insert(key) {
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

    /// The decoded frame at `location`, from the cache or decoded now.
    fn frame(&self, location: &ChunkLocation, ahead: bool) -> Result<Arc<Frame>> {
        let key = location.frame_key();
        if let Some(frame) = self.cache.get(&key) {
            return Ok(frame);
        }
        let reader = self.reader(&location.blob)?;
        let started = self.stats.clock();
        let data = reader.read_frame(location, &*self.store)?;
        self.stats.decoded(data.len(), started, ahead);
        let frame = Arc::new(Frame {
            data,
            verified: Mutex::new(Vec::new()),
            unread: AtomicBool::new(ahead),
        });
        let wasted = self.cache.insert(key, frame.clone());
        self.stats.add(Count::AheadWasted, wasted);
        Ok(frame)
    }

    fn reader(&self, id: &BlobId) -> Result<Arc<BlobReader>> {
        if let Some(reader) = lock(&self.readers).get(id) {
            return Ok(reader.clone());
        }
        let reader = Arc::new(BlobReader::open(&self.store.blob_path(id), *id)?);
        lock(&self.readers).insert(*id, reader.clone());
        Ok(reader)
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
        let _ = content.frame(&location, true);
        lock(&content.ahead).remove(&location.frame_key());
    }
}

/// `chunk`'s bytes in `frame`, checked against its id unless already checked.
fn verified<'f>(frame: &'f Frame, chunk: &ChunkRecord, at: &ChunkLocation) -> Result<&'f [u8]> {
    let span = (chunk.slice.skip, chunk.slice.len);
    let end = chunk.slice.skip as usize + chunk.slice.len as usize;
    if lock(&frame.verified).contains(&span) && end <= frame.data.len() {
        return Ok(&frame.data[chunk.slice.skip as usize..end]);
    }
    let object = || format!("blob {} offset {}", at.blob, at.slice.offset);
    let data = crate::format::chunk_from_frame(
        &chunk.id,
        &frame.data,
        chunk.slice.skip,
        chunk.slice.len,
        object,
    )?;
    lock(&frame.verified).push(span);
    Ok(data)
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

    #[test]
    fn the_cache_keeps_its_budget_dropping_the_least_recently_used() {
        let cache = FrameCache {
            budget: 25,
            state: Mutex::new(CacheState::default()),
        };
        let frame = |n: usize| {
            Arc::new(Frame {
                data: vec![0; n],
                verified: Mutex::new(Vec::new()),
                unread: AtomicBool::new(false),
            })
        };
        let key = |n: u64| (BlobId([0; 32]), n);
        cache.insert(key(1), frame(10));
        cache.insert(key(2), frame(10));
        assert!(cache.get(&key(1)).is_some());
        cache.insert(key(3), frame(10));
        assert!(
            cache.get(&key(2)).is_none(),
            "least recently used goes first"
        );
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(3)).is_some());
        // A frame larger than the budget is still kept, alone.
        cache.insert(key(4), frame(40));
        assert!(cache.get(&key(4)).is_some());
        assert_eq!(lock(&cache.state).frames.len(), 1);
    }
}
