//! The OCI image-spec documents (Docker schema 2 reads the same): descriptors, image manifests,
//! image indexes and image configs, with the platform object they carry.
//!
//! Read side: every field cairn does not need is ignored, `mediaType`, `layers`, `manifests`,
//! `annotations` and a config's platform fields default when missing, and the fields only
//! the writer sets are `skip_deserializing`, so a document is accepted whatever it holds there.
//! Write side: fields come out in declaration order and unset optional fields are left out; the
//! tests below pin the bytes, which the digests of exported images depend on.

use crate::platform::Platform;
use crate::Sha256Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::media_type;

/// The annotation that names an image in an image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `schemaVersion` of every manifest and index cairn writes.
const SCHEMA_VERSION: u32 = 2;

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// A reference to a blob: its media type, digest and size, and for an index entry the
/// platform and annotations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    /// As written, `sha256:<hex>` for cairn; readers parse it where they need the digest, so
    /// that the error names what the descriptor was for.
    pub digest: String,
    /// Optional on read (some writers leave it out); always set by `Descriptor::new`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor without platform or annotations.
    pub fn new(media_type: &str, digest: &Sha256Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: Some(size),
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// The platform object of an index entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformJson {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl From<&PlatformJson> for Platform {
    /// An empty variant or OS version counts as none.
    fn from(p: &PlatformJson) -> Platform {
        Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone().filter(|v| !v.is_empty()),
            os_version: p.os_version.clone().filter(|v| !v.is_empty()),
        }
    }
}

impl From<&Platform> for PlatformJson {
    fn from(p: &Platform) -> PlatformJson {
        PlatformJson {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            os_version: p.os_version.clone(),
            variant: p.variant.clone(),
        }
    }
}

/// An image index (or Docker manifest list): the manifests of a multi-platform image, or the
/// `index.json` of an image layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Not read.
    #[serde(skip_deserializing, default = "schema_version")]
    pub schema_version: u32,
    /// Not read (a descriptor's media type says what it points to); empty after reading.
    #[serde(skip_deserializing)]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// An OCI image index.
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: SCHEMA_VERSION,
            media_type: media_type::OCI_INDEX.to_string(),
            manifests,
        }
    }
}

/// A single-platform image manifest: its config and its layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Not read.
    #[serde(skip_deserializing, default = "schema_version")]
    pub schema_version: u32,
    /// May be missing on read (the descriptor that pointed here then says it).
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    /// An OCI image manifest.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            media_type: media_type::OCI_MANIFEST.to_string(),
            config,
            layers,
        }
    }
}

/// The parts of an image config cairn reads (platform, `rootfs.diff_ids`) and, for an image
/// that came without one, writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The execution parameters (`Env`, `Cmd`, ...). Not read; written empty.
    #[serde(rename = "config", skip_deserializing)]
    pub execution: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
}

/// A config's `rootfs`: the diff_ids (sha256 of each uncompressed layer tar), bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`. Not read.
    #[serde(rename = "type", skip_deserializing)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Config {
    /// The smallest valid config: a platform and the layers' diff_ids, no execution
    /// parameters. For images converted from a bare layer, which have no config of their own.
    pub fn minimal(platform: &Platform, diff_ids: &[Sha256Digest]) -> Config {
        Config {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            os_version: platform.os_version.clone(),
            variant: platform.variant.clone(),
            execution: serde_json::Map::new(),
            rootfs: Some(RootFs {
                kind: "layers".to_string(),
                diff_ids: diff_ids.iter().map(|d| d.to_string()).collect(),
            }),
        }
    }

    /// The layers' diff_ids as the config lists them (none without a `rootfs`).
    pub fn diff_ids(&self) -> &[String] {
        self.rootfs
            .as_ref()
            .map(|r| r.diff_ids.as_slice())
            .unwrap_or(&[])
    }

    /// The platform the config names; an empty variant or OS version counts as none.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
            os_version: self.os_version.clone().filter(|v| !v.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{encode, parse};

    fn digest(byte: u8) -> Sha256Digest {
        Sha256Digest::of(&[byte])
    }

    /// The manifest export writes, byte for byte: its digest is the image's identity.
    #[test]
    fn manifest_encoding_is_pinned() {
        let manifest = Manifest::new(
            Descriptor::new(media_type::OCI_CONFIG, &digest(1), 123),
            vec![
                Descriptor::new(media_type::OCI_LAYER_GZIP, &digest(2), 4567),
                Descriptor::new(media_type::OCI_LAYER_GZIP, &digest(3), 0),
            ],
        );
        let expected = format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                r#""config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":123}},"#,
                r#""layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":4567}},"#,
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":0}}]}}"#,
            ),
            digest(1),
            digest(2),
            digest(3),
        );
        assert_eq!(
            String::from_utf8(encode(&manifest, "test").unwrap()).unwrap(),
            expected
        );
        let back: Manifest = parse(expected.as_bytes(), "test").unwrap();
        assert_eq!(back, manifest);
    }

    /// An index and its entries are written through `serde_json::Value` (so that the other
    /// fields of an existing `index.json` survive), which orders keys alphabetically.
    #[test]
    fn index_encoding_is_pinned() {
        let mut entry = Descriptor::new(media_type::OCI_MANIFEST, &digest(4), 890);
        entry.platform = Some(PlatformJson::from(&Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
            os_version: None,
        }));
        entry.annotations.insert(REF_NAME.into(), "app:v1".into());
        let mut index = serde_json::to_value(Index::new(vec![])).unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::to_value(&entry).unwrap());
        let expected = format!(
            concat!(
                r#"{{"manifests":[{{"annotations":{{"org.opencontainers.image.ref.name":"app:v1"}},"#,
                r#""digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                r#""platform":{{"architecture":"arm64","os":"linux","variant":"v8"}},"size":890}}],"#,
                r#""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#,
            ),
            digest(4)
        );
        assert_eq!(
            String::from_utf8(encode(&index, "test").unwrap()).unwrap(),
            expected
        );
        let back: Index = parse(expected.as_bytes(), "test").unwrap();
        assert_eq!(back.manifests, vec![entry]);
    }

    /// The config made up for an image converted from a bare layer (its digest is the config
    /// digest of the exported image).
    #[test]
    fn minimal_config_encoding_is_pinned() {
        let mut platform = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            os_version: None,
        };
        let config = Config::minimal(&platform, &[digest(5), digest(6)]);
        let expected = format!(
            concat!(
                r#"{{"architecture":"amd64","os":"linux","config":{{}},"#,
                r#""rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
            ),
            digest(5),
            digest(6)
        );
        assert_eq!(
            String::from_utf8(encode(&config, "test").unwrap()).unwrap(),
            expected
        );
        platform.variant = Some("v7".into());
        platform.os_version = Some("10.0".into());
        let config = Config::minimal(&platform, &[]);
        assert_eq!(
            String::from_utf8(encode(&config, "test").unwrap()).unwrap(),
            r#"{"architecture":"amd64","os":"linux","os.version":"10.0","variant":"v7","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
        );
        assert_eq!(config.platform(), platform);
    }

    /// Docker schema 2 documents, fields of any type where cairn does not read them, and
    /// unknown fields are all accepted.
    #[test]
    fn reading_is_lenient() {
        let manifest: Manifest = parse(
            br#"{"schemaVersion":"two","mediaType":"application/vnd.docker.distribution.manifest.v2+json",
                "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:ab"},
                "layers":[{"digest":"sha256:cd","size":7,"urls":["x"]}],"extra":[1]}"#,
            "test",
        )
        .unwrap();
        assert_eq!(manifest.media_type, media_type::DOCKER_MANIFEST);
        assert_eq!(manifest.config.size, None);
        assert_eq!(manifest.layers[0].media_type, "");
        assert_eq!(manifest.layers[0].size, Some(7));
        let index: Index = parse(br#"{"mediaType":7,"schemaVersion":null}"#, "test").unwrap();
        assert!(index.manifests.is_empty());
        let config: Config = parse(
            br#"{"os":"linux","variant":"","config":{"Env":["A=1"]},"rootfs":{"type":1,"diff_ids":["sha256:ef"]}}"#,
            "test",
        )
        .unwrap();
        assert_eq!(config.platform().variant, None);
        assert!(config.execution.is_empty());
        assert_eq!(config.rootfs.unwrap().diff_ids, vec!["sha256:ef"]);
    }

    #[test]
    fn reading_still_needs_what_cairn_uses() {
        let err = |bytes: &[u8]| {
            parse::<Manifest>(bytes, "manifest x")
                .unwrap_err()
                .to_string()
        };
        assert!(err(br#"{"layers":[]}"#).contains("missing field `config`"));
        assert!(err(br#"{"config":{"size":1}}"#).contains("missing field `digest`"));
        assert!(err(br#"{"config":{"digest":"d","size":-1}}"#).contains("manifest x"));
        assert!(
            parse::<Descriptor>(br#"{"digest":"d","platform":{"os":"linux"}}"#, "d")
                .unwrap_err()
                .to_string()
                .contains("missing field `architecture`")
        );
    }
}
