//! `FrameCache`: the last few decoded frames, by a key naming each (store layer, object
//! access): the store's decoded delta bases (`BaseFrames`, filled by `view::bases`) and a
//! convert's frames read back from files not yet committed (`write::written_chunks`).

use crate::BlobId;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Decoded base frames kept per cache.
const CACHED_BASE_FRAMES: usize = 8;

/// A frame: its blob and its offset there.
pub(crate) type FrameKey = (BlobId, u64);

/// The last few decoded frames, most recent first, by a key naming the frame.
pub(crate) struct FrameCache<K>(Mutex<VecDeque<(K, Arc<Vec<u8>>)>>);

/// The base frames a store decoded last.
pub(crate) type BaseFrames = FrameCache<FrameKey>;

impl<K> Default for FrameCache<K> {
    fn default() -> Self {
        FrameCache(Mutex::new(VecDeque::new()))
    }
}

impl<K: PartialEq> FrameCache<K> {
    pub(crate) fn get(&self, key: &K) -> Option<Arc<Vec<u8>>> {
        let frames = self.0.lock().unwrap_or_else(|e| e.into_inner());
        frames
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| f.clone())
    }

    pub(crate) fn put(&self, key: K, frame: Arc<Vec<u8>>) {
        let mut frames = self.0.lock().unwrap_or_else(|e| e.into_inner());
        frames.push_front((key, frame));
        frames.truncate(CACHED_BASE_FRAMES);
    }
}
