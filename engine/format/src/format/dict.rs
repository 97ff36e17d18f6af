//! Chunk dictionaries (`cairn dict export`): which chunks a store holds, small enough to send
//! the other way, so that a sender bundles only what the receiver lacks (docs/FORMAT.md,
//! "Chunk dictionary file"). A chunk is recorded by the first 8 bytes of its id (a false match
//! needs two of the receiver's and the sender's chunks to share 64 bits: the bundle would then
//! rely on a chunk the receiver lacks, and its import fails naming it, never reads wrong
//! bytes) and its size; sorted prefixes are stored as varint gaps, the whole compressed.

use crate::error::{Error, Result};
use crate::format::varint::{get_varint, put_varint};
use crate::ChunkId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

const MAGIC: &[u8; 8] = b"CAIRNDCT";
const VERSION: u32 = 1;
/// Header: magic, version, flags, decoded payload length, stored payload length.
const HEADER_LEN: usize = 32;
/// Largest decoded payload a reader accepts.
const MAX_PAYLOAD: u64 = 2 << 30;

/// An image a dictionary covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictImage {
    pub name: String,
    /// Image id, hex.
    pub id: String,
}

/// The chunks a store holds (all of them, or those of some images).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkDictionary {
    pub images: Vec<DictImage>,
    /// Every chunk of the store, not only the images'.
    pub whole_store: bool,
    /// Sorted id prefixes and their chunks' sizes.
    prefixes: Vec<u64>,
    sizes: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    images: Vec<DictImage>,
    whole_store: bool,
    count: u64,
    /// Per chunk, sorted by prefix: varint(prefix - previous prefix), varint(size).
    entries: Vec<u8>,
}

fn prefix(id: &ChunkId) -> u64 {
    u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"))
}

impl ChunkDictionary {
    /// The chunks (id, size) given, for these images.
    pub fn new(
        images: Vec<DictImage>,
        whole_store: bool,
        chunks: impl IntoIterator<Item = (ChunkId, u32)>,
    ) -> Self {
        let sorted: BTreeMap<u64, u32> = chunks
            .into_iter()
            .map(|(id, len)| (prefix(&id), len))
            .collect();
        ChunkDictionary {
            images,
            whole_store,
            prefixes: sorted.keys().copied().collect(),
            sizes: sorted.values().copied().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Bytes of the chunks it lists.
    pub fn chunk_bytes(&self) -> u64 {
        self.sizes.iter().map(|&s| s as u64).sum()
    }

    /// Whether the receiver holds `id` (by its 8-byte prefix).
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.prefixes.binary_search(&prefix(id)).is_ok()
    }

    /// Writes the dictionary file.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut entries = Vec::with_capacity(self.prefixes.len() * 8);
        let mut previous = 0u64;
        for (&p, &size) in self.prefixes.iter().zip(&self.sizes) {
            put_varint(&mut entries, p - previous);
            put_varint(&mut entries, size as u64);
            previous = p;
        }
        let payload = Payload {
            images: self.images.clone(),
            whole_store: self.whole_store,
            count: self.prefixes.len() as u64,
            entries,
        };
        let encoded = bincode::serde::encode_to_vec(&payload, bincode::config::standard())
            .map_err(std::io::Error::other)?;
        let stored = zstd::bulk::compress(&encoded, 19)?;
        let mut head = Vec::with_capacity(HEADER_LEN);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
        head.extend_from_slice(&(stored.len() as u64).to_le_bytes());
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head);
        hasher.update(&stored);
        out.write_all(&head)?;
        out.write_all(&stored)?;
        out.write_all(hasher.finalize().as_bytes())
    }

    /// Reads and checks a dictionary file; `what` names it in errors.
    pub fn read(input: &mut dyn Read, what: &str) -> Result<Self> {
        let bad = |detail: String| Error::bad_input(what.to_string(), detail);
        let mut head = [0u8; HEADER_LEN];
        input
            .read_exact(&mut head)
            .map_err(|e| bad(format!("not a cairn chunk dictionary ({e})")))?;
        if &head[..8] != MAGIC {
            return Err(bad(
                "not a cairn chunk dictionary (no CAIRNDCT magic)".into()
            ));
        }
        let word = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4"));
        let long = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8"));
        if word(8) != VERSION || word(12) != 0 {
            return Err(bad(format!(
                "dictionary version {} (flags {}); this cairn reads version {VERSION}",
                word(8),
                word(12)
            )));
        }
        let (decoded_len, stored_len) = (long(16), long(24));
        if decoded_len > MAX_PAYLOAD || stored_len > MAX_PAYLOAD {
            return Err(bad(format!(
                "payload of {decoded_len} bytes is over the limit"
            )));
        }
        let mut stored = Vec::new();
        input
            .take(stored_len)
            .read_to_end(&mut stored)
            .map_err(|e| bad(e.to_string()))?;
        let mut sum = [0u8; 32];
        if stored.len() as u64 != stored_len || input.read_exact(&mut sum).is_err() {
            return Err(bad("truncated".into()));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head);
        hasher.update(&stored);
        if hasher.finalize().as_bytes() != &sum {
            return Err(bad("checksum mismatch: the file is damaged".into()));
        }
        // Decoded as a stream: memory grows with what the payload decodes to (at most one byte
        // past the length the header states), not with what the header claims.
        let mut encoded = Vec::new();
        zstd::stream::read::Decoder::new(&stored[..])
            .and_then(|d| d.take(decoded_len + 1).read_to_end(&mut encoded))
            .map_err(|e| bad(format!("payload: {e}")))?;
        let (payload, used): (Payload, usize) =
            // The limit bounds what a length prefix may make the decoder allocate up front.
            bincode::serde::decode_from_slice(
                &encoded,
                bincode::config::standard().with_limit::<{ MAX_PAYLOAD as usize }>(),
            )
            .map_err(|e| bad(format!("payload: {e}")))?;
        if used != encoded.len() || encoded.len() as u64 != decoded_len {
            return Err(bad("payload has trailing bytes".into()));
        }
        let mut dict = ChunkDictionary {
            images: payload.images,
            whole_store: payload.whole_store,
            ..ChunkDictionary::default()
        };
        let mut rest = &payload.entries[..];
        let mut previous = 0u64;
        for n in 0..payload.count {
            let gap = get_varint(&mut rest);
            let size = get_varint(&mut rest);
            let (Some(gap), Some(size)) = (gap, size) else {
                return Err(bad(format!("entry {n} is truncated")));
            };
            let p = previous
                .checked_add(gap)
                .filter(|&p| n == 0 || p > previous)
                .ok_or_else(|| bad(format!("entry {n} is out of order")))?;
            let size = u32::try_from(size)
                .ok()
                .filter(|&s| s <= crate::chunk::MAX_CHUNK_SIZE)
                .ok_or_else(|| bad(format!("entry {n}: chunk size {size} is over the limit")))?;
            dict.prefixes.push(p);
            dict.sizes.push(size);
            previous = p;
        }
        if !rest.is_empty() {
            return Err(bad("entries have trailing bytes".into()));
        }
        Ok(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> ChunkDictionary {
        let chunks = (0..n).map(|i| (ChunkId::of(&i.to_le_bytes()), 1000 + i as u32));
        ChunkDictionary::new(
            vec![DictImage {
                name: "app:v1".into(),
                id: "ab".repeat(32),
            }],
            false,
            chunks,
        )
    }

    #[test]
    fn a_dictionary_round_trips_and_answers_membership() {
        let dict = sample(5000);
        let mut file = Vec::new();
        dict.write(&mut file).unwrap();
        let read = ChunkDictionary::read(&mut &file[..], "d").unwrap();
        assert_eq!(read, dict);
        assert!(read.contains(&ChunkId::of(&7usize.to_le_bytes())));
        assert!(!read.contains(&ChunkId::of(b"other")));
        // A few bytes per chunk (ids are random, so about 7 bytes of gap and 2 of size).
        assert!(file.len() < 5000 * 11, "{} bytes", file.len());
    }

    #[test]
    fn a_damaged_or_truncated_dictionary_is_refused() {
        let mut file = Vec::new();
        sample(100).write(&mut file).unwrap();
        for cut in [0, 10, file.len() - 1] {
            assert!(ChunkDictionary::read(&mut &file[..cut], "d").is_err());
        }
        let mut flipped = file.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        let message = ChunkDictionary::read(&mut &flipped[..], "d")
            .unwrap_err()
            .to_string();
        assert!(message.contains("checksum"), "{message}");
    }
}
