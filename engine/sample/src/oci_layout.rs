//! An OCI image layout directory written image by image: layer, config and manifest blobs under
//! `blobs/sha256/`, single-platform images or multi-platform ones behind a nested image index,
//! and at the end `index.json` and `oci-layout`.
//!
//! Layers are built by [`crate::layer_tar`] and configs by [`crate::image_config`].

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::image_config::{config_json, SamplePlatform};
use crate::layer_tar::LayerCompression;
use crate::sha256_digest;

/// Media type of an OCI image manifest.
pub(crate) const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub(crate) const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub(crate) const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Annotation key naming a reference in an OCI layout's `index.json`.
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Uncompressed layer tars, each with the compression it gets in the image.
pub type SampleLayers = Vec<(Vec<u8>, LayerCompression)>;

#[derive(Serialize, Clone)]
struct PlatformJson {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

impl From<&SamplePlatform> for PlatformJson {
    fn from(p: &SamplePlatform) -> Self {
        PlatformJson {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageIndex<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: &'a [Descriptor],
}

fn ref_annotations(ref_name: Option<&str>) -> Option<BTreeMap<String, String>> {
    ref_name.map(|r| BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), r.to_string())]))
}

/// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) incrementally.
///
/// Blobs are written as images are added; `index.json` and `oci-layout` only by
/// [`finish`](Self::finish). An existing `index.json` in the directory is replaced, not merged.
#[derive(Debug)]
pub struct OciLayoutWriter {
    dir: PathBuf,
    /// Top-level `index.json` entries, serialized, in the order they were added.
    manifests: Vec<serde_json::Value>,
}

impl OciLayoutWriter {
    /// Creates `dir` and `dir/blobs/sha256` (parents included) if missing.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("blobs").join("sha256"))?;
        Ok(OciLayoutWriter {
            dir: dir.to_path_buf(),
            manifests: Vec::new(),
        })
    }

    /// Writes `data` as a blob unless it is already present; returns its descriptor.
    fn write_blob(&self, media_type: &'static str, data: &[u8]) -> io::Result<Descriptor> {
        let digest = sha256_digest(data);
        let hex = &digest["sha256:".len()..];
        let blobs = self.dir.join("blobs").join("sha256");
        let path = blobs.join(hex);
        if !path.exists() {
            let tmp = blobs.join(format!(".{hex}.tmp"));
            fs::write(&tmp, data)?;
            fs::rename(&tmp, &path)?;
        }
        Ok(Descriptor {
            media_type,
            digest,
            size: data.len() as u64,
            platform: None,
            annotations: None,
        })
    }

    /// Writes layers, config and manifest of one platform image; returns the manifest
    /// descriptor with its platform set.
    fn write_image(
        &self,
        platform: &SamplePlatform,
        layers: &[(Vec<u8>, LayerCompression)],
    ) -> io::Result<Descriptor> {
        let mut diff_ids = Vec::with_capacity(layers.len());
        let mut layer_descs = Vec::with_capacity(layers.len());
        for (tar, compression) in layers {
            diff_ids.push(sha256_digest(tar));
            let blob = compression.compress(tar)?;
            layer_descs.push(self.write_blob(compression.media_type(), &blob)?);
        }
        let config = config_json(platform, diff_ids)?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: MT_MANIFEST,
            config: self.write_blob(MT_CONFIG, &config)?,
            layers: layer_descs,
        };
        let mut desc = self.write_blob(MT_MANIFEST, &serde_json::to_vec(&manifest)?)?;
        desc.platform = Some(platform.into());
        Ok(desc)
    }

    /// Adds one single-platform image.
    ///
    /// Compresses each layer tar as asked and writes the layer blobs, an OCI config
    /// (architecture, os, variant, `rootfs.diff_ids` = sha256 of each uncompressed tar, one
    /// history entry per layer) and an OCI image manifest. Adds the manifest's descriptor
    /// (with platform, and annotation `org.opencontainers.image.ref.name` = `ref_name` if
    /// given) to the top-level `index.json`. Returns the manifest digest `sha256:<hex>`.
    pub fn add_image(
        &mut self,
        ref_name: Option<&str>,
        platform: &SamplePlatform,
        layers: &[(Vec<u8>, LayerCompression)],
    ) -> io::Result<String> {
        let mut desc = self.write_image(platform, layers)?;
        desc.annotations = ref_annotations(ref_name);
        let digest = desc.digest.clone();
        self.manifests.push(serde_json::to_value(&desc)?);
        Ok(digest)
    }

    /// Adds a multi-platform image.
    ///
    /// Writes each platform's layers, config and manifest, then a nested image index blob
    /// (`application/vnd.oci.image.index.v1+json`) listing the manifests with their
    /// platforms, and adds that index (annotated with `ref_name` if given, no platform) to the
    /// top-level `index.json`. Returns the nested index digest `sha256:<hex>`.
    pub fn add_multi_arch(
        &mut self,
        ref_name: Option<&str>,
        images: &[(SamplePlatform, SampleLayers)],
    ) -> io::Result<String> {
        let manifests = images
            .iter()
            .map(|(platform, layers)| self.write_image(platform, layers))
            .collect::<io::Result<Vec<_>>>()?;
        let index = ImageIndex {
            schema_version: 2,
            media_type: MT_INDEX,
            manifests: &manifests,
        };
        let mut desc = self.write_blob(MT_INDEX, &serde_json::to_vec(&index)?)?;
        desc.annotations = ref_annotations(ref_name);
        let digest = desc.digest.clone();
        self.manifests.push(serde_json::to_value(&desc)?);
        Ok(digest)
    }

    /// Writes `index.json` (entries in the order added) and `oci-layout`.
    pub fn finish(self) -> io::Result<()> {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": self.manifests,
        });
        fs::write(self.dir.join("index.json"), serde_json::to_vec(&index)?)?;
        fs::write(
            self.dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer_tar::{build_layer_tar, SampleEntry};
    use crate::testutil::{check_blob, check_manifest, read_json, TempDir};

    #[test]
    fn multi_arch_and_compressions() {
        let tmp = TempDir::new("multi-arch");
        let tar_a = build_layer_tar(&[SampleEntry::file("a", 0o644, vec![1; 3000])], 5).unwrap();
        let tar_b = build_layer_tar(&[SampleEntry::file("b", 0o644, vec![2; 3000])], 5).unwrap();
        let mut w = OciLayoutWriter::create(&tmp.0).unwrap();
        let single = w
            .add_image(
                None,
                &SamplePlatform::linux_amd64(),
                &[(tar_a.clone(), LayerCompression::None)],
            )
            .unwrap();
        let arm = SamplePlatform {
            variant: Some("v8".into()),
            ..SamplePlatform::new("linux", "arm64")
        };
        let multi = w
            .add_multi_arch(
                Some("multi"),
                &[
                    (
                        SamplePlatform::linux_amd64(),
                        vec![
                            (tar_a.clone(), LayerCompression::Gzip),
                            (tar_b.clone(), LayerCompression::Zstd),
                        ],
                    ),
                    (arm, vec![(tar_b.clone(), LayerCompression::Zstd)]),
                ],
            )
            .unwrap();
        w.finish().unwrap();

        let index = read_json(&tmp.0.join("index.json"));
        let top = index["manifests"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0]["digest"], single);
        assert!(top[0].get("annotations").is_none());
        assert_eq!(check_manifest(&tmp.0, &top[0]), vec![tar_a.clone()]);

        assert_eq!(top[1]["digest"], multi);
        assert_eq!(top[1]["mediaType"], MT_INDEX);
        assert_eq!(top[1]["annotations"][ANNOTATION_REF_NAME], "multi");
        assert!(top[1].get("platform").is_none());
        let nested: serde_json::Value =
            serde_json::from_slice(&check_blob(&tmp.0, &top[1])).unwrap();
        assert_eq!(nested["mediaType"], MT_INDEX);
        let platforms = nested["manifests"].as_array().unwrap();
        assert_eq!(platforms.len(), 2);
        assert_eq!(
            platforms[1]["platform"],
            serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        );
        assert_eq!(
            check_manifest(&tmp.0, &platforms[0]),
            vec![tar_a, tar_b.clone()]
        );
        assert_eq!(check_manifest(&tmp.0, &platforms[1]), vec![tar_b]);
        // The zstd blob of tar_b is shared by both platforms and stored once.
        let blobs = fs::read_dir(tmp.0.join("blobs/sha256")).unwrap().count();
        // 1 + 2 + 1 layers minus 1 shared, 3 configs, 3 manifests, 1 index.
        assert_eq!(blobs, 3 + 3 + 3 + 1);
    }
}
