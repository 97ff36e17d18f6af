//! The chunk-parameter sweep: for each FastCDC setting, a fresh store, OLD converted, then NEW
//! with OLD as dictionary; prints the store size after each, the metadata share, the dedup of
//! NEW against OLD and the convert speed. Runs in-process (one engine call per convert).

use crate::harness::sizes::files_bytes;
use anyhow::{Context, Result};
use cairn_engine::{
    ChunkerParams, CompressionParams, ConvertOptions, InitOptions, NoProgress, SourceSpec,
    StoreWriter,
};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Serialize)]
struct SweepRow {
    params: String,
    after_old_bytes: u64,
    new_adds_bytes: u64,
    new_adds_percent_of_old: f64,
    metadata_bytes: u64,
    new_shared_ratio_bytes: f64,
    chunks_old: u64,
    old_seconds: f64,
    new_seconds: f64,
    old_tar_mb_per_s: f64,
}

fn parse_params(text: &str) -> Result<Vec<ChunkerParams>> {
    text.split(',')
        .map(|p| {
            let kib: Vec<u32> = p
                .split('/')
                .map(|n| n.trim().parse::<u32>().map(|k| k * 1024))
                .collect::<Result<_, _>>()
                .with_context(|| format!("bad chunker setting {p:?}"))?;
            anyhow::ensure!(kib.len() == 3, "chunker setting {p:?}: need MIN/AVG/MAX");
            ChunkerParams::fastcdc(kib[0], kib[1], kib[2]).map_err(anyhow::Error::msg)
        })
        .collect()
}

fn convert(
    writer: &StoreWriter,
    source: &str,
    name: &str,
    dict: &[&str],
) -> Result<cairn_engine::ImageReport> {
    let mut options = ConvertOptions::new(SourceSpec::parse(source)?, name);
    options.dict = dict.iter().map(|d| d.to_string()).collect();
    let report = writer.convert(&options, &NoProgress)?;
    report
        .images
        .into_iter()
        .next()
        .context("no image converted")
}

pub fn sweep(
    old: &str,
    new: &str,
    params: &str,
    level: i32,
    work: Option<&Path>,
    json: Option<&Path>,
) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let work = work.unwrap_or(tmp.path());
    let mut rows = Vec::new();
    println!(
        "{:<16} {:>12} {:>12} {:>8} {:>10} {:>8} {:>8} {:>9} {:>9}",
        "min/avg/max",
        "after old",
        "new adds",
        "% old",
        "metadata",
        "shared",
        "chunks",
        "old s",
        "MB/s"
    );
    for chunker in parse_params(params)? {
        let label = format!(
            "{}K/{}K/{}K",
            chunker.min_size / 1024,
            chunker.avg_size / 1024,
            chunker.max_size / 1024
        );
        let root = work.join(format!(
            "sweep-{}-{}-{}",
            chunker.min_size, chunker.avg_size, chunker.max_size
        ));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        let compression = CompressionParams {
            level,
            ..CompressionParams::default()
        };
        let store = StoreWriter::init(&root, &InitOptions::new(chunker, compression))?;
        let started = Instant::now();
        let r_old = convert(&store, old, "old", &[])?;
        let old_seconds = started.elapsed().as_secs_f64();
        let after_old = files_bytes(&root);
        let started = Instant::now();
        let r_new = convert(&store, new, "new", &["old"])?;
        let new_seconds = started.elapsed().as_secs_f64();
        drop(store);
        let after_new = files_bytes(&root);
        let metadata = files_bytes(&root.join("index"))
            + files_bytes(&root.join("bootstraps"))
            + files_bytes(&root.join("layers"));
        let t = &r_new.totals;
        let row = SweepRow {
            params: label,
            after_old_bytes: after_old,
            new_adds_bytes: after_new - after_old,
            new_adds_percent_of_old: (after_new - after_old) as f64 * 100.0 / after_old as f64,
            metadata_bytes: metadata,
            new_shared_ratio_bytes: (t.from_dictionary.bytes + t.repeated.bytes) as f64
                / t.chunks.bytes.max(1) as f64,
            // Into an empty store every distinct chunk is new.
            chunks_old: r_old.totals.new.chunks,
            old_seconds,
            new_seconds,
            old_tar_mb_per_s: r_old.tar_mb_per_s,
        };
        println!(
            "{:<16} {:>12} {:>12} {:>7.1}% {:>10} {:>7.1}% {:>8} {:>9.2} {:>9.1}",
            row.params,
            row.after_old_bytes,
            row.new_adds_bytes,
            row.new_adds_percent_of_old,
            row.metadata_bytes,
            row.new_shared_ratio_bytes * 100.0,
            row.chunks_old,
            row.old_seconds,
            row.old_tar_mb_per_s
        );
        rows.push(row);
        std::fs::remove_dir_all(&root)?;
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
    }
    Ok(())
}
