//! Which chunks of each live blob are live: what both policies weigh a blob by, and what its
//! rewrite keeps.

use super::live::LiveSet;
use super::stopped;
use crate::error::Result;
use crate::format::blob::{decode_toc, BlobReader, TocEntry};
use crate::store::Store;
use crate::{BlobId, ChunkId};
use std::collections::{HashMap, HashSet};

/// What `live_entries` tells of a blob: its file's size, its frames' stored bytes and its live
/// chunks' share of them.
pub(super) struct BlobUse {
    pub size: u64,
    pub stored: u64,
    pub live: u64,
}

/// A live chunk use as `live_entries` keeps it: the blob's position among the live blobs, the
/// frame's offset and the first 8 bytes of the chunk's id. 24 bytes, not 72, since a store of
/// a million files holds a million of them at once. Two chunks of one frame sharing 8 bytes of
/// id (a chance of about 2^-64 per pair) would keep a dead chunk as live: space, never data.
type UseKey = (u32, u64, u64);

fn use_key(blob_position: u32, offset: u64, id: &ChunkId) -> UseKey {
    let prefix: [u8; 8] = id.0[..8].try_into().expect("8 of 32 bytes");
    (blob_position, offset, u64::from_le_bytes(prefix))
}

/// The live ToC entries of each live blob `take` accepts.
pub(super) fn live_entries(
    store: &Store,
    live: &LiveSet,
    mut take: impl FnMut(BlobId, BlobUse) -> bool,
) -> Result<Vec<(BlobId, Vec<TocEntry>)>> {
    let mut ids: Vec<BlobId> = live.blobs().into_iter().collect();
    ids.sort();
    let positions: HashMap<BlobId, u32> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as u32))
        .collect();
    let mut used: HashSet<UseKey> = HashSet::new();
    live.for_each_chunk(|id, location| {
        let position = positions.get(&location.blob).copied().unwrap_or(u32::MAX);
        used.insert(use_key(position, location.slice.offset, id));
    })?;
    let mut chosen = Vec::new();
    for (position, id) in ids.into_iter().enumerate() {
        let path = store.blob_path(&id);
        let reader = BlobReader::open(&path, id).map_err(|e| stopped(format!("blob {id}"), e))?;
        let toc = decode_toc(reader.bytes(), &format!("blob {id}"))
            .map_err(|e| stopped(format!("blob {id}"), e))?;
        let total: u64 = toc.iter().map(|e| e.location(id).stored_share()).sum();
        let live: Vec<TocEntry> = toc
            .into_iter()
            .filter(|e| used.contains(&use_key(position as u32, e.slice.offset, &e.id)))
            .collect();
        let live_bytes: u64 = live.iter().map(|e| e.location(id).stored_share()).sum();
        let blob = BlobUse {
            size: reader.bytes().len() as u64,
            stored: total,
            live: live_bytes,
        };
        if take(id, blob) {
            chosen.push((id, live));
        }
    }
    Ok(chosen)
}
