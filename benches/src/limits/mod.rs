//! `cairn-bench limits`: how fast a convert of this image could be on this machine, and how
//! close `cairn convert` comes, measured in one run (issue 18).
//!
//! Each stage a byte of new data goes through in a convert runs alone over the image's own
//! layers, on one thread, and is measured in CPU seconds (`harness::pipeline`). From the stages'
//! CPU time: the pipeline limit, tar bytes / (CPU seconds / cores). Then the converts
//! (`converts.rs`): the image into an empty store, against that limit; the same content again,
//! against the decode stage alone; and the same image again, whose layer objects cairn reuses
//! without reading. `report.rs` computes the ratios and renders them.

mod converts;
mod report;

use crate::harness::image;
use crate::harness::machine::{load_average, machine};
use crate::harness::pipeline::layer_tar::{self, LayerTar};
use crate::harness::pipeline::measure_stages;
use crate::harness::sizes::files_bytes;
use crate::harness::work::{prepare_work, write_reports};
use anyhow::{bail, Context, Result};
use cairn_engine::{ChunkerParams, CompressionParams};
use converts::Cairn;
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

fn write_outputs(out: &Path, report: &Report) -> Result<()> {
    write_reports(
        out,
        &[
            ("report.md", report::markdown(report).into_bytes()),
            ("report.json", serde_json::to_vec_pretty(report)?),
        ],
    )
}
