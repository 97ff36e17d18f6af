//! `cairn-bench big-file`: memory and speed of converting a layer that holds one large file.
//! Generates a bare layer tar with a single file of `--size-mb` MB (streamed to disk: blocks of
//! pseudo-random bytes alternating with blocks of repeated text, so that compression has work),
//! then measures `cairn convert` and `cairn export-layer` of it under GNU time.

use crate::harness::big_layer::write_layer;
use crate::harness::measure::{cairn_binary, check_gnu_time, Step};
use crate::harness::work::fresh_dir;
use anyhow::Result;
use std::path::Path;

/// Memory bar of issue 7: peak RSS converting any image.
const RSS_BAR_MIB: u64 = 256;

pub fn run(size_mb: u64, work: &Path, cairn: Option<&Path>) -> Result<()> {
    check_gnu_time()?;
    let cairn = cairn_binary(cairn)?;
    fresh_dir(work)?;
    let size = size_mb * 1_000_000;
    let layer = work.join("big.tar");
    eprintln!("big-file: writing a layer with one {size_mb} MB file");
    write_layer(&layer, size, None)?;
    let store = work.join("store");
    Step::new(&cairn)
        .arg("--store")
        .arg(&store)
        .arg("init")
        .run()?;
    let (convert, _) = Step::new(&cairn)
        .arg("--store")
        .arg(&store)
        .arg("convert")
        .arg(&layer)
        .arg("--name")
        .arg("big")
        .measure(work)?;
    let (export, _) = Step::new(&cairn)
        .arg("--store")
        .arg(&store)
        .arg("export-layer")
        .arg("big")
        .arg("0")
        .arg("-o")
        .arg("/dev/null")
        .measure(work)?;
    let tar_bytes = std::fs::metadata(&layer)?.len();
    let mb_s = |wall: f64| tar_bytes as f64 / 1e6 / wall.max(1e-9);
    let rss = |kib: u64| kib / 1024;
    println!("| step | tar MB | wall s | CPU s | MB/s | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, usage) in [("convert", convert), ("export-layer", export)] {
        println!(
            "| {what} | {:.1} | {:.2} | {:.2} | {:.1} | {} |",
            tar_bytes as f64 / 1e6,
            usage.wall_s,
            usage.cpu_s,
            mb_s(usage.wall_s),
            rss(usage.max_rss_kib)
        );
    }
    println!(
        "convert peak RSS {} MiB, bar {RSS_BAR_MIB} MiB: {}",
        rss(convert.max_rss_kib),
        if rss(convert.max_rss_kib) <= RSS_BAR_MIB {
            "within"
        } else {
            "OVER"
        }
    );
    std::fs::remove_dir_all(work).ok();
    Ok(())
}
