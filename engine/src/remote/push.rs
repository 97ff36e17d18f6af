//! `cairn push NAME REGISTRY/REPO:TAG`: an image from the store as an ordinary OCI image, or
//! with `--store-format` as a cairn artifact of its store files (`store_push`).
//!
//! An image goes back as it came when it can: when the repository has every layer blob of the
//! image's original manifest, or can mount it from another of the registry's repositories
//! (`mount_from`, and the one the image was pulled from), the original config and manifest
//! (kept byte for byte in the bootstrap, checked against their digests: `original`) are sent
//! as they are, so the image keeps its manifest digest and no layer is uploaded. Otherwise the
//! image is exported (layers re-created exactly, each checked against its diff_id, compressed
//! with gzip deterministically; config byte for byte) into a temporary OCI layout, then its
//! blobs go up, several at once (chunked uploads), except those the registry already has (a
//! HEAD request each) or can mount, and the manifest last, so the tag never names missing
//! blobs. `prepare_push` decides which, before anything is uploaded, so that a caller can say
//! so first.

use super::original::{original, Original};
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Index, Manifest};
use crate::ops::export::{ExportOptions, ExportTarget};
use crate::progress::Progress;
use crate::registry::upload::{
    place_existing, put_manifest, upload_missing, LocalBlob, Transferred,
};
use crate::registry::{Registry, RegistrySpec};
use crate::store::Store;
use crate::Sha256Digest;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How a push sends the image.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PushedAs {
    /// The original manifest and config, byte for byte, over the original layer blobs the
    /// repository has or mounted: the manifest digest is the original's.
    Original,
    /// Layers re-created and re-compressed (gzip): a new manifest digest.
    Recompressed,
    /// The store's own files as a cairn artifact (`--store-format`).
    StoreFormat,
}

#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
/// What a push did.
pub struct PushReport {
    /// The image's name in the store.
    pub name: String,
    /// `REGISTRY/REPO:TAG`.
    pub target: String,
    /// Pushed as a cairn store-format artifact.
    pub store_format: bool,
    /// How the image was sent.
    pub pushed_as: PushedAs,
    /// The digest of the manifest the repository now holds under the tag.
    pub manifest_digest: String,
    /// The manifest the image was converted from, where the store holds it (then equal to
    /// `manifest_digest` when `pushed_as` is `Original`).
    pub original_manifest_digest: Option<String>,
    /// Why the layers were re-compressed (`Recompressed`), else empty.
    pub recompressed_because: String,
    /// Blobs (layers and config, or the store's objects) sent, found, mounted.
    #[serde(flatten)]
    pub transferred: Transferred,
    /// Wall time of the push, seconds.
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

/// A push whose route is decided (`prepare_push`) and nothing uploaded yet: the original
/// layer blobs the repository lacked were looked for and mounted where they could be.
pub struct PushPlan<'s> {
    store: &'s Store,
    name: String,
    registry: Registry,
    target: String,
    /// `mount_from` and the repository the image was pulled from.
    mount_from: Vec<String>,
    route: Route,
    original_manifest_digest: Option<Sha256Digest>,
    /// The original blobs found in the repository or mounted while preparing.
    placed: Transferred,
    started: std::time::Instant,
}

enum Route {
    StoreFormat,
    Original(Original),
    /// Re-compress, and why.
    Recompress(String),
}

impl PushPlan<'_> {
    /// How the image will be sent.
    pub fn pushed_as(&self) -> PushedAs {
        match self.route {
            Route::StoreFormat => PushedAs::StoreFormat,
            Route::Original(_) => PushedAs::Original,
            Route::Recompress(_) => PushedAs::Recompressed,
        }
    }

    /// Why the layers will be re-compressed, when they will.
    pub fn recompressed_because(&self) -> Option<&str> {
        match &self.route {
            Route::Recompress(why) => Some(why),
            _ => None,
        }
    }

    /// The manifest the image was converted from, where the store holds it.
    pub fn original_manifest_digest(&self) -> Option<String> {
        self.original_manifest_digest.map(|d| d.to_string())
    }

    /// Sends the image the way the plan says.
    pub fn push(self, progress: &dyn Progress) -> Result<PushReport> {
        let (store, name, registry) = (self.store, self.name.as_str(), &self.registry);
        let mount_from = &self.mount_from;
        let (manifest_digest, transferred) = match &self.route {
            Route::StoreFormat => {
                super::store_push::push_store_format(store, name, registry, mount_from, progress)?
            }
            Route::Original(original) => {
                push_original(registry, original, mount_from, &self.placed, progress)?
            }
            Route::Recompress(_) => push_image(store, name, registry, mount_from, progress)?,
        };
        progress.finish();
        Ok(PushReport {
            name: self.name.clone(),
            target: self.target.clone(),
            store_format: matches!(self.route, Route::StoreFormat),
            pushed_as: self.pushed_as(),
            manifest_digest: manifest_digest.to_string(),
            original_manifest_digest: self.original_manifest_digest(),
            recompressed_because: self.recompressed_because().unwrap_or_default().to_string(),
            transferred,
            seconds: self.started.elapsed().as_secs_f64(),
        })
    }
}

/// See `Store::prepare_push`.
fn prepare_push<'s>(
    store: &'s Store,
    name: &str,
    spec: &RegistrySpec,
    options: &PushOptions,
) -> Result<PushPlan<'s>> {
    let started = std::time::Instant::now();
    let registry = Registry::connect(spec)?;
    let bootstrap = store.bootstrap(name)?;
    let found = match options.store_format {
        true => Err(String::new()),
        false => original(&bootstrap, name)?,
    };
    let original_manifest_digest = found.as_ref().ok().map(|o| o.manifest_digest);
    let mut mount_from = options.mount_from.clone();
    mount_from.extend(pulled_from(store, name, &registry)?);
    let mut placed = Transferred::default();
    let route = match (options.store_format, found) {
        (true, _) => Route::StoreFormat,
        (false, Err(why)) => Route::Recompress(why),
        (false, Ok(original)) => {
            let (found, missing) = place_existing(&registry, &original.layers, &mount_from)?;
            placed = found;
            match missing.as_slice() {
                [] => Route::Original(original),
                [one] => Route::Recompress(format!(
                    "the repository lacks original layer {one} (and cannot mount it)"
                )),
                [first, ..] => Route::Recompress(format!(
                    "the repository lacks {} of the {} original layers, {first} first (and \
                     cannot mount them)",
                    missing.len(),
                    original.layers.len()
                )),
            }
        }
    };
    Ok(PushPlan {
        store,
        name: name.to_string(),
        registry,
        target: spec.reference.clone(),
        mount_from,
        route,
        original_manifest_digest,
        placed,
        started,
    })
}

/// `cairn push`.
impl Store {
    /// Decides how the image `name` goes to `spec` (nothing is uploaded yet; original layer
    /// blobs the repository lacks are mounted where another repository lends them): as the
    /// original manifest when the repository has (or can mount) every original layer, else
    /// re-compressed. `PushPlan::push` then uploads.
    pub fn prepare_push(
        &self,
        name: &str,
        spec: &RegistrySpec,
        options: &PushOptions,
    ) -> Result<PushPlan<'_>> {
        prepare_push(self, name, spec, options)
    }

    /// Pushes the image `name` to `spec`: `prepare_push`, then `PushPlan::push`.
    pub fn push(
        &self,
        name: &str,
        spec: &RegistrySpec,
        options: &PushOptions,
        progress: &dyn Progress,
    ) -> Result<PushReport> {
        prepare_push(self, name, spec, options)?.push(progress)
    }
}

/// The original config (checked again against its digest as it is written) and manifest,
/// over layers `place_existing` found or mounted.
fn push_original(
    registry: &Registry,
    original: &Original,
    mount_from: &[String],
    placed: &Transferred,
    progress: &dyn Progress,
) -> Result<(Sha256Digest, Transferred)> {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).with_path("create", &dir.0)?;
    let path = dir.0.join("config");
    crate::registry::check_digest(&original.config, &original.config_digest, "config to push")?;
    std::fs::write(&path, &original.config).with_path("write", &path)?;
    let config = LocalBlob {
        path,
        digest: original.config_digest.to_string(),
        size: original.config.len() as u64,
    };
    let sent = upload_missing(registry, &[config], mount_from, progress)?;
    crate::registry::check_digest(
        &original.manifest,
        &original.manifest_digest,
        "manifest to push",
    )?;
    put_manifest(registry, original.manifest.clone(), &original.media_type)?;
    Ok((original.manifest_digest, sent.plus(placed)))
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// A name for it (the caller creates it).
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("cairn-push-{}-{nanos}", std::process::id());
        TempDir(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let dir = TempDir::new();
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
    let transferred = upload_missing(registry, &blobs, mount_from, progress)?;
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
