//! The `layers` column family: a layer's compressed digest, and its diff_id, to the layer
//! metadata object made from it, so that convert reuses the object of a layer the store
//! already holds instead of reading the layer again. A key is one kind byte (`d`: the digest
//! of the layer blob as read, `u`: the diff_id, the sha256 of the uncompressed tar) and the
//! 32 digest bytes; a value is the object id's 32 bytes.

use crate::{LayerMetaId, Sha256Digest};

/// What a layer is known by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerKey {
    /// sha256 of the layer blob as it was read (compressed or not).
    Digest(Sha256Digest),
    /// sha256 of the uncompressed tar.
    DiffId(Sha256Digest),
}

impl LayerKey {
    pub(crate) fn bytes(&self) -> [u8; 33] {
        let (kind, digest) = match self {
            LayerKey::Digest(d) => (b'd', d),
            LayerKey::DiffId(d) => (b'u', d),
        };
        let mut key = [0u8; 33];
        key[0] = kind;
        key[1..].copy_from_slice(&digest.0);
        key
    }

    pub(crate) fn from_bytes(key: &[u8]) -> Option<LayerKey> {
        let digest = Sha256Digest(key.get(1..)?.try_into().ok()?);
        match key.first()? {
            b'd' => Some(LayerKey::Digest(digest)),
            b'u' => Some(LayerKey::DiffId(digest)),
            _ => None,
        }
    }
}

impl std::fmt::Display for LayerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerKey::Digest(d) => write!(f, "layer digest {d}"),
            LayerKey::DiffId(d) => write!(f, "layer diff_id {d}"),
        }
    }
}

/// Decodes a value of the column family.
pub(crate) fn meta_id(value: &[u8]) -> Option<LayerMetaId> {
    Some(LayerMetaId(value.try_into().ok()?))
}
