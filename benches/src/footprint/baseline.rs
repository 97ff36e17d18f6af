//! The rows that are neither cairn's nor a peer's: the layers as a registry stores them,
//! containerd's snapshots, and the fixed-chunk and whole-file schemes (computed by this
//! binary's `internal` subcommand, `rows.rs`).

use super::report::Row;
use super::row_log::Rows;
use super::{Bench, IMAGES};
use crate::harness::sizes::{du_sb, files_bytes};
use anyhow::Result;
use std::path::Path;

/// Appends the registry, containerd, whole-file and fixed 1 MiB rows, in that order.
pub(super) fn rows(bench: &Bench, rows: &mut Rows) -> Result<()> {
    let dir = bench.work.join("registry");
    let steps = bench.two_steps(
        "registry",
        |i| Ok(dir_step(bench, "registry", &dir, i)),
        || Ok(files_bytes(&dir)),
    )?;
    rows.push(Row::from_steps(
        "registry",
        "OCI layers as stored, dedup by layer digest (registry)".into(),
        "content",
        steps,
        Some("the layer blobs, each once by digest, copied and sha256-checked".into()),
    ))?;

    let dir = bench.work.join("containerd");
    let steps = bench.two_steps(
        "containerd",
        |i| Ok(dir_step(bench, "containerd", &dir, i)),
        || du_sb(&dir),
    )?;
    rows.push(Row::from_steps(
        "containerd",
        "containerd-style: compressed blobs + each layer unpacked as a snapshot".into(),
        "everything",
        steps,
        Some(
            "the registry's blobs plus one directory per layer chain id, unpacked by GNU tar; \
             `du -sb` (directories and symlinks included)"
                .into(),
        ),
    ))?;

    let fixed = bench.work.join("fixed-1m");
    let steps = bench.two_steps(
        "fixed 1 MiB chunks",
        |i| {
            let step = bench
                .internal()
                .arg("fixed")
                .arg("--store")
                .arg(&fixed)
                .arg("--source")
                .arg(&bench.sources[i])
                .arg("--name")
                .arg(IMAGES[i]);
            Ok(if i == 1 {
                step.arg("--dict").arg("old")
            } else {
                step
            })
        },
        || Ok(files_bytes(&fixed.join("blobs"))),
    )?;
    let fixed_row = Row::from_steps(
        "fixed-1m",
        "fixed 1 MiB chunks per file, zstd-3 per chunk (Nydus's scheme)".into(),
        "content",
        steps,
        Some(
            "a cairn store initialised with fixed 1 MiB chunks, new converted with --dict old; \
             blob files only (chunk data and a 49-byte ToC entry per chunk)"
                .into(),
        ),
    );

    let dir = bench.work.join("whole-file");
    let steps = bench.two_steps(
        "whole-file",
        |i| {
            Ok(bench
                .internal()
                .arg("whole-file")
                .arg("--dir")
                .arg(&dir)
                .arg("--store")
                .arg(&fixed)
                .arg("--name")
                .arg(IMAGES[i]))
        },
        || Ok(files_bytes(&dir)),
    )?;
    rows.push(Row::from_steps(
        "whole-file",
        "whole-file dedup, zstd-3 per file".into(),
        "content",
        steps,
        Some(
            "each distinct file content once, compressed alone; file contents are read back \
             from the fixed-chunk store, so the time is that pass (no gzip, no tar parsing)"
                .into(),
        ),
    ))?;
    rows.push(fixed_row)?;
    Ok(())
}

/// `internal KIND --dir DIR --source SOURCE` for image `i`.
fn dir_step(bench: &Bench, kind: &str, dir: &Path, i: usize) -> crate::harness::measure::Step {
    bench
        .internal()
        .arg(kind)
        .arg("--dir")
        .arg(dir)
        .arg("--source")
        .arg(&bench.sources[i])
}
