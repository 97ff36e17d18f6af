//! `WholeImage`: every entry of an image's layers loaded into memory, with one chunk table for
//! the image (the shape of a format-3 bootstrap). No command uses it: memory grows with the
//! image's entries, so every reader works on the layer objects directly (`view`,
//! `LayerMeta::entries`). It serves the tests: the view's reference model (`view::tree`) and
//! integration tests that compare whole images.

use crate::error::{Error, Result};
use crate::format::bootstrap::{BlobRecord, Bootstrap, ChunkRecord, SourceRecord};
use crate::format::layer_meta::LayerMeta;
use crate::format::ChunkLocation;
use crate::layer::{Compression, EntryMeta};
use crate::store::Store;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
use std::collections::HashMap;

/// An image with every entry of its layers in memory (tests only; see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeImage {
    /// What the bootstrap records of the source: reference, platform, manifest and config.
    pub source: SourceRecord,
    /// The layers with their entries, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The blobs this image's chunks live in.
    pub blobs: Vec<BlobRecord>,
    /// Every distinct chunk location of the image, in order of first use; entries refer to it
    /// by index.
    pub chunks: Vec<ChunkRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRecord {
    /// sha256 of the layer blob as it was read (compressed).
    pub digest: Sha256Digest,
    /// sha256 of the uncompressed tar.
    pub diff_id: Sha256Digest,
    pub media_type: String,
    pub compression: Compression,
    pub compressed_size: u64,
    pub size: u64,
    /// The layer metadata object the entries were read from.
    pub meta: LayerMetaId,
    pub entries: Vec<EntryRecord>,
    /// The bytes from the end-of-archive marker to the end of the tar.
    pub trailer: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRecord {
    /// Every tar byte between the previous entry's content and this entry's content: padding,
    /// extension entries (PAX, GNU long names) and the header block itself.
    pub raw_header: Vec<u8>,
    pub meta: EntryMeta,
    /// Indexes into `WholeImage::chunks`, in content order.
    pub chunks: Vec<u32>,
}

/// Builds the image-wide blob and chunk tables (each blob and chunk location once).
#[derive(Default)]
pub(crate) struct ChunkTable {
    pub blobs: Vec<BlobRecord>,
    blob_index: HashMap<BlobId, u32>,
    pub chunks: Vec<ChunkRecord>,
    chunk_index: HashMap<(ChunkId, BlobId, u64), u32>,
}

impl ChunkTable {
    /// The table index of a chunk at `location` (in a blob of `blob_size` bytes).
    pub(crate) fn index_of(
        &mut self,
        id: ChunkId,
        location: &ChunkLocation,
        blob_size: u64,
    ) -> u32 {
        let key = (id, location.blob, location.slice.offset);
        if let Some(&i) = self.chunk_index.get(&key) {
            return i;
        }
        let blob = *self.blob_index.entry(location.blob).or_insert_with(|| {
            self.blobs.push(BlobRecord {
                id: location.blob,
                size: blob_size,
            });
            (self.blobs.len() - 1) as u32
        });
        self.chunks.push(ChunkRecord::at(id, blob, location));
        let i = (self.chunks.len() - 1) as u32;
        self.chunk_index.insert(key, i);
        i
    }
}

impl WholeImage {
    /// Loads image `id`: its bootstrap and every entry of its layer objects (all verified).
    pub fn load(store: &Store, id: &ImageId) -> Result<WholeImage> {
        let bootstrap = store.bootstrap_by_id(id)?;
        Self::from_bootstrap(store, bootstrap)
    }

    /// Loads the entries of `bootstrap`'s layers from `store`'s layer objects; errors when an
    /// object is missing or damaged, or holds another diff_id than the bootstrap says.
    pub fn from_bootstrap(store: &Store, bootstrap: Bootstrap) -> Result<WholeImage> {
        Self::from_objects(bootstrap, |id| store.layer_meta(id))
    }

    /// Loads the entries of `bootstrap`'s layers, opening each layer object with `open`.
    pub(crate) fn from_objects(
        bootstrap: Bootstrap,
        open: impl Fn(&LayerMetaId) -> Result<LayerMeta>,
    ) -> Result<WholeImage> {
        let mut table = ChunkTable::default();
        let mut layers = Vec::with_capacity(bootstrap.layers.len());
        for layer in bootstrap.layers {
            let meta = open(&layer.meta)?;
            let mut entries = Vec::with_capacity(meta.entry_count() as usize);
            for entry in meta.entries() {
                let entry = entry?;
                let chunks = entry
                    .chunks
                    .iter()
                    .map(|c| {
                        let blob = &meta.blobs()[c.blob as usize];
                        table.index_of(c.id, &c.location(meta.blobs()), blob.size)
                    })
                    .collect();
                entries.push(EntryRecord {
                    raw_header: entry.raw_header,
                    meta: entry.meta,
                    chunks,
                });
            }
            let info = meta.info();
            if info.source.diff_id != layer.diff_id {
                return Err(Error::corrupt(
                    format!("layer metadata {}", layer.meta),
                    format!(
                        "holds diff_id {}, the bootstrap says {}",
                        info.source.diff_id, layer.diff_id
                    ),
                ));
            }
            layers.push(LayerRecord {
                digest: layer.digest,
                diff_id: layer.diff_id,
                media_type: layer.media_type,
                compression: layer.compression,
                compressed_size: layer.compressed_size,
                size: info.source.size,
                meta: layer.meta,
                entries,
                trailer: info.source.trailer.clone(),
            });
        }
        Ok(WholeImage {
            source: bootstrap.source,
            layers,
            blobs: table.blobs,
            chunks: table.chunks,
        })
    }

    /// Where `chunk` is stored: its blob id (from `blobs`) and its place in the blob.
    pub fn location(&self, chunk: &ChunkRecord) -> ChunkLocation {
        chunk.location(&self.blobs)
    }

    /// Regular files over all layers (a file in two layers counts twice).
    pub fn file_count(&self) -> u64 {
        self.layers
            .iter()
            .flat_map(|l| &l.entries)
            .filter(|e| e.meta.kind == crate::layer::EntryKind::File)
            .count() as u64
    }

    /// Bytes of the uncompressed layer tars.
    pub fn logical_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// Whole images, for tests.
impl Store {
    /// Every entry of image `name` in memory (see `view::whole_image`).
    pub fn whole_image(&self, name: &str) -> Result<WholeImage> {
        WholeImage::from_bootstrap(self, self.bootstrap(name)?)
    }

    /// Every entry of image `id` in memory; the same as `WholeImage::load`.
    pub fn whole_image_by_id(&self, id: &ImageId) -> Result<WholeImage> {
        WholeImage::load(self, id)
    }
}
