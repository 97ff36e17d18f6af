//! The stages a byte of new data goes through in a convert, each run alone over the whole
//! image, one layer after another, on this thread: decode, sha256 of the blob (digest) and of
//! the tar (diff_id), FastCDC, BLAKE3. Each returns the span it took, its input loads
//! excluded (`window.rs`), and what the next stage needs. The compressing and writing stages
//! are in `frames.rs`.

use super::clock::{Mark, Span};
use super::layer_tar::LayerTar;
use super::window::{Window, WINDOW};
use crate::harness::image::Layer;
use anyhow::{bail, Context, Result};
use cairn_engine::{ChunkId, Chunker, ChunkerParams, Sha256Digest};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;

/// Where a chunk lies in its layer's tar: offset and length.
pub type ChunkPlace = (u64, u32);

/// Stage 1: each layer's blob decoded with the decoder cairn's convert uses
/// (`Compression::decoder`: flate2's zlib-rs backend for gzip, the zstd crate; behind the same
/// 256 KiB buffers), its output read into a buffer and dropped. Reading the blob from the page
/// cache is part of it, as in a convert. Returns each layer's span (decoding one layer is
/// serial, which bounds the convert of known content: `report.rs`).
pub fn decode(layers: &[Layer]) -> Result<Vec<Span>> {
    let mut buf = vec![0u8; 1 << 20];
    layers
        .iter()
        .map(|layer| {
            let mark = Mark::now();
            let mut tar = layer.open_tar()?;
            loop {
                let n = tar
                    .read(&mut buf)
                    .with_context(|| format!("decode layer {}", layer.name()))?;
                if n == 0 {
                    break;
                }
            }
            Ok(mark.elapsed())
        })
        .collect()
}

/// sha256 of `window`'s whole range, and the span it took (loads excluded).
fn sha256(window: &mut Window) -> Result<(Sha256Digest, Span)> {
    let mark = Mark::now();
    let mut hasher = Sha256::new();
    let mut pos = 0;
    while pos < window.len() {
        let n = (window.len() - pos).min(WINDOW as u64) as usize;
        hasher.update(window.get(pos, n)?);
        pos += n as u64;
    }
    let digest = Sha256Digest(hasher.finalize().into());
    Ok((digest, mark.elapsed().minus(window.excluded())))
}

/// Stage 2a: sha256 of each layer's stored bytes (the digest a convert checks).
pub fn sha256_blobs(layers: &[Layer]) -> Result<Span> {
    let mut spent = Span::default();
    for layer in layers {
        let (digest, span) = sha256(&mut Window::open(&layer.path, layer.offset, layer.len)?)?;
        spent.add(span);
        if layer.digest.is_some_and(|d| d != digest) {
            bail!("layer {}: the stored bytes hash to {digest}", layer.name());
        }
    }
    Ok(spent)
}

/// Stage 2b: sha256 of each layer's tar (the diff_id a convert checks).
pub fn sha256_tars(layers: &[Layer], tars: &[LayerTar]) -> Result<Span> {
    let mut spent = Span::default();
    for (layer, tar) in layers.iter().zip(tars) {
        let (diff_id, span) = sha256(&mut Window::whole(&tar.path)?)?;
        spent.add(span);
        if layer.diff_id.is_some_and(|d| d != diff_id) {
            bail!("layer {}: the tar hashes to {diff_id}", layer.name());
        }
    }
    Ok(spent)
}

/// Stage 3: every regular file's content cut by cairn's chunker (one `Chunker` per layer, as
/// a convert has), with `params`. The chunker copies the bytes into its own buffer, as it
/// does from the tar stream in a convert. Returns each layer's chunks.
pub fn fastcdc(tars: &[LayerTar], params: &ChunkerParams) -> Result<(Span, Vec<Vec<ChunkPlace>>)> {
    let mut spent = Span::default();
    let mut all = Vec::with_capacity(tars.len());
    for tar in tars {
        let mut window = Window::whole(&tar.path)?;
        let mark = Mark::now();
        let mut chunker = Chunker::new(params).map_err(anyhow::Error::msg)?;
        let mut chunks = Vec::new();
        for &(offset, len) in &tar.files {
            let mut at = offset;
            let read = chunker
                .chunk_stream(window.range(offset, len), |chunk| {
                    chunks.push((at, chunk.len() as u32));
                    at += chunk.len() as u64;
                    Ok::<_, std::io::Error>(())
                })
                .with_context(|| format!("chunk {}", tar.path.display()))?;
            if read != len {
                bail!(
                    "{}: {read} of {len} bytes at {offset} chunked",
                    tar.path.display()
                );
            }
        }
        spent.add(mark.elapsed().minus(window.excluded()));
        all.push(chunks);
    }
    Ok((spent, all))
}

/// Stage 4: the BLAKE3 id of every chunk (`ChunkId::of`). Returns each layer's ids.
pub fn blake3(tars: &[LayerTar], chunks: &[Vec<ChunkPlace>]) -> Result<(Span, Vec<Vec<ChunkId>>)> {
    let mut spent = Span::default();
    let mut all = Vec::with_capacity(tars.len());
    for (tar, chunks) in tars.iter().zip(chunks) {
        let mut window = Window::whole(&tar.path)?;
        let mark = Mark::now();
        let mut ids = Vec::with_capacity(chunks.len());
        for &(offset, len) in chunks {
            ids.push(ChunkId::of(window.get(offset, len as usize)?));
        }
        spent.add(mark.elapsed().minus(window.excluded()));
        all.push(ids);
    }
    Ok((spent, all))
}

/// Not a stage: which chunks a convert into an empty store stores, per layer (the first
/// occurrence of each id in image order; the rest are repeats).
pub fn new_chunks(ids: &[Vec<ChunkId>]) -> Vec<Vec<usize>> {
    let mut seen = HashSet::new();
    ids.iter()
        .map(|layer| {
            (0..layer.len())
                .filter(|&i| seen.insert(layer[i]))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrences_are_new() {
        let id = |b: u8| ChunkId([b; 32]);
        let ids = vec![vec![id(1), id(2), id(1)], vec![id(2), id(3)]];
        assert_eq!(new_chunks(&ids), vec![vec![0, 1], vec![1]]);
    }
}
