//! `gc`: the policy that compacts sparse blobs, and the command. A live blob whose live share
//! (its live chunks' share of its stored bytes) is below `compact_below` is rewritten with only
//! its live chunks; everything nothing live uses is deleted. The engine, its write order and
//! its crash windows: the module doc of `rewrite`.

use super::live::LiveSet;
use super::live_entries::live_entries;
use super::plan::{plan_rewrite, Policy, RewritePlan};
use super::GcReport;
use crate::error::{Error, Result};
use crate::format::blob::{CompressedWith, TocEntry};
use crate::store::{Store, StoreWriter};
use crate::BlobId;
use std::collections::HashSet;

/// The compaction threshold `gc` uses unless told otherwise.
pub const DEFAULT_COMPACT_BELOW: f64 = 0.5;

/// How `gc` runs (`GcOptions::default()`, then the `with_*` builders).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct GcOptions {
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Rewrite live blobs whose live share is below this (0 disables compaction).
    pub compact_below: f64,
    /// Delete orphan bootstraps (no name and no image record in the index) too, instead of
    /// refusing to run.
    pub force_orphans: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            compact_below: DEFAULT_COMPACT_BELOW,
            force_orphans: false,
        }
    }
}

impl GcOptions {
    /// Report what would be done and change nothing.
    pub fn with_dry_run(self, dry_run: bool) -> Self {
        GcOptions { dry_run, ..self }
    }

    /// Compact the live blobs whose live share is below this (0 to 1; 0: never).
    pub fn with_compact_below(self, compact_below: f64) -> Self {
        GcOptions {
            compact_below,
            ..self
        }
    }

    /// Delete orphan bootstraps instead of refusing to run (see `rewrite`).
    pub fn with_force_orphans(self, force_orphans: bool) -> Self {
        GcOptions {
            force_orphans,
            ..self
        }
    }
}

/// gc's policy: the live blobs whose live chunks hold less than this share of their stored
/// bytes (0 chooses none), never a pinned one (a mounted image reads it).
struct Sparse(f64);

impl Policy for Sparse {
    fn choose(
        &mut self,
        store: &Store,
        live: &LiveSet,
        pinned: &HashSet<BlobId>,
        report: &mut GcReport,
    ) -> Result<Vec<(BlobId, Vec<TocEntry>)>> {
        let compact_below = self.0;
        report.compact_below = compact_below;
        if compact_below <= 0.0 {
            return Ok(Vec::new());
        }
        live_entries(store, live, |id, blob| {
            let take = !pinned.contains(&id)
                && blob.stored > 0
                && (blob.live as f64) < compact_below * blob.stored as f64;
            if take {
                report.compacted_blobs += 1;
                report.compacted_bytes += blob.size;
                report.compacted_live_bytes += blob.live;
            }
            take
        })
    }

    fn compressed_with(&self) -> Option<CompressedWith> {
        None
    }
}

/// Marks, chooses the blobs to compact and estimates what gc frees.
fn plan(store: &Store, options: &GcOptions) -> Result<RewritePlan> {
    if !(0.0..=1.0).contains(&options.compact_below) {
        return Err(Error::Usage(format!(
            "--compact-below {} must be between 0 and 1",
            options.compact_below
        )));
    }
    plan_rewrite(
        store,
        options.dry_run,
        options.force_orphans,
        &mut Sparse(options.compact_below),
    )
}

/// Runs gc: the plan, then (unless a dry run) its execution.
fn gc(writer: &StoreWriter, options: &GcOptions) -> Result<GcReport> {
    // Held to the end: no mount takes a lease between the marking and the deletions.
    let _guard = crate::lease::LeaseGuard::exclusive(writer.store().layout())?;
    let plan = plan(writer.store(), options)?;
    let mut report = match options.dry_run {
        true => plan.report,
        false => super::apply::apply(writer, plan)?,
    };
    let reclaimed = writer.tmp_reclaimed();
    report.tmp_reclaimed_writers = reclaimed.writers + reclaimed.files;
    report.tmp_reclaimed_bytes = reclaimed.bytes;
    report.freed_bytes += reclaimed.bytes;
    Ok(report)
}

/// `cairn gc`.
impl crate::store::StoreWriter {
    /// Deletes the blobs and bootstraps no named image uses.
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        gc(self, options)
    }
}
