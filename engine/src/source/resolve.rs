//! From top-level descriptors (an OCI layout's `index.json` entries, or what a registry gives
//! for a tag) to single-platform images: nested indexes walked down to manifests, each
//! manifest's config read, the platforms chosen, and per layer where its bytes are and which
//! digests they must have. Where the documents come from is a `Blobs`.

use super::{ImageSource, LayerBytes, LayerSource, RawObject};
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::oci::limits::{decode_config, decode_index, decode_manifest, MAX_NESTING};
use crate::oci::{media_type, Config, Descriptor, Manifest};
use crate::Sha256Digest;
use cairn_format::platform::{choose, Platform, PlatformChoice};

/// Where an image's documents and layers are.
pub(super) trait Blobs {
    /// The JSON document `desc` names (an index, a manifest or a config), read whole (bounded)
    /// and checked against its digest and size; `what` names it in errors.
    fn read_json(&self, desc: &Descriptor, what: &str) -> Result<(Sha256Digest, Vec<u8>)>;

    /// Where the layer with `digest` (of `size` bytes, if the manifest says) can be read.
    fn layer(&self, digest: &Sha256Digest, size: Option<u64>) -> Result<LayerBytes>;
}

pub(crate) fn parse_digest(text: &str, what: &str) -> Result<Sha256Digest> {
    Sha256Digest::parse(text).ok_or_else(|| {
        Error::bad_input(
            format!("{what} {text}"),
            "unsupported digest (cairn reads sha256:<64 hex>)",
        )
    })
}

/// A manifest read with its config.
type Candidate = (RawObject, Manifest, RawObject, Config);

/// The images under `top`, of the platforms `choice` picks; `what` names the source.
pub(super) fn images(
    blobs: &dyn Blobs,
    top: &[Descriptor],
    choice: &PlatformChoice,
    what: &str,
) -> Result<Vec<ImageSource>> {
    let mut manifests = Vec::new();
    for desc in top {
        expand(blobs, desc, None, 0, &mut manifests)?;
    }
    // Read each manifest (and its config, where the index gave no platform).
    let mut candidates: Vec<(Platform, Candidate)> = Vec::new();
    for (platform, desc) in manifests {
        let (digest, bytes) = blobs.read_json(&desc, "manifest")?;
        let object = format!("manifest {digest}");
        let manifest = decode_manifest(&bytes, &object)?;
        let (config_digest, config_bytes) =
            blobs.read_json(&manifest.config, &format!("config of {object}"))?;
        let config = decode_config(&config_bytes, &format!("config {config_digest}"))?;
        let mut platform = platform.unwrap_or_else(|| config.platform());
        if platform.os_version.is_none() {
            platform.os_version = config.platform().os_version;
        }
        if platform.is_unknown() {
            continue;
        }
        let config_media_type = manifest.config.media_type.clone();
        let media_type = if manifest.media_type.is_empty() {
            desc.media_type.clone()
        } else {
            manifest.media_type.clone()
        };
        let manifest_raw = RawObject {
            digest,
            media_type,
            bytes,
        };
        let config_raw = RawObject {
            digest: config_digest,
            media_type: config_media_type,
            bytes: config_bytes,
        };
        candidates.push((platform, (manifest_raw, manifest, config_raw, config)));
    }
    let chosen = choose(candidates, choice, what).map_err(Error::Usage)?;
    chosen
        .into_iter()
        .map(|(platform, (manifest_raw, manifest, config_raw, config))| {
            let layers = layer_sources(blobs, &manifest, &config, &manifest_raw.digest)?;
            Ok(ImageSource {
                reference: what.to_string(),
                platform: Some(platform),
                manifest: Some(manifest_raw),
                config: Some(config_raw),
                layers,
            })
        })
        .collect()
}

/// Walks nested indexes down to image manifests, carrying the platform an index gives.
fn expand(
    blobs: &dyn Blobs,
    desc: &Descriptor,
    platform: Option<Platform>,
    depth: usize,
    out: &mut Vec<(Option<Platform>, Descriptor)>,
) -> Result<()> {
    let platform = desc.platform.as_ref().map(Platform::from).or(platform);
    match desc.media_type.as_str() {
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
            out.push((platform, desc.clone()));
            Ok(())
        }
        media_type::OCI_INDEX | media_type::DOCKER_LIST => {
            if depth >= MAX_NESTING {
                return Err(Error::bad_input(
                    format!("index {}", desc.digest),
                    format!("indexes nest more than {MAX_NESTING} deep (the nesting limit)"),
                ));
            }
            let (digest, bytes) = blobs.read_json(desc, "index")?;
            let index = decode_index(&bytes, &format!("index {digest}"))?;
            for child in &index.manifests {
                expand(blobs, child, platform.clone(), depth + 1, out)?;
            }
            Ok(())
        }
        other => Err(Error::bad_input(
            format!("descriptor {}", desc.digest),
            format!("unsupported manifest media type {other:?}"),
        )),
    }
}

fn layer_sources(
    blobs: &dyn Blobs,
    manifest: &Manifest,
    config: &Config,
    manifest_digest: &Sha256Digest,
) -> Result<Vec<LayerSource>> {
    let diff_ids = config.diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::bad_input(
            format!("manifest {manifest_digest}"),
            format!(
                "{} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(desc, diff_id)| {
            let digest = parse_digest(&desc.digest, "layer")?;
            let compression = Compression::from_media_type(&desc.media_type).ok_or_else(|| {
                Error::bad_input(
                    format!("layer {digest}"),
                    format!("unsupported layer media type {:?}", desc.media_type),
                )
            })?;
            Ok(LayerSource {
                digest: Some(digest),
                media_type: desc.media_type.clone(),
                compression: Some(compression),
                diff_id: Some(parse_digest(diff_id, "diff_id")?),
                bytes: blobs.layer(&digest, desc.size)?,
            })
        })
        .collect()
}
