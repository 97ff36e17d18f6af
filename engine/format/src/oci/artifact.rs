//! The store-format artifact (`push --store-format`, `pull --store-format`; docs/FORMAT.md,
//! "Store-format artifact"): an OCI image manifest whose `artifactType` names cairn, whose
//! config is a small JSON document (format version, chunker, image id, the delta bases the
//! image relies on), and whose layers are the store's own files: the bootstrap, the layer
//! objects, the data blobs the layer objects name and the blobs holding delta bases, each
//! annotated with its cairn id.
//!
//! Types and decoding only (`ArtifactManifest::decode`, `ArtifactConfig::decode`: bytes ->
//! checked document, within `limits`), so that they build without the registry client and the
//! fuzz targets reach them; the transfers are the engine's
//! `source::registry::store_push`/`store_pull`.

use super::limits::{
    check_count, check_len, MAX_ARTIFACT_CONFIG_LEN, MAX_ARTIFACT_FILES, MAX_MANIFEST_LEN,
};
use super::{media_type, Descriptor};
use crate::chunk::ChunkerParams;
use crate::error::{Error, IoContext, Result};
use crate::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The artifact's `artifactType`; the `v1` is the artifact layout's version (the files in it
/// are of the store format the config names).
pub const ARTIFACT_TYPE: &str = "application/vnd.cairn.image.v1";
pub const CONFIG_TYPE: &str = "application/vnd.cairn.image.config.v1+json";
pub const BOOTSTRAP_TYPE: &str = "application/vnd.cairn.bootstrap";
pub const LAYER_META_TYPE: &str = "application/vnd.cairn.layer-meta";
pub const BLOB_TYPE: &str = "application/vnd.cairn.blob";
pub const BASE_BLOB_TYPE: &str = "application/vnd.cairn.blob.bases";
/// The annotation on each layer descriptor naming the file's cairn id (hex).
pub const ID_ANNOTATION: &str = "dev.cairn.id";
const CONFIG_FORMAT: &str = "cairn-image";

/// The artifact's config.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArtifactConfig {
    /// `cairn-image`.
    pub format: String,
    /// The store format of the files (`FORMAT_VERSION` of the cairn that pushed them).
    pub format_version: u32,
    /// The chunker of the store they came from.
    pub chunker: ChunkerParams,
    /// The image id (the bootstrap's BLAKE3).
    pub image: String,
    /// The name it had in the store it was pushed from.
    pub name: String,
    /// Delta bases kept in blobs the image's layer objects do not name: per such blob, the base
    /// chunks (hex ids) the image's delta frames need from it. A puller that has all of them
    /// indexed does not fetch the blob.
    #[serde(default)]
    pub bases: BTreeMap<String, Vec<String>>,
}

/// One file of the artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactFile {
    Bootstrap(ImageId),
    LayerMeta(LayerMetaId),
    Blob(BlobId),
    /// A blob holding delta bases only.
    BaseBlob(BlobId),
}

impl ArtifactFile {
    fn media_type(&self) -> &'static str {
        match self {
            ArtifactFile::Bootstrap(_) => BOOTSTRAP_TYPE,
            ArtifactFile::LayerMeta(_) => LAYER_META_TYPE,
            ArtifactFile::Blob(_) => BLOB_TYPE,
            ArtifactFile::BaseBlob(_) => BASE_BLOB_TYPE,
        }
    }

    /// What it is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ArtifactFile::Bootstrap(_) => "bootstrap",
            ArtifactFile::LayerMeta(_) => "layer object",
            ArtifactFile::Blob(_) => "blob",
            ArtifactFile::BaseBlob(_) => "bases blob",
        }
    }

    fn id_hex(&self) -> String {
        match self {
            ArtifactFile::Bootstrap(id) => id.to_hex(),
            ArtifactFile::LayerMeta(id) => id.to_hex(),
            ArtifactFile::Blob(id) | ArtifactFile::BaseBlob(id) => id.to_hex(),
        }
    }

    /// The file a layer descriptor of the artifact describes.
    pub fn from_descriptor(desc: &Descriptor, origin: &str) -> Result<ArtifactFile> {
        let bad =
            |detail: String| Error::corrupt(format!("{origin} layer {}", desc.digest), detail);
        let hex = desc
            .annotations
            .get(ID_ANNOTATION)
            .ok_or_else(|| bad(format!("has no {ID_ANNOTATION} annotation")))?;
        let invalid = || bad(format!("{ID_ANNOTATION} {hex:?} is not 64 hex digits"));
        Ok(match desc.media_type.as_str() {
            BOOTSTRAP_TYPE => ArtifactFile::Bootstrap(ImageId::from_hex(hex).ok_or_else(invalid)?),
            LAYER_META_TYPE => {
                ArtifactFile::LayerMeta(LayerMetaId::from_hex(hex).ok_or_else(invalid)?)
            }
            BLOB_TYPE => ArtifactFile::Blob(BlobId::from_hex(hex).ok_or_else(invalid)?),
            BASE_BLOB_TYPE => ArtifactFile::BaseBlob(BlobId::from_hex(hex).ok_or_else(invalid)?),
            other => {
                return Err(bad(format!(
                    "media type {other:?} is none this cairn knows: the artifact is of another \
                     version"
                )))
            }
        })
    }

    /// Its layer descriptor.
    pub fn descriptor(&self, digest: &Sha256Digest, size: u64) -> Descriptor {
        let mut desc = Descriptor::new(self.media_type(), digest, size);
        desc.annotations.insert(ID_ANNOTATION.into(), self.id_hex());
        desc
    }
}

/// The artifact's manifest, as read: only what cairn uses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactManifest {
    /// A manifest as read from a registry: within the manifest size limit and
    /// `MAX_ARTIFACT_FILES` layers, and a cairn artifact of this layout version (`check`).
    pub fn decode(bytes: &[u8], origin: &str) -> Result<ArtifactManifest> {
        check_len(
            bytes.len() as u64,
            MAX_MANIFEST_LEN,
            "manifest size",
            origin,
        )?;
        let manifest: ArtifactManifest = super::parse(bytes, origin)?;
        check_count(
            manifest.layers.len(),
            MAX_ARTIFACT_FILES,
            "artifact file count",
            "files",
            origin,
        )?;
        manifest.check(origin)?;
        Ok(manifest)
    }

    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> ArtifactManifest {
        ArtifactManifest {
            schema_version: 2,
            media_type: media_type::OCI_MANIFEST.into(),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config,
            layers,
            annotations: BTreeMap::from([(
                "dev.cairn.format-version".to_string(),
                crate::FORMAT_VERSION.to_string(),
            )]),
        }
    }

    /// Refuses a manifest that is not a cairn artifact of this layout version.
    pub fn check(&self, origin: &str) -> Result<()> {
        let found = self.artifact_type.as_deref().unwrap_or("");
        if found == ARTIFACT_TYPE && self.config.media_type == CONFIG_TYPE {
            return Ok(());
        }
        let detail = if found.starts_with("application/vnd.cairn.") {
            format!(
                "a cairn artifact of another version ({found}, config {}): this cairn reads \
                 {ARTIFACT_TYPE}; use the cairn that pushed it, or push it again with this one",
                self.config.media_type
            )
        } else {
            format!(
                "not a cairn store-format artifact (artifactType {found:?}, config {}): pull it \
                 without --store-format",
                self.config.media_type
            )
        };
        Err(Error::bad_input(origin.to_string(), detail))
    }
}

impl ArtifactConfig {
    /// A config as read from a registry: within `MAX_ARTIFACT_CONFIG_LEN` bytes, its image id
    /// and every listed base chunk an id, at most `MAX_ARTIFACT_FILES` base blobs. What it
    /// says about this store (format version, chunker) is `check`'s.
    pub fn decode(bytes: &[u8], origin: &str) -> Result<ArtifactConfig> {
        check_len(
            bytes.len() as u64,
            MAX_ARTIFACT_CONFIG_LEN,
            "artifact config size",
            origin,
        )?;
        let config: ArtifactConfig = super::parse(bytes, origin)?;
        check_count(
            config.bases.len(),
            MAX_ARTIFACT_FILES,
            "artifact file count",
            "base blobs",
            origin,
        )?;
        if ImageId::from_hex(&config.image).is_none() {
            return Err(Error::bad_input(
                origin,
                format!("image id {:?} is not 64 hex digits", config.image),
            ));
        }
        for blob in config.bases.keys() {
            let blob = BlobId::from_hex(blob).ok_or_else(|| {
                Error::bad_input(origin, format!("bases blob {blob:?} is not 64 hex digits"))
            })?;
            config.bases_of(&blob)?;
        }
        Ok(config)
    }

    /// Refuses files this store cannot take as they are.
    pub fn check(&self, origin: &str, store_chunker: &ChunkerParams) -> Result<()> {
        let refuse = |detail: String| Err(Error::bad_input(origin.to_string(), detail));
        if self.format != CONFIG_FORMAT {
            return refuse(format!(
                "config format {:?} is not {CONFIG_FORMAT:?}",
                self.format
            ));
        }
        if self.format_version != crate::FORMAT_VERSION {
            return refuse(format!(
                "its files are of store format {}, this cairn reads and writes format {}: \
                 pull it with a cairn of format {}, or pull the ordinary image instead",
                self.format_version,
                crate::FORMAT_VERSION,
                self.format_version
            ));
        }
        if self.chunker != *store_chunker {
            return refuse(format!(
                "its store chunks with {:?}, this store with {:?}: its chunks would not \
                 deduplicate with this store's; pull the ordinary image instead",
                self.chunker, store_chunker
            ));
        }
        Ok(())
    }

    /// The base chunks listed for a base blob.
    pub fn bases_of(&self, blob: &BlobId) -> Result<Vec<ChunkId>> {
        let listed = self
            .bases
            .get(&blob.to_hex())
            .map_or(&[][..], Vec::as_slice);
        listed
            .iter()
            .map(|hex| {
                ChunkId::from_hex(hex).ok_or_else(|| {
                    Error::corrupt(
                        "artifact config",
                        format!("base chunk {hex:?} is not an id"),
                    )
                })
            })
            .collect()
    }
}

pub fn new_config(
    chunker: &ChunkerParams,
    image: &ImageId,
    name: &str,
    bases: BTreeMap<String, Vec<String>>,
) -> ArtifactConfig {
    ArtifactConfig {
        format: CONFIG_FORMAT.into(),
        format_version: crate::FORMAT_VERSION,
        chunker: chunker.clone(),
        image: image.to_hex(),
        name: name.into(),
        bases,
    }
}

/// The sha256 of a file, read in pieces.
pub fn sha256_of_file(path: &Path) -> Result<Sha256Digest> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).with_path("open", path)?;
    let mut hasher = sha2::Sha256::new();
    let mut piece = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut piece).with_path("read", path)?;
        if n == 0 {
            break;
        }
        hasher.update(&piece[..n]);
    }
    Ok(Sha256Digest(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(artifact_type: Option<&str>, config_type: &str) -> ArtifactManifest {
        let digest = Sha256Digest::of(b"{}");
        let mut m = ArtifactManifest::new(Descriptor::new(config_type, &digest, 2), Vec::new());
        m.artifact_type = artifact_type.map(str::to_string);
        m
    }

    #[test]
    fn only_this_artifact_version_is_taken() {
        assert!(manifest(Some(ARTIFACT_TYPE), CONFIG_TYPE)
            .check("here")
            .is_ok());
        let other = manifest(Some("application/vnd.cairn.image.v2"), CONFIG_TYPE)
            .check("here")
            .unwrap_err()
            .to_string();
        assert!(other.contains("another version"), "{other}");
        let plain = manifest(None, media_type::OCI_CONFIG)
            .check("here")
            .unwrap_err()
            .to_string();
        assert!(
            plain.contains("not a cairn store-format artifact"),
            "{plain}"
        );
    }

    #[test]
    fn another_store_format_or_chunker_is_refused_naming_both() {
        let chunker = ChunkerParams::default();
        let config = new_config(&chunker, &ImageId([7; 32]), "app", BTreeMap::new());
        assert!(config.check("here", &chunker).is_ok());
        let mut old = config.clone();
        old.format_version = crate::FORMAT_VERSION - 1;
        let message = old.check("here", &chunker).unwrap_err().to_string();
        assert!(
            message.contains(&format!("store format {}", crate::FORMAT_VERSION - 1))
                && message.contains(&format!("format {}", crate::FORMAT_VERSION)),
            "{message}"
        );
        let other = ChunkerParams::fastcdc(16 * 1024, 64 * 1024, 256 * 1024).unwrap();
        let message = config.check("here", &other).unwrap_err().to_string();
        assert!(message.contains("chunks with"), "{message}");
    }

    #[test]
    fn a_layer_descriptor_round_trips_and_unknown_media_types_are_refused() {
        let digest = Sha256Digest::of(b"x");
        let file = ArtifactFile::BaseBlob(BlobId([3; 32]));
        let desc = file.descriptor(&digest, 1);
        assert_eq!(ArtifactFile::from_descriptor(&desc, "here").unwrap(), file);
        let mut unknown = desc.clone();
        unknown.media_type = "application/vnd.cairn.blob.v9".into();
        assert!(ArtifactFile::from_descriptor(&unknown, "here").is_err());
        let mut bad_id = desc;
        bad_id.annotations.insert(ID_ANNOTATION.into(), "zz".into());
        assert!(ArtifactFile::from_descriptor(&bad_id, "here").is_err());
    }
}
