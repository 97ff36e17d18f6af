//! The store as the source of delta frames' bases: each base chunk is found through the index,
//! its frame decoded (never a delta frame itself: depth 1) and the chunk checked against its
//! id. The frames decoded last are kept, since the delta chunks of one file usually share their
//! bases' frames.

use crate::error::{Error, Result};
use crate::format::blob::BlobReader;
use crate::format::{chunk_from_frame, BaseSource, Codec, NoBases};
use crate::store::Store;
use crate::{BlobId, ChunkId};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Decoded base frames kept per store.
const CACHED_BASE_FRAMES: usize = 8;

/// A frame: its blob and its offset there.
type FrameKey = (BlobId, u64);

/// The last few decoded base frames, most recent first.
#[derive(Default)]
pub(crate) struct BaseFrames(Mutex<VecDeque<(FrameKey, Arc<Vec<u8>>)>>);

impl BaseFrames {
    fn get(&self, key: FrameKey) -> Option<Arc<Vec<u8>>> {
        let frames = self.0.lock().unwrap_or_else(|e| e.into_inner());
        frames
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| f.clone())
    }

    fn put(&self, key: FrameKey, frame: Arc<Vec<u8>>) {
        let mut frames = self.0.lock().unwrap_or_else(|e| e.into_inner());
        frames.push_front((key, frame));
        frames.truncate(CACHED_BASE_FRAMES);
    }
}

impl BaseSource for Store {
    fn base_bytes(&self, ids: &[ChunkId]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for id in ids {
            out.extend_from_slice(&self.base_chunk(id)?);
        }
        Ok(out)
    }
}

impl Store {
    /// One base chunk's bytes, verified.
    fn base_chunk(&self, id: &ChunkId) -> Result<Vec<u8>> {
        let object = || format!("base chunk {id}");
        let location = self
            .index()
            .get_chunk(id)?
            .ok_or_else(|| Error::corrupt(object(), "not in the index: the base is missing"))?;
        if location.codec == Codec::Delta {
            return Err(Error::corrupt(
                object(),
                format!(
                    "stored in a delta frame (blob {} offset {}): a base must be plain",
                    location.blob, location.offset
                ),
            ));
        }
        let key = location.frame_key();
        let frame = match self.base_frames().get(key) {
            Some(frame) => frame,
            None => {
                let reader = BlobReader::open(&self.blob_path(&location.blob), location.blob)?;
                let frame = Arc::new(reader.read_frame(&location, &NoBases)?);
                self.base_frames().put(key, frame.clone());
                frame
            }
        };
        let at = || {
            format!(
                "base chunk {id} in blob {} offset {}",
                location.blob, location.offset
            )
        };
        chunk_from_frame(id, &frame, location.skip, location.len, at).map(<[u8]>::to_vec)
    }
}
