//! Reports computed from bootstraps and layer metadata objects alone: what one image shares
//! with another (`diff`), the store's footprint and sharing between images (`stats`), and an
//! image/layer inventory (`inventory`).
//!
//! Memory: every report streams layer objects' entries (`LayerMeta::entries`, one block at a
//! time) and keeps, per image or layer, compact sorted vectors of chunk ids (`view::chunk_sets`: `ChunkSizes`,
//! 44 bytes a distinct chunk; `ChunkSet`, 32 bytes) rather than maps, and nothing per file but a
//! 32-byte content key where file contents are compared (`diff`). Figures that the layer
//! objects' info or the bootstraps hold (entry, file and chunk counts, content and tar bytes)
//! are taken from there without decoding entries.

pub(crate) mod delta_stats;
pub(crate) mod diff;
pub(crate) mod inventory;
pub(crate) mod stats;
pub(crate) mod tables;

use crate::view::chunk_sets::{content_key, is_file, ChunkSet, ChunkSize, ChunkSizes, Distinct};
