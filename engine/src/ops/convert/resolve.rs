//! Writes each converted layer's metadata object from its spills, once every layer's blobs are
//! sealed (so every new chunk has its place): entries in tar order, each chunk reference
//! resolved to the dictionary's location the processor recorded or to the new chunk's place in
//! a sealed blob of this convert (any layer's: a chunk repeated across layers is stored once),
//! or, for a new chunk another writer committed meanwhile, to where the index has it (the
//! commit re-resolves the layers then: `commit.rs`).
//! Memory: one entry at a time, the layer object's writer, and the new chunks' places (8
//! bytes per new chunk, sorted by id for binary search).

use super::spill::{SpillReader, SpilledChunk, SpilledEntry};
use super::{Converted, LayerContent, LayerOutput};
use crate::chunk::sketch::Sketch;
use crate::error::{Error, Result};
use crate::format::blob::SealedBlob;
use crate::format::bootstrap::ImageLayer;
use crate::format::layer_meta::{LayerEntry, LayerMetaWriter, SealedLayerMeta};
use crate::format::ChunkLocation;
use crate::index::LayerKey;
use crate::store::Writer;
use crate::write::image_write::{stored_blob_size, BlobTable};
use crate::{BlobId, ChunkId};
use rayon::prelude::*;
use std::collections::HashMap;

/// Where each new chunk of this convert went: (sealed blob, ToC record) of every new chunk,
/// sorted by chunk id (8 bytes per chunk; the ids are read from the ToCs).
struct NewChunks<'a> {
    blobs: Vec<&'a SealedBlob>,
    places: Vec<(u32, u32)>,
    sizes: HashMap<BlobId, u64>,
}

impl<'a> NewChunks<'a> {
    fn new(blobs: Vec<&'a SealedBlob>) -> Self {
        let mut places = Vec::with_capacity(blobs.iter().map(|b| b.toc.len()).sum());
        for (b, blob) in blobs.iter().enumerate() {
            places.extend((0..blob.toc.len()).map(|t| (b as u32, t as u32)));
        }
        let id = |&(b, t): &(u32, u32)| blobs[b as usize].toc[t as usize].id;
        places.sort_unstable_by_key(id);
        let sizes = blobs.iter().map(|b| (b.id, b.size)).collect();
        NewChunks {
            blobs,
            places,
            sizes,
        }
    }

    fn entry(&self, (b, t): (u32, u32)) -> (&SealedBlob, &crate::format::blob::TocEntry) {
        let blob = self.blobs[b as usize];
        (blob, &blob.toc[t as usize])
    }

    fn get(&self, id: &ChunkId) -> Option<ChunkLocation> {
        let i = self
            .places
            .binary_search_by(|&p| self.entry(p).1.id.cmp(id))
            .ok()?;
        let (blob, entry) = self.entry(self.places[i]);
        Some(blob.location(entry))
    }
}

/// What the layers of one image became: the bootstrap's layer list and the new layer objects
/// (under the writer's `tmp/`).
pub(super) struct Resolved {
    pub layers: Vec<ImageLayer>,
    pub objects: NewObjects,
}

impl Resolved {
    /// Removes the layer objects written (when they are written again).
    pub(super) fn discard(self) {
        for object in &self.objects.sealed {
            let _ = std::fs::remove_file(&*object.tmp_path);
        }
    }
}

/// Writes the layer objects of the converted layers (in parallel). A new chunk in `elsewhere`
/// (another writer committed it meanwhile) is referenced where the index has it.
pub(super) fn layer_objects(
    writer: &Writer,
    outputs: &[LayerOutput],
    elsewhere: &HashMap<ChunkId, ChunkLocation>,
) -> Result<Resolved> {
    let new_chunks = NewChunks::new(
        outputs
            .iter()
            .filter_map(|o| match &o.content {
                LayerContent::Converted(c) => Some(&c.blobs),
                LayerContent::Reused(_) => None,
            })
            .flatten()
            .collect(),
    );
    let written: Vec<Option<Result<NewObject>>> = outputs
        .par_iter()
        .map(|o| match &o.content {
            LayerContent::Converted(c) => Some(write_object(writer, c, &new_chunks, elsewhere)),
            LayerContent::Reused(_) => None,
        })
        .collect();
    drop(new_chunks);
    let mut resolved = Resolved {
        layers: Vec::new(),
        objects: NewObjects {
            sealed: Vec::new(),
            sketch_keys: Vec::new(),
        },
    };
    let mut failed = None;
    for (output, written) in outputs.iter().zip(written) {
        let layer = match (&output.content, written) {
            (LayerContent::Reused(layer), _) => layer.clone(),
            (LayerContent::Converted(c), Some(Ok(object))) => {
                let layer = ImageLayer {
                    digest: output.digest,
                    media_type: output.media_type.clone(),
                    compression: output.compression,
                    compressed_size: output.compressed_size,
                    diff_id: c.source.diff_id,
                    size: c.source.size,
                    meta: object.object.id,
                };
                resolved.objects.add(object);
                layer
            }
            (LayerContent::Converted(_), Some(Err(e))) => {
                failed.get_or_insert(e);
                continue;
            }
            (LayerContent::Converted(c), None) => {
                let e = Error::corrupt(c.label.clone(), "internal: no layer object written");
                failed.get_or_insert(e);
                continue;
            }
        };
        resolved.layers.push(layer);
    }
    if let Some(e) = failed {
        resolved.discard();
        return Err(e);
    }
    Ok(resolved)
}

/// Removes the layers' spill files (once the image is committed).
pub(super) fn remove_spills(outputs: &[LayerOutput]) {
    for output in outputs {
        if let LayerContent::Converted(c) = &output.content {
            let _ = std::fs::remove_file(&c.entries);
            let _ = std::fs::remove_file(&c.chunks);
        }
    }
}

/// Reads one layer's spills back in step and writes its layer object (fsynced, under `tmp/`).
fn write_object(
    writer: &Writer,
    layer: &Converted,
    new_chunks: &NewChunks,
    elsewhere: &HashMap<ChunkId, ChunkLocation>,
) -> Result<NewObject> {
    let internal = |what: String| Error::corrupt(layer.label.clone(), format!("internal: {what}"));
    let mut entries = SpillReader::<SpilledEntry>::open(&layer.entries)?;
    let mut chunks = SpillReader::<SpilledChunk>::open(&layer.chunks)?;
    let mut meta = LayerMetaWriter::create(writer.tmp_file("layer"))?;
    let mut table = BlobTable::default();
    let mut sketches = Vec::new();
    let mut number = 0u64;
    while let Some(entry) = entries.next_record()? {
        if let Some(sketch) = entry.sketch {
            sketches.push((number, sketch));
        }
        number += 1;
        let mut records = Vec::with_capacity(entry.chunks.min(1 << 16) as usize);
        for _ in 0..entry.chunks {
            let chunk = chunks
                .next_record()?
                .ok_or_else(|| internal("chunk spill ends early".into()))?;
            let location = match chunk
                .dictionary
                .or_else(|| elsewhere.get(&chunk.id).copied())
            {
                Some(location) => location,
                None => new_chunks
                    .get(&chunk.id)
                    .ok_or_else(|| internal(format!("new chunk {} has no place", chunk.id)))?,
            };
            let size = || match new_chunks.sizes.get(&location.blob) {
                Some(&size) => Ok(size),
                None => stored_blob_size(writer, &location.blob),
            };
            records.push(table.record(chunk.id, &location, size)?);
        }
        meta.push(LayerEntry {
            raw_header: entry.raw_header,
            meta: entry.meta,
            chunks: records,
        })?;
    }
    if chunks.next_record()?.is_some() {
        return Err(internal("chunk spill has chunks no entry names".into()));
    }
    let object = meta.finish(
        layer.source.clone(),
        table.blobs,
        "convert.layer_meta.fsync",
    )?;
    Ok(NewObject { object, sketches })
}

/// A layer object written by this convert, and the sketches of its large files (entry number,
/// sketch), for the index.
struct NewObject {
    object: SealedLayerMeta,
    sketches: Vec<(u64, Sketch)>,
}

/// The layer objects written by this convert (under `tmp/`) and the index keys that find
/// their large files by similarity.
pub(super) struct NewObjects {
    pub sealed: Vec<SealedLayerMeta>,
    pub sketch_keys: Vec<(LayerKey, crate::LayerMetaId)>,
}

impl NewObjects {
    fn add(&mut self, new: NewObject) {
        let id = new.object.id;
        let prefix: [u8; 16] = id.0[..16].try_into().expect("16 bytes");
        for (entry, sketch) in new.sketches {
            for feature in sketch {
                let key = LayerKey::Sketch {
                    feature,
                    entry,
                    object: prefix,
                };
                self.sketch_keys.push((key, id));
            }
        }
        self.sealed.push(new.object);
    }
}
