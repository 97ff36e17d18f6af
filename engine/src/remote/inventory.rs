//! `cairn inventory docker://REGISTRY/REPO`: one row per tag, platform and layer, read from
//! the registry's tag list, indexes, manifests and configs only (no layer is downloaded),
//! several tags at a time.
//!
//! One tag never stops the inventory: a tag (or one platform of it) that cannot be read is a
//! row of kind `error` carrying the reason, and a cairn store-format artifact (`push
//! --store-format`) is one row of kind `cairn-store`, since its layers are store files with no
//! diff_ids. Only the tag list itself, when it cannot be read, fails the whole.

use crate::error::{Error, Result};
use crate::oci::limits::{decode_config, decode_index, decode_manifest};
use crate::oci::media_type;
use crate::progress::{Progress, Unit};
use crate::registry::{
    check_digest, document_media_type, manifest_at, Connection, Registry, RegistrySpec,
    MANIFEST_TYPES,
};
use crate::Sha256Digest;
use futures_util::StreamExt;
use serde::Serialize;

/// Tags read at the same time.
const TAGS_IN_FLIGHT: usize = 8;
/// Tags asked for per page of the tag list.
const TAG_PAGE: usize = 1000;

/// Which tags of the repository.
#[derive(Clone, Debug)]
pub enum Tags {
    /// The reference's own tag (or `latest`).
    Given,
    /// Tags matching a pattern (`*` any run of characters, `?` one character).
    Matching(String),
    /// Every tag the repository lists.
    All,
}

/// What a row of the remote inventory describes.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// A layer of an ordinary image.
    Image,
    /// A cairn store-format artifact (`push --store-format`): one row for the whole artifact,
    /// its size the sum of its files.
    CairnStore,
    /// A tag, or one platform of it, that could not be read: `error` says why.
    Error,
}

impl RowKind {
    /// The word the CSV and table columns use (`image`, `cairn-store`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Image => "image",
            RowKind::CairnStore => "cairn-store",
            RowKind::Error => "error",
        }
    }
}

/// One layer of one platform of one tag: the local inventory's columns that a registry can
/// answer without the layers; or one store-format artifact, or one tag that could not be read
/// (`kind`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RemoteRow {
    /// `REPO:TAG`.
    pub name: String,
    /// What the row describes.
    pub kind: RowKind,
    /// Empty when the tag itself could not be read.
    pub manifest_digest: String,
    /// The platform's CPU architecture (e.g. `amd64`); empty when the registry states none.
    pub architecture: String,
    /// The platform's operating system (e.g. `linux`); empty when none is stated.
    pub os: String,
    /// The architecture variant (e.g. `v8`); empty when there is none.
    pub variant: String,
    /// The OS version (Windows images); empty when there is none.
    pub os_version: String,
    /// `None` on a store-format or error row.
    pub layer_index: Option<usize>,
    /// The layer blob's digest (`sha256:...`); empty on other rows.
    pub layer_digest: String,
    /// Bytes of the layer blob as the manifest states them (a store-format row: of all its
    /// files).
    pub layer_size: u64,
    /// The digest of the layer's uncompressed tar, from the image config; empty on other rows.
    pub diff_id: String,
    /// Why the tag or platform could not be read (an `error` row), else empty.
    pub error: String,
}

impl RemoteRow {
    fn new(name: &str, kind: RowKind, manifest_digest: String) -> RemoteRow {
        RemoteRow {
            name: name.to_string(),
            kind,
            manifest_digest,
            architecture: String::new(),
            os: String::new(),
            variant: String::new(),
            os_version: String::new(),
            layer_index: None,
            layer_digest: String::new(),
            layer_size: 0,
            diff_id: String::new(),
            error: String::new(),
        }
    }

    fn error(name: &str, manifest_digest: String, error: &Error) -> RemoteRow {
        RemoteRow {
            error: error.to_string(),
            ..RemoteRow::new(name, RowKind::Error, manifest_digest)
        }
    }
}

/// The rows of the tags `tags` picks in the repository `spec` names, sorted by tag, platform
/// and layer; a tag that cannot be read is an `error` row. `progress` counts tags.
pub fn remote_inventory(
    spec: &RegistrySpec,
    tags: &Tags,
    progress: &dyn Progress,
) -> Result<Vec<RemoteRow>> {
    let registry = Registry::connect(spec)?;
    let c = &registry.connection;
    let wanted: Vec<String> = match tags {
        Tags::Given => vec![c.reference.tag().unwrap_or("latest").to_string()],
        Tags::Matching(pattern) => registry
            .runtime
            .block_on(all_tags(c))?
            .into_iter()
            .filter(|t| matches(pattern, t))
            .collect(),
        Tags::All => registry.runtime.block_on(all_tags(c))?,
    };
    progress.set_length(wanted.len() as u64, Unit::Items);
    let results: Vec<Vec<RemoteRow>> = registry.runtime.block_on(async {
        futures_util::stream::iter(wanted.iter())
            .map(|tag| async move {
                let rows = tag_rows(c, tag).await;
                progress.inc(1);
                rows
            })
            .buffer_unordered(TAGS_IN_FLIGHT)
            .collect()
            .await
    });
    progress.finish();
    let mut rows: Vec<RemoteRow> = results.into_iter().flatten().collect();
    rows.sort_by(|a, b| {
        let key = |r: &RemoteRow| {
            let platform = (r.os.clone(), r.architecture.clone(), r.variant.clone());
            (
                r.name.clone(),
                platform,
                r.kind,
                r.manifest_digest.clone(),
                r.layer_index,
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(rows)
}

/// Every tag of the repository, page by page.
async fn all_tags(c: &Connection) -> Result<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    loop {
        let last = tags.last().cloned();
        let page = crate::registry::fetch::with_tries(c, "tag list", || {
            let list = async {
                let last = last.as_deref();
                Ok::<_, crate::registry::fetch::Failure>(
                    c.client
                        .list_tags(&c.reference, &c.auth, Some(TAG_PAGE), last)
                        .await?,
                )
            };
            crate::registry::fetch::within(c, "no answer", list)
        })
        .await?;
        let full = page.tags.len() >= TAG_PAGE;
        let before = tags.len();
        tags.extend(page.tags);
        if !full || tags.len() == before {
            return Ok(tags);
        }
    }
}

/// `*` matches any run of characters, `?` any one; everything else itself.
fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // match_at[i][j]: pattern[i..] matches text[j..]
    let mut next = vec![false; t.len() + 1];
    next[t.len()] = true;
    for i in (0..p.len()).rev() {
        let mut here = vec![false; t.len() + 1];
        for j in (0..=t.len()).rev() {
            here[j] = match p[i] {
                '*' => next[j] || (j < t.len() && here[j + 1]),
                '?' => j < t.len() && next[j + 1],
                ch => j < t.len() && t[j] == ch && next[j + 1],
            };
        }
        next = here;
    }
    next[0]
}

/// A manifest or index by tag or digest, checked against its digest.
async fn document(c: &Connection, at: &str) -> Result<(Sha256Digest, Vec<u8>)> {
    let reference = match at.starts_with("sha256:") {
        true => c.reference.clone_with_digest(at.to_string()),
        false => oci_client::Reference::with_tag(
            c.reference.registry().to_string(),
            c.reference.repository().to_string(),
            at.to_string(),
        ),
    };
    let limit = crate::oci::limits::len_limit(media_type::OCI_INDEX);
    manifest_at(c, &reference, &MANIFEST_TYPES, limit).await
}

/// The rows of one tag: each platform of its index (or its one manifest); what cannot be read
/// is an `error` row (for the tag, or for the one platform).
async fn tag_rows(c: &Connection, tag: &str) -> Vec<RemoteRow> {
    let name = format!("{}:{tag}", c.reference.repository());
    let (digest, bytes) = match document(c, tag).await {
        Ok(document) => document,
        Err(e) => return vec![RemoteRow::error(&name, String::new(), &e)],
    };
    let object = format!("{} {name}", c.url);
    let mut manifests = Vec::new();
    match document_media_type(&bytes).as_str() {
        media_type::OCI_INDEX | media_type::DOCKER_LIST => {
            let index = match decode_index(&bytes, &object) {
                Ok(index) => index,
                Err(e) => return vec![RemoteRow::error(&name, digest.to_string(), &e)],
            };
            for desc in &index.manifests {
                manifests.push((desc.digest.clone(), document(c, &desc.digest).await));
            }
        }
        _ => manifests.push((digest.to_string(), Ok((digest, bytes)))),
    }
    let mut rows = Vec::new();
    for (at, document) in manifests {
        let read = match document {
            Ok((digest, bytes)) => manifest_rows(c, &name, &digest, &bytes).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(read) => rows.extend(read),
            Err(e) => rows.push(RemoteRow::error(&name, at, &e)),
        }
    }
    rows
}

/// The rows of one platform manifest of the tag `name`: a layer each, or one for a
/// store-format artifact.
async fn manifest_rows(
    c: &Connection,
    name: &str,
    digest: &Sha256Digest,
    bytes: &[u8],
) -> Result<Vec<RemoteRow>> {
    let object = format!("manifest {digest} of {name} at {}", c.url);
    let manifest = decode_manifest(bytes, &object)?;
    if manifest.config.media_type == crate::oci::artifact::CONFIG_TYPE {
        let mut row = RemoteRow::new(name, RowKind::CairnStore, digest.to_string());
        row.layer_size = manifest.layers.iter().map(|l| l.size.unwrap_or(0)).sum();
        return Ok(vec![row]);
    }
    let config_digest = crate::source::parse_digest(&manifest.config.digest, &object)?;
    let config_object = format!("config {config_digest} of {name}");
    let limit = crate::oci::limits::len_limit(media_type::OCI_CONFIG);
    let config_bytes =
        crate::registry::fetch::small_blob(c, &config_digest, &config_object, limit).await?;
    check_digest(&config_bytes, &config_digest, &c.url)?;
    let config = decode_config(&config_bytes, &config_object)?;
    let platform = config.platform();
    let diff_ids = config.diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::bad_input(
            object,
            format!(
                "{} layers, but its config {config_digest} lists {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut rows = Vec::new();
    for (i, (layer, diff_id)) in manifest.layers.iter().zip(diff_ids).enumerate() {
        rows.push(RemoteRow {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone().unwrap_or_default(),
            os_version: platform.os_version.clone().unwrap_or_default(),
            layer_index: Some(i),
            layer_digest: layer.digest.clone(),
            layer_size: layer.size.unwrap_or(0),
            diff_id: diff_id.clone(),
            ..RemoteRow::new(name, RowKind::Image, digest.to_string())
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tag_patterns() {
        use super::matches;
        assert!(matches("v*", "v1.2") && matches("*", "") && matches("v?", "v2"));
        assert!(
            !matches("v?", "v10") && !matches("v*", "latest") && matches("*-slim", "3.12-slim")
        );
        assert!(matches("a*b*c", "aXXbYYc") && !matches("a*b*c", "aXXbYY"));
    }
}
