//! cairn: a chunk-level deduplicating store for OCI container images.
//!
//! Images are taken apart into content-defined chunks (FastCDC, BLAKE3 ids), each chunk is kept
//! once, and each image is recorded as a bootstrap (all metadata, including the raw tar
//! headers) plus data blobs, so every layer comes back byte for byte.
//!
//! ```no_run
//! use cairn_engine::{ConvertOptions, InitOptions, NoProgress, PlatformChoice, SourceSpec, Store};
//! # fn main() -> cairn_engine::Result<()> {
//! let store = Store::init("store".as_ref(), &InitOptions::default())?;
//! let report = store.convert(
//!     &ConvertOptions {
//!         source: SourceSpec::parse("oci:images/py:v1")?,
//!         name: "py:v1".into(),
//!         dict: vec![],
//!         platform: PlatformChoice::Default,
//!         replace: false,
//!     },
//!     &NoProgress,
//! )?;
//! println!("stored {} new bytes", report.images[0].added_bytes);
//! # Ok(())
//! # }
//! ```

mod chunk;
mod error;
mod format;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod index;
mod layer;
mod ops;
mod progress;
pub mod sample;
mod source;
mod store;

pub use chunk::{Chunker, ChunkerParams, MAX_CHUNK_SIZE};
pub use error::{Error, Result};
pub use format::bootstrap::{Bootstrap, ChunkRecord, EntryRecord, LayerRecord};
pub use format::store_config::{CompressionParams, StoreConfig, FORMAT_VERSION};
pub use format::{ChunkLocation, Codec};
pub use id::{BlobId, ChunkId, ImageId, Sha256Digest};
pub use index::ImageRecord;
pub use layer::{Compression, EntryKind, EntryMeta};
pub use ops::convert::{ConvertOptions, ConvertReport, Count, ImageReport, LayerReport};
pub use ops::export::{ExportOptions, ExportReport, ExportTarget, ExportedLayer};
pub use ops::gc::GcReport;
pub use ops::images::ImageSummary;
pub use ops::read::ListEntry;
pub use ops::report::diff::{DiffReport, FileDiff, LayerDiff};
pub use ops::report::inventory::{top_layers, InventoryRow, LayerCount};
pub use ops::report::stats::{ImageShare, SharingMatrix, StatsReport};
pub use ops::unpack::{Skipped, UnpackOptions, UnpackReport, XattrFailure};
pub use ops::verify::{Problem, VerifyReport};
pub use progress::{NoProgress, Progress};
pub use source::{Platform, PlatformChoice, SourceSpec};
pub use store::{InitOptions, Store};
