//! An image's record in the `images` column family (bincode; the field order is the format,
//! docs/FORMAT.md).

use crate::ImageId;
use cairn_format::platform::Platform;
use serde::{Deserialize, Serialize};

/// What the store knows about one image without opening its bootstrap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image's id (BLAKE3 of its bootstrap file).
    pub image_id: ImageId,
    /// Bytes of the bootstrap file.
    pub bootstrap_size: u64,
    /// Where the image came from, as the source named itself (e.g. `oci:/images/py:v1`).
    pub reference: String,
    /// The image's platform, when its source stated one.
    pub platform: Option<Platform>,
    /// The digest of the source manifest, when the source had one.
    pub manifest_digest: Option<String>,
    /// Number of layers.
    pub layers: u64,
    /// Regular files over all layers (a file in two layers counts twice).
    pub files: u64,
    /// Bytes of the uncompressed layer tars.
    pub logical_bytes: u64,
    /// Chunks this image was the first to store (indexed by its commit or import); 0 when the
    /// record had to be rebuilt from the bootstrap alone (`verify --repair-index`).
    pub new_chunks: u64,
    /// Bytes of the blob files and layer objects its commit added (compressed, as stored,
    /// including copies of chunks another writer committed first), the bootstrap apart: with
    /// `bootstrap_size`, what its convert or import reported as added. Rebuilt from the
    /// bootstrap alone (`verify --repair-index`): the blobs and layer objects it was the first
    /// to use. Records written before layer objects were counted here (December 2026) count
    /// blobs only.
    pub added_stored_bytes: u64,
    /// Seconds since the Unix epoch.
    pub created: u64,
}
