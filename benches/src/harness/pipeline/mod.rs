//! Each stage a byte of new data goes through in a convert, run alone over an image's own layers
//! on one thread and measured in CPU seconds: decode (`stages.rs`), sha256 of the blob and of
//! the tar, FastCDC, BLAKE3, then zstd in cairn's frames and writing the blob (`frames.rs`).
//! Every layer is decoded once, unmeasured, into a tar file under the work directory
//! (`layer_tar.rs`) for the stages after decode to read back (`window.rs`), so no decoded layer
//! is held in memory and decode is paid once. `clock.rs` and `sys.rs` read the CPU clocks.
//!
//! `limits` reports every stage; `footprint` sets its cairn row against the pipeline limit
//! ([`pipeline_limit`]).

pub mod clock;
pub mod frames;
pub mod layer_tar;
pub mod stages;
pub mod sys;
pub mod window;

use crate::harness::image::{self, Layer};
use crate::harness::measure::Step;
use anyhow::{Context, Result};
use cairn_engine::{ChunkerParams, CompressionParams};
use layer_tar::LayerTar;
use std::path::Path;

/// The pipeline limit of `source` on this machine, in MB/s of tar: its stages measured alone
/// as `limits` measures them, in `work` (created, and removed after). `footprint` sets the
/// cairn row's convert of the old image (new data) against it.
pub fn pipeline_limit(source: &str, work: &Path) -> Result<f64> {
    let layers = image::layers(source)?;
    std::fs::create_dir_all(work).with_context(|| format!("create {}", work.display()))?;
    let tars = layers
        .iter()
        .enumerate()
        .map(|(i, layer)| layer_tar::prepare(layer, &work.join(format!("layer-{i}.tar"))))
        .collect::<Result<Vec<_>>>()?;
    let measured = measure_stages(
        &layers,
        &tars,
        &ChunkerParams::default(),
        &CompressionParams::default(),
        work,
    )?;
    std::fs::remove_dir_all(work).with_context(|| format!("remove {}", work.display()))?;
    let tar_bytes: u64 = tars.iter().map(|t| t.tar_bytes).sum();
    let cpu_s: f64 = measured
        .stages
        .iter()
        .map(|(_, _, _, span)| span.cpu_s)
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(mbps(tar_bytes, cpu_s / cores as f64))
}

/// A stage's id, label, input bytes and span.
pub type StageSpan = (&'static str, &'static str, u64, clock::Span);

/// The stages as measured, and what they counted.
pub struct Stages {
    pub stages: Vec<StageSpan>,
    /// Decode's span per layer.
    pub decode_layers: Vec<clock::Span>,
    pub chunks: u64,
    pub new_chunks: u64,
    pub new_chunk_bytes: u64,
    pub stored_bytes: u64,
}

/// Runs the stages in order.
pub fn measure_stages(
    layers: &[Layer],
    tars: &[LayerTar],
    chunker: &ChunkerParams,
    compression: &CompressionParams,
    work: &Path,
) -> Result<Stages> {
    let compressed: u64 = layers.iter().map(|l| l.len).sum();
    let tar_bytes: u64 = tars.iter().map(|t| t.tar_bytes).sum();
    let file_bytes: u64 = tars.iter().map(LayerTar::file_bytes).sum();
    let mut out = Vec::new();
    eprintln!("limits: measuring each stage alone");
    let decode_layers = stages::decode(layers)?;
    let mut decode = clock::Span::default();
    decode_layers.iter().for_each(|s| decode.add(*s));
    out.push((
        "decode",
        "decode (gzip/zstd, cairn's decoder)",
        compressed,
        decode,
    ));
    let span = stages::sha256_blobs(layers)?;
    out.push((
        "sha256_blob",
        "sha256 of the blob (digest)",
        compressed,
        span,
    ));
    let span = stages::sha256_tars(layers, tars)?;
    out.push(("sha256_tar", "sha256 of the tar (diff_id)", tar_bytes, span));
    let (span, chunks) = stages::fastcdc(tars, chunker)?;
    out.push((
        "fastcdc",
        "FastCDC of every file's content",
        file_bytes,
        span,
    ));
    let (span, ids) = stages::blake3(tars, &chunks)?;
    out.push(("blake3", "BLAKE3 of every chunk", file_bytes, span));
    let new = stages::new_chunks(&ids);
    let (span, frames) = frames::compress(tars, &chunks, &new, compression, &work.join("frames"))?;
    out.push((
        "zstd",
        "zstd of the new chunks, in frames",
        frames.new_bytes,
        span,
    ));
    // The decoded tars are no longer needed; their writeback is no stage's.
    for tar in tars {
        std::fs::remove_file(&tar.path)
            .with_context(|| format!("remove {}", tar.path.display()))?;
    }
    Step::new("sync").run()?;
    let span = frames::write_blobs(&frames, work)?;
    out.push((
        "write",
        "write the blobs (BLAKE3 blob id, write, fsync)",
        frames.stored_bytes,
        span,
    ));
    std::fs::remove_file(&frames.spill)
        .with_context(|| format!("remove {}", frames.spill.display()))?;
    Ok(Stages {
        stages: out,
        decode_layers,
        chunks: chunks.iter().map(|c| c.len() as u64).sum(),
        new_chunks: new.iter().map(|n| n.len() as u64).sum(),
        new_chunk_bytes: frames.new_bytes,
        stored_bytes: frames.stored_bytes,
    })
}

/// MB per second; 0 bytes or seconds give 0, not infinity or NaN.
pub fn mbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / 1e6 / seconds
    } else {
        0.0
    }
}
