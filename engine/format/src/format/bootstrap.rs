//! Bootstraps: the metadata of one image (one platform manifest): where it came from (reference,
//! platform, manifest and config bytes) and per layer the source's facts (digest, media type,
//! compression, compressed size) and the layer metadata object holding its entries
//! (`format::layer_meta`). With those objects and the blobs they name, enough to read every
//! byte of the image back (no index needed).
//!
//! ```text
//! "CAIRNBST" | version u32 LE | flags u32 LE (0) | payload_len u64 LE
//! zstd( bincode-2 standard config ( Bootstrap ) )      payload_len bytes once decompressed
//! BLAKE3 of every byte before it [32]
//! ```
//! The image id is the BLAKE3 of the whole file; the file lives at `STORE/bootstraps/<id>`.

use super::FrameSlice;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::platform::Platform;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"CAIRNBST";
pub const BOOTSTRAP_VERSION: u32 = 3;
const HEADER_LEN: usize = 24;
const CHECKSUM_LEN: usize = 32;
/// Bound on a decoded bootstrap (metadata of one image).
const MAX_PAYLOAD_LEN: u64 = 1 << 31;
/// Measured on py v1 (8.2 MB payload): level 9 gives 603 KB in 0.09 s, level 19 574 KB in 2.1 s.
const ZSTD_LEVEL: i32 = 9;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub source: SourceRecord,
    /// The image's layers, bottom first.
    pub layers: Vec<ImageLayer>,
}

/// One layer of an image: how the source held it, and the layer metadata object that holds
/// its entries (shared by every image with the same layer content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    /// sha256 of the layer blob as it was read (compressed).
    pub digest: Sha256Digest,
    pub media_type: String,
    pub compression: Compression,
    pub compressed_size: u64,
    /// sha256 and bytes of the uncompressed tar (as the layer object records them).
    pub diff_id: Sha256Digest,
    pub size: u64,
    /// The layer metadata object, `STORE/layers/<id>`.
    pub meta: LayerMetaId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Where it was converted from (e.g. `oci:/images/py:v1`).
    pub reference: String,
    pub platform: Option<Platform>,
    pub manifest: Option<StoredObject>,
    pub config: Option<StoredObject>,
}

/// A JSON document of the source, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    pub digest: Sha256Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub id: BlobId,
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub id: ChunkId,
    /// Index into `Bootstrap::blobs`.
    pub blob: u32,
    /// The chunk's slice of a frame in that blob.
    pub slice: FrameSlice,
}

impl ChunkRecord {
    /// The checks a chunk record passes before it is trusted: its blob index below
    /// `blob_count`, its length and frame numbers as the blob ToC rules say. The error starts
    /// with what follows "chunk N" in a message.
    pub(crate) fn check(&self, blob_count: usize) -> std::result::Result<(), String> {
        if self.blob as usize >= blob_count {
            return Err(format!(" names blob {} of {blob_count}", self.blob));
        }
        if self.slice.len > crate::chunk::MAX_CHUNK_SIZE {
            return Err(format!(" claims {} bytes", self.slice.len));
        }
        self.slice.check().map_err(|e| format!(": {e}"))
    }

    /// The record of chunk `id` at `location`, whose blob is entry `blob` of the caller's table.
    pub fn at(id: ChunkId, blob: u32, location: &super::ChunkLocation) -> ChunkRecord {
        ChunkRecord {
            id,
            blob,
            slice: location.slice,
        }
    }

    /// Where the chunk lives, `blobs` being the table `blob` indexes (checked by `check`).
    pub fn location(&self, blobs: &[BlobRecord]) -> super::ChunkLocation {
        super::ChunkLocation {
            blob: blobs[self.blob as usize].id,
            slice: self.slice,
        }
    }

    /// This chunk's share of its frame's stored bytes.
    pub fn stored_share(&self) -> u64 {
        self.slice.stored_share()
    }
}

impl Bootstrap {
    pub fn encode(&self) -> Result<Vec<u8>> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| Error::corrupt("bootstrap", format!("encode: {e}")))?;
        let compressed = zstd::bulk::compress(&payload, ZSTD_LEVEL)
            .map_err(|e| Error::corrupt("bootstrap", format!("compress: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + compressed.len() + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&BOOTSTRAP_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&compressed);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        Ok(out)
    }

    /// Decodes and checks a bootstrap file; `object` names it in errors.
    pub fn decode(bytes: &[u8], object: &str) -> Result<Bootstrap> {
        let corrupt = |reason: String| Error::corrupt(object.to_string(), reason);
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(corrupt(format!(
                "{} bytes is too short for a bootstrap",
                bytes.len()
            )));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt(
                "bad magic at offset 0: not a cairn bootstrap".into(),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != BOOTSTRAP_VERSION {
            return Err(corrupt(format!("unsupported bootstrap version {version}")));
        }
        let body_end = bytes.len() - CHECKSUM_LEN;
        if blake3::hash(&bytes[..body_end]).as_bytes() != &bytes[body_end..] {
            return Err(corrupt(format!(
                "checksum mismatch (checksum at offset {body_end})"
            )));
        }
        let payload_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(corrupt(format!(
                "payload of {payload_len} bytes exceeds the limit"
            )));
        }
        let payload = zstd::bulk::decompress(&bytes[HEADER_LEN..body_end], payload_len as usize)
            .map_err(|e| corrupt(format!("zstd payload at offset {HEADER_LEN}: {e}")))?;
        if payload.len() as u64 != payload_len {
            return Err(corrupt(format!(
                "payload decodes to {} bytes, header says {payload_len}",
                payload.len()
            )));
        }
        Self::decode_payload(&payload, object)
    }

    /// Decodes the payload (bincode); `object` names it in errors. A layer's `size` is not held
    /// to whole 512-byte blocks: a tar may end inside its last padding or carry any bytes after
    /// its end-of-archive marker, and its layer object keeps them exactly (the trailer).
    pub(crate) fn decode_payload(payload: &[u8], object: &str) -> Result<Bootstrap> {
        let corrupt = |reason: String| Error::corrupt(object.to_string(), reason);
        let config = bincode::config::standard().with_limit::<{ MAX_PAYLOAD_LEN as usize }>();
        let (bootstrap, used): (Bootstrap, usize) =
            bincode::serde::decode_from_slice(payload, config)
                .map_err(|e| corrupt(format!("payload: {e}")))?;
        if used != payload.len() {
            return Err(corrupt(format!(
                "{} trailing payload bytes",
                payload.len() - used
            )));
        }
        bootstrap.check_references().map_err(corrupt)?;
        Ok(bootstrap)
    }

    /// What a bootstrap must hold to be read: no more layers, and no larger source documents,
    /// than a convert accepts. (A layer's size need not be whole 512-byte blocks: tars that
    /// end without padding are accepted on convert, so their bootstraps must read back.)
    fn check_references(&self) -> std::result::Result<(), String> {
        // The limits a convert holds sources to (`oci::limits`), so that a bootstrap from a
        // bundle or a registry is no larger than one this store could have made; the document
        // sizes at the bound sources were read with before those limits.
        use crate::oci::limits::MAX_LAYERS;
        if self.layers.len() > MAX_LAYERS {
            return Err(format!(
                "lists {} layers, over the layer count limit of {MAX_LAYERS}",
                self.layers.len()
            ));
        }
        let documents = [
            ("manifest", &self.source.manifest),
            ("config", &self.source.config),
        ];
        for (what, object) in documents {
            let len = object.as_ref().map_or(0, |o| o.bytes.len() as u64);
            if len > crate::oci::limits::MAX_JSON_LEN {
                return Err(format!(
                    "its source {what} of {len} bytes is over the {} MiB limit",
                    crate::oci::limits::MAX_JSON_LEN >> 20
                ));
            }
        }
        Ok(())
    }

    /// Bytes of the uncompressed layer tars.
    pub fn logical_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// The image id of an encoded bootstrap.
pub fn image_id(encoded: &[u8]) -> ImageId {
    ImageId(*blake3::hash(encoded).as_bytes())
}
