//! cairn: a chunk-level deduplicating store for OCI container images.
//!
//! Images are taken apart into content-defined chunks (FastCDC, BLAKE3 ids), each chunk is kept
//! once, and each image is recorded as a bootstrap (all metadata, including the raw tar
//! headers) plus data blobs, so every layer comes back byte for byte.
//!
//! ```no_run
//! use cairn_engine::{
//!     ConvertOptions, Follow, InitOptions, NoProgress, SourceSpec, Store, StoreWriter,
//! };
//! # fn main() -> cairn_engine::Result<()> {
//! let store = StoreWriter::init("store".as_ref(), &InitOptions::default())?;
//! let options = ConvertOptions::new(SourceSpec::parse("oci:images/py:v1")?, "py:v1");
//! let report = store.convert(&options, &NoProgress)?;
//! println!("stored {} new bytes", report.images[0].added_bytes);
//! drop(store); // releases the writer locks
//!
//! // Readers need no lock and work while a writer runs.
//! let store = Store::open("store".as_ref())?;
//! let mut out = Vec::new();
//! store.cat("py:v1", "/etc/os-release", Follow::Symlinks, &mut out)?;
//! # Ok(())
//! # }
//! ```

#![warn(unreachable_pub, missing_docs)]
// The formats, the layer reader and the chunker are the `cairn-format` crate; its modules are
// used here under their old names (`crate::format::...`), and its public types are re-exported
// below as they always were.
pub(crate) use cairn_format::{chunk, error, format, id, layer, oci, progress};

/// A method that is `pub` with the `testing` feature (the tests and benches reach into the
/// store through it) and `pub(crate)` without.
macro_rules! testing_pub {
    ($(#[$attr:meta])* fn $($rest:tt)*) => {
        $(#[$attr])*
        #[cfg(feature = "testing")]
        pub fn $($rest)*

        $(#[$attr])*
        #[cfg(not(feature = "testing"))]
        pub(crate) fn $($rest)*
    };
}

// The fail points stay compiled in: the tests of the `cairn` binary set them through its
// environment (`failpoint::ENV`). Only their names are the tests' API.
#[cfg(feature = "testing")]
pub use cairn_format::failpoint;
#[cfg(not(feature = "testing"))]
pub(crate) use cairn_format::failpoint;
mod frame_cache;
mod fsutil;
mod index;
mod layout;
mod lease;
pub mod mount;
mod ops;
mod problem;
#[cfg(feature = "registry")]
mod registry;
#[cfg(feature = "registry")]
pub mod remote;
mod rewrite;
pub mod source;
mod store;
/// Hostile store objects for tests; only with the `testing` feature.
#[cfg(feature = "testing")]
pub mod testing;
mod view;
mod write;

pub use cairn_format::{
    check_image_name, is_invisible, BlobId, Bootstrap, ChunkId, Chunker, ChunkerParams,
    Compression, CompressionParams, Conflict, EntryKind, Error, ImageId, ItemProgress, LayerMetaId,
    NoProgress, NotFound, Progress, Result, Sha256Digest, StoreConfig, Unit, FORMAT_VERSION,
    MAX_IMAGE_NAME,
};
pub use index::ImageRecord;
pub use layout::TmpReclaimed;
/// Offline bundles and chunk dictionaries.
pub use ops::bundle;
pub use ops::convert::{
    ConvertOptions, ConvertReport, Count, DeltaMode, DeltaReport, ImageReport, LayerReport,
    DEFAULT_LAYERS_IN_FLIGHT,
};
pub use ops::export::{ExportOptions, ExportReport, ExportTarget, ExportedLayer};
pub use ops::images::ImageSummary;
pub use ops::plan::{
    EmitRequest, EmitWhat, Emitted, PlanBase, PlanImage, PlanOptions, PlanReport, PlanTotals,
};
pub use ops::read::{Follow, ListEntry, ListName};
pub use ops::repair::{NamedImage, OldIndex, RepairReport, RECOVERED_PREFIX};
pub use ops::report::diff::{DiffReport, FileDiff, LayerDiff};
pub use ops::report::inventory::{top_layers, InventoryRow, LayerCount};
pub use ops::report::stats::{ImageShare, SharingMatrix, StatsReport};
pub use ops::report::tables::{ChunkRow, FileRow};
pub use ops::unpack::{Skipped, UnpackOptions, UnpackReport, XattrFailure};
pub use ops::verify::VerifyReport;
pub use problem::Problem;
pub use rewrite::gc::{GcOptions, DEFAULT_COMPACT_BELOW};
pub use rewrite::optimize::{OptimizeOptions, OptimizeReport};
pub use rewrite::GcReport;
pub use source::{LayerBytes, Platform, PlatformChoice, SourceSpec};
pub use store::{InitOptions, SharedWriter, Store, StoreWriter};
#[cfg(feature = "testing")]
pub use view::whole_image::WholeImage;
pub use view::ChunkReader;
