//! Chunk sets of images and layers (reading machinery, under `view`), for the reports
//! (`ops::report`), the dict build (`ops::bundle::dict_build`) and the plan (`ops::plan`):
//! compact sorted vectors of chunk ids (`ChunkSizes`, 44 bytes a distinct chunk; `ChunkSet`, 32
//! bytes) gathered from streamed layer entries (`Distinct`), rather than maps, and a file's
//! 32-byte content key (`content_key`).

use crate::error::Result;
use crate::format::layer_meta::{LayerEntry, LayerMeta};
use crate::layer::EntryKind;
use crate::ChunkId;

/// Items pushed beyond twice the distinct ones (or this many) are folded in by a sort.
const COMPACT_MIN: usize = 1 << 16;

/// Distinct items by a 32-byte key, gathered from a stream with repeats: pushed as they come,
/// sorted and deduplicated (keeping the first pushed of each key) whenever the repeats could
/// have doubled the vector, so that memory stays about twice the distinct items.
pub(crate) struct Distinct<T> {
    items: Vec<T>,
    kept: usize,
    key: fn(&T) -> &[u8; 32],
}

impl<T> Distinct<T> {
    pub(crate) fn new(key: fn(&T) -> &[u8; 32]) -> Self {
        Distinct {
            items: Vec::new(),
            kept: 0,
            key,
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        self.items.push(item);
        if self.items.len() >= (2 * self.kept).max(COMPACT_MIN) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let key = self.key;
        // A stable sort: of equal keys, the one pushed first stays first and is kept.
        self.items.sort_by(|a, b| key(a).cmp(key(b)));
        self.items
            .dedup_by(|later, earlier| key(later) == key(earlier));
        self.kept = self.items.len();
    }

    pub(crate) fn finish(mut self) -> Vec<T> {
        self.compact();
        self.items.shrink_to_fit();
        self.items
    }
}

/// One distinct chunk of an image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkSize {
    pub id: ChunkId,
    /// Uncompressed length.
    pub len: u32,
    /// Its share of its frame's stored bytes (`ChunkRecord::stored_share`).
    pub stored: u32,
    /// Its frame's decoded length.
    pub frame: u32,
}

/// The distinct chunks of an image, sorted by id. A chunk the image holds at two locations
/// (two layers converted side by side may each have stored it) counts with the location of its
/// first use in layer and entry order.
pub(crate) struct ChunkSizes(Vec<ChunkSize>);

impl ChunkSizes {
    /// Streams the entries of `layers` (an image's, bottom first).
    pub(crate) fn of(layers: &[LayerMeta]) -> Result<ChunkSizes> {
        let mut distinct = Distinct::new(|c: &ChunkSize| &c.id.0);
        for layer in layers {
            for entry in layer.entries() {
                for c in entry?.chunks {
                    distinct.push(ChunkSize {
                        id: c.id,
                        len: c.slice.len,
                        stored: u32::try_from(c.stored_share()).unwrap_or(u32::MAX),
                        frame: c.slice.frame_len,
                    });
                }
            }
        }
        Ok(ChunkSizes(distinct.finish()))
    }

    pub(crate) fn get(&self, id: &ChunkId) -> Option<&ChunkSize> {
        self.0
            .binary_search_by(|c| c.id.cmp(id))
            .ok()
            .map(|i| &self.0[i])
    }

    pub(crate) fn contains(&self, id: &ChunkId) -> bool {
        self.get(id).is_some()
    }

    /// Uncompressed length of `id`, 0 if the image lacks it.
    pub(crate) fn len_of(&self, id: &ChunkId) -> u64 {
        self.get(id).map_or(0, |c| c.len as u64)
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, ChunkSize> {
        self.0.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Uncompressed bytes of all its chunks.
    pub(crate) fn bytes(&self) -> u64 {
        self.0.iter().map(|c| c.len as u64).sum()
    }
}

/// The distinct chunk ids of one layer, sorted.
pub(crate) struct ChunkSet(Vec<ChunkId>);

impl ChunkSet {
    /// Streams the entries of `layer`.
    pub(crate) fn of(layer: &LayerMeta) -> Result<ChunkSet> {
        let mut distinct = Distinct::new(|id: &ChunkId| &id.0);
        for entry in layer.entries() {
            for c in entry?.chunks {
                distinct.push(c.id);
            }
        }
        Ok(ChunkSet(distinct.finish()))
    }

    pub(crate) fn contains(&self, id: &ChunkId) -> bool {
        self.0.binary_search(id).is_ok()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, ChunkId> {
        self.0.iter()
    }
}

/// A regular file's content identity: BLAKE3 of its chunk ids in order (equal contents give
/// equal lists, because chunk boundaries depend only on the bytes; and equal keys equal lists,
/// BLAKE3 being collision resistant).
pub(crate) fn content_key(entry: &LayerEntry) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for c in &entry.chunks {
        hasher.update(&c.id.0);
    }
    *hasher.finalize().as_bytes()
}

pub(crate) fn is_file(entry: &LayerEntry) -> bool {
    entry.meta.kind == EntryKind::File
}
