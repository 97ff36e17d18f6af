//! cairn's formats, without the store: content ids (`id`), the chunker (`chunk`), the files a
//! store is made of and the files it exchanges (`format`: data blobs, bootstraps, layer
//! objects, store configuration, delta frames, bundles, chunk dictionaries), the tar walker
//! that takes a layer apart and the compression around it (`layer`), the OCI image-spec
//! documents and the limits they are read within (`oci`), platforms (`platform`), image names,
//! progress reporting, and the error type all of them return.
//!
//! No RocksDB, no FUSE, no network: `cairn-engine` builds the store on top of this crate, and
//! the fuzz targets (`fuzz/`) reach every decoder through `fuzzing` (the `fuzzing`
//! feature) without building the store.
//! `docs/FORMAT.md` is the normative description of the bytes written here.

mod bytes_serde;
pub mod chunk;
pub mod error;
pub mod failpoint;
pub mod format;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod id;
pub mod image_name;
pub mod layer;
pub mod oci;
pub mod platform;
pub mod progress;

pub use chunk::{Chunker, ChunkerParams};
pub use error::{Conflict, Error, NotFound, Result};
pub use format::bootstrap::Bootstrap;
pub use format::store_config::{CompressionParams, StoreConfig, FORMAT_VERSION};
pub use id::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
pub use image_name::{check_image_name, is_invisible, MAX_IMAGE_NAME};
pub use layer::{Compression, EntryKind};
pub use platform::{Platform, PlatformChoice};
pub use progress::{ItemProgress, NoProgress, Progress, Unit};
