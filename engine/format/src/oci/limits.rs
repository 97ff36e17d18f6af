//! Bounds on the OCI documents cairn reads from outside (a registry, an image layout, a
//! `docker save` archive, a bundle, a store-format artifact), and the decoders that enforce
//! them: bytes -> a checked manifest, index or config, or an error that names the object, the
//! limit and its value. They are in `cairn-format` (no store, no registry client), so the fuzz
//! targets reach them as `pull` does.
//!
//! The values admit every real image: the CNCF distribution registry (and so Docker Hub and
//! most others) refuses manifests over 4 MiB on push, and containers/image reads manifests
//! and configs up to 4 MiB; Docker builds stop at 127 layers (overlay's limit) and OCI sets
//! none, so 1000 layers leaves room for other builders. Past them a hostile document costs
//! nothing but its (bounded) bytes: a 100,000-layer manifest is refused on its size before it
//! is parsed, and a parsed one on its layer count before any layer is looked at.

use super::{parse, Config, Index, Manifest};
use crate::error::{Error, Result};

/// Largest image manifest or index read (the distribution registry's own limit).
pub const MAX_MANIFEST_LEN: u64 = 4 << 20;
/// Largest image config read.
pub const MAX_CONFIG_LEN: u64 = 4 << 20;
/// Bound on manifests, indexes and configs read whole into memory from an image layout or a
/// `docker save` archive (and kept in a bootstrap).
pub const MAX_JSON_LEN: u64 = 64 << 20;
/// Most layers an image manifest (and so a config's `diff_ids`, a bundle's image) may list.
pub const MAX_LAYERS: usize = 1000;
/// Most entries an image index read from a registry or an image may list.
pub const MAX_INDEX_ENTRIES: usize = 1000;
/// Deepest nesting of indexes within indexes.
pub const MAX_NESTING: usize = 8;
/// Most files a store-format artifact may list (bootstrap, layer objects, data blobs): about
/// what a manifest within `MAX_MANIFEST_LEN` can describe (~250 bytes a descriptor).
pub const MAX_ARTIFACT_FILES: usize = 16_384;
/// Largest store-format artifact config (its list of delta bases can be long: ~67 bytes a
/// base chunk, so about 250,000 of them).
pub const MAX_ARTIFACT_CONFIG_LEN: u64 = 16 << 20;

/// Why `len` bytes are refused under `limit` (named `name`, e.g. "manifest size").
pub fn over_len(len: u64, limit: u64, name: &str) -> String {
    format!(
        "{len} bytes is over the {name} limit of {limit} bytes ({} MiB)",
        limit >> 20
    )
}

/// Refuses `len` bytes of `object` over `limit` (named `name`, e.g. "manifest size").
pub fn check_len(len: u64, limit: u64, name: &str, object: &str) -> Result<()> {
    if len > limit {
        return Err(Error::bad_input(object, over_len(len, limit, name)));
    }
    Ok(())
}

/// Refuses `count` `things` of `object` over `limit` (named `name`, e.g. "layer count").
pub fn check_count(
    count: usize,
    limit: usize,
    name: &str,
    things: &str,
    object: &str,
) -> Result<()> {
    if count > limit {
        return Err(Error::bad_input(
            object,
            format!("lists {count} {things}, over the {name} limit of {limit}"),
        ));
    }
    Ok(())
}

/// An image manifest, within `MAX_MANIFEST_LEN` bytes and `MAX_LAYERS` layers.
pub fn decode_manifest(bytes: &[u8], object: &str) -> Result<Manifest> {
    check_len(
        bytes.len() as u64,
        MAX_MANIFEST_LEN,
        "manifest size",
        object,
    )?;
    let manifest: Manifest = parse(bytes, object)?;
    check_count(
        manifest.layers.len(),
        MAX_LAYERS,
        "layer count",
        "layers",
        object,
    )?;
    Ok(manifest)
}

/// An image index, within `MAX_MANIFEST_LEN` bytes and `MAX_INDEX_ENTRIES` entries.
pub fn decode_index(bytes: &[u8], object: &str) -> Result<Index> {
    check_len(
        bytes.len() as u64,
        MAX_MANIFEST_LEN,
        "manifest size",
        object,
    )?;
    let index: Index = parse(bytes, object)?;
    check_count(
        index.manifests.len(),
        MAX_INDEX_ENTRIES,
        "index entry count",
        "manifests",
        object,
    )?;
    Ok(index)
}

/// An image config, within `MAX_CONFIG_LEN` bytes and `MAX_LAYERS` diff_ids.
pub fn decode_config(bytes: &[u8], object: &str) -> Result<Config> {
    check_len(bytes.len() as u64, MAX_CONFIG_LEN, "config size", object)?;
    let config: Config = parse(bytes, object)?;
    check_count(
        config.diff_ids().len(),
        MAX_LAYERS,
        "layer count",
        "diff_ids",
        object,
    )?;
    Ok(config)
}

/// The size limit of a document of `media_type` fetched whole.
pub fn len_limit(media_type: &str) -> (u64, &'static str) {
    use super::media_type as t;
    match media_type {
        t::OCI_INDEX | t::DOCKER_LIST | t::OCI_MANIFEST | t::DOCKER_MANIFEST => {
            (MAX_MANIFEST_LEN, "manifest size")
        }
        super::artifact::CONFIG_TYPE => (MAX_ARTIFACT_CONFIG_LEN, "artifact config size"),
        _ => (MAX_CONFIG_LEN, "config size"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_with(layers: usize) -> Vec<u8> {
        let layer = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:00","size":1}"#;
        let layers = vec![layer; layers].join(",");
        format!(r#"{{"config":{{"digest":"sha256:00"}},"layers":[{layers}]}}"#).into_bytes()
    }

    #[test]
    fn each_limit_is_named_with_its_value() {
        assert_eq!(
            decode_manifest(&manifest_with(MAX_LAYERS), "m")
                .unwrap()
                .layers
                .len(),
            MAX_LAYERS
        );
        let err = decode_manifest(&manifest_with(MAX_LAYERS + 1), "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer count limit of 1000") && err.contains("1001 layers"),
            "{err}"
        );
        let err = decode_manifest(&manifest_with(100_000), "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest size limit of 4194304 bytes"),
            "{err}"
        );
        let index = format!(
            r#"{{"manifests":[{}]}}"#,
            vec![r#"{"digest":"x"}"#; 1001].join(",")
        );
        let err = decode_index(index.as_bytes(), "i").unwrap_err().to_string();
        assert!(err.contains("index entry count limit of 1000"), "{err}");
        let ids = vec![r#""sha256:00""#; 1001].join(",");
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":[{ids}]}}}}"#);
        let err = decode_config(config.as_bytes(), "c")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer count limit of 1000") && err.contains("1001 diff_ids"),
            "{err}"
        );
        let big = vec![b' '; MAX_CONFIG_LEN as usize + 1];
        let err = decode_config(&big, "c").unwrap_err().to_string();
        assert!(err.contains("config size limit"), "{err}");
    }
}
