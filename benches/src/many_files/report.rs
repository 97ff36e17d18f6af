//! What `many-files` measured, as JSON (`--json`) and as the markdown it prints.

use super::generate::{Generated, Shape};
use crate::harness::measure::Usage;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Report {
    pub shape: Shape,
    pub cairn: String,
    pub machine: Machine,
    /// Seconds spent writing both tars.
    pub generate_s: f64,
    pub layers: Generated,
    pub steps: Vec<StepResult>,
    pub bars: Vec<Bar>,
    pub store_after_v1: StoreState,
    pub store_after_v2: StoreState,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub load_average_start: f64,
    pub load_average_end: f64,
}

impl Machine {
    pub fn now(load_average_start: f64) -> Self {
        Machine {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            load_average_start,
            load_average_end: crate::harness::machine::load_average(),
        }
    }
}

/// One measured step.
#[derive(Debug, Serialize)]
pub struct StepResult {
    pub step: String,
    /// The cairn command line (it ran under `timeout` and GNU time).
    pub command: String,
    pub ok: bool,
    /// "ok", "exit status N", "killed by signal N", "timed out after N s", or why it could not
    /// run.
    pub status: String,
    /// GNU time's figures, for a failed step too; none when the step could not start.
    pub usage: Option<Usage>,
    /// The tar the step takes in or gives back, where that is its work.
    pub tar_bytes: Option<u64>,
    pub mb_s: Option<f64>,
    /// Lines on standard output (when it was not sent to /dev/null).
    pub stdout_lines: Option<usize>,
    /// For `cat` and `ls`: the run that warmed the caches.
    pub first_run: Option<Usage>,
    pub stderr_tail: Option<String>,
}

/// One figure of one step against its bar.
#[derive(Debug, Serialize)]
pub struct Bar {
    pub step: String,
    pub what: String,
    pub limit: f64,
    pub value: Option<f64>,
    /// "within", "OVER", or "FAILED" (the step failed under the bar, or was not measured).
    pub verdict: String,
}

impl Bar {
    pub fn new(step: &StepResult, what: &str, limit: f64, value: Option<f64>) -> Self {
        let verdict = match value {
            Some(v) if v > limit => "OVER",
            Some(_) if step.ok => "within",
            _ => "FAILED",
        };
        Bar {
            step: step.step.clone(),
            what: what.into(),
            limit,
            value,
            verdict: verdict.into(),
        }
    }
}

/// The store directory at one point.
#[derive(Debug, Serialize)]
pub struct StoreState {
    /// `du -sb` of each top-level entry (blobs, bootstraps, index, store.json, ...).
    pub entries: BTreeMap<String, u64>,
    pub total_bytes: u64,
    /// Everything but `blobs/`.
    pub metadata_bytes: u64,
    /// Regular files in the store's images (each image counted).
    pub files: u64,
    pub metadata_bytes_per_file: f64,
    /// `unique_chunks` of `cairn stats --json`.
    pub unique_chunks: Option<u64>,
    /// `index/` bytes per unique chunk.
    pub index_bytes_per_chunk: Option<f64>,
    pub stats_error: Option<String>,
}

impl StoreState {
    pub fn new(
        entries: BTreeMap<String, u64>,
        files: u64,
        unique_chunks: Option<u64>,
        stats_error: Option<String>,
    ) -> Self {
        let total_bytes = entries.values().sum();
        let metadata_bytes = total_bytes - entries.get("blobs").copied().unwrap_or(0);
        let index = entries.get("index").copied().unwrap_or(0);
        StoreState {
            total_bytes,
            metadata_bytes,
            files,
            metadata_bytes_per_file: metadata_bytes as f64 / files.max(1) as f64,
            unique_chunks,
            index_bytes_per_chunk: unique_chunks
                .filter(|&n| n > 0)
                .map(|n| index as f64 / n as f64),
            stats_error,
            entries,
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// The printed report: layers, steps, bars, store.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let g = &r.layers;
    let _ = writeln!(
        s,
        "many-files: {} files, seed {}, large files {} MB; cairn {}; {} CPUs, load {:.2} -> {:.2}; \
         tars written in {:.0} s\n",
        r.shape.files,
        r.shape.seed,
        r.shape.large_mb,
        r.cairn,
        r.machine.cpus,
        r.machine.load_average_start,
        r.machine.load_average_end,
        r.generate_s
    );
    let _ = writeln!(
        s,
        "| layer | tar bytes | files | file bytes | dirs | symlinks | hardlinks | entries |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, l) in [("v1", &g.v1), ("v2", &g.v2)] {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            l.tar_bytes,
            l.files,
            l.file_bytes,
            l.dirs,
            l.symlinks,
            l.hardlinks,
            l.entries()
        );
    }
    let _ = writeln!(
        s,
        "\nv2: {} files changed, {} removed, {} added. cat {}; ls {} ({} entries)\n",
        g.changed, g.removed, g.added, g.cat_path, g.ls_dir, g.ls_entries
    );

    let _ = writeln!(
        s,
        "| step | wall s | CPU s | peak RSS MiB | tar MB/s | status |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
    for step in &r.steps {
        let (wall, cpu, rss) = match &step.usage {
            Some(u) => (
                format!("{:.2}", u.wall_s),
                format!("{:.2}", u.cpu_s),
                format!("{:.1}", u.max_rss_kib as f64 / 1024.0),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let rate = match step.mb_s {
            Some(v) if step.ok => format!("{v:.1}"),
            _ => "-".into(),
        };
        let name = if step.first_run.is_some() {
            format!("{} (warm)", step.step)
        } else {
            step.step.clone()
        };
        let _ = writeln!(
            s,
            "| {name} | {wall} | {cpu} | {rss} | {rate} | {} |",
            step.status
        );
    }
    let _ = writeln!(s);
    for bar in &r.bars {
        let value = bar.value.map_or("-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "{} {} {value}, bar {}: {}",
            bar.step, bar.what, bar.limit, bar.verdict
        );
    }

    render_store(&mut s, &r.store_after_v1, &r.store_after_v2);
    for step in r.steps.iter().filter(|s| !s.ok) {
        let _ = writeln!(
            s,
            "\n{} failed ({}): `{}`\n{}",
            step.step,
            step.status,
            step.command,
            step.stderr_tail.as_deref().unwrap_or("")
        );
    }
    s
}

/// The store's size table after each version, and its metadata per file and index per chunk.
fn render_store(s: &mut String, a: &StoreState, b: &StoreState) {
    let _ = writeln!(s, "\n| store (du -sb, MB) | after v1 | after v1 + v2 |");
    let _ = writeln!(s, "|---|---:|---:|");
    let mut names: Vec<&String> = a.entries.keys().chain(b.entries.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let get = |st: &StoreState| st.entries.get(name).map_or("-".into(), |&v| mb(v));
        let _ = writeln!(s, "| {name} | {} | {} |", get(a), get(b));
    }
    let _ = writeln!(
        s,
        "| total | {} | {} |",
        mb(a.total_bytes),
        mb(b.total_bytes)
    );
    for (when, st) in [("after v1", a), ("after v1 + v2", b)] {
        let per_chunk = match (st.index_bytes_per_chunk, &st.stats_error) {
            (Some(v), _) => format!(
                "{v:.1} bytes of index per chunk ({} unique chunks)",
                st.unique_chunks.unwrap_or(0)
            ),
            (None, Some(e)) => format!("index per chunk unknown: {e}"),
            (None, None) => "no chunks".into(),
        };
        let _ = writeln!(
            s,
            "{when}: {:.1} bytes of metadata per file ({} bytes besides blobs/, {} files); {per_chunk}",
            st.metadata_bytes_per_file, st.metadata_bytes, st.files
        );
    }
}
