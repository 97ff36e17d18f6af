//! Data blobs: immutable files of stored chunks followed by a table of contents (ToC).
//!
//! ```text
//! header   "CAIRNBLB" | version u32 LE | compressed_with u32     (16 bytes)
//! frames   stored frames, back to back: each one zstd frame (or raw bytes) holding one chunk
//!          or several small chunks, in the order they were written
//! ToC      per chunk: id [32] | frame offset u64 | frame stored_len u32 | frame_len u32 |
//!          skip u32 | len u32 | codec u8                                         (57 bytes)
//! footer   toc_offset u64 | chunk_count u64 | BLAKE3(ToC) [32] | "CAIRNEND"      (56 bytes)
//! ```
//! `compressed_with` records how the writer compressed the blob's frames (`CompressedWith`):
//! zstd level in the low byte, frame size in KiB above it; 0 when not recorded (blobs written
//! before it was, and blobs whose frames were copied from elsewhere). `optimize` reads it.
//! All integers little-endian. The blob id is the BLAKE3 of the whole file. The ToC lets the
//! chunk index be rebuilt from the blobs alone. A blob is written once into `STORE/tmp/`, sealed
//! (ToC, footer, fsync) and only then renamed into `STORE/blobs/<id>`; it is never appended to.

use super::{BaseSource, ChunkLocation, Codec, FrameSlice};
use crate::error::{Error, IoContext, Result};
use crate::{BlobId, ChunkId};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CAIRNBLB";
const END_MAGIC: &[u8; 8] = b"CAIRNEND";
pub const BLOB_VERSION: u32 = 2;
pub const HEADER_LEN: u64 = 16;
pub const TOC_ENTRY_LEN: u64 = 57;
pub const FOOTER_LEN: u64 = 56;
/// The largest uncompressed chunk any blob may hold (the chunker's hard limit).
pub const MAX_CHUNK_LEN: u32 = 1 << 20;

/// One chunk in a blob's table of contents: its slice of a stored frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TocEntry {
    pub id: ChunkId,
    pub slice: FrameSlice,
}

/// A chunk of a frame being appended: its id, offset in the decoded frame and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramePart {
    pub id: ChunkId,
    pub skip: u32,
    pub len: u32,
}

/// How a blob's frames were compressed, as its header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressedWith {
    /// zstd level, 1 to 22.
    pub level: i32,
    /// The frame size the writer filled frames up to, bytes (a multiple of 1 KiB; 0 when each
    /// chunk is a frame of its own).
    pub frame_size: u32,
}

impl CompressedWith {
    /// The header field: level in the low byte, frame size in KiB above it.
    fn encode(self) -> u32 {
        (self.level.clamp(1, 255) as u32) | ((self.frame_size / 1024) << 8)
    }

    /// `None` for 0 (not recorded).
    fn decode(field: u32) -> Option<CompressedWith> {
        let level = (field & 0xff) as i32;
        (level != 0).then_some(CompressedWith {
            level,
            frame_size: (field >> 8).saturating_mul(1024),
        })
    }
}

/// Appends stored chunks to a new blob under `STORE/tmp/`.
pub struct BlobWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: blake3::Hasher,
    offset: u64,
    toc: Vec<TocEntry>,
    /// Bytes already handed to the kernel's writeback (see `start_writeback`).
    writeback_from: u64,
}

/// Writeback of a blob is started every this many bytes, so that sealing it (fsync) does not
/// wait for the whole file to reach the disk.
const WRITEBACK_STEP: u64 = 8 << 20;

/// A blob that is complete and fsynced, still under its temporary name.
#[derive(Debug)]
pub struct SealedBlob {
    pub id: BlobId,
    pub tmp_path: PathBuf,
    pub size: u64,
    pub toc: Vec<TocEntry>,
}

impl BlobWriter {
    /// A new blob whose header records no compression (its frames come from elsewhere).
    pub fn create(path: PathBuf) -> Result<Self> {
        Self::create_recording(path, None)
    }

    /// A new blob whose header records that its frames were compressed `with` this.
    pub fn create_recording(path: PathBuf, with: Option<CompressedWith>) -> Result<Self> {
        let file = File::create(&path).with_path("create blob", &path)?;
        let mut writer = BlobWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            hasher: blake3::Hasher::new(),
            offset: 0,
            toc: Vec::new(),
            writeback_from: 0,
        };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&BLOB_VERSION.to_le_bytes());
        header.extend_from_slice(&with.map_or(0, CompressedWith::encode).to_le_bytes());
        writer.write(&header)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_path("write blob", &self.path)?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        if self.offset - self.writeback_from >= WRITEBACK_STEP {
            self.start_writeback()?;
        }
        Ok(())
    }

    /// Asks the kernel to start writing what is written so far to disk, without waiting
    /// (Linux `sync_file_range`; elsewhere nothing). Durability still comes from the fsync in
    /// `seal`; this only spreads the disk writes over the convert.
    fn start_writeback(&mut self) -> Result<()> {
        self.out.flush().with_path("write blob", &self.path)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let from = self.writeback_from as libc::off64_t;
            let len = (self.offset - self.writeback_from) as libc::off64_t;
            // SAFETY: a plain syscall on a file descriptor this writer owns; it reads no memory.
            // A failure is harmless (the fsync in `seal` does the work then), so it is ignored.
            #[allow(unsafe_code)]
            unsafe {
                libc::sync_file_range(
                    self.out.get_ref().as_raw_fd(),
                    from,
                    len,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.writeback_from = self.offset;
        Ok(())
    }

    /// Hands the bytes appended so far to the kernel (no fsync), so that another reader of the
    /// file sees them.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_path("write blob", &self.path)
    }

    /// Bytes written so far (the size the blob would have without its ToC and footer).
    // Never empty: the header is written at creation.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Appends one stored frame holding `parts`; returns its offset in the blob.
    pub fn append_frame(
        &mut self,
        codec: Codec,
        stored: &[u8],
        frame_len: u32,
        parts: &[FramePart],
    ) -> Result<u64> {
        let offset = self.offset;
        self.write(stored)?;
        for part in parts {
            self.toc.push(TocEntry {
                id: part.id,
                slice: FrameSlice {
                    offset,
                    stored_len: stored.len() as u32,
                    frame_len,
                    skip: part.skip,
                    len: part.len,
                    codec,
                },
            });
        }
        Ok(offset)
    }

    /// Writes the ToC and footer and fsyncs. The blob id is known only now.
    /// `fail_at` names the fail point checked before the fsync (the caller's write path).
    pub fn seal(mut self, fail_at: &'static str) -> Result<SealedBlob> {
        let toc_offset = self.offset;
        let toc_bytes = encode_toc(&self.toc);
        self.write(&toc_bytes)?;
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&toc_offset.to_le_bytes());
        footer.extend_from_slice(&(self.toc.len() as u64).to_le_bytes());
        footer.extend_from_slice(blake3::hash(&toc_bytes).as_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.write(&footer)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("write blob", &self.path, e.into_error()))?;
        crate::failpoint::check(fail_at)?;
        file.sync_all().with_path("fsync blob", &self.path)?;
        // Held until the commit that indexes it: no growth slack.
        self.toc.shrink_to_fit();
        Ok(SealedBlob {
            id: BlobId(*self.hasher.finalize().as_bytes()),
            tmp_path: self.path,
            size: self.offset,
            toc: self.toc,
        })
    }
}

impl SealedBlob {
    pub fn location(&self, entry: &TocEntry) -> ChunkLocation {
        entry.location(self.id)
    }
}

impl TocEntry {
    pub fn location(&self, blob: BlobId) -> ChunkLocation {
        ChunkLocation {
            blob,
            slice: self.slice,
        }
    }
}

fn encode_toc(toc: &[TocEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(toc.len() * TOC_ENTRY_LEN as usize);
    for TocEntry { id, slice } in toc {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&slice.offset.to_le_bytes());
        out.extend_from_slice(&slice.stored_len.to_le_bytes());
        out.extend_from_slice(&slice.frame_len.to_le_bytes());
        out.extend_from_slice(&slice.skip.to_le_bytes());
        out.extend_from_slice(&slice.len.to_le_bytes());
        out.push(slice.codec as u8);
    }
    out
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
}

/// Where a blob's ToC lies, once its header, footer and ToC checksum have been checked.
#[derive(Clone, Copy, Debug)]
struct TocBounds {
    toc_offset: u64,
    count: u64,
}

/// Checks a whole blob's header, footer and ToC checksum. `object` names the blob in errors.
fn check_toc(bytes: &[u8], object: &str) -> Result<TocBounds> {
    let corrupt = |reason: String| Error::corrupt(object.to_string(), reason);
    let len = bytes.len() as u64;
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(format!("{len} bytes is too short for a blob")));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt("bad magic at offset 0: not a cairn blob".into()));
    }
    let version = le_u32(&bytes[8..12]);
    if version != BLOB_VERSION {
        return Err(corrupt(format!(
            "unsupported blob version {version} at offset 8"
        )));
    }
    let footer = &bytes[(len - FOOTER_LEN) as usize..];
    if &footer[48..56] != END_MAGIC {
        return Err(corrupt(format!(
            "bad footer magic at offset {}",
            len - FOOTER_LEN + 48
        )));
    }
    let toc_offset = le_u64(&footer[0..8]);
    let count = le_u64(&footer[8..16]);
    let toc_end = len - FOOTER_LEN;
    let toc_len = count.checked_mul(TOC_ENTRY_LEN);
    if toc_offset < HEADER_LEN || toc_offset > toc_end || toc_len != Some(toc_end - toc_offset) {
        return Err(corrupt(format!(
            "footer at offset {} names a ToC at {toc_offset} with {count} entries that does not fit",
            len - FOOTER_LEN
        )));
    }
    let toc_bytes = &bytes[toc_offset as usize..toc_end as usize];
    if blake3::hash(toc_bytes).as_bytes() != &footer[16..48] {
        return Err(corrupt(format!(
            "ToC checksum mismatch (ToC at offset {toc_offset})"
        )));
    }
    Ok(TocBounds { toc_offset, count })
}

/// Decodes and checks ToC record `i` of a blob whose ToC `check_toc` accepted.
fn toc_record(bytes: &[u8], bounds: TocBounds, i: u64, object: &str) -> Result<TocEntry> {
    let corrupt = |reason: String| Error::corrupt(object.to_string(), reason);
    let at = (bounds.toc_offset + i * TOC_ENTRY_LEN) as usize;
    let raw = &bytes[at..at + TOC_ENTRY_LEN as usize];
    let id = ChunkId(raw[0..32].try_into().expect("32 bytes"));
    let slice = FrameSlice {
        offset: le_u64(&raw[32..40]),
        stored_len: le_u32(&raw[40..44]),
        frame_len: le_u32(&raw[44..48]),
        skip: le_u32(&raw[48..52]),
        len: le_u32(&raw[52..56]),
        codec: Codec::from_u8(raw[56])
            .ok_or_else(|| corrupt(format!("ToC entry {i}: unknown codec {}", raw[56])))?,
    };
    let end = slice.offset.checked_add(slice.stored_len as u64);
    if slice.offset < HEADER_LEN || end.is_none_or(|end| end > bounds.toc_offset) {
        return Err(corrupt(format!(
            "ToC entry {i} (chunk {id}) points outside the data area: offset {} length {}",
            slice.offset, slice.stored_len
        )));
    }
    if slice.len > MAX_CHUNK_LEN {
        return Err(corrupt(format!(
            "ToC entry {i} (chunk {id}) claims {} bytes, over the {MAX_CHUNK_LEN} limit",
            slice.len
        )));
    }
    slice
        .check()
        .map_err(|e| corrupt(format!("ToC entry {i} (chunk {id}): {e}")))?;
    Ok(TocEntry { id, slice })
}

/// Checks a whole blob's header and footer and decodes its ToC. `object` names the blob in
/// errors. Does not read the chunk data (see `verify` callers for that).
pub fn decode_toc(bytes: &[u8], object: &str) -> Result<Vec<TocEntry>> {
    let bounds = check_toc(bytes, object)?;
    (0..bounds.count)
        .map(|i| toc_record(bytes, bounds, i, object))
        .collect()
}

/// A sealed blob whose ToC has been checked (header, footer, checksum), for reading single
/// ToC records without decoding the whole ToC: what the chunk index points into.
pub struct CheckedToc {
    reader: BlobReader,
    bounds: TocBounds,
    object: String,
}

impl CheckedToc {
    pub fn open(path: &Path, id: BlobId) -> Result<Self> {
        let reader = BlobReader::open(path, id)?;
        let object = format!("blob {id}");
        let bounds = check_toc(reader.bytes(), &object)?;
        Ok(CheckedToc {
            reader,
            bounds,
            object,
        })
    }

    /// ToC record `i`, checked; an error when there is no such record.
    pub fn get(&self, i: u64) -> Result<TocEntry> {
        if i >= self.bounds.count {
            return Err(Error::corrupt(
                self.object.clone(),
                format!("no ToC record {i}: the blob has {}", self.bounds.count),
            ));
        }
        toc_record(self.reader.bytes(), self.bounds, i, &self.object)
    }

    /// The number of the record with this frame offset and skip (records are in write order,
    /// so sorted by both), if any.
    pub fn find(&self, offset: u64, skip: u32) -> Option<u64> {
        let bytes = self.reader.bytes();
        let key = |i: u64| {
            let at = (self.bounds.toc_offset + i * TOC_ENTRY_LEN) as usize;
            (
                le_u64(&bytes[at + 32..at + 40]),
                le_u32(&bytes[at + 48..at + 52]),
            )
        };
        let (mut lo, mut hi) = (0u64, self.bounds.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match key(mid).cmp(&(offset, skip)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// A sealed blob opened for reading: memory-mapped for its table of contents and whole-file
/// scans, while frames are read with `pread` into buffers of their own, so that a reader
/// streaming through gigabytes of frames holds only the frames it decodes (pages touched
/// through a map stay in the resident set: the kernel maps whole large folios on a fault).
pub struct BlobReader {
    id: BlobId,
    file: File,
    path: PathBuf,
    map: memmap2::Mmap,
}

impl BlobReader {
    #[allow(unsafe_code)]
    pub fn open(path: &Path, id: BlobId) -> Result<Self> {
        let file = File::open(path).with_path("open blob", path)?;
        // SAFETY: blobs are immutable once renamed into `blobs/`; cairn never writes to a sealed
        // blob, and a blob is only deleted by gc under the writer lock.
        let map = unsafe { memmap2::Mmap::map(&file) }.with_path("map blob", path)?;
        Ok(BlobReader {
            id,
            file,
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn id(&self) -> BlobId {
        self.id
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// How the writer compressed the blob's frames, if its header records it.
    pub fn compressed_with(&self) -> Option<CompressedWith> {
        let field = self.map.get(12..16)?;
        CompressedWith::decode(u32::from_le_bytes(field.try_into().ok()?))
    }

    /// Reads and decodes the frame a location names (not yet checked against any chunk id).
    /// `bases` gives the bases of a delta frame.
    pub fn read_frame(&self, location: &ChunkLocation, bases: &dyn BaseSource) -> Result<Vec<u8>> {
        let object = || format!("blob {} offset {}", self.id, location.slice.offset);
        let stored = self.read_stored(location)?;
        super::decode_frame(
            &stored,
            location.slice.frame_len,
            location.slice.codec,
            object,
            bases,
        )
    }

    /// The stored bytes of the frame at `location`, as they are in the blob (not decoded).
    pub fn read_stored(&self, location: &ChunkLocation) -> Result<Vec<u8>> {
        let object = || format!("blob {} offset {}", self.id, location.slice.offset);
        location.check().map_err(|e| Error::corrupt(object(), e))?;
        let start = location.slice.offset;
        let end = start.checked_add(location.slice.stored_len as u64);
        let data_end = (self.map.len() as u64).saturating_sub(FOOTER_LEN);
        let Some(end) = end.filter(|&end| start >= HEADER_LEN && end <= data_end) else {
            return Err(Error::corrupt(
                object(),
                format!(
                    "frame of {} stored bytes lies outside the blob ({} bytes)",
                    location.slice.stored_len,
                    self.map.len()
                ),
            ));
        };
        let mut stored = vec![0; (end - start) as usize];
        self.file
            .read_exact_at(&mut stored, start)
            .with_path("read blob", &self.path)?;
        Ok(stored)
    }

    /// The header of the delta frame at `location` (which must be one): its bases.
    pub fn delta_header(&self, location: &ChunkLocation) -> Result<super::delta::DeltaHeader> {
        let object = || format!("blob {} offset {}", self.id, location.slice.offset);
        if location.slice.codec != Codec::Delta {
            return Err(Error::corrupt(object(), "not a delta frame"));
        }
        let max = 6 + 32 * super::delta::MAX_BASES as u64;
        let len = (location.slice.stored_len as u64).min(max);
        let end = location.slice.offset.saturating_add(len);
        if location.slice.offset < HEADER_LEN
            || end > (self.map.len() as u64).saturating_sub(FOOTER_LEN)
        {
            return Err(Error::corrupt(
                object(),
                "delta frame lies outside the blob",
            ));
        }
        let mut head = vec![0; len as usize];
        self.file
            .read_exact_at(&mut head, location.slice.offset)
            .with_path("read blob", &self.path)?;
        super::delta::DeltaHeader::decode(&head)
            .map(|(header, _)| header)
            .map_err(|e| Error::corrupt(object(), e))
    }

    /// Reads and verifies one chunk (decoding its whole frame).
    #[cfg(test)]
    pub fn read_chunk(&self, id: &ChunkId, location: &ChunkLocation) -> Result<Vec<u8>> {
        let frame = self.read_frame(location, &super::NoBases)?;
        let object = || format!("blob {} offset {}", self.id, location.slice.offset);
        super::chunk_from_frame(id, &frame, location.slice.skip, location.slice.len, object)
            .map(<[u8]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_records_how_frames_were_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let with = CompressedWith {
            level: 18,
            frame_size: 1 << 20,
        };
        for (name, recorded) in [("a", Some(with)), ("b", None)] {
            let writer = BlobWriter::create_recording(dir.path().join(name), recorded).unwrap();
            let sealed = writer.seal("gc.compact.blob_fsync").unwrap();
            let reader = BlobReader::open(&sealed.tmp_path, sealed.id).unwrap();
            assert_eq!(reader.compressed_with(), recorded);
        }
        assert_eq!(CompressedWith::decode(with.encode()), Some(with));
        assert_eq!(CompressedWith::decode(0), None);
    }

    #[test]
    fn write_seal_decode_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = BlobWriter::create(dir.path().join("b")).unwrap();
        let data = b"hello hello hello hello hello hello".to_vec();
        let id = ChunkId::of(&data);
        let stored = zstd::bulk::compress(&data, 3).unwrap();
        let part = |id, skip, len| FramePart { id, skip, len };
        writer
            .append_frame(
                Codec::Zstd,
                &stored,
                data.len() as u32,
                &[part(id, 0, data.len() as u32)],
            )
            .unwrap();
        // A raw frame of two chunks.
        let raw = b"rawpair".to_vec();
        let raw_id = ChunkId::of(&raw[..3]);
        let pair_id = ChunkId::of(&raw[3..]);
        writer
            .append_frame(
                Codec::Raw,
                &raw,
                7,
                &[part(raw_id, 0, 3), part(pair_id, 3, 4)],
            )
            .unwrap();
        let sealed = writer.seal("convert.blob.fsync").unwrap();
        let bytes = std::fs::read(&sealed.tmp_path).unwrap();
        assert_eq!(sealed.id.0, *blake3::hash(&bytes).as_bytes());
        let toc = decode_toc(&bytes, "b").unwrap();
        assert_eq!(toc, sealed.toc);
        let reader = BlobReader::open(&sealed.tmp_path, sealed.id).unwrap();
        assert_eq!(
            reader.read_chunk(&id, &sealed.location(&toc[0])).unwrap(),
            data
        );
        assert_eq!(
            reader
                .read_chunk(&raw_id, &sealed.location(&toc[1]))
                .unwrap(),
            b"raw"
        );
        assert_eq!(
            reader
                .read_chunk(&pair_id, &sealed.location(&toc[2]))
                .unwrap(),
            b"pair"
        );
        assert_eq!(toc[1].slice.offset, toc[2].slice.offset);
        // A location pointing at the wrong bytes fails the id check.
        let wrong = sealed.location(&toc[1]);
        assert!(reader.read_chunk(&id, &wrong).is_err());
    }

    #[test]
    fn damaged_footer_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let writer = BlobWriter::create(dir.path().join("b")).unwrap();
        let sealed = writer.seal("convert.blob.fsync").unwrap();
        let mut bytes = std::fs::read(&sealed.tmp_path).unwrap();
        let n = bytes.len();
        bytes[n - 30] ^= 1; // inside the ToC checksum
        assert!(decode_toc(&bytes, "b").is_err());
        assert!(decode_toc(&bytes[..10], "b").is_err());
    }
}
