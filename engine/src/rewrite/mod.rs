//! Rewriting (shared machinery, above the store layer and `write`): the commands that move
//! data already stored. `gc` holds the engine (mark what names, leases and delta bases reach;
//! sweep the rest; compact blobs by copying live frames into new blobs and rewriting the layer
//! objects and bootstraps that point at them, in the write order) and the gc policy (which
//! blobs to compact: a live share below `compact_below`); `optimize` is the other policy
//! (which blobs to recompress at a higher zstd level) over the same `Rewrite`. Both exclude
//! writers and honour leases (`crate::lease`).

pub(crate) mod gc;
pub(crate) mod optimize;
