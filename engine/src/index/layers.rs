//! The `layers` column family: a layer's compressed digest, and its diff_id, to the layer
//! metadata object made from it, so that convert reuses the object of a layer the store
//! already holds instead of reading the layer again. A key is one kind byte (`d`: the digest
//! of the layer blob as read, `u`: the diff_id, the sha256 of the uncompressed tar) and the
//! 32 digest bytes; a value is the object id's 32 bytes.
//!
//! Kind `s` keys find files by similarity (`chunk::sketch`): a super-feature of a large file's
//! first chunk (8 bytes, big-endian), the file's entry number in its layer object (8 bytes,
//! big-endian) and the first 16 bytes of the object's id (so that keys of two objects differ);
//! the value is the object's id, like the others', so that gc re-points or drops them with
//! them. All keys are 33 bytes.

use crate::{LayerMetaId, Sha256Digest};

/// What a layer is known by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum LayerKey {
    /// sha256 of the layer blob as it was read (compressed or not).
    Digest(Sha256Digest),
    /// sha256 of the uncompressed tar.
    DiffId(Sha256Digest),
    /// A super-feature of the first chunk of entry `entry` of an object whose id starts with
    /// `object` (`chunk::sketch`).
    Sketch {
        feature: u64,
        entry: u64,
        object: [u8; 16],
    },
}

impl LayerKey {
    pub(crate) fn bytes(&self) -> [u8; 33] {
        let mut key = [0u8; 33];
        match self {
            LayerKey::Digest(d) => {
                key[0] = b'd';
                key[1..].copy_from_slice(&d.0);
            }
            LayerKey::DiffId(d) => {
                key[0] = b'u';
                key[1..].copy_from_slice(&d.0);
            }
            LayerKey::Sketch {
                feature,
                entry,
                object,
            } => {
                key[..9].copy_from_slice(&sketch_prefix(*feature));
                key[9..17].copy_from_slice(&entry.to_be_bytes());
                key[17..].copy_from_slice(object);
            }
        }
        key
    }

    pub(crate) fn from_bytes(key: &[u8]) -> Option<LayerKey> {
        let rest: &[u8; 32] = key.get(1..)?.try_into().ok()?;
        match key.first()? {
            b'd' => Some(LayerKey::Digest(Sha256Digest(*rest))),
            b'u' => Some(LayerKey::DiffId(Sha256Digest(*rest))),
            b's' => Some(LayerKey::Sketch {
                feature: u64::from_be_bytes(rest[..8].try_into().ok()?),
                entry: u64::from_be_bytes(rest[8..16].try_into().ok()?),
                object: rest[16..].try_into().ok()?,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for LayerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerKey::Digest(d) => write!(f, "layer digest {d}"),
            LayerKey::DiffId(d) => write!(f, "layer diff_id {d}"),
            LayerKey::Sketch { feature, entry, .. } => {
                write!(f, "file sketch {feature:016x} of entry {entry}")
            }
        }
    }
}

/// Decodes a value of the column family.
pub(crate) fn meta_id(value: &[u8]) -> Option<LayerMetaId> {
    Some(LayerMetaId(value.try_into().ok()?))
}

/// The first 9 bytes of every sketch key of super-feature `feature`.
pub(crate) fn sketch_prefix(feature: u64) -> [u8; 9] {
    let mut prefix = [0u8; 9];
    prefix[0] = b's';
    prefix[1..].copy_from_slice(&feature.to_be_bytes());
    prefix
}
