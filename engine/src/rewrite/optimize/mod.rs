//! `optimize`: recompresses the store's cold data hard, after convert stored it fast. Live blobs
//! whose frames were compressed below the target (a lower zstd level or smaller frames, as their
//! header records; or not recorded) are rewritten, oldest file first, with their live chunks
//! compressed at the target, and the images pointed at the new blobs.
//!
//! It is gc's compaction with another policy (`choose::Recompress`) over `rewrite`'s engine, so it
//! shares gc's write path and crash safety (new blobs, rewritten layer objects and bootstraps,
//! one synced index batch, then deletions; the `gc.*` fail points) and gc's sweep: what gc would
//! delete (unnamed images, dead blobs) goes too. A blob is rewritten once, whatever number of
//! images share its frames. Delta frames are copied as stored: they keep their bases.
//!
//! Space: a round writes its new blobs and objects before it deletes the old ones, so it needs
//! about the bytes of the blobs it rewrites free (plus the layer objects naming them, plus a
//! reserve, `SPACE_RESERVE` in `choose.rs`). Each round asks the file system how much is free
//! (`fsutil::free_bytes`) and skips the blobs whose rewrite would not fit, taking smaller ones
//! after them; the report names what was skipped and the free space it needs, so that a nearly
//! full disk makes what progress fits instead of failing the same way every run.
//!
//! Work goes in rounds of about `ROUND_BYTES` of old blobs, each committed on its own, so that
//! a stop (a budget, a kill) loses at most the round in flight and the next run resumes with
//! the blobs still below the target. Each round holds `leases/GUARD` only for itself: a mount
//! starting meanwhile waits for the round, and the blobs a mount's lease pins are left for a
//! later run. Readers need no lock: a reader maps an image's blobs when it opens the image
//! (`Store::image_layers_by_id`), and a mapped file stays readable once deleted, so a read
//! that has started goes on through a round's deletions.

mod choose;
mod estimate;

use crate::error::{Error, Result};
use crate::format::blob::CompressedWith;
use crate::progress::{Progress, Unit};
use crate::rewrite::plan::plan_rewrite;
use crate::store::StoreWriter;
use choose::Recompress;
use serde::Serialize;
use std::time::{Duration, Instant};

/// A round rewrites old blobs up to this many bytes (or one larger blob).
pub(crate) const ROUND_BYTES: u64 = 32 << 20;

/// How `optimize` runs; every field defaults to store.json's `optimize` settings or "no limit".
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OptimizeOptions {
    /// zstd level (default: store.json's `optimize.level`).
    pub level: Option<i32>,
    /// Frame size, bytes (default: store.json's `optimize.frame_size`).
    pub frame_size: Option<u32>,
    /// No round starts after this long.
    pub max_duration: Option<Duration>,
    /// Old blobs rewritten add up to at most this many bytes.
    pub budget_bytes: Option<u64>,
    /// Estimate, change nothing.
    pub dry_run: bool,
    /// Delete orphan bootstraps too, instead of refusing to run (see `rewrite`).
    pub force_orphans: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
/// What `optimize` did (or, in a dry run, estimates).
pub struct OptimizeReport {
    /// Nothing was changed: the figures are estimates.
    pub dry_run: bool,
    /// The target zstd level.
    pub level: i32,
    /// The target frame size, bytes.
    pub frame_size: u32,
    /// Live blobs below the target when the run started.
    pub blobs_below_target: u64,
    /// Bytes of those blob files.
    pub bytes_below_target: u64,
    /// Rounds committed.
    pub rounds: u64,
    /// Old blobs rewritten.
    pub rewritten_blobs: u64,
    /// Bytes of the old blob files rewritten.
    pub rewritten_bytes: u64,
    /// Uncompressed bytes of the live chunks those blobs held (what was recompressed).
    pub chunk_bytes: u64,
    /// New blobs written.
    pub new_blobs: u64,
    /// Bytes of the new blob files.
    pub new_blob_bytes: u64,
    /// Images given a rewritten bootstrap (new image id, same names).
    pub bootstraps_written: u64,
    /// Dead files gc would have deleted (unnamed images, dead blobs), deleted too.
    pub garbage_bytes: u64,
    /// Net bytes the store shrank by.
    pub freed_bytes: u64,
    /// Still below the target after the run: left by a budget or time limit, or pinned by a
    /// running mount.
    pub remaining_blobs: u64,
    /// Bytes of those blob files.
    pub remaining_bytes: u64,
    /// Of those, the blobs a running mount reads (left for a run after it ends).
    pub remaining_pinned_blobs: u64,
    /// Images running mounts hold (their blobs are left for a later run).
    pub mounted_images: u64,
    /// Why the run stopped before the end: "max-seconds", "budget" or "disk-space".
    pub stopped_by: Option<String>,
    /// Free bytes on the store's file system when the last round started.
    pub free_bytes: u64,
    /// Blobs below the target left as they are because rewriting them would not fit in the
    /// free space (the last round's view), their bytes, and the free bytes the largest of
    /// them needs.
    pub skipped_for_space_blobs: u64,
    /// Bytes of those blob files.
    pub skipped_for_space_bytes: u64,
    /// Free bytes the largest skipped blob's rewrite needs.
    pub space_needed_bytes: Option<u64>,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Uncompressed chunk megabytes (10^6 bytes) recompressed per second.
    pub chunk_mb_per_s: f64,
    /// Dry run: the estimated bytes of the new blobs.
    pub estimated_new_bytes: Option<u64>,
    /// Dry run: the zstd frames recompressed to make that estimate.
    pub estimate_sample_frames: u64,
}

/// The target of a run: the options over store.json's defaults.
fn target(writer: &StoreWriter, options: &OptimizeOptions) -> Result<CompressedWith> {
    let defaults = writer.store().config().optimize;
    let params = crate::format::store_config::OptimizeParams {
        level: options.level.unwrap_or(defaults.level),
        frame_size: options.frame_size.unwrap_or(defaults.frame_size),
    };
    params
        .validate()
        .map_err(|e| Error::Usage(format!("optimize: {e}")))?;
    Ok(CompressedWith {
        level: params.level,
        frame_size: params.frame_size,
    })
}

pub(crate) fn optimize(
    writer: &StoreWriter,
    options: &OptimizeOptions,
    progress: &dyn Progress,
) -> Result<OptimizeReport> {
    let target = target(writer, options)?;
    let start = Instant::now();
    let mut report = OptimizeReport {
        dry_run: options.dry_run,
        level: target.level,
        frame_size: target.frame_size,
        ..OptimizeReport::default()
    };
    let budget = options.budget_bytes.unwrap_or(u64::MAX);
    let mut first = true;
    loop {
        // Held for the round: no mount takes a lease between its marking and its deletions.
        let _guard = crate::lease::LeaseGuard::exclusive(writer.store().layout())?;
        report.free_bytes = crate::fsutil::free_bytes(writer.store().root())?;
        let mut policy = Recompress {
            target,
            round_bytes: match options.dry_run {
                true => u64::MAX,
                false => ROUND_BYTES,
            },
            budget_bytes: budget - report.rewritten_bytes,
            free_bytes: report.free_bytes,
            below_target: Vec::new(),
            skipped_for_space: Vec::new(),
        };
        let plan = plan_rewrite(
            writer.store(),
            options.dry_run,
            options.force_orphans,
            &mut policy,
        )?;
        let Recompress {
            below_target,
            skipped_for_space,
            ..
        } = policy;
        report.skipped_for_space_blobs = skipped_for_space.len() as u64;
        report.skipped_for_space_bytes = below_target
            .iter()
            .filter(|b| skipped_for_space.iter().any(|s| s.0 == b.0))
            .map(|b| b.1)
            .sum();
        report.space_needed_bytes = skipped_for_space.iter().map(|s| s.1).max();
        let chosen: Vec<_> = plan.compact.iter().map(|(id, _)| *id).collect();
        let rest = below_target.iter().filter(|b| !chosen.contains(&b.0));
        report.remaining_blobs = rest.clone().count() as u64;
        report.remaining_bytes = rest.clone().map(|b| b.1).sum();
        report.remaining_pinned_blobs = rest.filter(|b| b.2).count() as u64;
        report.mounted_images = plan.report.mounted_images;
        if first {
            first = false;
            report.blobs_below_target = below_target.len() as u64;
            report.bytes_below_target = below_target.iter().map(|b| b.1).sum();
            progress.set_length(report.bytes_below_target, Unit::Bytes);
        }
        if options.dry_run {
            estimate::dry_run(writer, &plan, target, &mut report)?;
            break;
        }
        let last_round = plan.compact.is_empty();
        let unpinned = report.remaining_blobs - report.remaining_pinned_blobs;
        let short_of_space = !skipped_for_space.is_empty();
        if last_round && short_of_space {
            report.stopped_by = Some("disk-space".into());
        } else if last_round && unpinned > 0 && options.budget_bytes.is_some() {
            report.stopped_by = Some("budget".into());
        }
        if last_round && plan.report.dead_bytes == 0 {
            break;
        }
        // Garbage deleted by a round that rewrites nothing frees space: look again after it.
        let look_again = last_round && short_of_space;
        report.chunk_bytes += plan
            .compact
            .iter()
            .flat_map(|(_, entries)| entries)
            .map(|e| e.slice.len as u64)
            .sum::<u64>();
        let done = crate::rewrite::apply::apply(writer, plan)?;
        report.rounds += 1;
        report.rewritten_blobs += done.compacted_blobs;
        report.rewritten_bytes += done.compacted_bytes;
        report.new_blobs += done.new_blobs;
        report.new_blob_bytes += done.new_blob_bytes;
        report.bootstraps_written += done.rewritten_images;
        report.garbage_bytes += done.dead_bytes;
        report.freed_bytes += done.freed_bytes;
        progress.inc(done.compacted_bytes);
        if look_again {
            continue;
        }
        if last_round || report.remaining_blobs == 0 {
            break;
        }
        if options
            .max_duration
            .is_some_and(|max| start.elapsed() >= max)
        {
            report.stopped_by = Some("max-seconds".into());
            break;
        }
    }
    progress.finish();
    report.seconds = start.elapsed().as_secs_f64();
    if report.seconds > 0.0 {
        report.chunk_mb_per_s = report.chunk_bytes as f64 / 1e6 / report.seconds;
    }
    Ok(report)
}

/// `cairn optimize`.
impl crate::store::StoreWriter {
    /// Recompresses blobs below the optimize target (`rewrite::optimize`).
    pub fn optimize(
        &self,
        options: &OptimizeOptions,
        progress: &dyn crate::Progress,
    ) -> Result<OptimizeReport> {
        optimize(self, options, progress)
    }
}

#[cfg(test)]
mod tests;
