//! Carrying a plan out (steps 1 to 5 of the module doc of `rewrite`).

use super::compact::compact_blobs;
use super::index_batch::index_batch;
use super::plan::RewritePlan;
use super::sweep::Sweep;
use super::GcReport;
use crate::error::{Error, Result};
use crate::index::IndexBatch;
use crate::store::StoreWriter;
use crate::ImageId;

/// Carries out a plan in the write order of the module's doc: compaction's new blobs and
/// bootstraps, one synced index batch, then the deletions.
pub(crate) fn apply(writer: &StoreWriter, plan: RewritePlan) -> Result<GcReport> {
    let RewritePlan {
        refs,
        mut live,
        compact,
        with,
        mut report,
        ..
    } = plan;
    let rewrites = compact_blobs(writer, &compact, &mut live, &mut report, with)?;
    let sweep = Sweep::find(writer.store(), &live, &compact, &rewrites, &mut report)?;
    report.freed_bytes = (report.dead_bytes + sweep.compacted_bytes + rewrites.replaced_bytes)
        .saturating_sub(report.new_blob_bytes + rewrites.new_bytes);
    let batch = index_batch(writer.store(), &refs, &live, &rewrites, &sweep, &mut report)?;
    crate::failpoint::check("gc.index.batch")?;
    writer.store().index().commit(batch)?;
    writer.store().index().flush()?;
    // Step 4: the files.
    let dead = sweep.dead_bootstraps.iter();
    for (_, path, _) in dead
        .chain(&sweep.dead_layer_objects)
        .chain(&sweep.dead_blobs)
    {
        crate::failpoint::check("gc.delete")?;
        std::fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    }
    crate::failpoint::check("gc.dir_fsync")?;
    crate::fsutil::fsync_dir(&writer.store().layout().bootstraps_dir())?;
    crate::fsutil::fsync_dir(&writer.store().layout().layers_dir())?;
    crate::fsutil::fsync_dir(&writer.store().layout().blobs_dir())?;
    // Step 5: the records of the deleted bootstraps (kept until the files were gone, so that a
    // crash before leaves them deletable, not orphans).
    let delete_images: Vec<ImageId> = sweep
        .dead_bootstraps
        .iter()
        .filter_map(|(name, _, _)| ImageId::from_hex(name))
        .collect();
    if !delete_images.is_empty() {
        crate::failpoint::check("gc.records.batch")?;
        writer.store().index().commit(IndexBatch {
            delete_images,
            ..IndexBatch::default()
        })?;
    }
    Ok(report)
}
