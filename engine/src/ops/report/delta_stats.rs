//! What delta frames (`format::delta`) do in a store: the distinct chunks stored as deltas,
//! the bytes they save against plain compression (recorded in each frame when it was written)
//! and the read amplification they add (a delta chunk read alone decodes its bases' frames too).

use crate::error::Result;
use crate::format::layer_meta::LayerMeta;
use crate::store::Store;
use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct DeltaStats {
    /// Distinct chunks stored in delta frames, and their uncompressed bytes.
    pub chunks: u64,
    pub bytes: u64,
    /// Their frames' stored bytes, and what plain zstd makes of them (recorded at write).
    pub stored_bytes: u64,
    pub plain_stored_bytes: u64,
    /// `plain_stored_bytes - stored_bytes`.
    pub saved_bytes: u64,
    /// Bytes decoded per byte read when each delta chunk is read alone: its own frame plus
    /// the frames of its bases (1.0 would be no amplification).
    pub read_amplification: f64,
}

/// Streams the entries of `objects` (each object once) for delta chunks.
pub(crate) fn delta_stats<'o>(
    store: &Store,
    objects: impl IntoIterator<Item = &'o LayerMeta>,
) -> Result<DeltaStats> {
    let mut stats = DeltaStats::default();
    let mut decoded = 0u64;
    crate::view::bases::for_each_delta_frame(store, objects, |location, header, bases| {
        stats.chunks += 1;
        stats.bytes += location.slice.len as u64;
        stats.stored_bytes += location.slice.stored_len as u64;
        stats.plain_stored_bytes += header.plain_stored as u64;
        decoded += location.slice.frame_len as u64;
        decoded += bases
            .iter()
            .map(|(_, l)| l.slice.frame_len as u64)
            .sum::<u64>();
        Ok(())
    })?;
    stats.saved_bytes = stats.plain_stored_bytes.saturating_sub(stats.stored_bytes);
    stats.read_amplification = if stats.bytes == 0 {
        0.0
    } else {
        decoded as f64 / stats.bytes as f64
    };
    Ok(stats)
}
