//! `STORE/store.json`: the store's format version and the parameters fixed at `init` (chunker,
//! compression). A store written by another format version is refused, never guessed at.

use crate::chunk::ChunkerParams;
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The store layout and file formats this build reads and writes.
pub const FORMAT_VERSION: u32 = 5;
/// The version before delta frames: the same format without them, read as it is and upgraded
/// (store.json rewritten) when a writer opens it, so that a cairn that knows no delta frames
/// (and whose gc would not keep their bases) refuses the store from then on.
pub const UPGRADABLE_VERSION: u32 = 4;
const FORMAT_NAME: &str = "cairn-store";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    pub format: String,
    pub format_version: u32,
    pub chunker: ChunkerParams,
    pub compression: CompressionParams,
    /// What `optimize` recompresses blobs to unless told otherwise (absent in stores made
    /// before `optimize`: the defaults).
    #[serde(default)]
    pub optimize: OptimizeParams,
}

/// The target of `optimize`: blobs whose frames were compressed at a lower level or in smaller
/// frames are rewritten with these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimizeParams {
    pub level: i32,
    pub frame_size: u32,
}

impl Default for OptimizeParams {
    /// zstd-18 in frames of up to 1 MiB: on the py image 16 % smaller than zstd-3 at the same
    /// frame size; levels 19 and 22 gain under 0.2 % more at a third less speed, larger frames
    /// would change the format's frame limit (BENCHMARKS.md, "Optimize").
    fn default() -> Self {
        OptimizeParams {
            level: 18,
            frame_size: 1 << 20,
        }
    }
}

impl OptimizeParams {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=22).contains(&self.level) {
            return Err(format!("zstd level {} is not 1 to 22", self.level));
        }
        if self.frame_size > super::MAX_FRAME_LEN {
            return Err(format!(
                "frame size {} is over the {} limit",
                self.frame_size,
                super::MAX_FRAME_LEN
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressionParams {
    pub algorithm: String,
    pub level: i32,
    /// New chunks are compressed together in frames of up to this many bytes (a chunk larger
    /// than this is a frame of its own). Reading one chunk decodes its whole frame.
    pub frame_size: u32,
    /// Whether convert delta-compresses new chunks against their old versions by default
    /// (absent in stores made before delta frames: `auto`).
    #[serde(default)]
    pub delta: DeltaMode,
}

/// Delta compression of new chunks (`format::delta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeltaMode {
    /// Never: every new chunk is compressed alone.
    Off,
    /// When a base image has the file: the `--dict` images, else the same repository's.
    #[default]
    Auto,
}

impl CompressionParams {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.algorithm != "zstd" {
            return Err(format!("unknown compression {:?}", self.algorithm));
        }
        if !(1..=22).contains(&self.level) {
            return Err(format!("zstd level {} is not 1 to 22", self.level));
        }
        if self.frame_size > super::MAX_FRAME_LEN {
            return Err(format!(
                "frame size {} is over the {} limit",
                self.frame_size,
                super::MAX_FRAME_LEN
            ));
        }
        Ok(())
    }
}

impl Default for CompressionParams {
    fn default() -> Self {
        CompressionParams {
            algorithm: "zstd".into(),
            level: 3,
            frame_size: 1 << 20,
            delta: DeltaMode::Auto,
        }
    }
}

impl StoreConfig {
    pub fn new(chunker: ChunkerParams, compression: CompressionParams) -> Self {
        StoreConfig {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            chunker,
            compression,
            optimize: OptimizeParams::default(),
        }
    }

    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_path("read", path)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(path.display().to_string(), e.to_string()))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(Error::corrupt(
                path.display().to_string(),
                "not a cairn store configuration",
            ));
        }
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(FORMAT_VERSION as u64) && version != Some(UPGRADABLE_VERSION as u64) {
            return Err(Error::Usage(format!(
                "store {} has format version {}, this cairn reads version {FORMAT_VERSION}; \
                 use the cairn release that wrote it, or move its images over: \
                 `cairn export NAME oci:DIR` with that release, then `cairn convert oci:DIR` \
                 into a new store",
                path.parent().unwrap_or(path).display(),
                version.map_or("unknown".to_string(), |v| v.to_string()),
            )));
        }
        let config: StoreConfig = serde_json::from_value(value)
            .map_err(|e| Error::corrupt(path.display().to_string(), e.to_string()))?;
        config
            .chunker
            .validate()
            .map_err(|e| Error::corrupt(path.display().to_string(), e))?;
        config
            .compression
            .validate()
            .and_then(|()| config.optimize.validate())
            .map_err(|e| Error::corrupt(path.display().to_string(), e))?;
        Ok(config)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("config serializes");
        out.push(b'\n');
        out
    }
}
