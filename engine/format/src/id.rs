//! Typed 32-byte identifiers: BLAKE3 ids for chunks, blobs and images, and SHA-256 digests
//! for the OCI objects cairn reads. One macro makes them all, so that a chunk id can never be
//! passed where a blob id is expected.

use std::fmt;

/// Reads an id's 32 bytes from a hex string, a sequence of 32 numbers or a newtype of them.
struct IdVisitor {
    name: &'static str,
    parse: fn(&str) -> Option<[u8; 32]>,
}

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = [u8; 32];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} (64 hex digits or 32 bytes)", self.name)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<[u8; 32], E> {
        (self.parse)(text).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<[u8; 32], D::Error> {
        <[u8; 32] as serde::Deserialize>::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 32], A::Error> {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(serde::de::Error::invalid_length(33, &self));
        }
        Ok(bytes)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        /// In JSON (and any human-readable format) the display form, a hex string; in bincode
        /// the 32 bytes, as a derived newtype writes them (the binary formats do not change).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_newtype_struct(stringify!($name), &self.0)
                }
            }
        }

        /// Reads what `Serialize` writes; in JSON also an array of 32 numbers, the form
        /// earlier releases wrote (index records hold some).
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let visitor = IdVisitor {
                    name: stringify!($name),
                    parse: |text| $name::from_hex(text).map(|id| id.0),
                };
                let bytes = if d.is_human_readable() {
                    d.deserialize_any(visitor)?
                } else {
                    d.deserialize_newtype_struct(stringify!($name), visitor)?
                };
                Ok($name(bytes))
            }
        }

        impl $name {
            /// Lower-case hex, without any algorithm prefix.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex digits (an optional algorithm prefix such as `sha256:` is accepted).
            pub fn from_hex(text: &str) -> Option<Self> {
                let text = text.strip_prefix($prefix).unwrap_or(text);
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes).ok()?;
                Some(Self(bytes))
            }

            /// The first 12 hex digits, for human output.
            pub fn short(&self) -> String {
                self.to_hex()[..12].to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// BLAKE3-256 of a chunk's uncompressed bytes.
    ChunkId,
    ""
);
id_type!(
    /// BLAKE3-256 of a whole sealed blob file.
    BlobId,
    ""
);
id_type!(
    /// BLAKE3-256 of a whole bootstrap file; names one stored image (one platform manifest).
    ImageId,
    ""
);
id_type!(
    /// BLAKE3-256 of a layer metadata object's header, tables and footer (which commit to every
    /// block through the blocks' hashes); names the object in the store.
    LayerMetaId,
    ""
);
id_type!(
    /// An OCI content digest (`sha256:<hex>`).
    Sha256Digest,
    "sha256:"
);

impl ChunkId {
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// The chunk index's key for this chunk: its first 16 bytes.
    pub fn key(&self) -> ChunkKey {
        ChunkKey(self.0[..16].try_into().expect("16 of 32 bytes"))
    }
}

/// The first 16 bytes of a chunk id: the chunk index's key. The full id is in the blob ToC
/// record the index entry points to, and is compared before the entry is trusted, so two ids
/// sharing a key (a chance of about n^2 / 2^129 among n chunks) cost only a missed dedup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ChunkKey(pub [u8; 16]);

impl fmt::Display for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl Sha256Digest {
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(data).into())
    }

    /// Parses `sha256:<64 hex>`; other algorithms are not supported.
    pub fn parse(text: &str) -> Option<Self> {
        text.strip_prefix("sha256:").and_then(Self::from_hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_prefix() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Digest::parse(&d.to_string()), Some(d));
        assert_eq!(Sha256Digest::parse("md5:00"), None);
        let c = ChunkId::of(b"abc");
        assert_eq!(ChunkId::from_hex(&c.to_hex()), Some(c));
        assert_eq!(ChunkId::from_hex("zz"), None);
    }
}

#[cfg(test)]
mod serde_tests {
    use super::*;

    #[test]
    fn json_is_hex_and_reads_the_old_arrays_while_bincode_is_unchanged() {
        let id = ImageId([7; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "07".repeat(32)));
        assert_eq!(serde_json::from_str::<ImageId>(&json).unwrap(), id);
        let old = serde_json::to_string(&[7u8; 32]).unwrap();
        assert_eq!(serde_json::from_str::<ImageId>(&old).unwrap(), id);
        assert!(serde_json::from_str::<ImageId>("\"07\"").is_err());
        assert!(serde_json::from_str::<ImageId>("[1, 2]").is_err());
        // bincode: the 32 bytes, as the derived newtype wrote them.
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(id, config).unwrap();
        assert_eq!(bytes, vec![7u8; 32]);
        let (back, _): (ImageId, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, id);
        let digest = Sha256Digest([1; 32]);
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            format!("\"sha256:{}\"", "01".repeat(32))
        );
    }
}
