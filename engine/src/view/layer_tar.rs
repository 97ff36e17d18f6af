//! A layer's exact tar re-created from its layer metadata object: each entry's `raw_header`,
//! then its chunks, then the layer's trailer (docs/FORMAT.md). The entries are streamed one
//! block at a time (`LayerMeta::entries`) and cut into windows of about `WINDOW_BYTES`, so
//! memory holds two windows (the one being written, the one being decoded), whatever the
//! layer's size or entry count.

use super::ChunkReader;
use crate::error::{Error, Result};
use crate::format::bootstrap::{BlobRecord, ChunkRecord};
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::DigestWriter;
use crate::progress::Progress;
use crate::Sha256Digest;
use std::io::Write;
use std::path::Path;

/// Tar bytes (headers and content) decoded ahead of the writer, and held in memory, per window.
const WINDOW_BYTES: u64 = 4 << 20;

/// One piece of a layer's tar: bytes the layer object holds, or a chunk to decode.
enum Piece {
    Bytes(Vec<u8>),
    Chunk(ChunkRecord),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Chunk(c) => c.slice.len as u64,
        }
    }
}

/// The pieces of a layer's entries in tar order (not the trailer).
struct Pieces<I> {
    entries: I,
    chunks: std::vec::IntoIter<ChunkRecord>,
}

impl<I: Iterator<Item = Result<LayerEntry>>> Iterator for Pieces<I> {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(chunk) = self.chunks.next() {
            return Some(Ok(Piece::Chunk(chunk)));
        }
        let entry = match self.entries.next()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        self.chunks = entry.chunks.into_iter();
        Some(Ok(Piece::Bytes(entry.raw_header)))
    }
}

/// The next pieces, up to about `WINDOW_BYTES` (empty at the end).
fn next_window(pieces: &mut impl Iterator<Item = Result<Piece>>) -> Result<Vec<Piece>> {
    let mut window = Vec::new();
    let mut bytes = 0;
    while bytes < WINDOW_BYTES {
        let Some(piece) = pieces.next().transpose()? else {
            break;
        };
        // Empty headers cannot occur (every entry has its header block), but a window must
        // always make progress, so count at least one byte per piece.
        bytes += piece.len().max(1);
        window.push(piece);
    }
    Ok(window)
}

/// A window's bytes, in order: chunks decoded (and checked), header bytes passed through.
fn decode(
    reader: &ChunkReader,
    blobs: &[BlobRecord],
    window: Vec<Piece>,
    parallel: bool,
) -> Result<Vec<Vec<u8>>> {
    let chunks: Vec<ChunkRecord> = window
        .iter()
        .filter_map(|p| match p {
            Piece::Chunk(c) => Some(*c),
            Piece::Bytes(_) => None,
        })
        .collect();
    let mut decoded = reader.read_chunks(&chunks, blobs, parallel)?.into_iter();
    window
        .into_iter()
        .map(|piece| match piece {
            Piece::Bytes(b) => Ok(b),
            Piece::Chunk(c) => decoded.next().ok_or_else(|| {
                Error::corrupt(format!("chunk {}", c.id), "internal: window out of step")
            }),
        })
        .collect()
}

/// What `write_layer_tar` writes and checks: the layer object, the diff_id the image says it
/// has, and how errors name it (the image and layer).
pub(crate) struct LayerTar<'a> {
    pub meta: &'a LayerMeta,
    pub diff_id: Sha256Digest,
    pub label: &'a str,
}

/// Writes a layer's exact tar to `out` and returns its diff_id. The bytes are hashed on their
/// way out and must come to the layer's size and diff_id, else the error names the layer;
/// `out` has then received a wrong tar and the caller must discard it. `dest` names the
/// output in write errors. Only `inc`s `progress`.
pub(crate) fn write_layer_tar(
    reader: &mut ChunkReader,
    layer: &LayerTar,
    out: &mut dyn Write,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<Sha256Digest> {
    let write_err = |e: std::io::Error| Error::io("write output", dest, e);
    let meta = layer.meta;
    let blobs = meta.blobs();
    reader.open_blobs(blobs)?;
    let mut hashing = DigestWriter::new(out);
    // While this thread hashes and writes one window, a second thread decodes (and verifies)
    // the next one's chunks, with rayon's help unless this thread is itself one of rayon's
    // workers (export compresses layers in parallel): a worker blocked here must not wait for
    // pool work, or the pool could deadlock with every worker waiting.
    let parallel = rayon::current_thread_index().is_none();
    let shared = &*reader;
    let mut pieces = Pieces {
        entries: meta.entries(),
        chunks: Vec::new().into_iter(),
    };
    let mut written = 0u64;
    std::thread::scope(|scope| -> Result<()> {
        let spawn = |window: Vec<Piece>| {
            (!window.is_empty())
                .then(|| scope.spawn(move || decode(shared, blobs, window, parallel)))
        };
        let mut pending = spawn(next_window(&mut pieces)?);
        while let Some(handle) = pending.take() {
            let window = handle.join().expect("chunk decoder panicked")?;
            pending = spawn(next_window(&mut pieces)?);
            for bytes in window {
                hashing.write_all(&bytes).map_err(write_err)?;
                written += bytes.len() as u64;
                progress.inc(bytes.len() as u64);
            }
        }
        Ok(())
    })?;
    let info = meta.info();
    hashing.write_all(&info.source.trailer).map_err(write_err)?;
    written += info.source.trailer.len() as u64;
    progress.inc(info.source.trailer.len() as u64);
    let (actual, _, out) = hashing.finish();
    out.flush().map_err(write_err)?;
    if actual != layer.diff_id {
        return Err(Error::DigestMismatch {
            object: format!("{} as re-created", layer.label),
            expected: layer.diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    if written != info.source.size {
        return Err(Error::corrupt(
            layer.label,
            format!(
                "re-created {written} tar bytes, the layer has {}",
                info.source.size
            ),
        ));
    }
    Ok(actual)
}
