//! `export`: an image of the store written out as an OCI image layout (`oci:DIR[:REF]`, created
//! or added to, `oci_layout`) or as an archive for `docker load` (`docker-archive:FILE`,
//! `docker_archive`). This file holds the options, the report and what both writers share:
//! the checked level and reference, and the image config to write.
//!
//! Every layer is re-created from its layer metadata object by `read::write_layer_tar`, its
//! entries streamed one block at a time (each chunk checked
//! against its BLAKE3 id, the whole tar against its diff_id) and streamed, compressed or not
//! (`layer::compress`), straight into its file, so memory does not grow with a layer. The
//! config goes out byte for byte as it came in (its digest is the source's); an image converted
//! from a bare layer file has none and gets a minimal one. Talks to `view::layer_tar` (layer tars),
//! `oci` (the JSON written and read back), `source` (the `oci:` syntax) and `fsutil`
//! (temporary files, durable renames). Each writer's file says in what order it writes.

mod docker_archive;
pub(crate) mod oci_layout;

use crate::error::{Error, Result};
use crate::format::bootstrap::{Bootstrap, ImageLayer};
use crate::format::layer_meta::LayerMeta;
use crate::layer::compress::checked_level;
use crate::layer::Compression;
use crate::oci;
use crate::progress::{Progress, Unit};
use crate::source::{split_oci_reference, Platform};
use crate::store::Store;
use crate::Sha256Digest;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

const WRITE_BUFFER: usize = 1 << 20;

/// Where an image is exported to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportTarget {
    /// An OCI image layout directory, created if missing, added to if it exists.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The `:REF` of `oci:DIR:REF`: the ref name the image gets in `index.json`.
        reference: Option<String>,
    },
    /// A `docker save`-style tar for `docker load`.
    DockerArchive {
        /// The archive file to write.
        file: PathBuf,
    },
}

impl ExportTarget {
    /// Parses `oci:DIR[:REF]` or `docker-archive:FILE`.
    pub fn parse(text: &str) -> Result<ExportTarget> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, reference) = split_oci_reference(text, rest)?;
            Ok(ExportTarget::OciLayout { dir, reference })
        } else if let Some(file) = text.strip_prefix("docker-archive:") {
            if file.is_empty() {
                return Err(Error::Usage(format!(
                    "{text}: expected docker-archive:FILE"
                )));
            }
            Ok(ExportTarget::DockerArchive {
                file: PathBuf::from(file),
            })
        } else {
            Err(Error::Usage(format!(
                "{text}: unknown export target; use oci:DIR[:REF] or docker-archive:FILE"
            )))
        }
    }
}

impl std::fmt::Display for ExportTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportTarget::OciLayout { dir, reference } => {
                write!(f, "oci:{}", dir.display())?;
                match reference {
                    Some(r) => write!(f, ":{r}"),
                    None => Ok(()),
                }
            }
            ExportTarget::DockerArchive { file } => write!(f, "docker-archive:{}", file.display()),
        }
    }
}

/// Where `export` writes an image, and how it compresses the layers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The OCI layout or docker archive to write.
    pub target: ExportTarget,
    /// How layers are compressed. A docker archive holds uncompressed layers only.
    pub compression: Compression,
    /// gzip 0 to 9 (default 6), zstd as the zstd library allows (default 3); none takes none.
    pub level: Option<i32>,
    /// The name the image gets in the target: the OCI ref name, or the docker `repo:tag`. An
    /// `oci:DIR:REF` target names it too (the two must then agree). Default: the image's name.
    pub reference: Option<String>,
}

impl ExportOptions {
    /// gzip layers for an OCI layout, plain tars for a docker archive; the default level; the
    /// reference from the target or else the image name.
    pub fn new(target: ExportTarget) -> ExportOptions {
        let compression = match target {
            ExportTarget::OciLayout { .. } => Compression::Gzip,
            ExportTarget::DockerArchive { .. } => Compression::None,
        };
        ExportOptions {
            target,
            compression,
            level: None,
            reference: None,
        }
    }
}

/// One exported layer.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedLayer {
    /// sha256 of the layer as written (compressed); the diff_id for an uncompressed layer.
    pub digest: String,
    /// sha256 of the uncompressed tar, checked against the image's recorded diff_id.
    pub diff_id: String,
    /// The layer's media type as written in the manifest (it names the compression).
    pub media_type: String,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// Bytes as written.
    pub compressed_size: u64,
    /// The blob was already in the layout (from an earlier export) and was left as it was.
    pub already_present: bool,
}

/// What an export wrote.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ExportReport {
    /// The image's name in the store.
    pub name: String,
    /// The target as given (`oci:DIR[:REF]` or `docker-archive:FILE`).
    pub target: String,
    /// The OCI ref name, or the docker `repo:tag`; `None` for a docker archive whose reference
    /// is not a valid `repo:tag` (the image is then loaded untagged).
    pub reference: Option<String>,
    /// The image's platform (`os/arch[/variant]`); `linux/amd64` for a made-up config of an
    /// image whose source stated none.
    pub platform: Option<String>,
    /// The new image manifest (OCI layout only).
    pub manifest_digest: Option<String>,
    /// The digest of the config written (the source's own config, byte for byte, when it had
    /// one).
    pub config_digest: String,
    /// The image had no config (it was converted from a bare layer) and one was made up.
    pub config_synthesized: bool,
    /// The layers' compression (`gzip`, `zstd` or `none`).
    pub compression: String,
    /// One per layer, bottom first.
    pub layers: Vec<ExportedLayer>,
    /// Bytes of the uncompressed layer tars.
    pub tar_bytes: u64,
    /// Bytes of new files in the target (blobs not already present, index.json; or the archive).
    pub bytes_written: u64,
    /// Wall-clock seconds of the export.
    pub seconds: f64,
    /// Throughput: uncompressed tar megabytes (10^6 bytes) per second of `seconds`.
    pub tar_mb_per_s: f64,
}

pub(crate) fn export(
    store: &Store,
    name: &str,
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let started = Instant::now();
    if matches!(options.target, ExportTarget::DockerArchive { .. })
        && options.compression != Compression::None
    {
        return Err(Error::Usage(format!(
            "a docker archive holds uncompressed layers; {} compression applies to OCI layouts only",
            options.compression.name()
        )));
    }
    let level = checked_level(options.compression, options.level)?;
    let reference = reference(name, options)?;
    let (bootstrap, layers) = store.image_layers(name)?;
    let config = ImageConfig::of(name, &bootstrap)?;
    let job = Job {
        store,
        name,
        bootstrap: &bootstrap,
        layers: &layers,
        config,
        compression: options.compression,
        level,
        progress,
    };
    progress.set_message(&format!("export {name}"));
    progress.set_length(bootstrap.logical_bytes(), Unit::Bytes);
    let written = match &options.target {
        ExportTarget::OciLayout { dir, .. } => oci_layout::write(&job, dir, &reference)?,
        ExportTarget::DockerArchive { file } => docker_archive::write(&job, file, &reference)?,
    };
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let tar_bytes = bootstrap.logical_bytes();
    Ok(ExportReport {
        name: name.to_string(),
        target: options.target.to_string(),
        reference: written.reference,
        platform: job.config.platform.as_ref().map(|p| p.to_string()),
        manifest_digest: written.manifest_digest.map(|d| d.to_string()),
        config_digest: job.config.digest.to_string(),
        config_synthesized: job.config.synthesized,
        compression: options.compression.name().to_string(),
        layers: written.layers,
        tar_bytes,
        bytes_written: written.bytes,
        seconds,
        tar_mb_per_s: tar_bytes as f64 / 1e6 / seconds.max(1e-9),
    })
}

/// The name the image gets in the target, checked against the OCI ref grammar
/// (`[A-Za-z0-9]+` joined by `-._:@+/`).
fn reference(name: &str, options: &ExportOptions) -> Result<String> {
    let in_target = match &options.target {
        ExportTarget::OciLayout { reference, .. } => reference.as_deref(),
        ExportTarget::DockerArchive { .. } => None,
    };
    let reference = match (in_target, options.reference.as_deref()) {
        (Some(t), Some(r)) if t != r => {
            return Err(Error::Usage(format!(
                "the target names the ref {t:?} and the options {r:?}; give one"
            )))
        }
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => name,
    };
    let separator = |c: char| "-._:@+/".contains(c);
    let valid = reference
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || separator(c))
        && reference.starts_with(|c: char| c.is_ascii_alphanumeric())
        && reference.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !reference.contains("//");
    if !valid {
        return Err(Error::Usage(format!(
            "{reference:?} is not a valid OCI reference name (letters and digits joined by \
             - . _ : @ + /); name the image in the target with a ref"
        )));
    }
    Ok(reference.to_string())
}

/// The config to write and the platform the image is for.
struct ImageConfig {
    digest: Sha256Digest,
    bytes: Vec<u8>,
    synthesized: bool,
    platform: Option<Platform>,
}

impl ImageConfig {
    /// The source's config, checked against its digest and the layers' diff_ids, or, for an
    /// image without one, a minimal OCI config.
    fn of(name: &str, bootstrap: &Bootstrap) -> Result<ImageConfig> {
        let diff_ids: Vec<Sha256Digest> = bootstrap.layers.iter().map(|l| l.diff_id).collect();
        let Some(config) = &bootstrap.source.config else {
            let platform = bootstrap.source.platform.clone().unwrap_or(Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
                os_version: None,
            });
            let bytes = synthesized_config(&platform, &diff_ids)?;
            return Ok(ImageConfig {
                digest: Sha256Digest::of(&bytes),
                bytes,
                synthesized: true,
                platform: Some(platform),
            });
        };
        let object = format!("config {} of image {name:?}", config.digest);
        let actual = Sha256Digest::of(&config.bytes);
        if actual != config.digest {
            return Err(Error::DigestMismatch {
                object,
                expected: config.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let parsed: oci::Config = serde_json::from_slice(&config.bytes)
            .map_err(|e| Error::corrupt(&object, format!("invalid JSON: {e}")))?;
        let listed: Vec<Option<Sha256Digest>> = parsed
            .diff_ids()
            .iter()
            .map(|d| Sha256Digest::parse(d))
            .collect();
        if listed != diff_ids.iter().copied().map(Some).collect::<Vec<_>>() {
            return Err(Error::corrupt(
                &object,
                format!(
                    "its rootfs.diff_ids ({}) are not the image's {} layers",
                    listed.len(),
                    diff_ids.len()
                ),
            ));
        }
        let from_config = parsed.platform();
        let platform = bootstrap
            .source
            .platform
            .clone()
            .or(
                (!from_config.os.is_empty() && !from_config.architecture.is_empty())
                    .then_some(from_config),
            );
        Ok(ImageConfig {
            digest: config.digest,
            bytes: config.bytes.clone(),
            synthesized: false,
            platform,
        })
    }
}

/// A minimal OCI image config: platform and `rootfs.diff_ids`.
fn synthesized_config(platform: &Platform, diff_ids: &[Sha256Digest]) -> Result<Vec<u8>> {
    oci::encode(
        &oci::Config::minimal(platform, diff_ids),
        "synthesized image config",
    )
}

/// What was written, for the report.
struct Written {
    reference: Option<String>,
    manifest_digest: Option<Sha256Digest>,
    layers: Vec<ExportedLayer>,
    bytes: u64,
}

/// One image being exported.
struct Job<'a> {
    store: &'a Store,
    name: &'a str,
    bootstrap: &'a Bootstrap,
    /// The layer objects of `bootstrap`'s layers, in the same order.
    layers: &'a [LayerMeta],
    config: ImageConfig,
    compression: Compression,
    level: i32,
    progress: &'a dyn Progress,
}

impl Job<'_> {
    fn layer_label(&self, index: usize, layer: &ImageLayer) -> String {
        format!("image {:?} layer {index} ({})", self.name, layer.diff_id)
    }
}

/// `cairn export`.
impl crate::store::Store {
    /// Writes image `name` out as an OCI image layout or a docker archive.
    pub fn export(
        &self,
        name: &str,
        options: &ExportOptions,
        progress: &dyn crate::Progress,
    ) -> Result<ExportReport> {
        export(self, name, options, progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(
            ExportTarget::parse("oci:/a/b:v1").unwrap(),
            ExportTarget::OciLayout {
                dir: "/a/b".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            ExportTarget::parse("docker-archive:x.tar").unwrap(),
            ExportTarget::DockerArchive {
                file: "x.tar".into()
            }
        );
        assert_eq!(
            ExportTarget::parse("oci:out").unwrap().to_string(),
            "oci:out"
        );
        assert!(ExportTarget::parse("out.tar").is_err());
        assert!(ExportTarget::parse("docker-archive:").is_err());
    }

    #[test]
    fn references() {
        let options = |target: &str, reference: Option<&str>| ExportOptions {
            reference: reference.map(str::to_string),
            ..ExportOptions::new(ExportTarget::parse(target).unwrap())
        };
        assert_eq!(
            reference("app:v1", &options("oci:d", None)).unwrap(),
            "app:v1"
        );
        assert_eq!(
            reference("app:v1", &options("oci:d:v2", None)).unwrap(),
            "v2"
        );
        assert_eq!(reference("x", &options("oci:d", Some("r"))).unwrap(), "r");
        assert!(reference("x", &options("oci:d:a", Some("b"))).is_err());
        assert!(reference("bad name", &options("oci:d", None)).is_err());
    }
}
