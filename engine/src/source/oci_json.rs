//! The parts of the OCI image-spec (and Docker schema 2) JSON that cairn reads.

use super::platform::Platform;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: Option<u64>,
    pub platform: Option<PlatformJson>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PlatformJson {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    #[serde(rename = "os.version")]
    pub os_version: Option<String>,
}

impl From<&PlatformJson> for Platform {
    fn from(p: &PlatformJson) -> Platform {
        Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone().filter(|v| !v.is_empty()),
            os_version: p.os_version.clone().filter(|v| !v.is_empty()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub struct Manifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    pub variant: Option<String>,
    #[serde(rename = "os.version")]
    pub os_version: Option<String>,
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Config {
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
            os_version: self.os_version.clone().filter(|v| !v.is_empty()),
        }
    }
}

pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], object: &str) -> crate::Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| crate::Error::bad_input(object, format!("invalid JSON: {e}")))
}
