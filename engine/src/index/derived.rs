//! What the index derives from the store's files rather than from a commit: an image's record
//! as far as its bootstrap tells (`verify --repair-index`, imports, gc's rewrites), and the
//! names repair gives to images no surviving name reaches.

use super::ImageRecord;
use crate::ImageId;

/// The name given to an image that no surviving name reaches.
pub const RECOVERED_PREFIX: &str = "recovered-";

/// The record of an image as far as its bootstrap tells (`new_chunks` and
/// `added_stored_bytes` are set later; `created` is the file's mtime until then).
pub(crate) fn derived_record(
    id: ImageId,
    bootstrap: &crate::format::bootstrap::Bootstrap,
    files: u64,
    size: u64,
    mtime: std::time::Duration,
) -> ImageRecord {
    let source = &bootstrap.source;
    ImageRecord {
        image_id: id,
        bootstrap_size: size,
        reference: source.reference.clone(),
        platform: source.platform.clone(),
        manifest_digest: source.manifest.as_ref().map(|m| m.digest.to_string()),
        layers: bootstrap.layers.len() as u64,
        files,
        logical_bytes: bootstrap.logical_bytes(),
        new_chunks: 0,
        added_stored_bytes: 0,
        created: mtime.as_secs(),
    }
}
