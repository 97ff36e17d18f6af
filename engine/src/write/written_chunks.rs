//! Writing machinery (`write`).
//!
//! New chunks readable before their blob is sealed or committed. A blob builder given a
//! `WrittenChunks` (`blob_builder.rs`) records the place of each chunk it was asked to share
//! once that chunk's frame is in its file under `tmp/` (handed to the kernel with `write`: not
//! yet fsynced, but visible to any reader of the file); a reader in the same convert then reads
//! the chunk back from that file, decodes its frame and checks it against its id, as every
//! read does. Only plain frames are recorded: what is read here serves as a delta base, and a
//! base is never a delta (depth 1). convert uses it for delta bases from the image's own earlier
//! layers (`convert/earlier_layers.rs`); the files stay where they are until the commit, after
//! which the index has the chunks.

use crate::error::{Error, IoContext, Result};
use crate::format::{chunk_from_frame, decode_frame, Codec, FrameSlice, NoBases};
use crate::frame_cache::FrameCache;
use crate::ChunkId;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Where a written chunk is: its frame in a blob file under `tmp/` and its range there.
#[derive(Clone, Debug)]
pub(crate) struct WrittenPlace {
    pub file: Arc<PathBuf>,
    pub slice: FrameSlice,
}

/// The places of chunks written by this convert's blob builders, by id.
#[derive(Default)]
pub(crate) struct WrittenChunks {
    places: RwLock<HashMap<ChunkId, WrittenPlace>>,
    /// The frames decoded last (the bases of one file's chunks share frames).
    frames: FrameCache<(Arc<PathBuf>, u64)>,
}

impl WrittenChunks {
    /// Records chunks whose frames are in their files. Delta frames are not recorded.
    pub(crate) fn add(&self, written: impl IntoIterator<Item = (ChunkId, WrittenPlace)>) {
        let mut places = self.places.write().unwrap_or_else(|e| e.into_inner());
        places.extend(
            written
                .into_iter()
                .filter(|(_, p)| p.slice.codec != Codec::Delta),
        );
    }

    /// Where chunk `id` was written, if it was recorded.
    pub(crate) fn get(&self, id: &ChunkId) -> Option<WrittenPlace> {
        let places = self.places.read().unwrap_or_else(|e| e.into_inner());
        places.get(id).cloned()
    }

    /// The bytes of chunk `id` at `place`, checked against its id.
    pub(crate) fn read(&self, id: &ChunkId, place: &WrittenPlace) -> Result<Vec<u8>> {
        let object = || {
            format!(
                "new chunk {id} in {} offset {}",
                place.file.display(),
                place.slice.offset
            )
        };
        let key = (place.file.clone(), place.slice.offset);
        let frame = match self.frames.get(&key) {
            Some(frame) => frame,
            None => {
                let frame = Arc::new(read_frame(place, object)?);
                self.frames.put(key, frame.clone());
                frame
            }
        };
        chunk_from_frame(id, &frame, place.slice.skip, place.slice.len, object).map(<[u8]>::to_vec)
    }
}

/// Reads and decodes the plain frame at `place`.
fn read_frame(place: &WrittenPlace, object: impl Fn() -> String) -> Result<Vec<u8>> {
    let slice = &place.slice;
    slice.check().map_err(|e| Error::corrupt(object(), e))?;
    if slice.codec == Codec::Delta {
        return Err(Error::corrupt(object(), "a delta frame is never a base"));
    }
    let file = std::fs::File::open(&*place.file).with_path("open blob", &place.file)?;
    let mut stored = vec![0; slice.stored_len as usize];
    file.read_exact_at(&mut stored, slice.offset)
        .with_path("read blob", &place.file)?;
    decode_frame(&stored, slice.frame_len, slice.codec, object, &NoBases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob::{BlobWriter, FramePart};

    #[test]
    fn a_written_chunk_reads_back_checked_before_its_blob_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("blob"));
        let mut writer = BlobWriter::create((*path).clone()).unwrap();
        let data = b"some chunk bytes, some chunk bytes, some chunk bytes".to_vec();
        let id = ChunkId::of(&data);
        let stored = zstd::bulk::compress(&data, 3).unwrap();
        let parts = [FramePart {
            id,
            skip: 0,
            len: data.len() as u32,
        }];
        let offset = writer
            .append_frame(Codec::Zstd, &stored, data.len() as u32, &parts)
            .unwrap();
        writer.flush().unwrap();
        let written = WrittenChunks::default();
        let place = WrittenPlace {
            file: path.clone(),
            slice: FrameSlice {
                offset,
                stored_len: stored.len() as u32,
                frame_len: data.len() as u32,
                skip: 0,
                len: data.len() as u32,
                codec: Codec::Zstd,
            },
        };
        written.add([(id, place.clone())]);
        let found = written.get(&id).unwrap();
        assert_eq!(written.read(&id, &found).unwrap(), data);
        // Another id at the same place is a mismatch, never the bytes.
        let other = ChunkId([1; 32]);
        assert!(written.read(&other, &place).is_err());
        // Delta frames are not recorded.
        written.add([(
            other,
            WrittenPlace {
                slice: FrameSlice {
                    codec: Codec::Delta,
                    ..place.slice
                },
                ..place
            },
        )]);
        assert!(written.get(&other).is_none());
    }
}
