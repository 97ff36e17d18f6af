//! `cairn push NAME REGISTRY/REPO:TAG`: an image from the store as an ordinary OCI image.
//! The image is exported (layers re-created exactly, each checked against its diff_id,
//! compressed with gzip deterministically; config byte for byte) into a temporary OCI layout,
//! then its blobs go up one by one (chunked uploads), except those the registry already has
//! (a HEAD request each), and the manifest last, so the tag never names missing blobs.

use super::{Registry, RegistrySpec};
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Index, Manifest};
use crate::ops::export::{ExportOptions, ExportTarget};
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::Sha256Digest;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes per upload request body piece.
const PIECE: usize = 1 << 20;

#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    pub name: String,
    /// `REGISTRY/REPO:TAG`.
    pub target: String,
    pub manifest_digest: String,
    /// Blobs (layers and config) sent, and their bytes.
    pub blobs_uploaded: u64,
    pub bytes_uploaded: u64,
    /// Blobs the registry had already.
    pub blobs_present: u64,
    pub bytes_present: u64,
    pub seconds: f64,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn push(
    store: &Store,
    name: &str,
    spec: &RegistrySpec,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let started = std::time::Instant::now();
    let registry = Registry::connect(spec)?;
    let c = &registry.connection;
    let tag = c.reference.tag().unwrap_or("latest").to_string();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        TempDir(std::env::temp_dir().join(format!("cairn-push-{}-{nanos}", std::process::id())));
    let target = ExportTarget::OciLayout {
        dir: dir.0.clone(),
        reference: Some(tag.clone()),
    };
    crate::ops::export::export(store, name, &ExportOptions::new(target), progress)?;
    let (manifest_digest, manifest_bytes, media_type) = read_manifest(&dir.0)?;
    let manifest: Manifest = oci::parse(&manifest_bytes, "exported manifest")?;
    let mut blobs = vec![(manifest.config.digest.clone(), manifest.config.size)];
    blobs.extend(manifest.layers.iter().map(|l| (l.digest.clone(), l.size)));
    let total: u64 = blobs.iter().map(|(_, size)| size.unwrap_or(0)).sum();
    progress.set_length(total, Unit::Bytes);
    let mut report = PushReport {
        name: name.to_string(),
        target: spec.reference.clone(),
        manifest_digest: manifest_digest.to_string(),
        blobs_uploaded: 0,
        bytes_uploaded: 0,
        blobs_present: 0,
        bytes_present: 0,
        seconds: 0.0,
    };
    for (digest, size) in &blobs {
        let size = size.unwrap_or(0);
        let exists = registry
            .runtime
            .block_on(c.client.blob_exists(&c.reference, digest))
            .map_err(|e| c.error(&format!("blob {digest}"), e))?;
        if exists {
            report.blobs_present += 1;
            report.bytes_present += size;
        } else {
            let path = dir
                .0
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"));
            upload(&registry, &path, digest, size)?;
            report.blobs_uploaded += 1;
            report.bytes_uploaded += size;
        }
        progress.inc(size);
    }
    let content_type = http::HeaderValue::from_str(&media_type)
        .map_err(|e| Error::corrupt("exported manifest", e.to_string()))?;
    registry
        .runtime
        .block_on(
            c.client
                .push_manifest_raw(&c.reference, manifest_bytes, content_type),
        )
        .map_err(|e| c.error(&format!("manifest {tag}"), e))?;
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The manifest the exported layout's index names: digest, bytes, media type.
fn read_manifest(dir: &Path) -> Result<(Sha256Digest, Vec<u8>, String)> {
    let index_path = dir.join("index.json");
    let index_bytes = std::fs::read(&index_path).with_path("read", &index_path)?;
    let index: Index = oci::parse(&index_bytes, "exported index.json")?;
    let desc = index
        .manifests
        .first()
        .ok_or_else(|| Error::corrupt("exported index.json", "lists no manifest"))?;
    let digest = super::parse_digest(&desc.digest, "exported manifest")?;
    let path = dir.join("blobs/sha256").join(digest.to_hex());
    let bytes = std::fs::read(&path).with_path("read", &path)?;
    Ok((digest, bytes, desc.media_type.clone()))
}

/// Sends one blob file in `PIECE`-sized parts.
fn upload(registry: &Registry, path: &Path, digest: &str, size: u64) -> Result<()> {
    let c = &registry.connection;
    let file = std::fs::File::open(path).with_path("open", path)?;
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
                .push_blob_stream(&c.reference, pieces, digest, Some(size)),
        )
        .map_err(|e| c.error(&format!("upload of blob {digest}"), e))?;
    Ok(())
}
