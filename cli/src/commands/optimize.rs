//! `cairn optimize`: recompress cold data hard, in the background.

use crate::args::Cli;
use crate::optimize_args::OptimizeArgs;
use crate::output::{bytes, count};
use crate::progress::{Bar, RoundLog};
use cairn_engine::{OptimizeOptions, OptimizeReport, StoreWriter};
use std::time::Duration;

pub fn run(cli: &Cli, args: &OptimizeArgs) -> anyhow::Result<()> {
    // Before any worker thread starts: they inherit it.
    crate::priority::lower_priority(args.nice, args.io_idle)?;
    let seconds = |s: f64| {
        (s.is_finite() && s >= 0.0)
            .then(|| Duration::from_secs_f64(s))
            .ok_or_else(|| anyhow::anyhow!("--max-seconds {s} is not a number of seconds"))
    };
    let budget = |mb: f64| {
        (mb.is_finite() && mb >= 0.0)
            .then_some((mb * 1e6) as u64)
            .ok_or_else(|| anyhow::anyhow!("--budget-mb {mb} is not a number of megabytes"))
    };
    let mut options = OptimizeOptions::default();
    options.level = args.level;
    options.frame_size = args.frame_size;
    options.max_duration = args.max_seconds.map(seconds).transpose()?;
    options.budget_bytes = args.budget_mb.map(budget).transpose()?;
    options.dry_run = args.dry_run;
    options.force_orphans = args.force_orphans;
    let store = StoreWriter::open(&cli.store)?;
    // Without a terminal (cron, a service) a line per round on stderr instead of a bar.
    let report = match RoundLog::unless_terminal(cli.quiet) {
        Some(log) => store.optimize(&options, &log)?,
        None => store.optimize(&options, &Bar::new(cli.quiet || args.json, "optimize"))?,
    };
    if args.json {
        return super::print_json(&report);
    }
    for line in render(&report).lines() {
        println!("{}", crate::output::wrap("", line));
    }
    Ok(())
}

fn render(r: &OptimizeReport) -> String {
    let target = format!(
        "zstd-{} in frames of up to {}",
        r.level,
        bytes(r.frame_size as u64)
    );
    let mut out = match r.blobs_below_target {
        0 => format!("nothing to recompress: every blob is at the target, {target}\n"),
        n => format!(
            "{} blobs ({}) were below the target, {target}\n",
            count(n),
            bytes(r.bytes_below_target)
        ),
    };
    if let Some(estimate) = r.estimated_new_bytes.filter(|_| r.blobs_below_target > 0) {
        out += &format!(
            "would rewrite them into about {} (estimated from {} frames recompressed), \
             freeing about {}\n",
            bytes(estimate),
            count(r.estimate_sample_frames),
            bytes(r.freed_bytes)
        );
        return out;
    }
    if r.rewritten_blobs > 0 {
        out += &format!(
            "rewrote {} blobs ({}) into {} ({} new blobs, {} image bootstraps) in {:.1} s: \
             {:.1} MB/s of chunks\n",
            count(r.rewritten_blobs),
            bytes(r.rewritten_bytes),
            bytes(r.new_blob_bytes),
            count(r.new_blobs),
            count(r.bootstraps_written),
            r.seconds,
            r.chunk_mb_per_s
        );
    }
    if r.garbage_bytes > 0 {
        out += &format!(
            "deleted {} no named image uses (as gc would)\n",
            bytes(r.garbage_bytes)
        );
    }
    if r.remaining_blobs > 0 {
        let mut why = match r.stopped_by.as_deref() {
            Some("budget") => vec!["the budget is spent".to_string()],
            Some("disk-space") => Vec::new(),
            Some(_) => vec!["--max-seconds passed".to_string()],
            None => Vec::new(),
        };
        if let Some(needed) = r.space_needed_bytes {
            why.push(format!(
                "{} of them ({}) did not fit in the {} free: the largest needs {} free",
                count(r.skipped_for_space_blobs),
                bytes(r.skipped_for_space_bytes),
                bytes(r.free_bytes),
                bytes(needed)
            ));
        }
        if r.remaining_pinned_blobs > 0 {
            why.push(format!(
                "{} of them are read by {} mounted images",
                count(r.remaining_pinned_blobs),
                count(r.mounted_images)
            ));
        }
        let why = why.join("; ");
        out += &format!(
            "left {} blobs ({}) below the target: {why}; run `cairn optimize` again to go on\n",
            count(r.remaining_blobs),
            bytes(r.remaining_bytes)
        );
    }
    out += &format!("freed {}\n", bytes(r.freed_bytes));
    out
}
