//! Rewriting (shared machinery, above the store layer and `write`): moving data already
//! stored. The engine here marks what is live, lets a policy choose the live blobs to rewrite,
//! sweeps the rest, and carries the rewrite out in the write order below; `gc` and `optimize`
//! are the two policies and commands over it:
//! - `gc` (`gc.rs`): compact the blobs whose live share is below a threshold;
//! - `optimize` (`optimize/`): recompress the blobs below a compression target, in rounds.
//!
//! Live = the bootstraps of named images (and of images a running mount holds a lease on,
//! `crate::lease`), the layer objects they name, the blobs those objects' blob tables name and
//! the bases of their delta frames; everything else in `bootstraps/`, `layers/` and `blobs/`
//! is garbage (removed images, or files a crashed convert or gc left before its index batch).
//! A blob chosen by the policy is compacted (`compact.rs`): its live chunks are written into
//! new blobs, the layer objects that use them are rewritten, and so the bootstraps naming those
//! (which gives those images new ids; their names follow). The blobs a mount reads are never
//! chosen: the mount reads them where it found them.
//!
//! Write order, the same as convert's, so that a crash at any instant leaves every named image
//! readable and the index naming no missing file (`apply.rs`):
//!   1. new blobs (compaction): written under `tmp/`, fsynced, renamed into `blobs/`, fsynced;
//!   2. rewritten layer objects, then rewritten bootstraps: the same, into `layers/` and
//!      `bootstraps/`;
//!   3. one synced index batch (`index_batch.rs`): names point at the rewritten images, their
//!      records move, layer keys follow rewritten objects or are dropped with dead ones, chunk
//!      entries naming dead or compacted blobs are re-pointed or dropped, records of unnamed
//!      images are dropped;
//!   4. only then are the dead files deleted and their directories fsynced;
//!   5. one more synced batch drops the image records of the deleted bootstraps.
//!
//! Orphans. A bootstrap no name (and no lease) reaches is deleted only when the index holds
//! its image record: every writer commits an image's record before its bootstrap is in place
//! (`image_write::publish_bootstrap`), `rm` keeps the record, and a rewrite drops it only after
//! deleting the file (step 5). So a record without a name marks an image that was removed (or
//! whose convert stopped before naming it), and its space is freed. A dead bootstrap without
//! any record is an orphan: the index never knew it or has lost it (emptied, created afresh,
//! damaged), and nothing proves it unused. gc and optimize then refuse to run, naming
//! `verify --repair-index` (which names every such image `recovered-<id>`), unless told
//! `--force-orphans` (`sweep.rs`). A store last written by a cairn release before this rule
//! holds no record for images it removed: the first gc asks for `--force-orphans` once.
//!
//! Both commands exclude every other writer (`WRITERS`, see `layout.rs`); opening the store
//! removed what dead writers left under `tmp/`, which gc's report counts
//! (`tmp_reclaimed_bytes`). Each holds `leases/GUARD` from its marking to its deletions.
//!
//! A crash before 3 leaves new files no name reaches, after it old ones; the next gc removes
//! either. Memory: the bootstraps and the open layer objects' tables, and (for compaction and
//! the re-pointing of index entries) sets of chunk uses; entries are streamed, never held.

mod apply;
mod compact;
pub(crate) mod gc;
mod index_batch;
mod live;
mod live_entries;
pub(crate) mod optimize;
mod plan;
mod report;
mod sweep;

use crate::error::Error;
use crate::{BlobId, ChunkId};

pub use report::GcReport;

/// A chunk as a bootstrap uses it: which copy (blob, frame offset) of which chunk.
type ChunkUse = (BlobId, u64, ChunkId);

fn stopped(what: String, e: Error) -> Error {
    Error::Usage(format!(
        "gc stopped, nothing was deleted: {what}: {e}; run `cairn verify`"
    ))
}
