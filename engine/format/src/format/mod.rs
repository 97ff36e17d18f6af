//! On-disk and wire formats: the store configuration, data blobs, image bootstraps, layer
//! objects, delta frames, bundle files and chunk dictionary files. Each file format
//! starts with a magic and a version and ends with a checksum; decoders bound every length
//! before they trust it. `docs/FORMAT.md` is the normative description of these bytes.

pub mod blob;
pub mod bootstrap;
pub mod bundle;
pub mod delta;
pub mod dict;
#[cfg(test)]
mod golden;
pub mod layer_meta;
pub mod partial_frame;
pub mod store_config;
pub mod varint;

/// How a chunk's bytes are stored inside a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum Codec {
    /// Stored as is (compression did not make it smaller).
    Raw = 0,
    /// One zstd frame.
    Zstd = 1,
    /// A delta frame (`delta.rs`): one chunk, zstd against the bytes of base chunks.
    Delta = 2,
}

impl Codec {
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::Delta),
            _ => None,
        }
    }
}

/// The largest decoded frame: a frame holds one chunk of up to 1 MiB, or several smaller chunks
/// grouped up to the store's frame size (which is at most this).
pub const MAX_FRAME_LEN: u32 = 1 << 20;

/// Where a chunk lies in a stored frame: the frame (its offset in the blob, stored and
/// decoded length, codec) and the chunk's range inside the decoded frame. The blob ToC, the
/// chunk index, the bootstrap's chunk records and the places of chunks being written all hold
/// these six numbers, in this order (encoders write them in this order: `docs/FORMAT.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameSlice {
    /// The frame's offset in the blob and its stored length.
    pub offset: u64,
    pub stored_len: u32,
    /// The frame's decoded length.
    pub frame_len: u32,
    /// The chunk's offset inside the decoded frame, and its length.
    pub skip: u32,
    pub len: u32,
    pub codec: Codec,
}

impl FrameSlice {
    /// This chunk's share of its frame's stored bytes (frames of several chunks are shared in
    /// proportion to the chunks' lengths).
    pub fn stored_share(&self) -> u64 {
        stored_share(self.stored_len, self.frame_len, self.len)
    }

    /// The checks every reader makes before trusting the numbers (`docs/FORMAT.md`).
    pub fn check(&self) -> Result<(), String> {
        check_frame(
            self.stored_len,
            self.frame_len,
            self.skip,
            self.len,
            self.codec,
        )
    }
}

/// Where one chunk lives: the blob and the chunk's slice of a stored frame there. Encoded
/// (bincode) as the blob id followed by the slice's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkLocation {
    pub blob: crate::BlobId,
    pub slice: FrameSlice,
}

impl ChunkLocation {
    /// Identifies the frame within the store (chunks of one frame share it).
    pub fn frame_key(&self) -> (crate::BlobId, u64) {
        (self.blob, self.slice.offset)
    }

    /// This chunk's share of its frame's stored bytes.
    pub fn stored_share(&self) -> u64 {
        self.slice.stored_share()
    }

    /// The checks every reader makes before trusting the numbers (`docs/FORMAT.md`).
    pub fn check(&self) -> Result<(), String> {
        self.slice.check()
    }
}

fn stored_share(stored_len: u32, frame_len: u32, len: u32) -> u64 {
    if frame_len == 0 {
        return 0;
    }
    (stored_len as u64 * len as u64).div_ceil(frame_len as u64)
}

fn check_frame(
    stored_len: u32,
    frame_len: u32,
    skip: u32,
    len: u32,
    codec: Codec,
) -> Result<(), String> {
    if frame_len > MAX_FRAME_LEN {
        return Err(format!(
            "frame of {frame_len} bytes is over the {MAX_FRAME_LEN}-byte limit"
        ));
    }
    if skip as u64 + len as u64 > frame_len as u64 {
        return Err(format!(
            "chunk at {skip}+{len} lies outside its {frame_len}-byte frame"
        ));
    }
    if codec == Codec::Raw && stored_len != frame_len {
        return Err(format!(
            "raw frame stores {stored_len} bytes but decodes to {frame_len}"
        ));
    }
    if codec == Codec::Delta && (skip != 0 || len != frame_len) {
        return Err(format!(
            "delta frame of {frame_len} bytes holds a chunk at {skip}+{len}: it holds one whole chunk"
        ));
    }
    Ok(())
}

thread_local! {
    /// One zstd decompression context per thread, reused for every frame.
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

/// Decodes a stored frame to exactly `frame_len` bytes. `object` names the frame in errors.
pub fn decode_frame(
    stored: &[u8],
    frame_len: u32,
    codec: Codec,
    object: impl Fn() -> String,
    bases: &dyn BaseSource,
) -> crate::Result<Vec<u8>> {
    let data = match codec {
        Codec::Raw => stored.to_vec(),
        Codec::Zstd => decompress(stored, frame_len as usize)
            .map_err(|e| crate::Error::corrupt(object(), format!("zstd: {e}")))?,
        Codec::Delta => {
            let (header, zstd) = delta::DeltaHeader::decode(stored)
                .map_err(|e| crate::Error::corrupt(object(), e))?;
            let base = bases.base_bytes(&header.bases).map_err(|e| {
                crate::Error::corrupt(object(), format!("the bases of this delta frame: {e}"))
            })?;
            delta::decompress(zstd, &base, frame_len as usize)
                .map_err(|e| crate::Error::corrupt(object(), format!("zstd delta: {e}")))?
        }
    };
    if data.len() != frame_len as usize {
        return Err(crate::Error::corrupt(
            object(),
            format!(
                "frame decodes to {} bytes, expected {frame_len}",
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// Gives the plain bytes of the base chunks a delta frame names, back to back, each checked
/// against its id; a base that is itself in a delta frame is refused (depth 1).
pub trait BaseSource: Sync {
    fn base_bytes(&self, ids: &[crate::ChunkId]) -> crate::Result<Vec<u8>>;
}

/// The base source of readers that have no store (fuzzing, tests): every base is missing.
pub struct NoBases;

impl BaseSource for NoBases {
    fn base_bytes(&self, ids: &[crate::ChunkId]) -> crate::Result<Vec<u8>> {
        Err(crate::Error::corrupt(
            format!(
                "chunk {}",
                ids.first().map_or(String::new(), |id| id.to_hex())
            ),
            "no store to read delta bases from",
        ))
    }
}

/// Takes one chunk out of a decoded frame and checks it against its id.
pub fn chunk_from_frame<'f>(
    id: &crate::ChunkId,
    frame: &'f [u8],
    skip: u32,
    len: u32,
    object: impl Fn() -> String,
) -> crate::Result<&'f [u8]> {
    let end = skip as usize + len as usize;
    let Some(data) = frame.get(skip as usize..end) else {
        return Err(crate::Error::corrupt(
            object(),
            format!(
                "chunk {id} at {skip}+{len} lies outside its {}-byte frame",
                frame.len()
            ),
        ));
    };
    let actual = crate::ChunkId::of(data);
    if actual != *id {
        return Err(crate::Error::DigestMismatch {
            object: object(),
            expected: id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(data)
}
