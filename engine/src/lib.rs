//! cairn: a chunk-level deduplicating store for OCI container images.
//!
//! Images are taken apart into content-defined chunks (FastCDC, BLAKE3 ids), each chunk is kept
//! once, and each image is recorded as a bootstrap (all metadata, including the raw tar
//! headers) plus data blobs, so every layer comes back byte for byte.
//!
//! ```no_run
//! use cairn_engine::{
//!     ConvertOptions, Follow, InitOptions, NoProgress, PlatformChoice, SourceSpec, Store,
//!     StoreWriter,
//! };
//! # fn main() -> cairn_engine::Result<()> {
//! let store = StoreWriter::init("store".as_ref(), &InitOptions::default())?;
//! let report = store.convert(
//!     &ConvertOptions {
//!         source: SourceSpec::parse("oci:images/py:v1")?,
//!         name: "py:v1".into(),
//!         dict: vec![],
//!         platform: PlatformChoice::Default,
//!         replace: false,
//!         delta: None,
//!         layers_in_flight: None,
//!         optimize: false,
//!     },
//!     &NoProgress,
//! )?;
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

// Without the `store` feature only the decoders remain (for the fuzz targets); the writers and
// readers they sit beside are then unused.
#![cfg_attr(not(feature = "store"), allow(dead_code, unused_imports))]

mod bytes_serde;
mod chunk;
mod error;
pub mod failpoint;
mod format;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod image_name;
#[cfg(feature = "store")]
mod index;
mod layer;
#[cfg(feature = "store")]
mod layout;
#[cfg(feature = "store")]
pub mod mount;
mod oci;
#[cfg(feature = "store")]
mod ops;
mod progress;
pub mod source;
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
#[doc(hidden)]
pub mod testing;

pub use chunk::{Chunker, ChunkerParams};
pub use error::{Error, Result};
pub use format::bootstrap::Bootstrap;
pub use format::store_config::{CompressionParams, StoreConfig, FORMAT_VERSION};
pub use id::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
pub use image_name::{check_image_name, MAX_IMAGE_NAME};
#[cfg(feature = "store")]
pub use index::ImageRecord;
pub use layer::{Compression, EntryKind};
#[cfg(feature = "store")]
pub use layout::TmpReclaimed;
/// Offline bundles and chunk dictionaries.
#[cfg(feature = "store")]
pub use ops::bundle;
#[cfg(feature = "store")]
pub use ops::convert::{
    ConvertOptions, ConvertReport, Count, DeltaMode, DeltaReport, ImageReport, LayerReport,
    DEFAULT_LAYERS_IN_FLIGHT,
};
#[cfg(feature = "store")]
pub use ops::export::{ExportOptions, ExportReport, ExportTarget, ExportedLayer};
#[cfg(feature = "store")]
pub use ops::gc::{GcOptions, GcReport, DEFAULT_COMPACT_BELOW};
#[cfg(feature = "store")]
pub use ops::images::ImageSummary;
#[cfg(feature = "store")]
pub use ops::optimize::{lower_priority, OptimizeOptions, OptimizeReport};
#[cfg(feature = "store")]
pub use ops::plan::{
    EmitRequest, EmitWhat, Emitted, PlanBase, PlanImage, PlanOptions, PlanReport, PlanTotals,
};
#[cfg(feature = "store")]
pub use ops::read::{ChunkReader, Follow, ListEntry, ListName};
#[cfg(feature = "store")]
pub use ops::repair::{NamedImage, OldIndex, RepairReport, RECOVERED_PREFIX};
#[cfg(feature = "store")]
pub use ops::report::diff::{DiffReport, FileDiff, LayerDiff};
#[cfg(feature = "store")]
pub use ops::report::inventory::{top_layers, InventoryRow, LayerCount};
#[cfg(feature = "store")]
pub use ops::report::stats::{ImageShare, SharingMatrix, StatsReport};
#[cfg(feature = "store")]
pub use ops::report::tables::{for_each_chunk, for_each_file, ChunkRow, FileRow};
#[cfg(feature = "store")]
pub use ops::unpack::{Skipped, UnpackOptions, UnpackReport, XattrFailure};
#[cfg(feature = "store")]
pub use ops::verify::{Problem, VerifyReport};
#[cfg(feature = "store")]
pub use ops::whole_image::WholeImage;
pub use progress::{ItemProgress, NoProgress, Progress, Unit};
pub use source::{LayerBytes, Platform, PlatformChoice, SourceSpec};
#[cfg(feature = "store")]
pub use store::{InitOptions, SharedWriter, Store, StoreWriter};
