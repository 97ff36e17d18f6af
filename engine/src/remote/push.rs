//! `cairn push NAME REGISTRY/REPO:TAG`: an image from the store as an ordinary OCI image, or
//! with `--store-format` as a cairn artifact of its store files (`store_push`).
//! The image is exported (layers re-created exactly, each checked against its diff_id,
//! compressed with gzip deterministically; config byte for byte) into a temporary OCI layout,
//! then its blobs go up, several at once (chunked uploads), except those the registry already
//! has (a HEAD request each) or can mount from another of its repositories (`mount_from`, and
//! the one the image was pulled from), and the manifest last, so the tag never names missing
//! blobs.

use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Index, Manifest};
use crate::ops::export::{ExportOptions, ExportTarget};
use crate::progress::Progress;
use crate::registry::upload::{put_manifest, upload_missing, LocalBlob, Transferred};
use crate::registry::{Registry, RegistrySpec};
use crate::store::Store;
use crate::Sha256Digest;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PushReport {
    pub name: String,
    /// `REGISTRY/REPO:TAG`.
    pub target: String,
    /// Pushed as a cairn store-format artifact.
    pub store_format: bool,
    pub manifest_digest: String,
    /// Blobs (layers and config, or the store's objects) sent, found, mounted.
    #[serde(flatten)]
    pub transferred: Transferred,
    pub seconds: f64,
}

/// How to push.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PushOptions {
    /// Push the store's own objects (bootstrap, layer objects, blobs) as a cairn artifact
    /// rather than an ordinary OCI image.
    pub store_format: bool,
    /// Other repositories of the same registry to mount missing blobs from.
    pub mount_from: Vec<String>,
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
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let started = std::time::Instant::now();
    let registry = Registry::connect(spec)?;
    let mount_from = &options.mount_from;
    let (manifest_digest, transferred) = match options.store_format {
        true => super::store_push::push_store_format(store, name, &registry, mount_from, progress)?,
        false => push_image(store, name, &registry, mount_from, progress)?,
    };
    progress.finish();
    Ok(PushReport {
        name: name.to_string(),
        target: spec.reference.clone(),
        store_format: options.store_format,
        manifest_digest: manifest_digest.to_string(),
        transferred,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The image exported as an ordinary OCI image, then sent.
fn push_image(
    store: &Store,
    name: &str,
    registry: &Registry,
    mount_from: &[String],
    progress: &dyn Progress,
) -> Result<(Sha256Digest, Transferred)> {
    let tag = registry
        .connection
        .reference
        .tag()
        .unwrap_or("latest")
        .to_string();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        TempDir(std::env::temp_dir().join(format!("cairn-push-{}-{nanos}", std::process::id())));
    let target = ExportTarget::OciLayout {
        dir: dir.0.clone(),
        reference: Some(tag),
    };
    crate::ops::export::export(store, name, &ExportOptions::new(target), progress)?;
    let (manifest_digest, manifest_bytes, media_type) = read_manifest(&dir.0)?;
    let manifest: Manifest = oci::parse(&manifest_bytes, "exported manifest")?;
    let mut blobs = vec![(manifest.config.digest.clone(), manifest.config.size)];
    blobs.extend(manifest.layers.iter().map(|l| (l.digest.clone(), l.size)));
    let blobs: Vec<LocalBlob> = blobs
        .into_iter()
        .map(|(digest, size)| LocalBlob {
            path: dir
                .0
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
            digest,
            size: size.unwrap_or(0),
        })
        .collect();
    let mut mount_from = mount_from.to_vec();
    mount_from.extend(pulled_from(store, name, registry)?);
    let transferred = upload_missing(registry, &blobs, &mount_from, progress)?;
    put_manifest(registry, manifest_bytes, &media_type)?;
    Ok((manifest_digest, transferred))
}

/// The repository of the pushed-to registry the image was pulled from, if it was: its config
/// (kept byte for byte) is there, and its layers too when they were compressed as cairn does.
fn pulled_from(store: &Store, name: &str, registry: &Registry) -> Result<Option<String>> {
    let record = store.image_record(&store.resolve(name)?)?;
    let source = record.reference.strip_prefix("docker://");
    let source: Option<oci_client::Reference> = source.and_then(|s| s.parse().ok());
    let target = &registry.connection.reference;
    Ok(source
        .filter(|s| s.resolve_registry() == target.resolve_registry())
        .map(|s| s.repository().to_string()))
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
    let digest = crate::source::parse_digest(&desc.digest, "exported manifest")?;
    let path = dir.join("blobs/sha256").join(digest.to_hex());
    let bytes = std::fs::read(&path).with_path("read", &path)?;
    Ok((digest, bytes, desc.media_type.clone()))
}
