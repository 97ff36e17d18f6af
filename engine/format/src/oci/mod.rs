//! The OCI image-spec JSON that cairn reads and writes, in one place for both directions:
//! the media types (`media_type`), descriptors, manifests, indexes and configs (`image`), and
//! the `manifest.json` of a `docker save` archive (`docker_save`), cairn's own store-format
//! artifact (`artifact`), and the limits every document read from outside is held to (`limits`). `source` reads these types
//! from images to convert; `ops::export` writes them.
//!
//! Reading stays lenient, so that what other tools write is accepted: Docker schema 2 reads as
//! OCI, unknown fields are ignored, and fields that only the writer needs are not read at all.
//! Writing is exact: an exported image's digests are those of these bytes, so each type's
//! encoded form is pinned by a unit test, and changing it changes every digest cairn writes.

pub mod artifact;
mod docker_save;
mod image;
pub mod limits;
pub mod media_type;

pub use docker_save::ArchiveManifest;
pub use image::{Config, Descriptor, Index, Manifest, PlatformJson, REF_NAME};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Parses one JSON document; `object` names it in the error.
pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], object: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_input(object, format!("invalid JSON: {e}")))
}

/// Encodes one JSON document, compact (no whitespace); `object` names it in the error.
pub fn encode<T: Serialize + ?Sized>(value: &T, object: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::corrupt(object, format!("encode: {e}")))
}
