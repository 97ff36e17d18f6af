//! Cold data: the store after `cairn optimize`, next to squashfs of the unpacked layers (the
//! best-compressing way images ship offline), and what optimize costs the reads.
//!
//! - `cairn-optimized`: a store of its own; each step converts the image as the cairn row does
//!   (old, then new with `--dict old`; not measured), then runs `cairn optimize` (measured).
//! - `squashfs`: both versions' layers unpacked by GNU tar into `layers/<digest>/` (not
//!   measured), then `mksquashfs -comp zstd` (measured): after old, an image of old's layers;
//!   after new, one image of both versions' layers.
//! - Reads: every layer of new exported (`export-layer -o /dev/null`) from the cairn row's
//!   store and from the optimized one, alternated over `READ_ROUNDS`, medians compared; and
//!   `stats`'s random-read amplification of both.

use super::report::{Row, StepReport};
use super::{Bench, IMAGES};
use crate::harness::measure::Step;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

const READ_ROUNDS: usize = 3;

/// What optimize did and cost the reads (`cold` in report.json).
#[derive(Debug, Serialize)]
pub struct Cold {
    /// `cairn optimize` after old and after new: seconds, chunk MB/s, store bytes saved.
    pub optimize: Vec<serde_json::Value>,
    /// A full read of new (every layer's tar), median seconds, before and after optimize.
    pub read_before_s: f64,
    pub read_after_s: f64,
    /// Read speed after optimize relative to before (1 = unchanged).
    pub read_speed_ratio: f64,
    /// The largest layer of new alone, median seconds.
    pub layer_read_before_s: f64,
    pub layer_read_after_s: f64,
    pub layer_read_speed_ratio: f64,
    /// Decoded bytes per byte read when reading files at random (`cairn stats`).
    pub random_read_amplification_before: f64,
    pub random_read_amplification_after: f64,
}

fn cairn(cairn: &Path, store: &Path) -> Step {
    Step::new(cairn).arg("--store").arg(store).arg("--quiet")
}

/// The `cairn-optimized` row and the reads before and after; `before` is the cairn row's store.
pub(super) fn optimized_row(bench: &Bench, program: &Path, before: &Path) -> Result<(Row, Cold)> {
    let store = bench.work.join("cairn-optimized");
    cairn(program, &store).arg("init").run()?;
    let mut steps = Vec::new();
    let mut optimize = Vec::new();
    for (i, image) in IMAGES.iter().enumerate() {
        eprintln!("footprint: cairn + optimize: {image}");
        let convert = cairn(program, &store).arg("convert").arg(&bench.sources[i]);
        let convert = convert.args(["--name", image]);
        match i {
            0 => convert.run()?,
            _ => convert.args(["--dict", "old"]).run()?,
        };
        let step = cairn(program, &store).args(["optimize", "--json"]);
        let (usage, out) = step
            .measure(&bench.work)
            .with_context(|| format!("cairn optimize after {image}"))?;
        let report: serde_json::Value =
            serde_json::from_slice(&out).context("cairn optimize --json")?;
        optimize.push(report);
        steps.push(StepReport {
            image: image.to_string(),
            tar_bytes: bench.tar_bytes[i],
            bytes_after: crate::harness::sizes::du_sb(&store)?,
            usage,
        });
    }
    let target = format!(
        "zstd-{} in frames of up to {} KiB",
        optimize[0]["level"],
        optimize[0]["frame_size"].as_u64().unwrap_or(0) >> 10
    );
    let row = Row::from_steps(
        "cairn-optimized",
        format!("cairn, then `cairn optimize` ({target})"),
        "everything",
        steps,
        Some(
            "a store of its own: each image converted as in the cairn row (not measured), \
             then `cairn optimize`; the time is optimize's; `du -sb` of the store"
                .into(),
        ),
    );
    let layers = bench.layer_counts[1];
    let all = |store: &Path| read_layers(program, store, 0..layers);
    let largest = bench.largest_new_layer;
    let one = |store: &Path| read_layers(program, store, largest..largest + 1);
    let (read_before_s, read_after_s) = alternate(|| all(before), || all(&store))?;
    let (layer_before, layer_after) = alternate(|| one(before), || one(&store))?;
    let cold = Cold {
        optimize,
        read_before_s,
        read_after_s,
        read_speed_ratio: read_before_s / read_after_s,
        layer_read_before_s: layer_before,
        layer_read_after_s: layer_after,
        layer_read_speed_ratio: layer_before / layer_after,
        random_read_amplification_before: amplification(program, before)?,
        random_read_amplification_after: amplification(program, &store)?,
    };
    Ok((row, cold))
}

/// Seconds to export layers `range` of new to /dev/null.
fn read_layers(program: &Path, store: &Path, range: std::ops::Range<usize>) -> Result<f64> {
    let start = std::time::Instant::now();
    for i in range {
        let step = cairn(program, store).args(["export-layer", "new", &i.to_string()]);
        step.args(["-o", "/dev/null"]).run()?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// `before` and `after` run by turns, `READ_ROUNDS` times each; their medians.
fn alternate(
    mut before: impl FnMut() -> Result<f64>,
    mut after: impl FnMut() -> Result<f64>,
) -> Result<(f64, f64)> {
    let (mut b, mut a) = (Vec::new(), Vec::new());
    for _ in 0..READ_ROUNDS {
        b.push(before()?);
        a.push(after()?);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(b), median(a)))
}

fn stats(program: &Path, store: &Path) -> Result<serde_json::Value> {
    let out = cairn(program, store)
        .args(["stats", "new", "--json"])
        .run()?;
    serde_json::from_slice(&out).context("cairn stats --json")
}

fn amplification(program: &Path, store: &Path) -> Result<f64> {
    Ok(stats(program, store)?["random_read_amplification"]
        .as_f64()
        .unwrap_or(0.0))
}

/// The squashfs row, or why it was skipped.
pub(super) fn squashfs_row(bench: &Bench) -> Result<std::result::Result<Row, String>> {
    let Some(mksquashfs) = crate::harness::measure::find_on_path("mksquashfs") else {
        return Ok(Err(
            "squashfs: mksquashfs not on PATH (squashfs-tools)".into()
        ));
    };
    let tree = bench.work.join("squashfs-tree");
    let mut steps = Vec::new();
    for (i, image) in IMAGES.iter().enumerate() {
        eprintln!("footprint: squashfs: {image}");
        let unpack = bench.internal().args(["unpack-layers", "--source"]);
        unpack
            .arg(&bench.sources[i])
            .arg("--dir")
            .arg(&tree)
            .run()?;
        let file = bench.work.join(format!("squashfs-{image}.sqfs"));
        let step = Step::new(&mksquashfs).arg(&tree).arg(&file);
        let step = step.args(["-comp", "zstd", "-noappend", "-no-progress"]);
        let (usage, _) = step.discard_stdout().measure(&bench.work)?;
        steps.push(StepReport {
            image: image.to_string(),
            tar_bytes: bench.tar_bytes[i],
            bytes_after: std::fs::metadata(&file)
                .with_context(|| format!("stat {}", file.display()))?
                .len(),
            usage,
        });
    }
    std::fs::remove_dir_all(&tree).with_context(|| format!("remove {}", tree.display()))?;
    Ok(Ok(Row::from_steps(
        "squashfs",
        "squashfs of the unpacked layers (zstd-15, files deduplicated)".into(),
        "everything",
        steps,
        Some(
            "each layer unpacked by GNU tar into layers/<digest>/ (not measured), then \
             `mksquashfs TREE FILE -comp zstd -noappend` (level 15, 128 KiB blocks, every \
             CPU); after new: one image of both versions' layers"
                .into(),
        ),
    )))
}
