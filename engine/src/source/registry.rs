//! Images in an OCI registry as convert sources, `docker://REGISTRY/REPO[:TAG|@DIGEST]`, read
//! through the registry client (`crate::registry`). The index or manifest and the configs are
//! fetched whole, within `oci::limits`, and checked against their digests. A layer is streamed
//! into the convert while it downloads (`RemoteBlob`), never written to a file, and only when
//! the convert reads it: a layer whose digest the store already has is never downloaded.

pub use crate::registry::{Credentials, RegistrySpec, RemoteBlob, RemoteReader, Timeouts};

use super::resolve::{parse_digest, Blobs};
use super::{ImageSource, LayerBytes};
use crate::error::Result;
use crate::oci::limits::len_limit;
use crate::oci::{media_type, Descriptor};
use crate::registry::{document_media_type, manifest_at, Registry, MANIFEST_TYPES};
use crate::Sha256Digest;
use cairn_format::platform::PlatformChoice;
use std::sync::Arc;

/// The single-platform images at `spec`.
pub(crate) fn resolve(spec: &RegistrySpec, choice: &PlatformChoice) -> Result<Vec<ImageSource>> {
    let registry = Arc::new(Registry::connect(spec)?);
    let c = &registry.connection;
    let limit = len_limit(media_type::OCI_MANIFEST);
    let (digest, bytes) =
        registry
            .runtime
            .block_on(manifest_at(c, &c.reference, &MANIFEST_TYPES, limit))?;
    let top = Descriptor {
        media_type: document_media_type(&bytes),
        digest: digest.to_string(),
        size: Some(bytes.len() as u64),
        platform: None,
        annotations: Default::default(),
    };
    registry
        .fetched
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(digest, bytes);
    let what = format!("docker://{}", spec.reference);
    super::resolve::images(&RegistryBlobs(registry), &[top], choice, &what)
}

/// `Blobs` over a shared registry, so that layers can hold on to it.
struct RegistryBlobs(Arc<Registry>);

impl Blobs for RegistryBlobs {
    fn read_json(&self, desc: &Descriptor, what: &str) -> Result<(Sha256Digest, Vec<u8>)> {
        let digest = parse_digest(&desc.digest, what)?;
        let bytes = self.0.document(desc, &digest, what)?;
        Ok((digest, bytes))
    }

    fn layer(&self, digest: &Sha256Digest, size: Option<u64>) -> Result<LayerBytes> {
        Ok(LayerBytes::Remote(RemoteBlob {
            registry: self.0.clone(),
            digest: *digest,
            size,
        }))
    }
}
