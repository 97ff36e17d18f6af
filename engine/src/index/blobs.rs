//! Blob numbers: the chunk index names a blob by a small number instead of its 32-byte id.
//! Numbers are assigned by the commit that first indexes a chunk of the blob and kept in the
//! `blobs` column family (number, big-endian u32 -> blob id); the whole table is loaded when
//! the index opens (a store holds few blobs: each is up to 256 MiB).

use crate::BlobId;
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct BlobNumbers {
    by_id: HashMap<BlobId, u32>,
    by_number: HashMap<u32, BlobId>,
    next: u32,
}

impl BlobNumbers {
    pub(super) fn insert(&mut self, number: u32, id: BlobId) {
        self.by_id.insert(id, number);
        self.by_number.insert(number, id);
        self.next = self.next.max(number.saturating_add(1));
    }

    pub(super) fn remove(&mut self, id: &BlobId) {
        if let Some(number) = self.by_id.remove(id) {
            self.by_number.remove(&number);
        }
    }

    pub(super) fn number(&self, id: &BlobId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub(super) fn id(&self, number: u32) -> Option<BlobId> {
        self.by_number.get(&number).copied()
    }

    /// The number the next new blob gets (one past the highest in use).
    pub(super) fn next(&self) -> u32 {
        self.next
    }
}
