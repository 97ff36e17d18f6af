//! A rewrite decided without changing anything: the mark, the policy's choice of blobs, the
//! sweep, and the report as estimated before any write (what `--dry-run` prints).

use super::compact::Rewrites;
use super::index_batch::index_batch;
use super::live::LiveSet;
use super::sweep::{refuse_orphans, Sweep};
use super::GcReport;
use crate::error::Result;
use crate::format::blob::{CompressedWith, TocEntry};
use crate::store::Store;
use crate::{BlobId, ImageId};
use std::collections::HashSet;

/// A policy: which live blobs a rewrite rewrites (never one a mount pins), and how.
pub(crate) trait Policy {
    /// The live blobs to rewrite, each with its live ToC entries (those the new blob keeps);
    /// counts them into `report`. `pinned`: the blobs running mounts read.
    fn choose(
        &mut self,
        store: &Store,
        live: &LiveSet,
        pinned: &HashSet<BlobId>,
        report: &mut GcReport,
    ) -> Result<Vec<(BlobId, Vec<TocEntry>)>>;

    /// What the new blobs are compressed with (`None`: the store's own parameters).
    fn compressed_with(&self) -> Option<CompressedWith>;
}

/// What a rewrite will do, decided without changing anything.
pub(crate) struct RewritePlan {
    /// The names, as the index gave them when marking.
    pub(super) refs: Vec<(String, ImageId)>,
    pub(super) live: LiveSet,
    /// Live blobs to rewrite, with their live ToC entries.
    pub compact: Vec<(BlobId, Vec<TocEntry>)>,
    /// What the new blobs are compressed with (`None`: the store's own parameters).
    pub(super) with: Option<CompressedWith>,
    pub report: GcReport,
}

/// Marks, lets `policy` choose the blobs to rewrite and estimates what the run frees. Refuses
/// (before any change) when the store holds orphan bootstraps, unless `force_orphans`.
pub(crate) fn plan_rewrite(
    store: &Store,
    dry_run: bool,
    force_orphans: bool,
    policy: &mut dyn Policy,
) -> Result<RewritePlan> {
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    let refs = store.index().refs()?;
    let leased: Vec<(String, ImageId)> = crate::lease::leased_images(store.layout())?
        .into_iter()
        .map(|id| ("(mounted)".to_string(), id))
        .collect();
    let roots: Vec<(String, ImageId)> = refs.iter().chain(&leased).cloned().collect();
    let live = LiveSet::mark(store, &roots)?;
    let pinned = match leased.is_empty() {
        true => HashSet::new(),
        false => LiveSet::mark(store, &leased)?.blobs(),
    };
    report.live_images = live.bootstraps.len() as u64;
    report.mounted_images = leased.len() as u64;
    report.live_blobs = live.blobs().len() as u64;
    let compact = policy.choose(store, &live, &pinned, &mut report)?;
    let sweep = Sweep::find(store, &live, &compact, &Rewrites::default(), &mut report)?;
    refuse_orphans(store, &sweep, force_orphans, &mut report)?;
    // Estimate: compacted blobs shrink to about their live bytes.
    report.freed_bytes =
        (report.dead_bytes + sweep.compacted_bytes).saturating_sub(report.compacted_live_bytes);
    if dry_run {
        // The index entries the run would drop or re-point (without compaction's moves).
        index_batch(
            store,
            &refs,
            &live,
            &Rewrites::default(),
            &sweep,
            &mut report,
        )?;
    }
    Ok(RewritePlan {
        refs,
        live,
        compact,
        with: policy.compressed_with(),
        report,
    })
}
