//! optimize's policy: the live blobs below its compression target, oldest first, by round,
//! budget and the free space a round needs.

use crate::error::{Error, Result};
use crate::format::blob::{BlobReader, CompressedWith, TocEntry};
use crate::rewrite::live::LiveSet;
use crate::rewrite::live_entries::live_entries;
use crate::rewrite::plan::Policy;
use crate::rewrite::{stopped, GcReport};
use crate::store::Store;
use crate::BlobId;
use std::collections::{HashMap, HashSet};

/// optimize's choice: the live blobs whose frames were compressed below `target` (a lower
/// level, smaller frames, or not recorded), oldest first, while their bytes add up to at most
/// `round_bytes` (or one larger blob) and to at most `budget_bytes`, and what their rewrite
/// writes fits in `free_bytes` (a blob that does not fit is skipped, a later one may).
///
/// After the choice, it holds what it found: every live blob below the target and those left
/// out for want of space.
#[derive(Clone, Debug)]
pub(super) struct Recompress {
    pub target: CompressedWith,
    pub round_bytes: u64,
    pub budget_bytes: u64,
    pub free_bytes: u64,
    /// Every live blob below the target (those chosen first; those a mount pins too).
    pub below_target: Vec<BelowTarget>,
    /// Blobs below the target left out because what their rewrite writes would not fit in the
    /// free space, with the free bytes each needs.
    pub skipped_for_space: Vec<(BlobId, u64)>,
}

/// A live blob below optimize's target: its id, its bytes, whether a mount pins it.
pub(super) type BelowTarget = (BlobId, u64, bool);

/// Free bytes a round keeps beyond what its new files take: the index batch and its write-ahead
/// log, the rewritten bootstraps, the directories.
pub(super) const SPACE_RESERVE: u64 = 8 << 20;

impl Policy for Recompress {
    fn choose(
        &mut self,
        store: &Store,
        live: &LiveSet,
        pinned: &HashSet<BlobId>,
        report: &mut GcReport,
    ) -> Result<Vec<(BlobId, Vec<TocEntry>)>> {
        let (compact, below_target, skipped_for_space) =
            recompress(store, live, pinned, self, report)?;
        self.below_target = below_target;
        self.skipped_for_space = skipped_for_space;
        Ok(compact)
    }

    fn compressed_with(&self) -> Option<CompressedWith> {
        Some(self.target)
    }
}

/// The blobs to rewrite, every blob below the target, and those skipped for want of space.
type Chosen = (
    Vec<(BlobId, Vec<TocEntry>)>,
    Vec<BelowTarget>,
    Vec<(BlobId, u64)>,
);

/// optimize's round (see `Recompress`). A blob's rewrite needs, free, about its own bytes (its
/// live chunks, recompressed, in a new blob) plus the bytes of the live layer objects naming
/// it (rewritten), all written before the old files are deleted; `SPACE_RESERVE` is kept on
/// top. A blob whose need exceeds what is left is skipped, and a later, smaller one may fit.
fn recompress(
    store: &Store,
    live: &LiveSet,
    pinned: &HashSet<BlobId>,
    limits: &Recompress,
    report: &mut GcReport,
) -> Result<Chosen> {
    let below: Vec<BelowTarget> = below_target(store, live, limits.target)?
        .into_iter()
        .map(|(id, size)| (id, size, pinned.contains(&id)))
        .collect();
    // Bytes of the live layer objects naming each blob below the target.
    let mut object_bytes: HashMap<BlobId, u64> = below.iter().map(|b| (b.0, 0)).collect();
    for (id, object) in &live.objects {
        let path = store.layer_meta_path(id);
        let size = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        for blob in object.blobs() {
            if let Some(sum) = object_bytes.get_mut(&blob.id) {
                *sum += size;
            }
        }
    }
    let mut room = limits.free_bytes.saturating_sub(SPACE_RESERVE);
    let mut chosen = HashSet::new();
    let mut skipped_for_space = Vec::new();
    let mut sum = 0u64;
    for (id, size, _) in below.iter().filter(|b| !b.2) {
        let fits_round = sum + size <= limits.round_bytes || chosen.is_empty();
        if !fits_round || sum + size > limits.budget_bytes {
            break;
        }
        let need = size + object_bytes.get(id).copied().unwrap_or(0);
        if need > room {
            skipped_for_space.push((*id, need + SPACE_RESERVE));
            continue;
        }
        room -= need;
        sum += size;
        chosen.insert(*id);
    }
    let compact = live_entries(store, live, |id, blob| {
        let take = chosen.contains(&id);
        if take {
            report.compacted_blobs += 1;
            report.compacted_bytes += blob.size;
            report.compacted_live_bytes += blob.live;
        }
        take
    })?;
    Ok((compact, below, skipped_for_space))
}

/// The live blobs whose header says their frames were compressed below `target` or says
/// nothing, oldest file first, with their sizes.
fn below_target(
    store: &Store,
    live: &LiveSet,
    target: CompressedWith,
) -> Result<Vec<(BlobId, u64)>> {
    let mut found = Vec::new();
    for id in &live.blobs() {
        let path = store.blob_path(id);
        let reader = BlobReader::open(&path, *id).map_err(|e| stopped(format!("blob {id}"), e))?;
        let below = reader.compressed_with().is_none_or(|with| {
            with.level < target.level || with.frame_size / 1024 < target.frame_size / 1024
        });
        if below {
            let meta = std::fs::metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
            let modified = meta.modified().map_err(|e| Error::io("stat", &path, e))?;
            found.push((modified, *id, meta.len()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, id, size)| (id, size)).collect())
}
