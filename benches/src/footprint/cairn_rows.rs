//! The cairn rows: the store itself (new converted with `--dict old`), its blob files alone,
//! and the same with `--delta off` and with new alone in an empty store.

use super::report::{self, Row};
use super::row_log::Rows;
use super::{Bench, IMAGES};
use crate::harness::measure::Step;
use crate::harness::sizes::{du_sb, files_bytes};
use anyhow::{bail, Result};
use cairn_engine::Store;
use std::path::{Path, PathBuf};

/// How the cairn rows run.
pub(super) enum Cairn {
    Binary(PathBuf),
    /// `cairn-bench internal convert`: the same engine call, in this binary.
    InProcess,
}

impl Cairn {
    /// `--cairn PATH`, else the `cairn` binary next to this one, else in-process.
    pub(super) fn choose(option: Option<&Path>, this: &Path) -> Result<Cairn> {
        Ok(match option {
            Some(path) if path.is_file() => Cairn::Binary(path.to_path_buf()),
            Some(path) => bail!("--cairn {}: no such file", path.display()),
            None => {
                let sibling = this.with_file_name("cairn");
                if sibling.is_file() {
                    Cairn::Binary(sibling)
                } else {
                    Cairn::InProcess
                }
            }
        })
    }

    fn label(&self) -> &'static str {
        match self {
            Cairn::Binary(_) => "cairn",
            Cairn::InProcess => "cairn (in-process)",
        }
    }

    /// How the cairn rows ran, for the report.
    pub(super) fn how(&self) -> String {
        match self {
            Cairn::Binary(path) => format!("the cairn binary {}", path.display()),
            Cairn::InProcess => "in-process (`cairn-bench internal convert`): no cairn binary \
                                 next to cairn-bench; build it with `cargo build --release \
                                 --bin cairn` or pass --cairn"
                .to_string(),
        }
    }

    /// The convert of image `i` into `store` (initialised first if it is not yet).
    fn convert(
        &self,
        bench: &Bench,
        store: &Path,
        i: usize,
        dict: bool,
        delta_off: bool,
    ) -> Result<Step> {
        let step = match self {
            Cairn::Binary(path) => {
                if !store.join("store.json").exists() {
                    Step::new(path)
                        .arg("--store")
                        .arg(store)
                        .arg("--quiet")
                        .arg("init")
                        .run()?;
                }
                let step = Step::new(path)
                    .arg("--store")
                    .arg(store)
                    .arg("--quiet")
                    .arg("convert")
                    .arg(&bench.sources[i])
                    .arg("--name")
                    .arg(IMAGES[i])
                    .arg("--json");
                if delta_off {
                    step.arg("--delta").arg("off")
                } else {
                    step
                }
            }
            Cairn::InProcess => {
                let step = bench
                    .internal()
                    .arg("convert")
                    .arg("--store")
                    .arg(store)
                    .arg("--source")
                    .arg(&bench.sources[i])
                    .arg("--name")
                    .arg(IMAGES[i]);
                if delta_off {
                    step.arg("--delta-off")
                } else {
                    step
                }
            }
        };
        Ok(if dict {
            step.arg("--dict").arg("old")
        } else {
            step
        })
    }
}

/// The cairn row (old, then new with `--dict old`, into `store`) and the row of its blob
/// files alone.
pub(super) fn main_rows(bench: &Bench, cairn: &Cairn, store: &Path) -> Result<(Row, Row)> {
    let label = cairn.label();
    let mut blob_sizes = Vec::new();
    let steps = bench.two_steps(
        label,
        |i| cairn.convert(bench, store, i, i == 1, false),
        || {
            blob_sizes.push(files_bytes(&store.join("blobs")));
            du_sb(store)
        },
    )?;
    let config = Store::open(store)?.config().clone();
    let chunker = config.chunker.label();
    let cairn_row = Row::from_steps(
        "cairn",
        format!("{label}: whole store, new with --dict old"),
        "everything",
        steps,
        Some(format!(
            "{chunker}; every file of the store directory (blobs, bootstraps, index, \
             store.json), `du -sb`"
        )),
    );
    let blobs_row = Row::sizes_only(
        "fastcdc-blobs",
        format!(
            "FastCDC per file ({}K/{}K/{}K), zstd-{} in frames of up to {} KiB",
            config.chunker.min_size / 1024,
            config.chunker.avg_size / 1024,
            config.chunker.max_size / 1024,
            config.compression.level,
            config.compression.frame_size >> 10
        ),
        "content",
        blob_sizes[0],
        blob_sizes[1],
        "blob files of the cairn store (frames and ToC); measured in the cairn row".into(),
    );
    Ok((cairn_row, blobs_row))
}

/// The `--delta off` row and the new-alone row, after the cairn row in `rows`.
pub(super) fn variant_rows(bench: &Bench, cairn: &Cairn, rows: &mut Rows) -> Result<()> {
    let label = cairn.label();
    let plain = bench.work.join("cairn-delta-off");
    let steps = bench.two_steps(
        &format!("{label}, delta off"),
        |i| cairn.convert(bench, &plain, i, i == 1, true),
        || du_sb(&plain),
    )?;
    rows.push(Row::from_steps(
        "cairn-delta-off",
        format!("{label}: as the cairn row, with --delta off"),
        "everything",
        steps,
        Some("new chunks always compressed alone (no delta frames)".into()),
    ))?;
    let alone = bench.work.join("cairn-new-alone");
    let step = bench.one_step(
        &format!("{label}, new alone"),
        1,
        &mut |i| cairn.convert(bench, &alone, i, false, false),
        &mut || du_sb(&alone),
    )?;
    let mut alone_row = Row::from_steps(
        "cairn-new-alone",
        format!("{label}: new alone, empty store, no dictionary"),
        "everything",
        vec![step],
        Some("\"new adds\" is the whole store; % of old is of the cairn row's after old".into()),
    );
    let cairn_old = rows
        .as_slice()
        .iter()
        .find(|r| r.id == "cairn")
        .and_then(|r| r.after_old_bytes);
    alone_row.new_adds_percent_of_old =
        cairn_old.map(|o| report::percent(alone_row.new_adds_bytes, o));
    rows.push(alone_row)?;
    Ok(())
}
