//! The image a push can give back as it came: the original manifest and config the bootstrap
//! keeps byte for byte (`SourceRecord`), checked against their digests and against the
//! image's layers before a byte of them is sent. Used by `push`, which sends them verbatim
//! when the registry holds (or can mount) every original layer blob.

use crate::error::{Error, Result};
use crate::format::bootstrap::{Bootstrap, StoredObject};
use crate::oci::limits::decode_manifest;
use crate::registry::{check_digest, document_media_type};
use crate::Sha256Digest;

/// An image's original manifest and config, checked.
#[derive(Clone, Debug)]
pub(super) struct Original {
    pub(super) manifest_digest: Sha256Digest,
    pub(super) manifest: Vec<u8>,
    pub(super) media_type: String,
    pub(super) config_digest: Sha256Digest,
    pub(super) config: Vec<u8>,
    /// The layer blobs the manifest names, bottom first: digest and size.
    pub(super) layers: Vec<(String, u64)>,
}

/// The original of the image `name` (its bootstrap `bootstrap`), or why there is none that can
/// be sent as it was: the store holds no manifest (an image converted from a docker archive or
/// a layer file), or the manifest names other layers than the image's. Stored bytes that do
/// not match their own digest are damage: an error.
pub(super) fn original(
    bootstrap: &Bootstrap,
    name: &str,
) -> Result<std::result::Result<Original, String>> {
    let source = &bootstrap.source;
    let (Some(manifest), Some(config)) = (&source.manifest, &source.config) else {
        return Ok(Err(format!(
            "the store holds no original manifest of {name} (converted from {})",
            source.reference
        )));
    };
    check(manifest, "manifest", name)?;
    check(config, "config", name)?;
    let object = format!("original manifest {} of {name}", manifest.digest);
    let parsed = decode_manifest(&manifest.bytes, &object)?;
    if parsed.config.digest != config.digest.to_string() {
        return Ok(Err(format!(
            "its {object} names config {}, the store kept {}",
            parsed.config.digest, config.digest
        )));
    }
    let stored: Vec<String> = bootstrap
        .layers
        .iter()
        .map(|l| l.digest.to_string())
        .collect();
    let named: Vec<&String> = parsed.layers.iter().map(|l| &l.digest).collect();
    if named.len() != stored.len() || named.iter().zip(&stored).any(|(n, s)| *n != s) {
        return Ok(Err(format!(
            "its {object} names other layers than the image's"
        )));
    }
    let layers = parsed
        .layers
        .iter()
        .zip(&bootstrap.layers)
        .map(|(d, l)| (d.digest.clone(), d.size.unwrap_or(l.compressed_size)))
        .collect();
    let media_type = match manifest.media_type.as_str() {
        "" => document_media_type(&manifest.bytes),
        stated => stated.to_string(),
    };
    Ok(Ok(Original {
        manifest_digest: manifest.digest,
        manifest: manifest.bytes.clone(),
        media_type,
        config_digest: config.digest,
        config: config.bytes.clone(),
        layers,
    }))
}

/// The stored document against its digest.
fn check(object: &StoredObject, what: &str, name: &str) -> Result<()> {
    check_digest(
        &object.bytes,
        &object.digest,
        &format!("image {name}: stored {what}"),
    )
    .map_err(|e| Error::corrupt(format!("image {name}"), e.to_string()))
}
