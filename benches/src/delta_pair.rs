//! `cairn-bench delta-pair`: what delta frames save on a large binary changed by scattered
//! bytes. Generates two bare layer tars of one file (`big-file`'s content: blocks of
//! pseudo-random bytes alternating with repeated text), the second with `--changed-permille`
//! bytes of every thousand changed at scattered offsets, then for `--delta off` and `auto`
//! converts v1 then v2 into an empty store (names `pair:v1`, `pair:v2`, so v1 is v2's base
//! image) and measures what v2 adds to the store directory (`du -sb`), its convert and the read of its
//! layer (`export-layer` to /dev/null), under GNU time.

use crate::harness::measure::{cairn_binary, check_gnu_time, Step, Usage};
use crate::harness::sizes::du_sb;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// The bar: with delta frames, v2 adds at most this share of what it adds without.
const ADDED_BAR: f64 = 0.25;

#[derive(Debug, Serialize)]
pub struct PairRow {
    pub delta: String,
    pub v2_added_bytes: u64,
    pub convert_v2: Usage,
    pub read_v2: Usage,
}

pub fn run(
    size_mb: u64,
    permille: u32,
    work: &Path,
    cairn: Option<&Path>,
    json: Option<&Path>,
) -> Result<()> {
    check_gnu_time()?;
    let cairn = cairn_binary(cairn)?;
    crate::harness::work::fresh_dir(work)?;
    let size = size_mb * 1_000_000;
    let (v1, v2) = (work.join("v1.tar"), work.join("v2.tar"));
    eprintln!("delta-pair: writing two layers of one {size_mb} MB file, {permille}\u{2030} of v2's bytes changed");
    crate::harness::big_layer::write_layer(&v1, size, None)?;
    crate::harness::big_layer::write_layer(&v2, size, Some((permille, 0x9E37_79B9_7F4A_7C15)))?;
    let mut rows = Vec::new();
    for delta in ["off", "auto"] {
        let store = work.join(format!("store-{delta}"));
        let cairn_step = || Step::new(&cairn).arg("--store").arg(&store).arg("--quiet");
        cairn_step().arg("init").arg("--delta").arg(delta).run()?;
        cairn_step()
            .arg("convert")
            .arg(&v1)
            .args(["--name", "pair:v1"])
            .run()?;
        let before = du_sb(&store)?;
        let (convert_v2, _) = cairn_step()
            .arg("convert")
            .arg(&v2)
            .args(["--name", "pair:v2"])
            .measure(work)?;
        let v2_added_bytes = du_sb(&store)? - before;
        let (read_v2, _) = cairn_step()
            .args(["export-layer", "pair:v2", "0", "-o", "/dev/null"])
            .measure(work)?;
        rows.push(PairRow {
            delta: delta.into(),
            v2_added_bytes,
            convert_v2,
            read_v2,
        });
    }
    println!("| delta | v2 adds bytes | convert v2 s | convert peak RSS MiB | read v2 s | read peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {} | {:.2} | {} |",
            r.delta,
            r.v2_added_bytes,
            r.convert_v2.wall_s,
            r.convert_v2.max_rss_kib / 1024,
            r.read_v2.wall_s,
            r.read_v2.max_rss_kib / 1024
        );
    }
    let share = rows[1].v2_added_bytes as f64 / rows[0].v2_added_bytes.max(1) as f64;
    println!(
        "with delta frames v2 adds {:.3} of what it adds without (bar {ADDED_BAR}): {}",
        share,
        if share <= ADDED_BAR { "within" } else { "OVER" }
    );
    println!(
        "convert speed auto/off {:.2}, read speed auto/off {:.2}",
        rows[0].convert_v2.wall_s / rows[1].convert_v2.wall_s.max(1e-9),
        rows[0].read_v2.wall_s / rows[1].read_v2.wall_s.max(1e-9)
    );
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    std::fs::remove_dir_all(work).ok();
    Ok(())
}
