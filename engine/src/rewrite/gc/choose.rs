//! Which live blobs a gc or optimize run rewrites: gc's sparse blobs (their live chunks' share
//! of their stored bytes below a threshold) and optimize's blobs below its target (oldest first,
//! by round, budget and the free space a round needs), with the live ToC entries to copy.

use super::{stopped, BelowTarget, GcReport, LiveSet, Recompress};
use crate::error::{Error, Result};
use crate::format::blob::{decode_toc, BlobReader, CompressedWith, TocEntry};
use crate::store::Store;
use crate::{BlobId, ChunkId};
use std::collections::{HashMap, HashSet};

/// Free bytes a round keeps beyond what its new files take: the index batch and its write-ahead
/// log, the rewritten bootstraps, the directories.
pub(super) const SPACE_RESERVE: u64 = 8 << 20;

/// What `recompress` chose.
pub(super) struct Recompressed {
    pub compact: Vec<(BlobId, Vec<TocEntry>)>,
    pub below_target: Vec<BelowTarget>,
    pub skipped_for_space: Vec<(BlobId, u64)>,
}

/// optimize's round (see `Recompress`). A blob's rewrite needs, free, about its own bytes (its
/// live chunks, recompressed, in a new blob) plus the bytes of the live layer objects naming
/// it (rewritten), all written before the old files are deleted; `SPACE_RESERVE` is kept on
/// top. A blob whose need exceeds what is left is skipped, and a later, smaller one may fit.
pub(super) fn recompress(
    store: &Store,
    live: &LiveSet,
    pinned: &HashSet<BlobId>,
    limits: &Recompress,
    report: &mut GcReport,
) -> Result<Recompressed> {
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
    Ok(Recompressed {
        compact,
        below_target: below,
        skipped_for_space,
    })
}

/// The live blobs whose header says their frames were compressed below `target` or says
/// nothing, oldest file first, with their sizes.
pub(super) fn below_target(
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

/// What `live_entries` tells of a blob: its file's size, its frames' stored bytes and its live
/// chunks' share of them.
pub(super) struct BlobUse {
    pub size: u64,
    pub stored: u64,
    pub live: u64,
}

/// A live chunk use as `live_entries` keeps it: the blob's position among the live blobs, the
/// frame's offset and the first 8 bytes of the chunk's id. 24 bytes, not 72, since a store of
/// a million files holds a million of them at once. Two chunks of one frame sharing 8 bytes of
/// id (a chance of about 2^-64 per pair) would keep a dead chunk as live: space, never data.
type UseKey = (u32, u64, u64);

fn use_key(blob_position: u32, offset: u64, id: &ChunkId) -> UseKey {
    let prefix: [u8; 8] = id.0[..8].try_into().expect("8 of 32 bytes");
    (blob_position, offset, u64::from_le_bytes(prefix))
}

/// The live ToC entries of each live blob `take` accepts.
pub(super) fn live_entries(
    store: &Store,
    live: &LiveSet,
    mut take: impl FnMut(BlobId, BlobUse) -> bool,
) -> Result<Vec<(BlobId, Vec<TocEntry>)>> {
    let mut ids: Vec<BlobId> = live.blobs().into_iter().collect();
    ids.sort();
    let positions: HashMap<BlobId, u32> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as u32))
        .collect();
    let mut used: HashSet<UseKey> = HashSet::new();
    live.for_each_chunk(|id, location| {
        let position = positions.get(&location.blob).copied().unwrap_or(u32::MAX);
        used.insert(use_key(position, location.slice.offset, id));
    })?;
    let mut chosen = Vec::new();
    for (position, id) in ids.into_iter().enumerate() {
        let path = store.blob_path(&id);
        let reader = BlobReader::open(&path, id).map_err(|e| stopped(format!("blob {id}"), e))?;
        let toc = decode_toc(reader.bytes(), &format!("blob {id}"))
            .map_err(|e| stopped(format!("blob {id}"), e))?;
        let total: u64 = toc.iter().map(|e| e.location(id).stored_share()).sum();
        let live: Vec<TocEntry> = toc
            .into_iter()
            .filter(|e| used.contains(&use_key(position as u32, e.slice.offset, &e.id)))
            .collect();
        let live_bytes: u64 = live.iter().map(|e| e.location(id).stored_share()).sum();
        let blob = BlobUse {
            size: reader.bytes().len() as u64,
            stored: total,
            live: live_bytes,
        };
        if take(id, blob) {
            chosen.push((id, live));
        }
    }
    Ok(chosen)
}

/// The live blobs whose live chunks hold less than `compact_below` of their stored bytes, with
/// those live chunks; never a `pinned` one (a mounted image reads it).
pub(super) fn choose_compaction(
    store: &Store,
    live: &LiveSet,
    pinned: &HashSet<BlobId>,
    compact_below: f64,
    report: &mut GcReport,
) -> Result<Vec<(BlobId, Vec<TocEntry>)>> {
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
