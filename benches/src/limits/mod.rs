//! `cairn-bench limits`: how fast a convert of this image could be on this machine, and how
//! close `cairn convert` comes, measured in one run (issue 18).
//!
//! Each stage a byte of new data goes through in a convert runs alone over the image's own
//! layers, on one thread, and is measured in CPU seconds: decode (`stages.rs`), sha256 of the
//! blob and of the tar, FastCDC, BLAKE3, then zstd in cairn's frames and writing the blob
//! (`frames.rs`). Every layer is decoded once, unmeasured, into a tar file under the work
//! directory (`layer_tar.rs`) for the stages after decode to read back (`window.rs`), so no
//! decoded layer is held in memory and decode is paid once. From the stages' CPU time: the
//! pipeline limit, tar bytes / (CPU seconds / cores). Then the converts (`converts.rs`): the
//! image into an empty store, against that limit; the same content again, against the decode
//! stage alone; and the same image again, whose layer objects cairn reuses without reading.
//! `report.rs` computes the ratios and renders them.

mod clock;
mod converts;
mod frames;
mod layer_tar;
mod report;
mod stages;
mod sys;
mod window;

use crate::footprint::image::{self, Layer};
use crate::footprint::{load_average, machine, prepare_work};
use crate::sizes::files_bytes;
use anyhow::{bail, Context, Result};
use cairn_engine::{ChunkerParams, CompressionParams};
use converts::Cairn;
use layer_tar::LayerTar;
use report::{Inputs, Measured, Report, Stage};
use std::path::{Path, PathBuf};

/// What the `limits` command was asked.
#[derive(clap::Args)]
pub struct Options {
    /// The image: oci:DIR[:REF] (or docker-archive:FILE, or a layer file).
    #[arg(long)]
    pub source: String,
    /// Where to write report.md and report.json; the scratch directory is OUT/work (emptied
    /// first, removed after).
    #[arg(long, default_value = "bench-out/limits")]
    pub out: PathBuf,
    /// Keep the work directory (the store).
    #[arg(long)]
    pub keep_work: bool,
    /// The cairn binary (default: `cairn` next to cairn-bench; in-process if there is none).
    #[arg(long)]
    pub cairn: Option<PathBuf>,
    /// Print the report as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The command: runs the bench, prints the table (or the JSON), writes the reports.
pub fn command(options: &Options) -> Result<()> {
    let report = run(options)?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::table(&report));
    }
    eprintln!(
        "limits: wrote report.md and report.json to {}",
        options.out.display()
    );
    Ok(())
}

fn run(options: &Options) -> Result<Report> {
    let load_average_start = load_average();
    let cairn = Cairn::find(options.cairn.as_deref())?;
    let layers = image::layers(&options.source)?;
    if layers.is_empty() {
        bail!("{} has no layers", options.source);
    }
    let work = prepare_work(&options.out.join("work"))?;
    eprintln!(
        "limits: decoding {} layers into {}",
        layers.len(),
        work.display()
    );
    let tars = layers
        .iter()
        .enumerate()
        .map(|(i, layer)| layer_tar::prepare(layer, &work.join(format!("layer-{i}.tar"))))
        .collect::<Result<Vec<_>>>()?;
    let chunker = ChunkerParams::default();
    let compression = CompressionParams::default();
    let measured = measure_stages(&layers, &tars, &chunker, &compression, &work)?;
    let tar_bytes: u64 = tars.iter().map(|t| t.tar_bytes).sum();
    let stages = measured
        .stages
        .into_iter()
        .map(|(id, label, input, span)| Stage::new(id, label, input, span, tar_bytes))
        .collect();

    let store = work.join("store");
    eprintln!("limits: convert into an empty store");
    let new = cairn.convert(&store, &options.source, "limits-new")?;
    let known_source = converts::known_content_archive(&options.source, &work.join("known.tar"))?;
    let blobs_before = files_bytes(&store.join("blobs"));
    eprintln!("limits: convert of the same content, layers re-read");
    let known = cairn.convert(&store, &known_source, "limits-known")?;
    let known_added_blob_bytes = files_bytes(&store.join("blobs")).saturating_sub(blobs_before);
    eprintln!("limits: convert of the same image, layer objects reused");
    let reuse = cairn.convert(&store, &options.source, "limits-reuse")?;

    let inputs = Inputs {
        source: options.source.clone(),
        compressed_bytes: layers.iter().map(|l| l.len).sum(),
        file_bytes: tars.iter().map(LayerTar::file_bytes).sum(),
        chunks: measured.chunks,
        new_chunks: measured.new_chunks,
        new_chunk_bytes: measured.new_chunk_bytes,
        stored_bytes: measured.stored_bytes,
        chunker: chunker.label(),
        compression: format!(
            "zstd-{} in frames of up to {} KiB",
            compression.level,
            compression.frame_size >> 10
        ),
        machine: machine(load_average_start),
        cairn: cairn.describe(),
        known_added_blob_bytes,
    };
    let report = Report::new(
        inputs,
        Measured {
            stages,
            decode_layers: measured.decode_layers,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tar_bytes,
            converts: [new, known, reuse],
        },
    );
    write_outputs(&options.out, &report)?;
    if options.keep_work {
        eprintln!("limits: work directory kept: {}", work.display());
    } else {
        std::fs::remove_dir_all(&work).with_context(|| format!("remove {}", work.display()))?;
    }
    Ok(report)
}

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
    Ok(report::mbps(tar_bytes, cpu_s / cores as f64))
}

/// A stage's id, label, input bytes and span.
type StageSpan = (&'static str, &'static str, u64, clock::Span);

/// The stages as measured, and what they counted.
struct Stages {
    stages: Vec<StageSpan>,
    /// Decode's span per layer.
    decode_layers: Vec<clock::Span>,
    chunks: u64,
    new_chunks: u64,
    new_chunk_bytes: u64,
    stored_bytes: u64,
}

/// Runs the stages in order.
fn measure_stages(
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
    crate::footprint::measure::Step::new("sync").run()?;
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

fn write_outputs(out: &Path, report: &Report) -> Result<()> {
    crate::footprint::write_reports(
        out,
        &[
            ("report.md", report::markdown(report).into_bytes()),
            ("report.json", serde_json::to_vec_pretty(report)?),
        ],
    )
}
