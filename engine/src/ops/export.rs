//! `export`: an image of the store written out as an OCI image layout (`oci:DIR[:REF]`, created
//! or added to) or as an archive for `docker load` (`docker-archive:FILE`).
//!
//! Every layer is re-created from the bootstrap by `read::write_layer_tar` (each chunk checked
//! against its BLAKE3 id, the whole tar against its diff_id) and streamed, compressed or not,
//! straight into its file, so memory does not grow with a layer. The config goes out byte for
//! byte as it came in (its digest is the source's); an image converted from a bare layer file
//! has none and gets a minimal one. Talks to `ops::read` (layer tars), `source` (the `oci:`
//! syntax, the OCI JSON it reads) and `fsutil` (temporary files, durable renames).
//!
//! Write order into an OCI layout, so that an interrupted export never leaves `index.json`
//! naming a blob that is not durably there:
//!   1. `oci-layout`, if missing (so that a failed export leaves a layout a retry can add to);
//!   2. each layer (in parallel) is compressed into `DIR/<tmp>.cairn-partial` while hashed,
//!      fsynced and renamed to `blobs/sha256/<digest>`; then the config and the manifest; then
//!      `blobs/sha256/` is fsynced. A blob already present is kept: a blob's name is its digest,
//!      and compression here is deterministic, so images exported into one layout share blobs.
//!   3. `index.json` is read, its entry with the same ref name replaced (or one added), written
//!      to a temporary file, fsynced and renamed over the old one.
//!
//! Two exports into one layout at the same time may lose one's `index.json` entry (there is no
//! lock, as with other OCI tools); the blobs are safe either way.
//!
//! A docker archive is written to `FILE.cairn-partial`, fsynced and renamed to FILE. Its layers
//! are plain tars (their digest is their diff_id), written one after the other.

use crate::error::{Error, IoContext, Result};
use crate::format::bootstrap::{Bootstrap, LayerRecord};
use crate::fsutil::{self, PartialFile};
use crate::layer::{Compression, DigestWriter};
use crate::ops::read::{write_layer_tar, ChunkReader};
use crate::progress::{Progress, Unit};
use crate::source::{oci_json, split_oci_reference, Platform, MAX_JSON_LEN};
use crate::store::Store;
use crate::Sha256Digest;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYOUT_VERSION: &str = "1.0.0";
const GZIP_DEFAULT_LEVEL: i32 = 6;
const ZSTD_DEFAULT_LEVEL: i32 = 3;
const WRITE_BUFFER: usize = 1 << 20;
const TAR_BLOCK: u64 = 512;

/// Where an image is exported to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportTarget {
    /// An OCI image layout directory, created if missing, added to if it exists.
    OciLayout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// A `docker save`-style tar for `docker load`.
    DockerArchive { file: PathBuf },
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

#[derive(Clone, Debug)]
pub struct ExportOptions {
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
    pub diff_id: String,
    pub media_type: String,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// Bytes as written.
    pub compressed_size: u64,
    /// The blob was already in the layout (from an earlier export) and was left as it was.
    pub already_present: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// The image's name in the store.
    pub name: String,
    pub target: String,
    /// The OCI ref name, or the docker `repo:tag`; `None` for a docker archive whose reference
    /// is not a valid `repo:tag` (the image is then loaded untagged).
    pub reference: Option<String>,
    pub platform: Option<String>,
    /// The new image manifest (OCI layout only).
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    /// The image had no config (it was converted from a bare layer) and one was made up.
    pub config_synthesized: bool,
    pub compression: String,
    pub layers: Vec<ExportedLayer>,
    /// Bytes of the uncompressed layer tars.
    pub tar_bytes: u64,
    /// Bytes of new files in the target (blobs not already present, index.json; or the archive).
    pub bytes_written: u64,
    pub seconds: f64,
    /// Uncompressed tar bytes per second.
    pub tar_mb_per_s: f64,
}

pub fn export(
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
    let bootstrap = store.bootstrap(name)?;
    let config = ImageConfig::of(name, &bootstrap)?;
    let job = Job {
        store,
        name,
        bootstrap: &bootstrap,
        config,
        compression: options.compression,
        level,
        progress,
    };
    progress.set_message(&format!("export {name}"));
    progress.set_length(bootstrap.logical_bytes(), Unit::Bytes);
    let written = match &options.target {
        ExportTarget::OciLayout { dir, .. } => job.to_oci_layout(dir, &reference)?,
        ExportTarget::DockerArchive { file } => job.to_docker_archive(file, &reference)?,
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

/// The level to compress at, checked against what the codec accepts.
fn checked_level(compression: Compression, level: Option<i32>) -> Result<i32> {
    match compression {
        Compression::None => match level {
            None => Ok(0),
            Some(l) => Err(Error::Usage(format!(
                "compression level {l}: uncompressed layers take no level"
            ))),
        },
        Compression::Gzip => {
            let l = level.unwrap_or(GZIP_DEFAULT_LEVEL);
            if (0..=9).contains(&l) {
                Ok(l)
            } else {
                Err(Error::Usage(format!(
                    "gzip compression level {l}: expected 0 to 9"
                )))
            }
        }
        Compression::Zstd => {
            let l = level.unwrap_or(ZSTD_DEFAULT_LEVEL);
            let range = zstd::compression_level_range();
            if range.contains(&l) {
                Ok(l)
            } else {
                Err(Error::Usage(format!(
                    "zstd compression level {l}: expected {} to {}",
                    range.start(),
                    range.end()
                )))
            }
        }
    }
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

/// `reference` as a docker `[host[:port]/]repo/path:tag`, if it is one.
fn docker_repo_tag(reference: &str) -> Option<&str> {
    let (repo, tag) = reference.rsplit_once(':')?;
    let tag_ok = tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let components: Vec<&str> = repo.split('/').collect();
    let path_ok = |component: &str| {
        !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    };
    // A first component with a `.` or a `:port`, or `localhost`, is a registry host.
    let host_ok = |component: &str| {
        let (host, port) = component.split_once(':').unwrap_or((component, "0"));
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            && !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
    };
    let repo_ok = match components.as_slice() {
        [first, rest @ ..]
            if !rest.is_empty() && (first.contains(['.', ':']) || *first == "localhost") =>
        {
            host_ok(first) && rest.iter().all(|c| path_ok(c))
        }
        all => all.iter().all(|c| path_ok(c)),
    };
    (tag_ok && repo_ok).then_some(reference)
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
        let parsed: oci_json::Config = serde_json::from_slice(&config.bytes)
            .map_err(|e| Error::corrupt(&object, format!("invalid JSON: {e}")))?;
        let listed: Vec<Option<Sha256Digest>> = parsed
            .rootfs
            .as_ref()
            .map(|r| r.diff_ids.iter().map(|d| Sha256Digest::parse(d)).collect())
            .unwrap_or_default();
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

#[derive(Serialize)]
struct PlatformJson<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

impl<'a> From<&'a Platform> for PlatformJson<'a> {
    fn from(p: &'a Platform) -> Self {
        PlatformJson {
            architecture: &p.architecture,
            os: &p.os,
            os_version: p.os_version.as_deref(),
            variant: p.variant.as_deref(),
        }
    }
}

/// A minimal OCI image config: platform and `rootfs.diff_ids`.
fn synthesized_config(platform: &Platform, diff_ids: &[Sha256Digest]) -> Result<Vec<u8>> {
    #[derive(Serialize)]
    struct RootFs {
        #[serde(rename = "type")]
        kind: &'static str,
        diff_ids: Vec<String>,
    }
    #[derive(Serialize)]
    struct Config<'a> {
        #[serde(flatten)]
        platform: PlatformJson<'a>,
        config: BTreeMap<String, String>,
        rootfs: RootFs,
    }
    let config = Config {
        platform: platform.into(),
        config: BTreeMap::new(),
        rootfs: RootFs {
            kind: "layers",
            diff_ids: diff_ids.iter().map(|d| d.to_string()).collect(),
        },
    };
    serde_json::to_vec(&config)
        .map_err(|e| Error::corrupt("synthesized image config", format!("encode: {e}")))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformJson<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, &'a str>,
}

impl<'a> Descriptor<'a> {
    fn new(media_type: &'a str, digest: &Sha256Digest, size: u64) -> Self {
        Descriptor {
            media_type,
            digest: digest.to_string(),
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
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
    config: ImageConfig,
    compression: Compression,
    level: i32,
    progress: &'a dyn Progress,
}

impl Job<'_> {
    fn layer_label(&self, index: usize, layer: &LayerRecord) -> String {
        format!("image {:?} layer {index} ({})", self.name, layer.diff_id)
    }

    fn to_oci_layout(&self, dir: &Path, reference: &str) -> Result<Written> {
        // Step 1: the layout itself.
        let mut bytes = prepare_layout(dir)?;
        // Step 2: the blobs. Layers are independent: compressed side by side.
        let layers = self
            .bootstrap
            .layers
            .par_iter()
            .enumerate()
            .map(|(i, layer)| self.write_oci_layer(dir, i, layer))
            .collect::<Result<Vec<_>>>()?;
        bytes += layers
            .iter()
            .filter(|(_, l)| !l.already_present)
            .map(|(_, l)| l.compressed_size)
            .sum::<u64>();
        bytes += write_json_blob(dir, &self.config.digest, &self.config.bytes)?;
        let media_type = self.compression.oci_layer_media_type();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: oci_json::OCI_MANIFEST,
            config: Descriptor::new(
                OCI_CONFIG,
                &self.config.digest,
                self.config.bytes.len() as u64,
            ),
            layers: layers
                .iter()
                .map(|(digest, l)| Descriptor::new(media_type, digest, l.compressed_size))
                .collect(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::corrupt("image manifest", format!("encode: {e}")))?;
        let manifest_digest = Sha256Digest::of(&manifest_bytes);
        bytes += write_json_blob(dir, &manifest_digest, &manifest_bytes)?;
        fsutil::fsync_dir(&dir.join("blobs/sha256"))?;
        // Step 3: the index entry.
        let mut entry = Descriptor::new(
            oci_json::OCI_MANIFEST,
            &manifest_digest,
            manifest_bytes.len() as u64,
        );
        entry.platform = self.config.platform.as_ref().map(PlatformJson::from);
        entry.annotations.insert(oci_json::REF_NAME, reference);
        bytes += update_index(dir, &entry, reference)?;
        Ok(Written {
            reference: Some(reference.to_string()),
            manifest_digest: Some(manifest_digest),
            layers: layers.into_iter().map(|(_, l)| l).collect(),
            bytes,
        })
    }

    /// Compresses one layer into a temporary file in `dir` and renames it to its digest.
    fn write_oci_layer(
        &self,
        dir: &Path,
        index: usize,
        layer: &LayerRecord,
    ) -> Result<(Sha256Digest, ExportedLayer)> {
        let label = self.layer_label(index, layer);
        let partial = PartialFile::new(fsutil::tmp_path(dir, "cairn-partial"));
        let path = partial.path();
        let file = File::create(path).with_path("create", path)?;
        let counted = DigestWriter::new(BufWriter::with_capacity(WRITE_BUFFER, file));
        let mut encoder =
            Encoder::new(self.compression, self.level, counted).with_path("compress into", path)?;
        let mut reader = ChunkReader::new(self.store, self.bootstrap);
        let diff_id = write_layer_tar(
            &mut reader,
            layer,
            &mut encoder,
            path,
            &label,
            self.progress,
        )?;
        let counted = encoder.finish().with_path("compress into", path)?;
        let (digest, compressed_size, buffered) = counted.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io("write", path, e.into_error()))?;
        let dest = blob_path(dir, &digest);
        let already_present = blob_present(&dest, compressed_size);
        if !already_present {
            file.sync_all().with_path("fsync", path)?;
            drop(file);
            std::fs::rename(path, &dest).with_path("rename into place", &dest)?;
            partial.keep();
        }
        let report = ExportedLayer {
            digest: digest.to_string(),
            diff_id: diff_id.to_string(),
            media_type: self.compression.oci_layer_media_type().to_string(),
            size: layer.size,
            compressed_size,
            already_present,
        };
        Ok((digest, report))
    }

    fn to_docker_archive(&self, file: &Path, reference: &str) -> Result<Written> {
        let mut partial_name = file.as_os_str().to_owned();
        partial_name.push(".cairn-partial");
        let partial = PartialFile::new(PathBuf::from(partial_name));
        let path = partial.path();
        let write_err = |e: io::Error| Error::io("write", path, e);
        let handle = File::create(path).with_path("create", path)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, handle);
        let mut reader = ChunkReader::new(self.store, self.bootstrap);
        let mut layers = Vec::new();
        let mut layer_names = Vec::new();
        let mut seen = HashSet::new();
        for (i, layer) in self.bootstrap.layers.iter().enumerate() {
            let label = self.layer_label(i, layer);
            let hex = layer.diff_id.to_hex();
            let name = format!("{hex}/layer.tar");
            // A layer that repeats an earlier one is stored once and named twice.
            if seen.insert(layer.diff_id) {
                // The member's size goes in its header, before the content: it must be right.
                let len = tar_len(layer);
                if len != layer.size {
                    return Err(Error::corrupt(
                        label,
                        format!(
                            "its entries add up to {len} bytes, its size is {}",
                            layer.size
                        ),
                    ));
                }
                append_header(&mut out, &format!("{hex}/"), 0, tar::EntryType::Directory)
                    .map_err(write_err)?;
                append_header(&mut out, &name, layer.size, tar::EntryType::Regular)
                    .map_err(write_err)?;
                write_layer_tar(&mut reader, layer, &mut out, path, &label, self.progress)?;
                pad(&mut out, layer.size).map_err(write_err)?;
            } else {
                self.progress.inc(layer.size);
            }
            layers.push(ExportedLayer {
                digest: layer.diff_id.to_string(),
                diff_id: layer.diff_id.to_string(),
                media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                size: layer.size,
                compressed_size: layer.size,
                already_present: false,
            });
            layer_names.push(name);
        }
        let config_name = format!("{}.json", self.config.digest.to_hex());
        append_file(&mut out, &config_name, &self.config.bytes).map_err(write_err)?;
        let repo_tag = docker_repo_tag(reference);
        #[derive(Serialize)]
        struct ManifestEntry<'a> {
            #[serde(rename = "Config")]
            config: &'a str,
            #[serde(rename = "RepoTags")]
            repo_tags: Vec<&'a str>,
            #[serde(rename = "Layers")]
            layers: &'a [String],
        }
        let manifest = [ManifestEntry {
            config: &config_name,
            repo_tags: repo_tag.into_iter().collect(),
            layers: &layer_names,
        }];
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::corrupt("manifest.json", format!("encode: {e}")))?;
        append_file(&mut out, "manifest.json", &manifest_bytes).map_err(write_err)?;
        if let (Some(repo_tag), Some(top)) = (repo_tag, self.bootstrap.layers.last()) {
            // The pre-manifest.json way of naming the image; `docker load` still reads it.
            let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or((repo_tag, "latest"));
            let repositories =
                BTreeMap::from([(repo, BTreeMap::from([(tag, top.diff_id.to_hex())]))]);
            let bytes = serde_json::to_vec(&repositories)
                .map_err(|e| Error::corrupt("repositories", format!("encode: {e}")))?;
            append_file(&mut out, "repositories", &bytes).map_err(write_err)?;
        }
        // End of archive: two zero blocks.
        out.write_all(&[0; 2 * TAR_BLOCK as usize])
            .map_err(write_err)?;
        let handle = out
            .into_inner()
            .map_err(|e| Error::io("write", path, e.into_error()))?;
        handle.sync_all().with_path("fsync", path)?;
        let bytes = handle.metadata().with_path("read", path)?.len();
        drop(handle);
        fsutil::rename_durably(path, file, "export.archive.rename")?;
        partial.keep();
        Ok(Written {
            reference: repo_tag.map(str::to_string),
            manifest_digest: None,
            layers,
            bytes,
        })
    }
}

fn blob_path(dir: &Path, digest: &Sha256Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.to_hex())
}

/// A blob of the right size is taken to be the one its name says (names are digests); one of
/// another size (a broken copy) is replaced.
fn blob_present(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// Step 1: checks that `dir` is an OCI layout cairn can add to, or a new or empty directory;
/// writes `oci-layout` if missing, then makes `blobs/sha256/`. Returns the bytes written.
fn prepare_layout(dir: &Path) -> Result<u64> {
    let layout_file = dir.join("oci-layout");
    let exists = layout_file.exists();
    if exists {
        let bytes = read_bounded(&layout_file)?;
        let version = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
        if version.as_deref() != Some(LAYOUT_VERSION) {
            return Err(Error::bad_input(
                layout_file.display().to_string(),
                format!(
                    "image layout version {version:?}; cairn adds to version {LAYOUT_VERSION} only"
                ),
            ));
        }
    } else if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_path("read", dir)?;
        if entries.next().is_some() {
            return Err(Error::Usage(format!(
                "{} is not empty and not an OCI image layout (it has no oci-layout file); \
                 export into a new directory or an existing layout",
                dir.display()
            )));
        }
    }
    // `oci-layout` before `blobs/`: an export stopped in between leaves an empty directory or a
    // layout, both of which a re-run accepts; `blobs/` without `oci-layout` would be refused.
    let mut written = 0;
    if !exists {
        std::fs::create_dir_all(dir).with_path("create", dir)?;
        let marker = format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#);
        fsutil::write_durably(
            &fsutil::tmp_path(dir, "cairn-partial"),
            &layout_file,
            marker.as_bytes(),
            "export.layout.rename",
        )?;
        written = marker.len() as u64;
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_path("create", &blobs)?;
    Ok(written)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_path("read", path)?.len();
    if len > MAX_JSON_LEN {
        return Err(Error::bad_input(
            path.display().to_string(),
            format!("{len} bytes is over the {MAX_JSON_LEN}-byte limit"),
        ));
    }
    std::fs::read(path).with_path("read", path)
}

/// Writes a small blob (fsynced, renamed; the caller fsyncs the directory) unless it is there.
/// Returns the bytes written.
fn write_json_blob(dir: &Path, digest: &Sha256Digest, bytes: &[u8]) -> Result<u64> {
    let dest = blob_path(dir, digest);
    if blob_present(&dest, bytes.len() as u64) {
        return Ok(0);
    }
    let partial = PartialFile::new(fsutil::tmp_path(dir, "cairn-partial"));
    let path = partial.path();
    let mut file = File::create(path).with_path("create", path)?;
    file.write_all(bytes).with_path("write", path)?;
    file.sync_all().with_path("fsync", path)?;
    drop(file);
    std::fs::rename(path, &dest).with_path("rename into place", &dest)?;
    partial.keep();
    Ok(bytes.len() as u64)
}

/// Adds `entry` to `DIR/index.json` (created if missing), replacing any entry with the same ref
/// name; other entries and fields are kept. Returns the bytes written.
fn update_index(dir: &Path, entry: &Descriptor, reference: &str) -> Result<u64> {
    let path = dir.join("index.json");
    let object = path.display().to_string();
    let mut index = if path.exists() {
        serde_json::from_slice(&read_bounded(&path)?)
            .map_err(|e| Error::bad_input(&object, format!("invalid JSON: {e}")))?
    } else {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci_json::OCI_INDEX,
            "manifests": [],
        })
    };
    let fields = index
        .as_object_mut()
        .ok_or_else(|| Error::bad_input(&object, "not a JSON object"))?;
    let manifests = fields
        .entry("manifests")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| Error::bad_input(&object, "\"manifests\" is not an array"))?;
    manifests.retain(|m| {
        m.get("annotations")
            .and_then(|a| a.get(oci_json::REF_NAME))
            .and_then(|r| r.as_str())
            != Some(reference)
    });
    manifests.push(
        serde_json::to_value(entry)
            .map_err(|e| Error::corrupt("index entry", format!("encode: {e}")))?,
    );
    let bytes =
        serde_json::to_vec(&index).map_err(|e| Error::corrupt(&object, format!("encode: {e}")))?;
    fsutil::write_durably(
        &fsutil::tmp_path(dir, "cairn-partial"),
        &path,
        &bytes,
        "export.index.rename",
    )?;
    Ok(bytes.len() as u64)
}

/// A layer's compressor.
enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(compression: Compression, level: i32, out: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::None(out),
            // No mtime, no name, OS "unknown": the same tar always gives the same blob.
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(level.unsigned_abs())),
            ),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, level)?),
        })
    }

    /// Ends the compressed stream; returns the writer it went to.
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(out) => Ok(out),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(out) => out.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(out) => out.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// The length of a layer's tar as its record describes it.
fn tar_len(layer: &LayerRecord) -> u64 {
    layer
        .entries
        .iter()
        .map(|e| e.raw_header.len() as u64 + e.meta.size)
        .sum::<u64>()
        + layer.trailer.len() as u64
}

/// A ustar header block for a member of the docker archive (names are under 100 bytes).
fn append_header(
    out: &mut dyn Write,
    name: &str,
    size: u64,
    kind: tar::EntryType,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    out.write_all(header.as_bytes())
}

/// Zeros up to the next 512-byte block after `len` bytes of content.
fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let rest = (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
    out.write_all(&[0; TAR_BLOCK as usize][..rest as usize])
}

fn append_file(out: &mut dyn Write, name: &str, data: &[u8]) -> io::Result<()> {
    append_header(out, name, data.len() as u64, tar::EntryType::Regular)?;
    out.write_all(data)?;
    pad(out, data.len() as u64)
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
    fn levels_and_references() {
        assert_eq!(checked_level(Compression::Gzip, None).unwrap(), 6);
        assert_eq!(checked_level(Compression::Zstd, None).unwrap(), 3);
        assert!(checked_level(Compression::Gzip, Some(10)).is_err());
        assert!(checked_level(Compression::None, Some(1)).is_err());
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
        assert_eq!(docker_repo_tag("app:v1"), Some("app:v1"));
        assert_eq!(
            docker_repo_tag("localhost:5000/team/app:1.0"),
            Some("localhost:5000/team/app:1.0")
        );
        assert_eq!(docker_repo_tag("app"), None);
        assert_eq!(docker_repo_tag("App:v1"), None);
        assert_eq!(docker_repo_tag("app@linux/amd64"), None);
    }
}
