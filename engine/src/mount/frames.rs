//! The mount's decoded frames (`content.rs` reads through them): each frame decoded only as
//! far as reads have needed (`PartialFrame`), the chunks of it already checked against their
//! ids, and a cache of frames bounded in bytes (least recently used out first). A frame is in
//! the cache from the moment a read asks for it, before it is decoded, so that every reader
//! of a frame waits on the one decoding it instead of decoding it again. A frame is charged
//! what it holds: while partial, its buffer, stored bytes and decoder; once whole, its buffer.

use crate::format::partial_frame::PartialFrame;
use crate::format::{ChunkLocation, Codec};
use crate::BlobId;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

/// A frame: its blob and its offset there.
pub(super) type FrameKey = (BlobId, u64);

/// What a frame not yet decoded is charged: its buffer, its stored bytes and a decoder
/// (a zstd decompression context with its input buffer is about this).
const DECODER_BYTES: usize = 256 << 10;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A frame of a blob, decoded as far as reads needed.
pub(super) struct Frame {
    /// The frame as the location that first asked for it describes it: a later location of
    /// the same frame must agree (a damaged record must not make a delta frame's read wait
    /// on itself for its base).
    pub(super) codec: Codec,
    pub(super) frame_len: u32,
    pub(super) stored_len: u32,
    pub(super) state: Mutex<FrameState>,
    /// Decoded ahead and not read yet.
    pub(super) unread: AtomicBool,
}

#[derive(Default)]
pub(super) struct FrameState {
    /// `None` until a reader has read its stored bytes.
    pub(super) decoded: Option<PartialFrame>,
    /// The chunks (skip, len) checked against their ids.
    pub(super) verified: Vec<(u32, u32)>,
}

impl Frame {
    fn new(location: &ChunkLocation, ahead: bool) -> Frame {
        Frame {
            codec: location.slice.codec,
            frame_len: location.slice.frame_len,
            stored_len: location.slice.stored_len,
            state: Mutex::new(FrameState::default()),
            unread: AtomicBool::new(ahead),
        }
    }

    /// Whether `location` describes this frame as it did when the frame was first read.
    pub(super) fn agrees(&self, location: &ChunkLocation) -> bool {
        self.codec == location.slice.codec
            && self.frame_len == location.slice.frame_len
            && self.stored_len == location.slice.stored_len
    }

    /// What the frame is charged before it is decoded.
    fn first_charge(&self) -> usize {
        self.frame_len as usize + self.stored_len as usize + DECODER_BYTES
    }
}

/// Decoded frames, at most `budget` bytes of them.
pub(super) struct FrameCache {
    budget: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Frame, when it was last used, and the bytes it is charged.
    frames: HashMap<FrameKey, (Arc<Frame>, u64, usize)>,
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

    /// Drops the least recently used frames until the charges fit `budget` (the frame used
    /// last stays, whatever its size); returns how many decoded ahead left unread.
    fn shrink(&mut self, budget: usize) -> u64 {
        let mut unread = 0;
        while self.bytes > budget && self.frames.len() > 1 {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((old, _, charge)) = self.frames.remove(&oldest) {
                self.bytes -= charge;
                unread += old.unread.load(std::sync::atomic::Ordering::Relaxed) as u64;
            }
        }
        unread
    }
}

impl FrameCache {
    pub(super) fn new(budget: usize) -> FrameCache {
        FrameCache {
            budget,
            state: Mutex::new(CacheState::default()),
        }
    }

    pub(super) fn get(&self, key: &FrameKey) -> Option<Arc<Frame>> {
        let mut state = lock(&self.state);
        let (frame, used) = state.frames.get(key).map(|(f, u, _)| (f.clone(), *u))?;
        let now = state.touch(*key, used);
        if let Some(entry) = state.frames.get_mut(key) {
            entry.1 = now;
        }
        Some(frame)
    }

    /// The frame at `location`, added (not yet decoded) if it is not there; also how many
    /// frames decoded ahead left the cache unread to make room.
    pub(super) fn get_or_add(&self, location: &ChunkLocation, ahead: bool) -> (Arc<Frame>, u64) {
        let key = location.frame_key();
        if let Some(frame) = self.get(&key) {
            return (frame, 0);
        }
        let mut state = lock(&self.state);
        if let Some((frame, _, _)) = state.frames.get(&key) {
            return (frame.clone(), 0);
        }
        let frame = Arc::new(Frame::new(location, ahead));
        let charge = frame.first_charge();
        let now = state.touch(key, u64::MAX);
        state.frames.insert(key, (frame.clone(), now, charge));
        state.bytes += charge;
        let unread = state.shrink(self.budget);
        (frame, unread)
    }

    /// Whether a frame is cached at `key` (not counted as a use).
    pub(super) fn contains(&self, key: &FrameKey) -> bool {
        lock(&self.state).frames.contains_key(key)
    }

    /// Whether `frame` is (still) the cached frame at `key`.
    pub(super) fn holds(&self, key: &FrameKey, frame: &Arc<Frame>) -> bool {
        lock(&self.state)
            .frames
            .get(key)
            .is_some_and(|(f, _, _)| Arc::ptr_eq(f, frame))
    }

    /// Charges the frame at `key` (if still cached) `bytes` from now on; returns how many
    /// frames decoded ahead left the cache unread to make room.
    pub(super) fn recharge(&self, key: &FrameKey, bytes: usize) -> u64 {
        let mut state = lock(&self.state);
        let Some(entry) = state.frames.get_mut(key) else {
            return 0;
        };
        let old = std::mem::replace(&mut entry.2, bytes);
        state.bytes = state.bytes - old + bytes;
        state.shrink(self.budget)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.state).frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FrameSlice;

    fn location(offset: u64, frame_len: u32) -> ChunkLocation {
        ChunkLocation {
            blob: BlobId([0; 32]),
            slice: FrameSlice {
                offset,
                stored_len: 0,
                frame_len,
                skip: 0,
                len: frame_len,
                codec: Codec::Raw,
            },
        }
    }

    #[test]
    fn the_cache_keeps_its_budget_dropping_the_least_recently_used() {
        // Frames of 10 bytes not yet decoded, each charged 10 + DECODER_BYTES: room for two.
        let one = 10 + DECODER_BYTES;
        let cache = FrameCache::new(one * 5 / 2);
        let key = |n: u64| (BlobId([0; 32]), n);
        let add = |n: u64| cache.get_or_add(&location(n, 10), false);
        add(1);
        add(2);
        assert!(cache.get(&key(1)).is_some());
        add(3);
        assert!(
            cache.get(&key(2)).is_none(),
            "least recently used goes first"
        );
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(3)).is_some());
        // Decoded whole, a frame is charged its bytes: room for more.
        cache.recharge(&key(1), 10);
        cache.recharge(&key(3), 10);
        add(5);
        add(6);
        assert_eq!(cache.len(), 4);
        // A frame larger than the budget is still kept, alone.
        cache.get_or_add(&location(4, 3 * one as u32), false);
        assert!(cache.get(&key(4)).is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_frame_is_added_once_and_must_agree_with_later_locations() {
        let cache = FrameCache::new(1 << 30);
        let (first, _) = cache.get_or_add(&location(7, 100), false);
        let (again, _) = cache.get_or_add(&location(7, 100), true);
        assert!(Arc::ptr_eq(&first, &again));
        assert!(first.agrees(&location(7, 100)));
        assert!(!first.agrees(&location(7, 99)));
        let mut delta = location(7, 100);
        delta.slice.codec = Codec::Delta;
        assert!(!first.agrees(&delta));
    }
}
