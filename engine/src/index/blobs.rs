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
    pub fn insert(&mut self, number: u32, id: BlobId) {
        self.by_id.insert(id, number);
        self.by_number.insert(number, id);
        self.next = self.next.max(number.saturating_add(1));
    }

    pub fn remove(&mut self, id: &BlobId) {
        if let Some(number) = self.by_id.remove(id) {
            self.by_number.remove(&number);
        }
    }

    pub fn number(&self, id: &BlobId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub fn id(&self, number: u32) -> Option<BlobId> {
        self.by_number.get(&number).copied()
    }

    /// The number the next new blob gets (one past the highest in use).
    pub fn next(&self) -> u32 {
        self.next
    }
}

/// LEB128: 7 bits a byte, low first.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one LEB128 value; `None` when it is truncated or longer than 64 bits.
pub(crate) fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        if shift == 63 && byte > 1 {
            return None;
        }
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut slice = &out[..];
            assert_eq!(get_varint(&mut slice), Some(value));
            assert!(slice.is_empty());
        }
        assert_eq!(get_varint(&mut &[0x80u8][..]), None);
        assert_eq!(get_varint(&mut &[0xffu8; 11][..]), None);
    }
}
