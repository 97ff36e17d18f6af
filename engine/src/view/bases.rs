//! Reading machinery (`view`).
//!
//! The store as the source of delta frames' bases: each base chunk is found through the index,
//! its frame decoded (never a delta frame itself: depth 1) and the chunk checked against its
//! id. The frames decoded last are kept, since the delta chunks of one file usually share their
//! bases' frames.

use crate::error::{Error, Result};
use crate::format::blob::BlobReader;
use crate::format::delta::DeltaHeader;
use crate::format::layer_meta::LayerMeta;
use crate::format::{chunk_from_frame, BaseSource, ChunkLocation, Codec, NoBases};
use crate::frame_cache::FrameKey;
use crate::store::Store;
use crate::{BlobId, ChunkId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

impl BaseSource for Store {
    fn base_bytes(&self, ids: &[ChunkId]) -> Result<Vec<u8>> {
        let mut located = Vec::with_capacity(ids.len());
        for id in ids {
            let location = self.index().get_chunk(id)?.ok_or_else(|| {
                Error::corrupt(
                    format!("base chunk {id}"),
                    "not in the index: the base is missing",
                )
            })?;
            located.push((*id, location));
        }
        self.base_bytes_at(&located)
    }
}

impl Store {
    /// The bytes of base chunks at the locations the index gave for them, back to back, each
    /// verified; a location in a delta frame is refused (depth 1).
    pub(crate) fn base_bytes_at(&self, bases: &[(ChunkId, ChunkLocation)]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (id, location) in bases {
            out.extend_from_slice(&self.base_chunk(id, location)?);
        }
        Ok(out)
    }

    /// One base chunk's bytes, verified.
    pub(crate) fn base_chunk(&self, id: &ChunkId, location: &ChunkLocation) -> Result<Vec<u8>> {
        let object = || format!("base chunk {id}");
        if location.slice.codec == Codec::Delta {
            return Err(Error::corrupt(
                object(),
                format!(
                    "stored in a delta frame (blob {} offset {}): a base must be plain",
                    location.blob, location.slice.offset
                ),
            ));
        }
        let key = location.frame_key();
        let frame = match self.base_frames().get(&key) {
            Some(frame) => frame,
            None => {
                let reader = BlobReader::open(&self.blob_path(&location.blob), location.blob)?;
                let frame = Arc::new(reader.read_frame(location, &NoBases)?);
                self.base_frames().put(key, frame.clone());
                frame
            }
        };
        let at = || {
            format!(
                "base chunk {id} in blob {} offset {}",
                location.blob, location.slice.offset
            )
        };
        chunk_from_frame(id, &frame, location.slice.skip, location.slice.len, at)
            .map(<[u8]>::to_vec)
    }
}

/// Calls `visit(frame, header, bases)` once per distinct delta frame that the entries of
/// `objects` use: the frame's location, its header, and where the index has each base. A base
/// the index lacks is an error naming the frame and the base.
pub(crate) fn for_each_delta_frame<'o>(
    store: &Store,
    objects: impl IntoIterator<Item = &'o LayerMeta>,
    mut visit: impl FnMut(&ChunkLocation, &DeltaHeader, &[(ChunkId, ChunkLocation)]) -> Result<()>,
) -> Result<()> {
    let mut frames: HashSet<FrameKey> = HashSet::new();
    let mut readers: HashMap<BlobId, BlobReader> = HashMap::new();
    for object in objects {
        for entry in object.entries() {
            for chunk in entry?.chunks {
                let location = chunk.location(object.blobs());
                if location.slice.codec != Codec::Delta || !frames.insert(location.frame_key()) {
                    continue;
                }
                let reader = match readers.entry(location.blob) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(BlobReader::open(
                        &store.blob_path(&location.blob),
                        location.blob,
                    )?),
                };
                let header = reader.delta_header(&location)?;
                let mut bases = Vec::with_capacity(header.bases.len());
                for base in &header.bases {
                    let found = store.index().get_chunk(base)?.ok_or_else(|| {
                        Error::corrupt(
                            format!(
                                "base chunk {base} of the delta frame at blob {} offset {}",
                                location.blob, location.slice.offset
                            ),
                            "not in the index",
                        )
                    })?;
                    bases.push((*base, found));
                }
                visit(&location, &header, &bases)?;
            }
        }
    }
    Ok(())
}
