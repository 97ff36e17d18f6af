//! Deterministic sample images and test data for cairn, generated in code.
//!
//! Used by the `cairn demo` command (a built-in example that needs no input), by the engine's
//! and the CLI's tests and by the benchmarks. It does not depend on the engine, so the engine's
//! own tests can use it. Nothing here touches the network or calls external tools, and every
//! function is deterministic: the same arguments give the same bytes on every run and every
//! platform (fixed mtimes, uid/gid 0, content from seeded generators, integer arithmetic only,
//! no hash-map ordering).
//!
//! Pieces:
//! - [`build_layer_tar`]: an uncompressed layer tar from a list of [`SampleEntry`] (ustar
//!   headers, PAX records for long or non-UTF-8-safe names, link targets and xattrs).
//! - [`OciLayoutWriter`]: an OCI image layout directory (single- and multi-platform images,
//!   uncompressed, gzip or zstd layers).
//! - [`write_docker_archive`]: a `docker save`-style archive.
//! - [`demo_layers`] / [`write_demo_layouts`]: the demo image pair (v1, v2) that shows what
//!   chunk-level dedup finds and layer-level dedup misses.
//! - [`Rng`]: the seeded generator all of the above and the tests draw their bytes from.
//!
//! ```
//! use cairn_sample::{
//!     build_layer_tar, LayerCompression, OciLayoutWriter, Rng, SampleEntry, SamplePlatform,
//! };
//! # fn main() -> std::io::Result<()> {
//! let entries = [
//!     SampleEntry::dir("etc/", 0o755),
//!     SampleEntry::file("etc/data.bin", 0o644, Rng::new(42).bytes(10_000)),
//! ];
//! let tar = build_layer_tar(&entries, 1_700_000_000)?;
//! assert_eq!(tar.len() % 512, 0);
//!
//! let dir = std::env::temp_dir().join(format!("cairn-sample-doc-{}", std::process::id()));
//! let mut layout = OciLayoutWriter::create(&dir)?;
//! let layers = [(tar, LayerCompression::Gzip)];
//! let digest = layout.add_image(Some("v1"), &SamplePlatform::linux_amd64(), &layers)?;
//! layout.finish()?;
//! assert!(digest.starts_with("sha256:"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod content;
mod demo;
mod docker_archive;
mod image_config;
mod layer_tar;
mod oci_layout;
mod rng;
#[cfg(test)]
mod testutil;

pub use demo::{
    demo_layers, write_demo_layouts, DEMO_MODEL_INSERT_AT, DEMO_MODEL_INSERT_LEN, DEMO_MODEL_LEN,
    DEMO_MTIME_V1, DEMO_MTIME_V2,
};
pub use docker_archive::write_docker_archive;
pub use image_config::SamplePlatform;
pub use layer_tar::{build_layer_tar, LayerCompression, SampleEntry};
pub use oci_layout::{OciLayoutWriter, SampleLayers};
pub use rng::Rng;

use sha2::{Digest, Sha256};
use std::io;

/// An `InvalidInput` error with `msg`.
fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// `sha256:<hex>` of `data`.
fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
