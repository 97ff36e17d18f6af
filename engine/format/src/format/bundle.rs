//! The bundle file (docs/FORMAT.md, "Bundle file"): a header, then records written and read in
//! one pass (so a bundle streams through a pipe), then an end record holding the BLAKE3 of
//! every byte before it. Each record is `kind u8 | len u64 | body`; a reader checks every
//! length against a bound before reading, allocates only for bytes that arrived, and names the
//! byte offset of what it refuses.

use crate::chunk::ChunkerParams;
use crate::error::{Error, Result};
use crate::format::blob::FramePart;
use crate::format::Codec;
use crate::platform::Platform;
use crate::ChunkId;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

const MAGIC: &[u8; 8] = b"CAIRNBDL";
pub const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;

/// Largest manifest or list of relied chunks a reader accepts.
const MAX_LIST: u64 = 256 << 20;
/// Relied chunks per record.
pub const RELIED_PER_RECORD: usize = 65_536;
/// Largest layer object or bootstrap a reader accepts.
const MAX_OBJECT: u64 = 4 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    End = 0,
    Manifest = 1,
    Relied = 2,
    Frame = 3,
    LayerObject = 4,
    Bootstrap = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::End,
            1 => Kind::Manifest,
            2 => Kind::Relied,
            3 => Kind::Frame,
            4 => Kind::LayerObject,
            5 => Kind::Bootstrap,
            _ => return None,
        })
    }
}

/// What a bundle holds and relies on: its first record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// The store format of its objects.
    pub format_version: u32,
    pub chunker: ChunkerParams,
    /// Seconds since the epoch.
    pub created: u64,
    pub images: Vec<BundleImage>,
    /// The images whose chunks the receiver is expected to hold (name, image id hex), as the
    /// sender knew them: `--have` images, a dictionary's images, earlier bundles' images.
    pub relies_on: Vec<(String, String)>,
    /// Whole layers the receiver holds (diff_id hex, the sender's layer object id hex): their
    /// layer objects are not carried; the receiver uses its own object for that diff_id.
    pub relied_layers: Vec<(String, String)>,
    pub relied_chunks: u64,
    pub relied_bytes: u64,
    /// Chunk data it carries: frames, the chunks in them and their bytes (decoded).
    pub frames: u64,
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// Layer objects and bootstraps, and their bytes.
    pub objects: u64,
    pub object_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleImage {
    pub name: String,
    /// The image id in the sending store, hex (the receiver's differs when its blobs do).
    pub id: String,
    pub reference: String,
    pub platform: Option<Platform>,
    pub layers: u64,
    pub files: u64,
    /// Bytes of its layers' tars.
    pub logical_bytes: u64,
    /// Its layers' diff_ids (hex), bottom first.
    pub diff_ids: Vec<String>,
}

/// A frame of chunk data, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRecord {
    pub codec: Codec,
    pub frame_len: u32,
    pub parts: Vec<FramePart>,
    pub stored: Vec<u8>,
}

const PART_LEN: usize = 40;

fn codec_byte(codec: Codec) -> u8 {
    match codec {
        Codec::Raw => 0,
        Codec::Zstd => 1,
        Codec::Delta => 2,
    }
}

fn codec_of(b: u8) -> Option<Codec> {
    Some(match b {
        0 => Codec::Raw,
        1 => Codec::Zstd,
        2 => Codec::Delta,
        _ => return None,
    })
}

/// Writes a bundle, hashing every byte.
pub struct BundleWriter<W: Write> {
    out: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> BundleWriter<W> {
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut head = Vec::with_capacity(HEADER_LEN as usize);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        out.write_all(&head)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head);
        Ok(BundleWriter {
            out,
            hasher,
            written: HEADER_LEN,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn record_head(&mut self, kind: Kind, len: u64) -> std::io::Result<()> {
        let mut head = [0u8; 9];
        head[0] = kind as u8;
        head[1..].copy_from_slice(&len.to_le_bytes());
        self.put(&head)
    }

    pub fn manifest(&mut self, manifest: &BundleManifest) -> std::io::Result<()> {
        let body = bincode::serde::encode_to_vec(manifest, bincode::config::standard())
            .map_err(std::io::Error::other)?;
        self.record_head(Kind::Manifest, body.len() as u64)?;
        self.put(&body)
    }

    /// One record of relied chunks (at most `RELIED_PER_RECORD`): id and size each.
    pub fn relied(&mut self, chunks: &[(ChunkId, u32)]) -> std::io::Result<()> {
        self.record_head(Kind::Relied, chunks.len() as u64 * 36)?;
        let mut body = Vec::with_capacity(chunks.len() * 36);
        for (id, len) in chunks {
            body.extend_from_slice(&id.0);
            body.extend_from_slice(&len.to_le_bytes());
        }
        self.put(&body)
    }

    pub fn frame(&mut self, frame: &FrameRecord) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(9 + frame.parts.len() * PART_LEN);
        head.push(codec_byte(frame.codec));
        head.extend_from_slice(&frame.frame_len.to_le_bytes());
        head.extend_from_slice(&(frame.parts.len() as u32).to_le_bytes());
        for part in &frame.parts {
            head.extend_from_slice(&part.id.0);
            head.extend_from_slice(&part.skip.to_le_bytes());
            head.extend_from_slice(&part.len.to_le_bytes());
        }
        self.record_head(Kind::Frame, (head.len() + frame.stored.len()) as u64)?;
        self.put(&head)?;
        self.put(&frame.stored)
    }

    /// A layer object or bootstrap file: its 32-byte id, then its bytes copied from `file`.
    pub fn object(
        &mut self,
        kind: Kind,
        id: &[u8; 32],
        file: &mut dyn Read,
        len: u64,
    ) -> std::io::Result<()> {
        self.record_head(kind, 32 + len)?;
        self.put(id)?;
        let mut piece = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = file.read(&mut piece[..(left.min(1 << 20)) as usize])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank",
                ));
            }
            self.put(&piece[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// The end record; returns the bundle's checksum and size.
    pub fn finish(mut self) -> std::io::Result<(blake3::Hash, u64)> {
        self.record_head(Kind::End, 32)?;
        let sum = self.hasher.finalize();
        self.out.write_all(sum.as_bytes())?;
        self.written += 32;
        self.out.flush()?;
        Ok((sum, self.written))
    }
}

/// Reads a bundle record by record, hashing every byte; `next` after the end record checks the
/// checksum.
pub struct BundleReader<R: Read> {
    input: R,
    hasher: blake3::Hasher,
    offset: u64,
    what: String,
}

/// A record's kind, length and where it starts.
#[derive(Clone, Copy, Debug)]
pub struct RecordHead {
    pub kind: Kind,
    pub len: u64,
    pub offset: u64,
}

impl<R: Read> BundleReader<R> {
    /// Checks the header; `what` names the bundle in errors.
    pub fn new(mut input: R, what: &str) -> Result<Self> {
        let mut head = [0u8; HEADER_LEN as usize];
        input
            .read_exact(&mut head)
            .map_err(|e| Error::bad_input(what.to_string(), format!("not a cairn bundle ({e})")))?;
        if &head[..8] != MAGIC {
            return Err(Error::bad_input(
                what.to_string(),
                "not a cairn bundle (no CAIRNBDL magic)",
            ));
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4"));
        let flags = u32::from_le_bytes(head[12..16].try_into().expect("4"));
        if version != VERSION || flags != 0 {
            return Err(Error::bad_input(
                what.to_string(),
                format!(
                    "bundle version {version} (flags {flags}); this cairn reads version {VERSION}"
                ),
            ));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head);
        Ok(BundleReader {
            input,
            hasher,
            offset: HEADER_LEN,
            what: what.to_string(),
        })
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn bad(&self, at: u64, detail: impl Into<String>) -> Error {
        Error::bad_input(format!("{} at byte {at}", self.what), detail.into())
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        let at = self.offset;
        self.input
            .read_exact(buf)
            .map_err(|e| self.bad(at, format!("truncated ({e})")))?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// The next record's head; for the end record, the checksum is checked here and `None`
    /// returned.
    pub fn next_head(&mut self) -> Result<Option<RecordHead>> {
        let at = self.offset;
        let mut head = [0u8; 9];
        self.take(&mut head)?;
        let kind = Kind::from_byte(head[0])
            .ok_or_else(|| self.bad(at, format!("unknown record kind {}", head[0])))?;
        let len = u64::from_le_bytes(head[1..].try_into().expect("8"));
        let bound = match kind {
            Kind::End => 32,
            Kind::Manifest | Kind::Relied => MAX_LIST,
            Kind::Frame => 9 + (crate::format::MAX_FRAME_LEN as u64 + 1024) * 2,
            Kind::LayerObject | Kind::Bootstrap => MAX_OBJECT,
        };
        if len > bound || (kind == Kind::End && len != 32) {
            return Err(self.bad(at, format!("record of {len} bytes is over its limit")));
        }
        if kind == Kind::End {
            let expected = self.hasher.finalize();
            let mut sum = [0u8; 32];
            self.input
                .read_exact(&mut sum)
                .map_err(|e| self.bad(at, format!("truncated checksum ({e})")))?;
            if &sum != expected.as_bytes() {
                return Err(self.bad(at, "checksum mismatch: the bundle is damaged"));
            }
            self.offset += 32;
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra).is_ok_and(|n| n > 0) {
                return Err(self.bad(at + 32, "bytes after the end record"));
            }
            return Ok(None);
        }
        Ok(Some(RecordHead {
            kind,
            len,
            offset: at,
        }))
    }

    /// A record's whole body (only for bounded kinds). Memory grows with the bytes that
    /// arrive, not with the length the record claims.
    pub fn body(&mut self, head: &RecordHead) -> Result<Vec<u8>> {
        let at = self.offset;
        let mut body = Vec::new();
        (&mut self.input)
            .take(head.len)
            .read_to_end(&mut body)
            .map_err(|e| self.bad(at, format!("truncated ({e})")))?;
        if body.len() as u64 != head.len {
            let detail = format!("truncated ({} of {} bytes)", body.len(), head.len);
            return Err(self.bad(at, detail));
        }
        self.hasher.update(&body);
        self.offset += head.len;
        Ok(body)
    }

    pub fn manifest(&mut self, head: &RecordHead) -> Result<BundleManifest> {
        let body = self.body(head)?;
        let (manifest, used): (BundleManifest, usize) =
            // The limit bounds what a length prefix may make the decoder allocate before the
            // bytes it claims are read (without one, a huge prefix overflows the allocator).
            bincode::serde::decode_from_slice(
                &body,
                bincode::config::standard().with_limit::<{ MAX_LIST as usize }>(),
            )
            .map_err(|e| self.bad(head.offset, format!("manifest: {e}")))?;
        if used != body.len() {
            return Err(self.bad(head.offset, "manifest has trailing bytes"));
        }
        // The layer count limit a convert holds images to (`oci::limits`).
        use crate::oci::limits::MAX_LAYERS;
        for image in &manifest.images {
            let layers = (image.layers as usize).max(image.diff_ids.len());
            if layers > MAX_LAYERS {
                let detail = format!(
                    "image {:?} lists {layers} layers, over the layer count limit of {MAX_LAYERS}",
                    image.name
                );
                return Err(self.bad(head.offset, detail));
            }
        }
        Ok(manifest)
    }

    pub fn relied(&mut self, head: &RecordHead) -> Result<Vec<(ChunkId, u32)>> {
        if !head.len.is_multiple_of(36) {
            return Err(self.bad(head.offset, "relied chunks record of a wrong length"));
        }
        let body = self.body(head)?;
        Ok(body
            .chunks_exact(36)
            .map(|c| {
                let id = ChunkId(c[..32].try_into().expect("32"));
                (id, u32::from_le_bytes(c[32..].try_into().expect("4")))
            })
            .collect())
    }

    pub fn frame(&mut self, head: &RecordHead) -> Result<FrameRecord> {
        let body = self.body(head)?;
        let bad = |detail: &str| self.bad(head.offset, format!("frame: {detail}"));
        if body.len() < 9 {
            return Err(bad("too short"));
        }
        let codec = codec_of(body[0]).ok_or_else(|| bad("unknown codec"))?;
        let frame_len = u32::from_le_bytes(body[1..5].try_into().expect("4"));
        let count = u32::from_le_bytes(body[5..9].try_into().expect("4")) as usize;
        let parts_end = count
            .checked_mul(PART_LEN)
            .and_then(|n| n.checked_add(9))
            .filter(|&end| end <= body.len() && count > 0)
            .ok_or_else(|| bad("wrong part count"))?;
        let parts = body[9..parts_end]
            .chunks_exact(PART_LEN)
            .map(|p| FramePart {
                id: ChunkId(p[..32].try_into().expect("32")),
                skip: u32::from_le_bytes(p[32..36].try_into().expect("4")),
                len: u32::from_le_bytes(p[36..40].try_into().expect("4")),
            })
            .collect();
        Ok(FrameRecord {
            codec,
            frame_len,
            parts,
            stored: body[parts_end..].to_vec(),
        })
    }

    /// An object record's id, then its bytes copied to `out`.
    pub fn object(&mut self, head: &RecordHead, out: &mut dyn Write) -> Result<[u8; 32]> {
        if head.len < 32 {
            return Err(self.bad(head.offset, "object record too short"));
        }
        let mut id = [0u8; 32];
        self.take(&mut id)?;
        let mut left = head.len - 32;
        let mut piece = vec![0u8; 1 << 20];
        while left > 0 {
            let n = left.min(piece.len() as u64) as usize;
            self.take(&mut piece[..n])?;
            out.write_all(&piece[..n])
                .map_err(|e| self.bad(head.offset, format!("writing it out: {e}")))?;
            left -= n as u64;
        }
        Ok(id)
    }

    /// Skips a record's body (hashing it).
    pub fn skip(&mut self, head: &RecordHead) -> Result<()> {
        self.object_skip(head.len)
    }

    fn object_skip(&mut self, mut left: u64) -> Result<()> {
        let mut piece = vec![0u8; 1 << 20];
        while left > 0 {
            let n = left.min(piece.len() as u64) as usize;
            self.take(&mut piece[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest whose string length prefix claims 2^62 bytes: refused as an error, never
    /// an allocation of what the prefix claims (found by the bundle_records fuzz target).
    #[test]
    fn a_length_prefix_past_the_record_is_an_error() {
        let manifest = BundleManifest {
            relies_on: vec![("x".into(), "y".into())],
            ..BundleManifest::default()
        };
        let good = bincode::serde::encode_to_vec(&manifest, bincode::config::standard()).unwrap();
        let at = good.windows(2).position(|w| w == [1, b'x']).unwrap();
        let mut body = good[..at].to_vec();
        body.push(0xFD);
        body.extend_from_slice(&(1u64 << 62).to_le_bytes());
        body.extend_from_slice(&good[at + 1..]);
        let mut writer = BundleWriter::new(Vec::new()).unwrap();
        writer
            .record_head(Kind::Manifest, body.len() as u64)
            .unwrap();
        writer.put(&body).unwrap();
        let file = writer.out;
        let mut reader = BundleReader::new(&file[..], "crafted.cairn").unwrap();
        let head = reader.next_head().unwrap().unwrap();
        let err = reader.manifest(&head).unwrap_err().to_string();
        assert!(
            err.contains("crafted.cairn") && err.contains("manifest"),
            "{err}"
        );
    }
}
