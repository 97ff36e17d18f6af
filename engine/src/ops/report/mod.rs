//! Reports computed from bootstraps alone: what one image shares with another (`diff`), the
//! store's footprint and sharing between images (`stats`), and an image/layer inventory
//! (`inventory`).

pub mod diff;
pub mod inventory;
pub mod stats;

use crate::layer::EntryKind;
use crate::ops::whole_image::{EntryRecord, WholeImage};
use crate::ChunkId;
use std::collections::HashMap;

/// The distinct chunks of an image: id -> (uncompressed length, stored length).
pub(crate) type ChunkSizes = HashMap<ChunkId, (u64, u64)>;

pub(crate) fn chunk_sizes(bootstrap: &WholeImage) -> ChunkSizes {
    bootstrap
        .chunks
        .iter()
        .map(|c| (c.id, (c.len as u64, c.stored_share())))
        .collect()
}

/// A regular file's content identity: its chunk ids in order (equal contents give equal lists,
/// because chunk boundaries depend only on the bytes).
pub(crate) fn content_key(bootstrap: &WholeImage, entry: &EntryRecord) -> Vec<ChunkId> {
    entry
        .chunks
        .iter()
        .map(|&c| bootstrap.chunks[c as usize].id)
        .collect()
}

pub(crate) fn is_file(entry: &EntryRecord) -> bool {
    entry.meta.kind == EntryKind::File
}
