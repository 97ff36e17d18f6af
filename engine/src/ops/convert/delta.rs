//! Delta compression of new chunks (`format::delta`). A new chunk of a file that an earlier
//! layer of the same image wrote at the same path (`earlier_layers.rs`), or else whose path the
//! base images hold (the `--dict` images; with the whole store as dictionary, the images of the
//! same repository, the name before its last `:`), is compressed against the old version's
//! chunks around the same place in the file (the offset scaled by the two files' sizes), and
//! stored as a delta frame if that is smaller than plain compression by `MARGIN`. Old chunks
//! that are themselves delta frames are never bases (depth 1).

use super::earlier_layers::EarlierLayers;
use crate::chunk::sketch::Sketch;
use crate::error::Result;
use crate::format::delta::{self, DeltaHeader, MAX_BASES, MAX_BASE_BYTES};
use crate::format::layer_meta::LayerMeta;
use crate::format::{ChunkLocation, Codec};
use crate::index::Index;
use crate::layer::EntryKind;
use crate::store::Store;
use crate::view::{record_entry, MergedView};
use crate::write::blob_builder::compress as compress_plain;
use crate::write::written_chunks::WrittenPlace;
use crate::{ChunkId, LayerMetaId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The images whose files are bases for a convert named `name`: the `--dict` images if any,
/// else the stored images of the same repository (the name up to its last `:`, or all of it).
pub(super) fn base_images(store: &Store, name: &str, dict: &[String]) -> Result<Vec<String>> {
    if !dict.is_empty() {
        return Ok(dict.to_vec());
    }
    let repository = |n: &str| n.rsplit_once(':').map_or(n, |(r, _)| r).to_string();
    let wanted = repository(name);
    Ok(store
        .index()
        .refs()?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n != name && repository(n) == wanted)
        .collect())
}

/// A delta frame is kept only if it is at most this share of plain compression (in tenths).
const MARGIN_TENTHS: usize = 9;
/// Old files kept looked up (the chunks of one file come one after another).
const CACHED_FILES: usize = 64;

/// Where a chunk comes from in its layer: its file and its offset there.
#[derive(Clone, Debug)]
pub(super) struct Origin {
    pub file: Arc<FileRef>,
    pub offset: u64,
}

/// A regular file of the layer being converted.
#[derive(Debug)]
pub(super) struct FileRef {
    /// Normalized path.
    pub path: Vec<u8>,
    pub size: u64,
    /// A regular file (not content that another entry kind carries).
    pub regular: bool,
    /// The sketch of its first chunk, for files of at least `SKETCH_MIN_FILE` bytes: set by
    /// the reader before it sends that chunk on.
    pub sketch: std::sync::OnceLock<Option<Sketch>>,
}

impl FileRef {
    /// May its chunks serve as bases for later layers of the same image: a regular file of at
    /// least `SKETCH_MIN_FILE` bytes (`earlier_layers.rs`).
    pub(super) fn may_be_base(&self) -> bool {
        self.regular && self.size >= SKETCH_MIN_FILE
    }
}

/// Files at least this large get a similarity sketch (of their first chunk), indexed with
/// their layer object so that a renamed or moved version of them finds them. Their number
/// is bounded by the layer's size over this.
pub(super) const SKETCH_MIN_FILE: u64 = 64 << 10;
/// Candidate old files looked at per super-feature.
const SKETCH_CANDIDATES: usize = 4;

/// A chunk of an old version of a file: (offset in the file, id, length, stored in a delta
/// frame).
pub(super) type OldChunk = (u64, ChunkId, u32, bool);

/// The chunks of an old version of a file.
pub(super) struct OldFile {
    pub size: u64,
    pub chunks: Vec<OldChunk>,
    /// Stored bytes of the file's plain chunks, and their length: what plain compression
    /// makes of this content (0 when not known: then the chosen bases' figures serve).
    pub plain_stored: u64,
    pub plain_len: u64,
    pub origin: BaseOrigin,
}

/// Where the old version a delta frame's bases come from was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BaseOrigin {
    /// At the same path in a base image.
    SamePath,
    /// In a base image, by similarity (a renamed or moved file).
    Similar,
    /// At the same path in an earlier layer of the image being converted.
    EarlierLayer,
}

type LookedUp = (Vec<u8>, Option<Arc<OldFile>>);

/// Where a base chunk is read from.
enum BasePlace {
    /// In the store, where the index has it.
    Stored(ChunkLocation),
    /// In a blob this convert is writing under `tmp/` (`ops/written_chunks.rs`).
    Written(WrittenPlace),
}

impl BasePlace {
    /// The chunk's share of its frame's stored bytes, and its length.
    fn stored_and_len(&self) -> (u64, u64) {
        match self {
            BasePlace::Stored(location) => (location.stored_share(), location.slice.len as u64),
            BasePlace::Written(place) => (place.slice.stored_share(), place.slice.len as u64),
        }
    }
}

/// A new chunk as a delta frame: its stored bytes (header and zstd frame), and what plain
/// compression makes of it.
pub(super) struct DeltaFrame {
    pub stored: Vec<u8>,
    pub plain_stored: usize,
    pub origin: BaseOrigin,
}

pub(super) struct DeltaFinder<'a> {
    store: &'a Store,
    /// The index the convert looks chunks up in (bases, sketches).
    index: &'a Index,
    /// Each base image's layer objects, bottom first.
    images: Vec<Vec<LayerMeta>>,
    /// Where each of those objects is: (image, layer).
    objects: HashMap<LayerMetaId, (usize, usize)>,
    level: i32,
    /// The last old files looked up (path, what the base images have there).
    files: Mutex<VecDeque<LookedUp>>,
    /// The files of this image's layers processed so far.
    earlier: EarlierLayers,
}

impl<'a> DeltaFinder<'a> {
    /// A finder over the images named `bases` (maybe none) and the image's own layers.
    pub(super) fn new(
        store: &'a Store,
        index: &'a Index,
        bases: &[String],
        level: i32,
    ) -> Result<Self> {
        let mut images = Vec::new();
        let mut objects = HashMap::new();
        for name in bases {
            let (bootstrap, layers) = store.image_layers(name)?;
            for (l, layer) in bootstrap.layers.iter().enumerate() {
                objects.entry(layer.meta).or_insert((images.len(), l));
            }
            images.push(layers);
        }
        Ok(DeltaFinder {
            store,
            index,
            images,
            objects,
            level,
            files: Mutex::new(VecDeque::new()),
            earlier: EarlierLayers::default(),
        })
    }

    /// Where the layers' processors register their files and record their written chunks.
    pub(super) fn earlier(&self) -> &EarlierLayers {
        &self.earlier
    }

    /// The stored delta frame for a new chunk (`data`) of layer `layer` from `origin`, if a
    /// base is found and the delta beats plain compression by the margin. The old version is
    /// the nearest earlier layer's file at the same path, or, if it has none or none of its
    /// chunks can be read yet (a layer still in flight), the base images'.
    pub(super) fn delta_frame(
        &self,
        layer: usize,
        data: &[u8],
        origin: &Origin,
    ) -> Result<Option<DeltaFrame>> {
        let mut located = Vec::new();
        let mut old = self.earlier.find(layer, &origin.file.path);
        if let Some(own) = &old {
            located = self.located_bases(own, origin, data.len())?;
        }
        if located.is_empty() {
            old = self.old_file(&origin.file)?;
            if let Some(found) = &old {
                located = self.located_bases(found, origin, data.len())?;
            }
        }
        let Some(old) = old.filter(|_| !located.is_empty()) else {
            return Ok(None);
        };
        let base = self.base_bytes(&located)?;
        let bases: Vec<ChunkId> = located.iter().map(|(id, _)| *id).collect();
        let compress_err = |e: std::io::Error| {
            crate::Error::corrupt(
                format!("{:?}", String::from_utf8_lossy(&origin.file.path)),
                format!("zstd delta compression: {e}"),
            )
        };
        let zstd = delta::compress(data, &base, self.level).map_err(compress_err)?;
        // Plain compression's size: estimated from what it made of the old version (or of the
        // bases), when the delta is under half of that; else measured.
        let (old_stored, old_len) = if old.plain_len > 0 {
            (old.plain_stored, old.plain_len)
        } else {
            located.iter().fold((0, 0), |(s, l), (_, place)| {
                let (stored, len) = place.stored_and_len();
                (s + stored, l + len)
            })
        };
        let estimate = (old_stored as u128 * data.len() as u128 / old_len.max(1) as u128) as usize;
        let plain_len = if old_len > 0 && zstd.len() * 2 < estimate {
            estimate.min(data.len())
        } else {
            compress_plain(data, self.level)
                .map_err(compress_err)?
                .map_or(data.len(), |p| p.len())
        };
        let header = DeltaHeader {
            bases,
            plain_stored: plain_len as u32,
        };
        let stored_len = header.encoded_len() + zstd.len();
        if stored_len * 10 > plain_len * MARGIN_TENTHS {
            return Ok(None);
        }
        let mut stored = Vec::with_capacity(stored_len);
        header.encode(&mut stored);
        stored.extend_from_slice(&zstd);
        Ok(Some(DeltaFrame {
            stored,
            plain_stored: plain_len,
            origin: old.origin,
        }))
    }

    /// The bases `choose_bases` picks in `old` for a new chunk of `len` bytes at `origin`,
    /// with where each is read from; those that cannot be read as plain chunks are left out.
    fn located_bases(
        &self,
        old: &OldFile,
        origin: &Origin,
        len: usize,
    ) -> Result<Vec<(ChunkId, BasePlace)>> {
        let mut located = Vec::new();
        for id in choose_bases(old, origin, len as u64) {
            if let Some(place) = self.base_place(&id)? {
                located.push((id, place));
            }
        }
        Ok(located)
    }

    /// Where base chunk `id` is read from: where the index has it, if it is plain there (a
    /// chunk the index has stays indexed there, also when this convert stores it again, and
    /// readers of the delta frame will read that copy); else where this convert wrote it in a
    /// plain frame (committed with the image, indexed there); else nowhere (`None`).
    fn base_place(&self, id: &ChunkId) -> Result<Option<BasePlace>> {
        Ok(match self.index.get_chunk(id)? {
            Some(location) if location.slice.codec != Codec::Delta => {
                Some(BasePlace::Stored(location))
            }
            Some(_) => None,
            None => self.earlier.written.get(id).map(BasePlace::Written),
        })
    }

    /// The bytes of the bases, back to back, each checked against its id.
    fn base_bytes(&self, bases: &[(ChunkId, BasePlace)]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (id, place) in bases {
            let bytes = match place {
                BasePlace::Stored(location) => self.store.base_chunk(id, location)?,
                BasePlace::Written(place) => self.earlier.written.read(id, place)?,
            };
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// The old version of `file`: the regular file at its path in the first base image that
    /// has one, else a large file of a base image whose first chunk's sketch shares a
    /// super-feature with `file`'s (a renamed or moved version).
    fn old_file(&self, file: &FileRef) -> Result<Option<Arc<OldFile>>> {
        if self.images.is_empty() {
            return Ok(None);
        }
        if let Some((_, found)) = lock(&self.files).iter().find(|(p, _)| *p == file.path) {
            return Ok(found.clone());
        }
        let mut found = None;
        for layers in &self.images {
            let view = MergedView::new(layers, None);
            let link_target = |l: usize, n: u64| Ok(layers[l].entry(n)?.meta.link_target);
            if let Some(shown) = view.content_entry(&file.path, link_target)? {
                let entry = record_entry(layers, &file.path, &shown)?;
                found = OldFile::of(&entry, BaseOrigin::SamePath);
                if found.is_some() {
                    break;
                }
            }
        }
        if found.is_none() {
            found = self.similar_file(file)?;
        }
        let found = found.map(Arc::new);
        let mut files = lock(&self.files);
        files.push_front((file.path.clone(), found.clone()));
        files.truncate(CACHED_FILES);
        Ok(found)
    }

    /// A file of the base images whose first chunk shares a super-feature with `file`'s.
    fn similar_file(&self, file: &FileRef) -> Result<Option<OldFile>> {
        let Some(Some(sketch)) = file.sketch.get() else {
            return Ok(None);
        };
        for &feature in sketch {
            for (id, n) in self.index.sketch_matches(feature, SKETCH_CANDIDATES)? {
                let Some(&(image, layer)) = self.objects.get(&id) else {
                    continue;
                };
                let meta = &self.images[image][layer];
                if n >= meta.entry_count() {
                    continue;
                }
                if let Some(old) = OldFile::of(&meta.entry(n)?, BaseOrigin::Similar) {
                    return Ok(Some(old));
                }
            }
        }
        Ok(None)
    }
}

impl OldFile {
    /// The chunks of a regular file's entry, if it has any.
    fn of(entry: &crate::format::layer_meta::LayerEntry, origin: BaseOrigin) -> Option<OldFile> {
        if entry.meta.kind != EntryKind::File || entry.chunks.is_empty() {
            return None;
        }
        let mut offset = 0;
        let (mut plain_stored, mut plain_len) = (0, 0);
        let chunks = entry
            .chunks
            .iter()
            .map(|c| {
                let at = offset;
                offset += c.slice.len as u64;
                let delta = c.slice.codec == Codec::Delta;
                if !delta {
                    plain_stored += c.stored_share();
                    plain_len += c.slice.len as u64;
                }
                (at, c.id, c.slice.len, delta)
            })
            .collect();
        Some(OldFile {
            size: entry.meta.size,
            chunks,
            plain_stored,
            plain_len,
            origin,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The old chunks nearest to where a new chunk of `len` bytes at `origin` falls in the old
/// file (its offset scaled by the sizes), plain ones only, at most `MAX_BASES` of at most
/// `MAX_BASE_BYTES` together, in file order.
fn choose_bases(old: &OldFile, origin: &Origin, len: u64) -> Vec<ChunkId> {
    let new_size = origin.file.size.max(1);
    let center = (origin.offset as u128 * old.size as u128 / new_size as u128) as u64 + len / 2;
    let distance = |&(at, _, l, _): &OldChunk| {
        let (start, end) = (at, at + l as u64);
        if center < start {
            start - center
        } else {
            center.saturating_sub(end)
        }
    };
    let mut near: Vec<&OldChunk> = old.chunks.iter().filter(|c| !c.3).collect();
    near.sort_by_key(|c| (distance(c), c.0));
    let mut chosen: Vec<&OldChunk> = Vec::new();
    let mut bytes = 0usize;
    for c in near {
        if chosen.len() == MAX_BASES || distance(c) > len.max(64 << 10) {
            break;
        }
        if bytes + c.2 as usize > MAX_BASE_BYTES || chosen.iter().any(|k| k.1 == c.1) {
            continue;
        }
        bytes += c.2 as usize;
        chosen.push(c);
    }
    chosen.sort_by_key(|c| c.0);
    chosen.iter().map(|c| c.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(lens: &[u32]) -> OldFile {
        let mut offset = 0;
        let chunks = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                let at = offset;
                offset += l as u64;
                (at, ChunkId([i as u8; 32]), l, i == 1)
            })
            .collect();
        OldFile {
            size: offset,
            chunks,
            plain_stored: 0,
            plain_len: 0,
            origin: BaseOrigin::SamePath,
        }
    }

    fn origin(offset: u64, size: u64) -> Origin {
        Origin {
            file: Arc::new(FileRef {
                path: b"f".to_vec(),
                size,
                regular: true,
                sketch: std::sync::OnceLock::new(),
            }),
            offset,
        }
    }

    #[test]
    fn bases_are_the_plain_old_chunks_nearest_the_scaled_offset() {
        let file = old(&[100_000, 100_000, 100_000, 100_000, 100_000, 100_000]);
        // Same size, the 4th chunk's place: chunk 3 itself, then its neighbours (chunk 1 is a
        // delta and never a base).
        let bases = choose_bases(&file, &origin(300_000, 600_000), 100_000);
        assert_eq!(bases[0], ChunkId([2; 32]));
        assert!(bases.contains(&ChunkId([3; 32])));
        assert!(!bases.contains(&ChunkId([1; 32])));
        assert!(bases.len() <= MAX_BASES);
        // The new file is twice as long: offsets are scaled.
        let bases = choose_bases(&file, &origin(1_000_000, 1_200_000), 10_000);
        assert_eq!(bases, vec![ChunkId([4; 32]), ChunkId([5; 32])]);
        // A small file: its one chunk.
        let small = old(&[3000]);
        assert_eq!(
            choose_bases(&small, &origin(0, 3100), 3100),
            vec![ChunkId([0; 32])]
        );
    }
}
