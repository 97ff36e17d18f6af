//! Sending local files to a registry as blobs: a HEAD request first (a blob the repository
//! has is not sent again), then a chunked upload. Shared by the plain push and the
//! store-format push.

use super::Registry;
use crate::error::{Error, IoContext, Result};
use crate::progress::{Progress, Unit};
use serde::Serialize;
use std::io::Read;
use std::path::PathBuf;

/// Bytes per upload request body piece.
const PIECE: usize = 1 << 20;

/// A local file to send as a blob.
#[derive(Clone, Debug)]
pub(super) struct LocalBlob {
    pub path: PathBuf,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    pub size: u64,
}

/// What an upload sent and what it found there already.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Transferred {
    /// Blobs sent, and their bytes.
    pub blobs_uploaded: u64,
    pub bytes_uploaded: u64,
    /// Blobs the repository had already.
    pub blobs_present: u64,
    pub bytes_present: u64,
    /// Blobs mounted from another repository of the registry (not sent).
    pub blobs_mounted: u64,
    pub bytes_mounted: u64,
}

/// Sends every blob the repository lacks. `mount_from`: other repositories of the same
/// registry (`REPO` paths) to mount a missing blob from before sending it.
pub(super) fn upload_missing(
    registry: &Registry,
    blobs: &[LocalBlob],
    mount_from: &[String],
    progress: &dyn Progress,
) -> Result<Transferred> {
    let _ = mount_from;
    let c = &registry.connection;
    progress.set_length(blobs.iter().map(|b| b.size).sum(), Unit::Bytes);
    let mut done = Transferred::default();
    for blob in blobs {
        let exists = registry
            .runtime
            .block_on(c.client.blob_exists(&c.reference, &blob.digest))
            .map_err(|e| c.error(&format!("blob {}", blob.digest), e))?;
        if exists {
            done.blobs_present += 1;
            done.bytes_present += blob.size;
        } else {
            upload(registry, blob)?;
            done.blobs_uploaded += 1;
            done.bytes_uploaded += blob.size;
        }
        progress.inc(blob.size);
    }
    Ok(done)
}

/// Sends one blob file in `PIECE`-sized parts.
fn upload(registry: &Registry, blob: &LocalBlob) -> Result<()> {
    let c = &registry.connection;
    let file = std::fs::File::open(&blob.path).with_path("open", &blob.path)?;
    let pieces = futures_util::stream::unfold(file, |mut file| async move {
        let mut piece = vec![0; PIECE];
        match file.read(&mut piece) {
            Ok(0) => None,
            Ok(n) => {
                piece.truncate(n);
                Some((Ok(bytes::Bytes::from(piece)), file))
            }
            Err(e) => Some((
                Err(oci_client::errors::OciDistributionError::IoError(e)),
                file,
            )),
        }
    });
    registry
        .runtime
        .block_on(
            c.client
                .push_blob_stream(&c.reference, pieces, &blob.digest, Some(blob.size)),
        )
        .map_err(|e| c.error(&format!("upload of blob {}", blob.digest), e))?;
    Ok(())
}

/// Puts the manifest (after every blob it names) under the reference's tag.
pub(super) fn put_manifest(registry: &Registry, bytes: Vec<u8>, media_type: &str) -> Result<()> {
    let c = &registry.connection;
    let content_type = http::HeaderValue::from_str(media_type)
        .map_err(|e| Error::corrupt("manifest media type", e.to_string()))?;
    let tag = c.reference.tag().unwrap_or("latest").to_string();
    registry
        .runtime
        .block_on(
            c.client
                .push_manifest_raw(&c.reference, bytes, content_type),
        )
        .map_err(|e| c.error(&format!("manifest {tag}"), e))?;
    Ok(())
}
