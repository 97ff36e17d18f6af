//! On-disk formats: the store configuration, data blobs and image bootstraps. Each file format
//! starts with a magic and a version and ends with a checksum; decoders bound every length
//! before they trust it. `docs/FORMAT.md` is the normative description of these bytes.

pub mod blob;
pub mod bootstrap;
pub mod store_config;

/// How a chunk's bytes are stored inside a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum Codec {
    /// Stored as is (compression did not make it smaller).
    Raw = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Codec {
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// Where one chunk lives: the blob, the byte range of its stored form, and how to decode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkLocation {
    pub blob: crate::BlobId,
    pub offset: u64,
    pub stored_len: u32,
    pub len: u32,
    pub codec: Codec,
}

thread_local! {
    /// One zstd decompression context per thread, reused for every chunk.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn decompress(stored: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut()
            .expect("decompressor just set")
            .decompress(stored, capacity)
    })
}

/// Decodes a stored chunk and checks it against its id.
pub fn decode_chunk(
    id: &crate::ChunkId,
    stored: &[u8],
    len: u32,
    codec: Codec,
    object: impl Fn() -> String,
) -> crate::Result<Vec<u8>> {
    let data = match codec {
        Codec::Raw => stored.to_vec(),
        Codec::Zstd => decompress(stored, len as usize)
            .map_err(|e| crate::Error::corrupt(object(), format!("zstd: {e}")))?,
    };
    if data.len() != len as usize {
        return Err(crate::Error::corrupt(
            object(),
            format!("chunk {id} decodes to {} bytes, expected {len}", data.len()),
        ));
    }
    let actual = crate::ChunkId::of(&data);
    if actual != *id {
        return Err(crate::Error::DigestMismatch {
            object: object(),
            expected: id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(data)
}
