//! `docker save` archives: a tar holding `manifest.json` (`[{Config, RepoTags, Layers}]`), the
//! config and one tar per layer (`<id>/layer.tar` or, from Docker 25 on, `blobs/sha256/<hex>`).
//! Layers are read in place from the archive, by offset.

use super::{read_verified, ByteRange, ImageSource, LayerSource, RawObject};
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, media_type, ArchiveManifest};
use crate::Sha256Digest;
use cairn_format::platform::{choose, PlatformChoice};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The regular files of the archive: path -> byte range.
fn list_members(file: &Path) -> Result<HashMap<String, ByteRange>> {
    let object = file.display().to_string();
    let handle = File::open(file).with_path("open", file)?;
    let mut archive = tar::Archive::new(handle);
    let mut members = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| Error::bad_input(&object, format!("not a tar archive: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::bad_input(&object, format!("bad tar entry: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        members.insert(
            path,
            ByteRange {
                path: file.to_path_buf(),
                offset: entry.raw_file_position(),
                len: entry.size(),
            },
        );
    }
    Ok(members)
}

/// `blobs/sha256/<hex>` or `<hex>.json` name their own digest.
fn digest_in_name(name: &str) -> Option<Sha256Digest> {
    let base = name.rsplit('/').next()?;
    Sha256Digest::from_hex(base.strip_suffix(".json").unwrap_or(base))
}

pub(super) fn resolve(file: &Path, choice: &PlatformChoice) -> Result<Vec<ImageSource>> {
    let object = format!("docker-archive:{}", file.display());
    let members = list_members(file)?;
    let member = |name: &str| {
        members.get(name.trim_start_matches("./")).ok_or_else(|| {
            Error::bad_input(
                &object,
                format!("{name} is named in manifest.json but missing from the archive"),
            )
        })
    };
    let manifest_range = members
        .get("manifest.json")
        .ok_or_else(|| Error::bad_input(&object, "no manifest.json: not a docker save archive"))?;
    if manifest_range.len > super::MAX_JSON_LEN {
        return Err(Error::bad_input(&object, "manifest.json is too large"));
    }
    let mut manifest_bytes = Vec::new();
    manifest_range
        .open()?
        .read_to_end(&mut manifest_bytes)
        .with_path("read", file)?;
    let manifests: Vec<ArchiveManifest> =
        oci::parse(&manifest_bytes, &format!("{object} manifest.json"))?;
    if manifests.len() != 1 {
        return Err(Error::Usage(format!(
            "{object} holds {} images; cairn converts archives of exactly one image",
            manifests.len()
        )));
    }
    let manifest = &manifests[0];
    let config_range = member(&manifest.config)?;
    let config_digest = match digest_in_name(&manifest.config) {
        Some(d) => d,
        None => {
            // Older archives may name the config freely; its digest is then what it hashes to.
            let mut bytes = Vec::new();
            config_range
                .open()?
                .take(super::MAX_JSON_LEN)
                .read_to_end(&mut bytes)
                .with_path("read", file)?;
            Sha256Digest::of(&bytes)
        }
    };
    let config_bytes = read_verified(config_range, &config_digest, None, "config")?;
    let config =
        crate::oci::limits::decode_config(&config_bytes, &format!("config {config_digest}"))?;
    let platform = config.platform();
    choose(vec![(platform.clone(), ())], choice, &object).map_err(Error::Usage)?;

    let diff_ids = config.diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::bad_input(
            &object,
            format!(
                "manifest.json lists {} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(name, diff_id)| {
            let diff_id = Sha256Digest::parse(diff_id).ok_or_else(|| {
                Error::bad_input(
                    format!("config {config_digest}"),
                    format!("bad diff_id {diff_id:?}"),
                )
            })?;
            Ok(LayerSource {
                digest: digest_in_name(name),
                media_type: String::new(),
                compression: None,
                diff_id: Some(diff_id),
                bytes: super::LayerBytes::File(member(name)?.clone()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(vec![ImageSource {
        reference: match manifest.repo_tags.as_deref() {
            Some([tag, ..]) => format!("{object} ({tag})"),
            _ => object.clone(),
        },
        platform: Some(platform),
        manifest: Some(RawObject {
            digest: Sha256Digest::of(&manifest_bytes),
            media_type: media_type::DOCKER_SAVE_MANIFEST.into(),
            bytes: manifest_bytes,
        }),
        config: Some(RawObject {
            digest: config_digest,
            media_type: media_type::DOCKER_CONFIG.into(),
            bytes: config_bytes,
        }),
        layers,
    }])
}
