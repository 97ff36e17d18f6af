//! Helpers for this crate's unit tests: a scratch directory, a tar parser that checks the fixed
//! header fields, and checks of OCI layout blobs against their descriptors.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::oci_layout::{MT_CONFIG, MT_MANIFEST};
use crate::sha256_digest;

/// A scratch directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("cairn-sample-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One tar entry as read back by `tar::Archive`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) kind: EntryType,
    pub(crate) path: Vec<u8>,
    pub(crate) link: Option<Vec<u8>>,
    pub(crate) mode: u32,
    pub(crate) mtime: u64,
    pub(crate) data: Vec<u8>,
    pub(crate) xattrs: Vec<(String, Vec<u8>)>,
}

/// Reads every entry of `tar`, asserting the fields all generated entries share.
pub(crate) fn parse(tar: &[u8]) -> Vec<Parsed> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let h = entry.header();
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.username().unwrap(), Some("root"));
        assert_eq!(h.groupname().unwrap(), Some("root"));
        let (kind, mode, mtime) = (h.entry_type(), h.mode().unwrap(), h.mtime().unwrap());
        let path = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push(Parsed {
            kind,
            path,
            link,
            mode,
            mtime,
            data,
            xattrs,
        });
    }
    out
}

/// The entry at `path`.
pub(crate) fn find<'a>(entries: &'a [Parsed], path: &[u8]) -> Option<&'a Parsed> {
    entries.iter().find(|e| e.path == path)
}

/// A JSON file's content.
pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Checks a blob's file against a descriptor; returns the blob's bytes.
pub(crate) fn check_blob(layout: &Path, desc: &serde_json::Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let data = fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(sha256_digest(&data), digest);
    assert_eq!(desc["size"].as_u64().unwrap(), data.len() as u64);
    data
}

/// A layer blob uncompressed as its media type says.
fn decompress(media_type: &str, blob: &[u8]) -> Vec<u8> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar" => blob.to_vec(),
        "application/vnd.oci.image.layer.v1.tar+gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" => zstd::decode_all(blob).unwrap(),
        other => panic!("unexpected layer media type {other}"),
    }
}

/// Checks a manifest and everything under it; returns the uncompressed layers.
pub(crate) fn check_manifest(layout: &Path, desc: &serde_json::Value) -> Vec<Vec<u8>> {
    assert_eq!(desc["mediaType"], MT_MANIFEST);
    let manifest: serde_json::Value = serde_json::from_slice(&check_blob(layout, desc)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MT_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], MT_CONFIG);
    let config: serde_json::Value =
        serde_json::from_slice(&check_blob(layout, &manifest["config"])).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["architecture"], desc["platform"]["architecture"]);
    assert_eq!(config["os"], desc["platform"]["os"]);
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(diff_ids.len(), layers.len());
    assert_eq!(config["history"].as_array().unwrap().len(), layers.len());
    layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let blob = check_blob(layout, layer);
            let tar = decompress(layer["mediaType"].as_str().unwrap(), &blob);
            assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap());
            tar
        })
        .collect()
}
