//! `cairn-bench footprint`: what an image pair costs to store, scheme by scheme, in one table.
//!
//! Every row adds OLD, then NEW, to its own directory under the work directory; the directory
//! is measured after each step. Every step is a child process run under GNU time
//! (`measure.rs`): the `cairn` binary for the cairn rows, a peer tool (`peers.rs`), or this
//! binary's hidden `internal` subcommand for the rows it computes (`rows.rs`). `image.rs`
//! reads the sources; `report.rs` renders the result.

mod baseline;
mod cairn_rows;
mod cold;
mod nydus;
mod peers;
pub mod report;
mod row_log;
pub mod rows;

use crate::harness::image;
use crate::harness::machine::{load_average, machine};
use crate::harness::measure::{check_gnu_time, Step};
use crate::harness::pipeline::pipeline_limit;
use crate::harness::sizes::du_sb;
use crate::harness::work::{prepare_work, write_reports};
use anyhow::{bail, Context, Result};
use cairn_rows::Cairn;
use report::{Peers, Report, Row, Skipped, StepReport};
use row_log::Rows;
use std::path::{Path, PathBuf};

/// What the `footprint` command was asked.
pub struct Options {
    pub old: String,
    pub new: String,
    pub out: PathBuf,
    /// Scratch space for the rows' directories (default `OUT/work`).
    pub work: Option<PathBuf>,
    pub keep_work: bool,
    pub peers: bool,
    /// The `cairn` binary (default: next to this one; in-process when there is none).
    pub cairn: Option<PathBuf>,
}

struct Bench {
    this: PathBuf,
    work: PathBuf,
    sources: [String; 2],
    tar_bytes: [u64; 2],
    layer_counts: [usize; 2],
    /// The index of new's layer with the most tar bytes.
    largest_new_layer: usize,
}

const IMAGES: [&str; 2] = ["old", "new"];

impl Bench {
    /// Reads both sources' layers once (their tar sizes; this also warms the page cache for
    /// the first measured row) and prepares the work directory.
    fn open(options: &Options) -> Result<Bench> {
        let sources = [options.old.clone(), options.new.clone()];
        let mut tar_bytes = [0u64; 2];
        let mut layer_counts = [0usize; 2];
        let mut largest_new_layer = (0, 0);
        for i in 0..2 {
            let layers = image::layers(&sources[i])?;
            layer_counts[i] = layers.len();
            for (n, layer) in layers.iter().enumerate() {
                let bytes = layer.tar_bytes()?;
                tar_bytes[i] += bytes;
                if i == 1 && bytes > largest_new_layer.1 {
                    largest_new_layer = (n, bytes);
                }
            }
        }
        let work = prepare_work(options.work.as_deref().unwrap_or(&options.out.join("work")))?;
        Ok(Bench {
            this: std::env::current_exe().context("locate cairn-bench")?,
            work,
            sources,
            tar_bytes,
            layer_counts,
            largest_new_layer: largest_new_layer.0,
        })
    }

    fn internal(&self) -> Step {
        Step::new(&self.this).arg("internal")
    }

    /// Runs `step(i)` for old (i = 0) then new (i = 1), measuring `size()` after each.
    fn two_steps(
        &self,
        what: &str,
        mut step: impl FnMut(usize) -> Result<Step>,
        mut size: impl FnMut() -> Result<u64>,
    ) -> Result<Vec<StepReport>> {
        (0..2)
            .map(|i| self.one_step(what, i, &mut step, &mut size))
            .collect()
    }

    fn one_step(
        &self,
        what: &str,
        i: usize,
        step: &mut impl FnMut(usize) -> Result<Step>,
        size: &mut impl FnMut() -> Result<u64>,
    ) -> Result<StepReport> {
        eprintln!("footprint: {what}: {}", IMAGES[i]);
        let (usage, _) = step(i)?
            .measure(&self.work)
            .with_context(|| format!("{what}, {} image", IMAGES[i]))?;
        Ok(StepReport {
            image: IMAGES[i].into(),
            tar_bytes: self.tar_bytes[i],
            bytes_after: size()?,
            usage,
        })
    }
}

pub fn run(options: &Options) -> Result<Report> {
    let load_average_start = load_average();
    check_gnu_time()?;
    let tar_version = Step::new("tar").arg("--version").run().unwrap_or_default();
    if !String::from_utf8_lossy(&tar_version).contains("GNU tar") {
        bail!("`tar` is not GNU tar; the unpacked rows need it");
    }
    let bench = Bench::open(options)?;
    let cairn = Cairn::choose(options.cairn.as_deref(), &bench.this)?;
    let mut notes = Vec::new();
    let mut rows = Rows::create(&options.out)?;
    baseline::rows(&bench, &mut rows)?;
    let store = bench.work.join("cairn");
    let (cairn_row, blobs_row) = cairn_rows::main_rows(&bench, &cairn, &store)?;
    rows.push(blobs_row)?;
    let peers = if options.peers {
        Some(run_peers(&bench, &mut rows, &mut notes)?)
    } else {
        None
    };
    if let Some(note) = speed_against_peers(&cairn_row, rows.as_slice()) {
        notes.push(note);
    }
    rows.push(cairn_row)?;
    cairn_rows::variant_rows(&bench, &cairn, &mut rows)?;
    let cold = cold_rows(&bench, &cairn, &store, &mut rows, &mut notes)?;
    let limits = old_against_limit(&bench, rows.as_slice())?;

    let report = Report {
        old: options.old.clone(),
        new: options.new.clone(),
        old_layers: bench.layer_counts[0],
        new_layers: bench.layer_counts[1],
        old_tar_bytes: bench.tar_bytes[0],
        new_tar_bytes: bench.tar_bytes[1],
        machine: machine(load_average_start),
        cairn: cairn.how(),
        peers,
        limits,
        cold,
        rows: rows.into_vec(),
        notes,
    };
    write_outputs(&options.out, &report)?;
    if options.keep_work {
        eprintln!("footprint: work directory kept: {}", bench.work.display());
    } else {
        std::fs::remove_dir_all(&bench.work)
            .with_context(|| format!("remove {}", bench.work.display()))?;
    }
    Ok(report)
}

/// The `cairn-optimized` and `squashfs` rows (`cold.rs`), with a note comparing them.
fn cold_rows(
    bench: &Bench,
    cairn: &Cairn,
    store: &Path,
    rows: &mut Rows,
    notes: &mut Vec<String>,
) -> Result<Option<cold::Cold>> {
    let Cairn::Binary(program) = cairn else {
        notes.push("cairn-optimized: needs the cairn binary (not in-process)".into());
        return Ok(None);
    };
    let (row, cold) = cold::optimized_row(bench, program, store)?;
    let optimized = row.after_old_and_new_bytes;
    rows.push(row)?;
    match cold::squashfs_row(bench)? {
        Ok(squashfs) => {
            if let (Some(o), Some(s)) = (optimized, squashfs.after_old_and_new_bytes) {
                notes.push(format!(
                    "after old and new: cairn optimized {:.1} MB, squashfs {:.1} MB ({:.2}x)",
                    o as f64 / 1e6,
                    s as f64 / 1e6,
                    o as f64 / s as f64
                ));
            }
            rows.push(squashfs)?;
        }
        Err(skipped) => notes.push(skipped),
    }
    notes.push(format!(
        "reads after optimize: a full read of new {:.2}x the speed of before ({:.2} s against \
         {:.2} s), its largest layer {:.2}x; random-read amplification {:.2} before, {:.2} after",
        cold.read_speed_ratio,
        cold.read_after_s,
        cold.read_before_s,
        cold.layer_read_speed_ratio,
        cold.random_read_amplification_before,
        cold.random_read_amplification_after
    ));
    Ok(Some(cold))
}

/// How much faster cairn took in both images than each peer, by wall and by CPU time (the
/// same input bytes on both sides, so time ratios are speed ratios).
fn speed_against_peers(cairn: &Row, rows: &[Row]) -> Option<String> {
    let (wall, cpu) = (cairn.wall_s?, cairn.cpu_s?);
    let ratios: Vec<String> = rows
        .iter()
        .filter(|r| r.id == nydus::ROW_ID || peers::ALL.iter().any(|p| p.command() == r.id))
        .filter_map(|r| {
            Some(format!(
                "{} {:.2}x by wall time, {:.2}x by CPU time",
                r.id,
                r.wall_s? / wall,
                r.cpu_s? / cpu
            ))
        })
        .collect();
    (!ratios.is_empty()).then(|| format!("cairn's speed against the peers: {}", ratios.join("; ")))
}

/// Unpacks both images' layers (not measured) and runs every peer found on PATH on them.
fn run_peers(bench: &Bench, rows: &mut Rows, notes: &mut Vec<String>) -> Result<Peers> {
    let mut result = Peers::default();
    let found: Vec<_> = peers::ALL
        .iter()
        .filter_map(|&peer| match peer.find() {
            Some(program) => Some((peer, program)),
            None => {
                result.skipped.push(Skipped {
                    tool: peer.command().into(),
                    reason: "not found on PATH".into(),
                });
                None
            }
        })
        .collect();
    nydus::run(bench, rows, &mut result)?;
    if found.is_empty() {
        return Ok(result);
    }
    let inputs = [0, 1].map(|i| bench.work.join("unpacked").join(IMAGES[i]));
    for i in 0..2 {
        eprintln!("footprint: unpacking {} for the peers", IMAGES[i]);
        let layers = image::layers(&bench.sources[i])?;
        debug_assert_eq!(layers.len(), bench.layer_counts[i]);
        for (n, layer) in layers.iter().enumerate() {
            layer.unpack(&inputs[i].join(format!("layer{n}")))?;
        }
    }
    notes.push(
        "the peers back up each image's layers unpacked by GNU tar (not measured) into \
         unpacked/IMAGE/layerN of the work directory, one snapshot or archive per image"
            .into(),
    );
    for (peer, program) in found {
        let version = peer.version(&program);
        let repo = bench.work.join(format!("peer-{}", peer.command()));
        let state = bench.work.join(format!("peer-{}-state", peer.command()));
        let outcome = (|| -> Result<Row> {
            std::fs::create_dir_all(&state)?;
            if let Some(init) = peer.init(&program, &repo, &state) {
                init.run()?;
            } else {
                std::fs::create_dir_all(&repo)?;
            }
            let steps = bench.two_steps(
                peer.command(),
                |i| Ok(peer.backup(&program, &repo, &state, &inputs[i], IMAGES[i])),
                || du_sb(&repo),
            )?;
            Ok(Row::from_steps(
                peer.command(),
                format!("{version} ({})", peer.settings()),
                "everything",
                steps,
                Some("repository directory, `du -sb` (caches and configuration outside it)".into()),
            ))
        })();
        match outcome {
            Ok(row) => {
                result.ran.push(version);
                rows.push(row)?;
            }
            Err(e) => {
                eprintln!("footprint: {} failed: {e:#}", peer.command());
                result.skipped.push(Skipped {
                    tool: peer.command().into(),
                    reason: format!("failed: {e:#}"),
                });
            }
        }
    }
    Ok(result)
}

/// The cairn row's convert of the old image against the pipeline limit `limits` measures.
fn old_against_limit(bench: &Bench, rows: &[Row]) -> Result<Option<report::Limits>> {
    let Some(step) = rows
        .iter()
        .find(|r| r.id == "cairn")
        .and_then(|r| r.steps.first())
    else {
        return Ok(None);
    };
    eprintln!("footprint: each convert stage alone, for the pipeline limit");
    let limit = pipeline_limit(&bench.sources[0], &bench.work.join("limits"))?;
    let convert_mbps = step.tar_bytes as f64 / 1e6 / step.usage.wall_s.max(1e-9);
    Ok(Some(report::Limits {
        pipeline_limit_mbps: limit,
        convert_mbps,
        convert_ratio: if limit > 0.0 {
            convert_mbps / limit
        } else {
            0.0
        },
    }))
}

fn write_outputs(out: &Path, report: &Report) -> Result<()> {
    write_reports(
        out,
        &[
            ("report.md", report::markdown(report).into_bytes()),
            ("report.json", serde_json::to_vec_pretty(report)?),
            ("footprint.svg", report::svg(report).into_bytes()),
        ],
    )
}

/// The table, for the terminal.
pub fn table(report: &Report) -> String {
    report::table(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(id: &str, wall: f64, cpu: f64) -> Row {
        let mut row = Row::sizes_only(id, id.into(), "everything", 1, 2, String::new());
        row.wall_s = Some(wall);
        row.cpu_s = Some(cpu);
        row
    }

    #[test]
    fn speed_against_peers_names_nydus_and_the_backup_tools() {
        let cairn = timed("cairn", 2.0, 4.0);
        let rows = [
            timed("nydus", 5.0, 5.0),
            timed("restic", 8.0, 12.0),
            timed("whole-file", 9.0, 9.0),
        ];
        let note = speed_against_peers(&cairn, &rows).expect("a note");
        assert!(
            note.contains("nydus 2.50x by wall time, 1.25x by CPU time"),
            "{note}"
        );
        assert!(
            note.contains("restic 4.00x by wall time, 3.00x by CPU time"),
            "{note}"
        );
        assert!(!note.contains("whole-file"), "{note}");
        assert_eq!(speed_against_peers(&cairn, &rows[2..]), None);
    }
}
