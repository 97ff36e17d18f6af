//! The image config JSON shared by the OCI layout writer and the docker archive writer, and the
//! platform it names.
//!
//! Configs are built from typed structs and serialized by `serde_json`, so field order and
//! formatting are fixed; the `created` times are a constant.

use serde::Serialize;
use std::io;

/// `created` timestamp written into every generated image config (= [`crate::DEMO_MTIME_V1`]).
const CONFIG_CREATED: &str = "2023-11-14T22:13:20Z";

/// The platform of a generated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePlatform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// e.g. `v8` for arm64.
    pub variant: Option<String>,
}

impl SamplePlatform {
    /// A platform without variant.
    pub fn new(os: &str, architecture: &str) -> Self {
        SamplePlatform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// `linux/amd64`, the platform of the demo images.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64")
    }
}

#[derive(Serialize)]
struct ImageConfig {
    created: &'static str,
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    config: ConfigBody,
    rootfs: RootFs,
    history: Vec<History>,
}

#[derive(Serialize)]
struct ConfigBody {
    #[serde(rename = "Env")]
    env: Vec<&'static str>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

/// The image config JSON for `platform` with layers whose uncompressed digests are `diff_ids`.
pub(crate) fn config_json(platform: &SamplePlatform, diff_ids: Vec<String>) -> io::Result<Vec<u8>> {
    let history = (0..diff_ids.len())
        .map(|i| History {
            created: CONFIG_CREATED,
            created_by: format!("cairn sample layer {i}"),
        })
        .collect();
    let config = ImageConfig {
        created: CONFIG_CREATED,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: ConfigBody {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
        history,
    };
    Ok(serde_json::to_vec(&config)?)
}
