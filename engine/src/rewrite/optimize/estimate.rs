//! `optimize --dry-run`: what the blobs below the target would shrink to, estimated from a
//! sample of their zstd frames recompressed at the target (raw and delta frames would be
//! copied as they are).

use super::OptimizeReport;
use crate::error::{Error, Result};
use crate::format::blob::{BlobReader, CompressedWith};
use crate::format::Codec;
use crate::rewrite::plan::RewritePlan;
use crate::store::StoreWriter;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Frames recompressed for the estimate, spread evenly over the blobs below the target.
const SAMPLE_FRAMES: usize = 24;

pub(super) fn dry_run(
    writer: &StoreWriter,
    plan: &RewritePlan,
    target: CompressedWith,
    report: &mut OptimizeReport,
) -> Result<()> {
    // Each live frame once: (blob, offset) -> its location; and the stored bytes that would
    // be copied as they are.
    let mut frames = BTreeMap::new();
    for (blob, entries) in &plan.compact {
        for entry in entries {
            frames.insert((*blob, entry.slice.offset), entry.location(*blob));
        }
    }
    let copied: u64 = frames
        .values()
        .filter(|l| l.slice.codec != Codec::Zstd)
        .map(|l| l.slice.stored_len as u64)
        .sum();
    let zstd: Vec<_> = frames
        .values()
        .filter(|l| l.slice.codec == Codec::Zstd)
        .collect();
    let zstd_bytes: u64 = zstd.iter().map(|l| l.slice.stored_len as u64).sum();
    let step = zstd.len().div_ceil(SAMPLE_FRAMES).max(1);
    let sample: Vec<_> = zstd.iter().step_by(step).collect();
    let measured: Vec<(u64, u64)> = sample
        .par_iter()
        .map(|location| {
            let reader =
                BlobReader::open(&writer.store().blob_path(&location.blob), location.blob)?;
            let frame = reader.read_frame(location, writer.store())?;
            let new = crate::write::blob_builder::compress(&frame, target.level)
                .map_err(|e| {
                    Error::corrupt(
                        format!("blob {} offset {}", location.blob, location.slice.offset),
                        format!("zstd compression: {e}"),
                    )
                })?
                .map_or(frame.len(), |c| c.len());
            Ok((location.slice.stored_len as u64, new as u64))
        })
        .collect::<Result<_>>()?;
    let (old, new): (u64, u64) = measured
        .iter()
        .fold((0, 0), |(o, n), (a, b)| (o + a, n + b));
    let ratio = match old {
        0 => 1.0,
        _ => new as f64 / old as f64,
    };
    let estimate = copied + (zstd_bytes as f64 * ratio) as u64;
    report.estimated_new_bytes = Some(estimate);
    report.estimate_sample_frames = sample.len() as u64;
    report.rewritten_blobs = plan.report.compacted_blobs;
    report.rewritten_bytes = plan.report.compacted_bytes;
    report.garbage_bytes = plan.report.dead_bytes;
    report.freed_bytes =
        (plan.report.dead_bytes + plan.report.compacted_bytes).saturating_sub(estimate);
    Ok(())
}
