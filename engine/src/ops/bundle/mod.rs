//! Offline bundles: images shipped to a store that cannot reach a registry, holding only the
//! chunks the receiver lacks (`cairn bundle create|import|inspect`), and the chunk
//! dictionaries (`cairn dict export`) that tell a sender what a receiver holds.

pub mod create;
pub mod dict;
pub mod dict_build;
pub mod import;

/// The bundle file format (`format::bundle`).
pub use crate::format::bundle as file;

use crate::error::Result;
use file::{BundleManifest, BundleReader, Kind};
use serde::Serialize;

/// What `bundle inspect` tells: the manifest, and the bundle's size once its checksum passed.
#[derive(Clone, Debug, Serialize)]
pub struct BundleInfo {
    /// The bundle's manifest: its images and what it relies on the receiver having.
    #[serde(flatten)]
    pub manifest: BundleManifest,
    /// Bytes of the whole bundle, read through to its end record.
    pub bytes: u64,
}

/// Reads a bundle through (checking its checksum) and returns its manifest.
pub fn inspect(input: &mut dyn std::io::Read, what: &str) -> Result<BundleInfo> {
    let mut reader = BundleReader::new(std::io::BufReader::with_capacity(1 << 20, input), what)?;
    let mut manifest = None;
    while let Some(head) = reader.next_head()? {
        match head.kind {
            Kind::Manifest if manifest.is_none() => manifest = Some(reader.manifest(&head)?),
            _ => reader.skip(&head)?,
        }
    }
    let manifest =
        manifest.ok_or_else(|| crate::Error::bad_input(what.to_string(), "holds no manifest"))?;
    Ok(BundleInfo {
        manifest,
        bytes: reader.offset(),
    })
}
