//! The last two stages of new data, as cairn's blob builder and blob writer do them
//! (`engine/src/ops/blob_builder.rs`, `engine/src/format/blob.rs`):
//!
//! - stage 5: each layer's new chunks, in order, joined into frames of up to the store's
//!   `frame_size` (a larger chunk is a frame of its own) and each frame compressed by zstd at
//!   the store's level with one reused `zstd::bulk::Compressor`, kept raw when that is not
//!   smaller. The stored frames go to a spill file for stage 6; that write is not measured.
//! - stage 6: the stored frames appended to blob files through a 1 MiB `BufWriter`, hashed
//!   with BLAKE3 as written (the blob id), writeback started every 8 MiB, a new blob past
//!   256 MiB, each blob fsynced. The ToC (57 bytes a chunk) and footer are left out.
//!
//! Delta frames (a new chunk compressed against an older version of its file) are not
//! modelled: in a convert into an empty store only files that an earlier layer of the same
//! image also has can get one.

use super::clock::{timed, Mark, Span};
use super::layer_tar::LayerTar;
use super::stages::ChunkPlace;
use super::sys;
use super::window::Window;
use anyhow::{Context, Result};
use cairn_engine::CompressionParams;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// As cairn's blob builder: a blob is sealed and a new one started past this size.
const BLOB_SPLIT_BYTES: u64 = 256 << 20;
/// As cairn's blob writer: writeback is started every this many bytes.
const WRITEBACK_STEP: u64 = 8 << 20;
/// cairn's blob header: magic, version, reserved.
const HEADER_LEN: usize = 16;

/// What stage 5 produced: the stored frames, back to back in `spill`.
pub struct Compressed {
    pub spill: PathBuf,
    /// Stored length of each frame, per layer.
    pub frames: Vec<Vec<u32>>,
    /// Bytes of the new chunks (uncompressed) and of the stored frames.
    pub new_bytes: u64,
    pub stored_bytes: u64,
}

/// Stage 5 over the new chunks `new` (indexes into `chunks`) of each layer.
pub fn compress(
    tars: &[LayerTar],
    chunks: &[Vec<ChunkPlace>],
    new: &[Vec<usize>],
    params: &CompressionParams,
    spill: &Path,
) -> Result<(Span, Compressed)> {
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(spill).with_context(|| format!("create {}", spill.display()))?,
    );
    let mut result = Compressed {
        spill: spill.to_path_buf(),
        frames: Vec::with_capacity(tars.len()),
        new_bytes: 0,
        stored_bytes: 0,
    };
    let frame_size = params.frame_size as usize;
    let mut compressor = zstd::bulk::Compressor::new(params.level).context("zstd compressor")?;
    let (mut spent, mut excluded) = (Span::default(), Span::default());
    for ((tar, chunks), new) in tars.iter().zip(chunks).zip(new) {
        let mut window = Window::whole(&tar.path)?;
        let mark = Mark::now();
        let mut frames = Vec::new();
        let mut frame: Vec<u8> = Vec::with_capacity(frame_size);
        let mut seal = |frame: &mut Vec<u8>| -> Result<()> {
            let compressed = compressor.compress(frame).context("zstd compression")?;
            let stored = if compressed.len() < frame.len() {
                &compressed[..]
            } else {
                &frame[..]
            };
            timed(&mut excluded, || out.write_all(stored))
                .with_context(|| format!("write {}", spill.display()))?;
            frames.push(stored.len() as u32);
            result.stored_bytes += stored.len() as u64;
            frame.clear();
            Ok(())
        };
        for &i in new {
            let (offset, len) = chunks[i];
            // The blob builder's rule: a chunk that would overflow the open frame closes it;
            // a frame that reaches `frame_size` is closed.
            if !frame.is_empty() && frame.len() + len as usize > frame_size {
                seal(&mut frame)?;
            }
            frame.extend_from_slice(window.get(offset, len as usize)?);
            result.new_bytes += len as u64;
            if frame.len() >= frame_size {
                seal(&mut frame)?;
            }
        }
        if !frame.is_empty() {
            seal(&mut frame)?;
        }
        spent.add(mark.elapsed().minus(window.excluded()));
        result.frames.push(frames);
    }
    out.flush()
        .with_context(|| format!("write {}", spill.display()))?;
    Ok((spent.minus(excluded), result))
}

/// A blob file being written as cairn's blob writer writes one.
struct Blob {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: blake3::Hasher,
    written: u64,
    writeback_from: u64,
}

impl Blob {
    fn create(path: PathBuf) -> Result<Blob> {
        let file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
        let mut blob = Blob {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            written: 0,
            writeback_from: 0,
        };
        blob.write(&[0u8; HEADER_LEN])?;
        Ok(blob)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_context(|| format!("write {}", self.path.display()))?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        if self.written - self.writeback_from >= WRITEBACK_STEP {
            self.out
                .flush()
                .with_context(|| format!("write {}", self.path.display()))?;
            let from = self.writeback_from;
            sys::start_writeback(self.out.get_ref(), from, self.written - from);
            self.writeback_from = self.written;
        }
        Ok(())
    }

    /// Flushes and fsyncs; returns the blob id's hash (computed as cairn computes it).
    fn seal(self) -> Result<blake3::Hash> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("write {}", self.path.display()))?;
        file.sync_all()
            .with_context(|| format!("fsync {}", self.path.display()))?;
        Ok(self.hasher.finalize())
    }
}

/// Stage 6: the stored frames of each layer written into its own blobs under `dir` (removed
/// afterwards, unmeasured).
pub fn write_blobs(compressed: &Compressed, dir: &Path) -> Result<Span> {
    let mut window = Window::whole(&compressed.spill)?;
    let mut offset = 0u64;
    let mut paths = Vec::new();
    let mark = Mark::now();
    for (layer, frames) in compressed.frames.iter().enumerate() {
        let mut blob: Option<Blob> = None;
        for &len in frames {
            if blob.as_ref().is_some_and(|b| b.written >= BLOB_SPLIT_BYTES) {
                blob.take().map(Blob::seal).transpose()?;
            }
            let out = match &mut blob {
                Some(b) => b,
                None => {
                    let path = dir.join(format!("blob-{layer}-{}", paths.len()));
                    paths.push(path.clone());
                    blob.insert(Blob::create(path)?)
                }
            };
            out.write(window.get(offset, len as usize)?)?;
            offset += len as u64;
        }
        blob.map(Blob::seal).transpose()?;
    }
    let spent = mark.elapsed().minus(window.excluded());
    for path in paths {
        std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    }
    Ok(spent)
}
