//! OCI image layout directories: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`. Indexes may
//! nest (multi-arch); a `:REF` picks the top-level entry annotated with that ref name.

use super::platform::{choose, Platform, PlatformChoice};
use super::{read_verified, ByteRange, ImageSource, LayerSource, RawObject};
use crate::error::{Error, IoContext, Result};
use crate::layer::Compression;
use crate::oci::{self, media_type, Config, Descriptor, Index, Manifest, REF_NAME};
use crate::Sha256Digest;
use std::path::{Path, PathBuf};

const MAX_NESTING: usize = 8;

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn blob_range(&self, digest: &Sha256Digest) -> Result<ByteRange> {
        let path = self.dir.join("blobs/sha256").join(digest.to_hex());
        if !path.is_file() {
            return Err(Error::bad_input(
                format!("blob {digest}"),
                format!(
                    "missing from the layout ({} does not exist)",
                    path.display()
                ),
            ));
        }
        ByteRange::whole_file(&path)
    }

    fn read_json(&self, desc: &Descriptor, what: &str) -> Result<(Sha256Digest, Vec<u8>)> {
        let digest = parse_digest(&desc.digest, what)?;
        let bytes = read_verified(&self.blob_range(&digest)?, &digest, desc.size, what)?;
        Ok((digest, bytes))
    }
}

fn parse_digest(text: &str, what: &str) -> Result<Sha256Digest> {
    Sha256Digest::parse(text).ok_or_else(|| {
        Error::bad_input(
            format!("{what} {text}"),
            "unsupported digest (cairn reads sha256:<64 hex>)",
        )
    })
}

pub fn resolve(
    dir: &Path,
    reference: Option<&str>,
    choice: &PlatformChoice,
) -> Result<Vec<ImageSource>> {
    let layout = Layout {
        dir: dir.to_path_buf(),
    };
    let index_path = dir.join("index.json");
    if !index_path.is_file() {
        return Err(Error::bad_input(
            dir.display().to_string(),
            "not an OCI image layout (no index.json)",
        ));
    }
    let meta = std::fs::metadata(&index_path).with_path("read", &index_path)?;
    if meta.len() > super::MAX_JSON_LEN {
        return Err(Error::bad_input(
            index_path.display().to_string(),
            "index.json is too large",
        ));
    }
    let index_bytes = std::fs::read(&index_path).with_path("read", &index_path)?;
    let index: Index = oci::parse(&index_bytes, &index_path.display().to_string())?;

    let top = top_entries(&index, dir, reference)?;

    let mut manifests = Vec::new();
    for desc in top {
        expand(&layout, desc, None, 0, &mut manifests)?;
    }
    // Read each manifest (and its config, where the index gave no platform).
    let mut candidates = Vec::new();
    for (platform, desc) in manifests {
        let (digest, bytes) = layout.read_json(&desc, "manifest")?;
        let object = format!("manifest {digest}");
        let manifest: Manifest = oci::parse(&bytes, &object)?;
        let (config_digest, config_bytes) =
            layout.read_json(&manifest.config, &format!("config of {object}"))?;
        let config: Config = oci::parse(&config_bytes, &format!("config {config_digest}"))?;
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
        candidates.push((
            platform,
            (
                RawObject {
                    digest,
                    media_type,
                    bytes,
                },
                manifest,
                RawObject {
                    digest: config_digest,
                    media_type: config_media_type,
                    bytes: config_bytes,
                },
                config,
            ),
        ));
    }
    let what = format!(
        "oci:{}{}",
        dir.display(),
        reference.map(|r| format!(":{r}")).unwrap_or_default()
    );
    let chosen = choose(candidates, choice, &what).map_err(Error::Usage)?;
    chosen
        .into_iter()
        .map(|(platform, (manifest_raw, manifest, config_raw, config))| {
            let layers = layer_sources(&layout, &manifest, &config, &manifest_raw.digest)?;
            Ok(ImageSource {
                reference: what.clone(),
                platform: Some(platform),
                manifest: Some(manifest_raw),
                config: Some(config_raw),
                layers,
            })
        })
        .collect()
}

/// The entries of `index.json` to read: those with the ref name `reference`, or all of them
/// when no reference is given, as long as at most one of them carries a ref name.
fn top_entries<'a>(
    index: &'a Index,
    dir: &Path,
    reference: Option<&str>,
) -> Result<Vec<&'a Descriptor>> {
    let top: Vec<&Descriptor> = match reference {
        Some(r) => index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(r))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    if top.is_empty() {
        let refs: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        return Err(Error::bad_input(
            dir.display().to_string(),
            match reference {
                Some(r) => format!("no image with ref {r:?}; refs present: {}", refs.join(", ")),
                None => "index.json lists no manifests".to_string(),
            },
        ));
    }
    if top.len() > 1 && reference.is_none() {
        let refs: Vec<String> = top
            .iter()
            .map(|d| {
                d.annotations
                    .get(REF_NAME)
                    .cloned()
                    .unwrap_or_else(|| d.digest.clone())
            })
            .collect();
        // Several untagged entries that are platforms of one image are fine; several refs are not.
        let named = top
            .iter()
            .filter(|d| d.annotations.contains_key(REF_NAME))
            .count();
        if named > 1 {
            return Err(Error::Usage(format!(
                "{} holds several images ({}); name one as oci:{}:REF",
                dir.display(),
                refs.join(", "),
                dir.display()
            )));
        }
    }
    Ok(top)
}

/// Walks nested indexes down to image manifests, carrying the platform an index gives.
fn expand(
    layout: &Layout,
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
                    format!("indexes nest more than {MAX_NESTING} deep"),
                ));
            }
            let (digest, bytes) = layout.read_json(desc, "index")?;
            let index: Index = oci::parse(&bytes, &format!("index {digest}"))?;
            for child in &index.manifests {
                expand(layout, child, platform.clone(), depth + 1, out)?;
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
    layout: &Layout,
    manifest: &Manifest,
    config: &Config,
    manifest_digest: &Sha256Digest,
) -> Result<Vec<LayerSource>> {
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.as_slice())
        .unwrap_or(&[]);
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
            let bytes = layout.blob_range(&digest)?;
            if let Some(size) = desc.size {
                if size != bytes.len {
                    return Err(Error::bad_input(
                        format!("layer {digest}"),
                        format!("manifest says {size} bytes, the blob has {}", bytes.len),
                    ));
                }
            }
            Ok(LayerSource {
                digest: Some(digest),
                media_type: desc.media_type.clone(),
                compression: Some(compression),
                diff_id: Some(parse_digest(diff_id, "diff_id")?),
                bytes,
            })
        })
        .collect()
}
