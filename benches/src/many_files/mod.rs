//! `cairn-bench many-files`: how cairn copes with an image of very many files. Generates two
//! bare layer tars (`generate.rs`: v1 with N files in a deep tree, v2 with a few changed),
//! then runs each cairn command of interest on a fresh store as a child process under GNU time
//! (`footprint/measure.rs`) and reports wall, CPU and peak RSS against the bars, with the
//! store's size per top-level directory and per file (`report.rs`).
//!
//! A step that fails (exit status, killed for memory, over the time limit) is reported and the
//! bench goes on: at a million files that is a result, not an error.

mod content;
mod generate;
mod report;
mod tar;

use crate::harness::machine::load_average;
use crate::harness::measure::{cairn_binary, check_gnu_time, Step, Usage};
use crate::harness::sizes::du_sb;
use crate::harness::work::prepare_work;
use anyhow::{bail, Context, Result};
use generate::Shape;
pub use report::render;
use report::{Bar, Machine, Report, StepResult, StoreState};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Instant;

/// Peak RSS bar of `convert` and `diff` (MiB).
const WRITE_RSS_BAR_MIB: f64 = 256.0;
/// Peak RSS bar of `cat` and `ls` (MiB).
const READ_RSS_BAR_MIB: f64 = 64.0;
/// Wall time bar of `cat` and `ls` (seconds; GNU time reports hundredths).
const READ_WALL_BAR_S: f64 = 0.050;

/// What the `many-files` command was asked.
pub struct Options {
    pub files: u64,
    /// Size of the largest of the three large files, MB (0: none).
    pub large_mb: u64,
    pub seed: u64,
    /// Scratch directory for the tars, the store and the unpacked tree.
    pub work: PathBuf,
    pub cairn: Option<PathBuf>,
    /// Keep the work directory (tars and store) afterwards.
    pub keep: bool,
    pub json: Option<PathBuf>,
    /// Each step is stopped after this many seconds.
    pub step_timeout_s: u64,
}

struct Bench {
    cairn: PathBuf,
    store: PathBuf,
    work: PathBuf,
    timeout_s: u64,
}

impl Bench {
    /// `cairn --store STORE --quiet ARGS...`.
    fn cairn<I: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = I>) -> Step {
        Step::new(&self.cairn)
            .arg("--store")
            .arg(&self.store)
            .arg("--quiet")
            .args(args)
    }

    /// The step under `timeout`, which ends it (TERM, then KILL 30 s later) when it runs too
    /// long. GNU time measures `timeout` and the child it waits for: the peak RSS is cairn's.
    fn limited(&self, step: &Step) -> Step {
        let mut limited = Step::new("timeout")
            .arg("--kill-after=30")
            .arg(self.timeout_s.to_string())
            .arg(&step.program);
        limited.args.extend(step.args.iter().cloned());
        limited.env.clone_from(&step.env);
        limited.discard_stdout = step.discard_stdout;
        limited
    }

    /// Runs one measured step; a failure is part of the result.
    fn measure(&self, name: &str, tar_bytes: Option<u64>, step: Step) -> StepResult {
        eprintln!("many-files: {name}: {}", step.display());
        let mut result = StepResult {
            step: name.to_string(),
            command: step.display(),
            ok: false,
            status: String::new(),
            usage: None,
            tar_bytes,
            mb_s: None,
            stdout_lines: None,
            first_run: None,
            stderr_tail: None,
        };
        match self.limited(&step).measure_outcome(&self.work) {
            Ok(outcome) => {
                result.ok = outcome.status.success();
                result.status = status_text(outcome.status, self.timeout_s);
                result.usage = Some(outcome.usage);
                result.mb_s = tar_bytes.map(|b| b as f64 / 1e6 / outcome.usage.wall_s.max(0.01));
                if !step.discard_stdout {
                    result.stdout_lines = Some(outcome.stdout.split(|&b| b == b'\n').count() - 1);
                }
                if !result.ok {
                    result.stderr_tail = Some(outcome.stderr_tail(15));
                }
            }
            Err(e) => result.status = format!("{e:#}"),
        }
        if !result.ok {
            eprintln!("many-files: {name} failed: {}", result.status);
        }
        result
    }

    /// Runs a read step once to warm the caches, then again measured; the warm run is the
    /// result, the first run's figures are kept beside it.
    fn measure_warm(&self, name: &str, step: Step) -> StepResult {
        let first = self.measure(&format!("{name} (first run)"), None, step.clone());
        let mut warm = self.measure(name, None, step);
        warm.first_run = first.usage;
        warm
    }

    /// The store's size per top-level entry, and the per-file and per-chunk figures, with
    /// `files` regular files in its images.
    fn store_state(&self, files: u64) -> Result<StoreState> {
        let mut entries = BTreeMap::new();
        let dir = std::fs::read_dir(&self.store)
            .with_context(|| format!("read {}", self.store.display()))?;
        for entry in dir {
            let entry = entry.with_context(|| format!("read {}", self.store.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            entries.insert(name, du_sb(&entry.path())?);
        }
        let (unique_chunks, stats_error) = match self.unique_chunks() {
            Ok(n) => (Some(n), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        Ok(StoreState::new(entries, files, unique_chunks, stats_error))
    }

    /// `unique_chunks` of `cairn stats --json`.
    fn unique_chunks(&self) -> Result<u64> {
        let stdout = self.limited(&self.cairn(["stats", "--json"])).run()?;
        let stats: serde_json::Value =
            serde_json::from_slice(&stdout).context("parse `cairn stats --json`")?;
        stats["unique_chunks"]
            .as_u64()
            .context("`cairn stats --json` has no unique_chunks")
    }
}

/// How a step ended, in words. `timeout` exits 124 when it stopped the step; a status above
/// 128 is a signal (137: SIGKILL, the out-of-memory killer's).
fn status_text(status: ExitStatus, timeout_s: u64) -> String {
    match status.code() {
        Some(0) => "ok".into(),
        Some(124) => format!("timed out after {timeout_s} s"),
        Some(code) if code > 128 => format!("killed by signal {}", code - 128),
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

pub fn run(options: &Options) -> Result<Report> {
    check_gnu_time()?;
    if options.files < 10 {
        bail!("--files must be at least 10");
    }
    let cairn = cairn_binary(options.cairn.as_deref())?;
    let load_average_start = load_average();
    let work = prepare_work(&options.work)?;
    let shape = Shape {
        files: options.files,
        large_mb: options.large_mb,
        seed: options.seed,
    };
    let (v1, v2) = (work.join("v1.tar"), work.join("v2.tar"));
    eprintln!(
        "many-files: writing {} and {} ({} files)",
        v1.display(),
        v2.display(),
        options.files
    );
    let started = Instant::now();
    let layers = generate::write_pair(&shape, &v1, &v2)?;
    let generate_s = started.elapsed().as_secs_f64();
    eprintln!(
        "many-files: {:.1} + {:.1} MB of tar in {generate_s:.0} s",
        layers.v1.tar_bytes as f64 / 1e6,
        layers.v2.tar_bytes as f64 / 1e6
    );

    let bench = Bench {
        cairn: cairn.clone(),
        store: work.join("store"),
        work: work.clone(),
        timeout_s: options.step_timeout_s,
    };
    bench.cairn(["init"]).run()?;
    let mut steps = Vec::new();
    steps.push(
        bench.measure(
            "convert v1",
            Some(layers.v1.tar_bytes),
            bench
                .cairn(["convert"])
                .arg(&v1)
                .args(["--name", "many:v1"]),
        ),
    );
    let after_v1 = bench.store_state(layers.v1.files)?;
    steps.push(
        bench.measure(
            "convert v2",
            Some(layers.v2.tar_bytes),
            bench
                .cairn(["convert"])
                .arg(&v2)
                .args(["--name", "many:v2"]),
        ),
    );
    let after_v2 = bench.store_state(layers.v1.files + layers.v2.files)?;
    steps.push(
        bench.measure_warm(
            "cat",
            bench
                .cairn(["cat", "many:v1", &layers.cat_path])
                .discard_stdout(),
        ),
    );
    steps.push(bench.measure_warm("ls", bench.cairn(["ls", "many:v1", &layers.ls_dir])));
    steps.push(bench.measure_warm(
        "ls -l",
        bench.cairn(["ls", "-l", "many:v1", &layers.ls_dir]),
    ));
    steps.push(bench.measure("diff", None, bench.cairn(["diff", "many:v1", "many:v2"])));
    steps.push(bench.measure(
        "export-layer",
        Some(layers.v1.tar_bytes),
        bench.cairn(["export-layer", "many:v1", "0", "-o", "/dev/null"]),
    ));
    let unpacked = work.join("unpacked");
    steps.push(bench.measure(
        "unpack",
        Some(layers.v1.tar_bytes),
        bench.cairn(["unpack", "many:v1"]).arg(&unpacked),
    ));
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)
            .with_context(|| format!("remove {}", unpacked.display()))?;
    }
    // The store-wide writers: optimize plans over every live chunk before its first round
    // (bounded here to a minute of rounds), gc after v1 is removed compacts v2's blobs.
    steps.push(bench.measure(
        "optimize",
        None,
        bench.cairn(["optimize", "--max-seconds", "60"]),
    ));
    steps.push(bench.measure("rm v1", None, bench.cairn(["rm", "many:v1"])));
    steps.push(bench.measure("gc", None, bench.cairn(["gc"])));

    let bars = bars(&steps);
    let report = Report {
        shape,
        cairn: cairn.display().to_string(),
        machine: Machine::now(load_average_start),
        generate_s,
        layers,
        steps,
        bars,
        store_after_v1: after_v1,
        store_after_v2: after_v2,
    };
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    if !options.keep {
        std::fs::remove_dir_all(&work).with_context(|| format!("remove {}", work.display()))?;
    }
    Ok(report)
}

/// A figure of a step, its bar, and how to read it from GNU time's figures.
type Check = (&'static str, f64, fn(&Usage) -> f64);

/// Each step's figures against its bars.
fn bars(steps: &[StepResult]) -> Vec<Bar> {
    fn rss(u: &Usage) -> f64 {
        u.max_rss_kib as f64 / 1024.0
    }
    fn wall(u: &Usage) -> f64 {
        u.wall_s
    }
    let mut bars = Vec::new();
    for step in steps {
        let checks: &[Check] = match step.step.as_str() {
            "convert v1" | "convert v2" | "diff" | "optimize" | "gc" => {
                &[("peak RSS MiB", WRITE_RSS_BAR_MIB, rss)]
            }
            "cat" | "ls" | "ls -l" => &[
                ("peak RSS MiB", READ_RSS_BAR_MIB, rss),
                ("wall s", READ_WALL_BAR_S, wall),
            ],
            _ => &[],
        };
        for &(what, limit, value) in checks {
            bars.push(Bar::new(step, what, limit, step.usage.as_ref().map(value)));
        }
    }
    bars
}
