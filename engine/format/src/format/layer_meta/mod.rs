//! Layer metadata objects: the entries of one layer (raw tar headers, metadata, each file's
//! chunks) and its path index, content-addressed and shared by every image with that layer.
//! Written as entries stream in (`writer`, the path index sorted externally by `sort`), read
//! with random access (`reader`): one entry, one path lookup or one directory listing decodes
//! one or a few small blocks, each checked against its hash first. Nothing here needs the
//! store (RocksDB, `ops/`): the fuzz targets build it alone.
//!
//! ```text
//! offset 0      header: "CAIRNLYR" | version u32 = 1 | flags u32 = 0                 (16 bytes)
//! offset 16     entry blocks, back to back: the layer's entries in tar order, grouped until
//!               the next one would take the block past 64 KiB of encoded entries (an entry
//!               larger than that is a block alone)
//!               path blocks, back to back right after: path records sorted by (parent, name),
//!               grouped the same way up to 32 KiB
//! tables_offset tables: one zstd frame of bincode(Tables)               tables_stored_len bytes
//! end-32        footer: tables_offset u64 | tables_stored_len u64 | tables_len u64 |
//!               "CAIRNEND"                                                         (32 bytes)
//! ```
//! All integers little-endian. A block is one zstd frame (level 3) of its records' bincode-2
//! (`config::standard()`) encodings, back to back without a count (the block table has it):
//! `LayerEntry` in an entry block, `PathRecord` in a path block. `Tables` (bincode too, fields
//! in declaration order) holds the layer info, the blob table (what `ChunkRecord::blob`
//! indexes) and one record per block: its offset, stored and decoded lengths, record count,
//! BLAKE3 of its stored bytes, and (entry blocks) the number of its first entry or (path
//! blocks) its first key. `tables_len` is the tables' decoded length.
//!
//! The object id is BLAKE3(header | tables | footer), not the hash of the whole file: the
//! tables name every block's hash, and the blocks tile `[16, tables_offset)` exactly, so the id
//! still commits to every byte, while a reader checks it by reading only the small tables at
//! open and then checks each block against its hash when (and only when) it decodes it. So a
//! path lookup in a layer of a million files reads the tables and one 32 KiB block, all
//! verified. The object lives at `STORE/layers/<id hex>` (once wired into the store).
//!
//! The path index has one record per (parent, name) that the layer touches: the last entry at
//! that path (number and kind), whether the layer whites it out (`parent/.wh.NAME`: lower
//! layers' NAME and everything below it are deleted) and whether it is opaque
//! (`parent/NAME/.wh..wh..opq`: lower layers' entries strictly below it are hidden; also set
//! when a directory replaced a non-directory at that path within the layer, which had removed
//! what lower layers held below it). Every directory on the way to a record has a record too
//! (no entry, no flags where the layer has none there), so a directory's subtree is reached
//! from its parent's listing. Paths are normalized (no `./`, `/`, empty or `.` components);
//! whiteout and opaque-marker entries get no record under their literal names (they are in the
//! entry blocks like every entry); the root gets no record (an opaque marker at the root, or a
//! lone `.wh.` there, sets `LayerInfo::root_opaque`); a whiteout whose target is otherwise
//! empty or `.` names nothing. `fold_paths` is the one statement of these rules: the writer
//! applies it entry by entry and merges at sort time, and `ops::view` is tested against the
//! old whole-image tree with it, over records in memory and over written objects.

mod reader;
mod sort;
mod tables;
mod writer;

pub use reader::LayerMeta;
pub use writer::{LayerMetaWriter, SealedLayerMeta, WriterLimits};

use super::bootstrap::{BlobRecord, ChunkRecord};
use crate::layer::{EntryKind, EntryMeta};
use crate::{LayerMetaId, Sha256Digest};
use serde::{Deserialize, Serialize};

pub(crate) const MAGIC: &[u8; 8] = b"CAIRNLYR";
pub(crate) const END_MAGIC: &[u8; 8] = b"CAIRNEND";
pub const LAYER_META_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: u64 = 16;
pub(crate) const FOOTER_LEN: u64 = 32;
/// Entry blocks close before the next entry would take them past this many encoded bytes.
pub const ENTRY_BLOCK_TARGET: usize = 64 << 10;
/// Path blocks close before the next record would take them past this many encoded bytes.
pub const PATH_BLOCK_TARGET: usize = 32 << 10;
/// Bound on a block's decoded length, so on one encoded entry (a raw header of up to 16 MiB
/// of extensions, or a file of about a million chunks): the writer refuses larger entries.
pub const MAX_BLOCK_LEN: u64 = 64 << 20;
/// Bound on the decoded tables (about 60 bytes per 64 KiB of entries).
pub const MAX_TABLES_LEN: u64 = 256 << 20;
/// Blocks and tables are compressed at this zstd level.
pub(crate) const ZSTD_LEVEL: i32 = 3;
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// One entry of the layer, as the tar walker gave it, with its chunks inline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerEntry {
    /// Every tar byte between the previous entry's content and this entry's content.
    #[serde(with = "crate::bytes_serde")]
    pub raw_header: Vec<u8>,
    pub meta: EntryMeta,
    /// The content's chunks, in content order (a chunk may repeat); `blob` indexes the
    /// object's blob table.
    pub chunks: Vec<ChunkRecord>,
}

/// What the layer does at one path (see the module comment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRecord {
    /// The normalized directory, "" for the root.
    #[serde(with = "crate::bytes_serde")]
    pub parent: Vec<u8>,
    /// One component, never empty.
    #[serde(with = "crate::bytes_serde")]
    pub name: Vec<u8>,
    /// The number (in tar order) of the layer's last entry at this path.
    pub entry: Option<u64>,
    /// That entry's kind.
    pub kind: Option<EntryKind>,
    /// The layer deletes lower layers' `parent/name` and everything below it.
    pub whiteout: bool,
    /// The layer hides lower layers' entries strictly below `parent/name`.
    pub opaque: bool,
}

impl PathRecord {
    pub fn key(&self) -> (&[u8], &[u8]) {
        (&self.parent, &self.name)
    }

    /// Folds a record with the same key into this one, in any order: the later entry wins,
    /// flags add up, a directory that replaced a non-directory of the same layer is opaque
    /// (the non-directory removed what lower layers had below it), and a record whose entry is
    /// a non-directory is never opaque.
    pub(crate) fn merge(&mut self, other: PathRecord) {
        let (earlier, later) = if other.entry > self.entry {
            (self.kind, other.kind)
        } else {
            (other.kind, self.kind)
        };
        let is_dir = |k: Option<EntryKind>| k == Some(EntryKind::Directory);
        if earlier.is_some() && !is_dir(earlier) && is_dir(later) {
            self.opaque = true;
        }
        if other.entry > self.entry {
            self.entry = other.entry;
            self.kind = other.kind;
        }
        self.whiteout |= other.whiteout;
        self.opaque |= other.opaque;
        // A non-directory hides everything below it anyway; clearing the flag there makes the
        // result the same whatever order records are merged in (the sort merges runs in any
        // order, the model in tar order).
        if !is_dir(self.kind) && self.kind.is_some() {
            self.opaque = false;
        }
    }

    /// Bytes this record holds in memory (for the writer's bounds).
    pub(crate) fn mem_size(&self) -> usize {
        std::mem::size_of::<Self>() + self.parent.len() + self.name.len()
    }
}

/// What the writer's caller knows of the layer's tar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSource {
    /// sha256 of the uncompressed tar.
    pub diff_id: Sha256Digest,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// The bytes from the end-of-archive marker to the end of the tar.
    pub trailer: Vec<u8>,
}

/// The layer as a whole: its tar and figures the writer counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub source: LayerSource,
    pub entry_count: u64,
    /// Entries of kind `File`.
    pub file_count: u64,
    /// Chunk references of all entries (a repeated chunk counts each time).
    pub chunk_refs: u64,
    /// Content bytes of all entries (the sum of their sizes).
    pub content_bytes: u64,
    /// The layer has `.wh..wh..opq` at its root: lower layers are hidden entirely.
    pub root_opaque: bool,
}

/// Where one entry block lies and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EntryBlockRef {
    pub offset: u64,
    pub stored_len: u32,
    pub decoded_len: u32,
    pub first_entry: u64,
    pub count: u32,
    pub hash: [u8; 32],
}

/// Where one path block lies, what it holds and its first key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathBlockRef {
    pub offset: u64,
    pub stored_len: u32,
    pub decoded_len: u32,
    pub count: u32,
    pub hash: [u8; 32],
    #[serde(with = "crate::bytes_serde")]
    pub first_parent: Vec<u8>,
    #[serde(with = "crate::bytes_serde")]
    pub first_name: Vec<u8>,
}

impl PathBlockRef {
    pub fn first_key(&self) -> (&[u8], &[u8]) {
        (&self.first_parent, &self.first_name)
    }
}

/// Everything a reader loads at open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tables {
    pub info: LayerInfo,
    pub blobs: Vec<BlobRecord>,
    pub entry_blocks: Vec<EntryBlockRef>,
    pub path_blocks: Vec<PathBlockRef>,
}

/// `a/b/c` for any of `./a/b/c`, `/a/b/c/`, `a//b/c` (as `ops::tree::normalize`).
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    parts.join(&b'/')
}

/// True if `dir` is what `normalize` makes of it.
pub(crate) fn is_normalized(dir: &[u8]) -> bool {
    dir.is_empty()
        || dir
            .split(|&b| b == b'/')
            .all(|p| !p.is_empty() && p != b".")
}

/// A valid record name: one component, not empty, not `.`.
pub(crate) fn is_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && !name.contains(&b'/')
}

/// Splits a normalized `a/b/c` into (`a/b`, `c`).
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn record(parent: &[u8], name: &[u8]) -> PathRecord {
    PathRecord {
        parent: parent.to_vec(),
        name: name.to_vec(),
        entry: None,
        kind: None,
        whiteout: false,
        opaque: false,
    }
}

/// What one entry adds to the path index.
pub(crate) enum PathUpdate {
    /// Nothing: the root's own entry, or a whiteout that names nothing.
    Nothing,
    /// An opaque marker at the root, or a lone `.wh.` there (which removes everything below the
    /// root, as the merged view always did): lower layers are hidden entirely.
    RootOpaque,
    /// This record (and records for the directories above it, see `ancestor_records`).
    Record(PathRecord),
}

/// What entry `number` (at raw `path`, of `kind`) adds to the path index: `D/.wh.X` sets
/// `whiteout` on `D/X`, `D/.wh..wh..opq` sets `opaque` on `D`, any other entry is the record's
/// entry. These are the rules `ops::view` is tested against the old whole-image tree with.
pub(crate) fn path_update(path: &[u8], kind: EntryKind, number: u64) -> PathUpdate {
    let path = normalize(path);
    if path.is_empty() {
        return PathUpdate::Nothing;
    }
    let (dir, name) = split_last(&path);
    if name == OPAQUE_MARKER {
        if dir.is_empty() {
            return PathUpdate::RootOpaque;
        }
        let (parent, name) = split_last(dir);
        let mut r = record(parent, name);
        r.opaque = true;
        return PathUpdate::Record(r);
    }
    if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
        if target.is_empty() && dir.is_empty() {
            return PathUpdate::RootOpaque;
        }
        if !is_name(target) {
            return PathUpdate::Nothing;
        }
        let mut r = record(dir, target);
        r.whiteout = true;
        return PathUpdate::Record(r);
    }
    let mut r = record(dir, name);
    r.entry = Some(number);
    r.kind = Some(kind);
    PathUpdate::Record(r)
}

/// Records (no entry, no flags) for `dir` and every directory above it: every directory on the
/// way to a record has one, so that a directory's subtree is found from its parent's listing.
pub(crate) fn ancestor_records(dir: &[u8]) -> impl Iterator<Item = PathRecord> + '_ {
    let ends = dir
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .chain((!dir.is_empty()).then_some(dir.len()));
    ends.map(move |end| {
        let (parent, name) = split_last(&dir[..end]);
        record(parent, name)
    })
}

/// A layer's path records built whole in memory (`path_update` for every entry, folded with
/// `PathRecord::merge`): the model the tests and the round-trip fuzz target hold the writer
/// and reader to, and what `ops::view::MemoryLayerPaths` holds. `entries` are (number, raw
/// path, kind) in tar order. Returns the records in key order and whether the root is opaque.
pub fn fold_paths<'p>(
    entries: impl IntoIterator<Item = (u64, &'p [u8], EntryKind)>,
) -> (Vec<PathRecord>, bool) {
    use std::collections::btree_map::Entry;
    let mut map: std::collections::BTreeMap<(Vec<u8>, Vec<u8>), PathRecord> = Default::default();
    let mut root_opaque = false;
    let mut add = |r: PathRecord| match map.entry((r.parent.clone(), r.name.clone())) {
        Entry::Vacant(v) => {
            v.insert(r);
        }
        Entry::Occupied(mut o) => o.get_mut().merge(r),
    };
    for (number, path, kind) in entries {
        match path_update(path, kind, number) {
            PathUpdate::Nothing => {}
            PathUpdate::RootOpaque => root_opaque = true,
            PathUpdate::Record(r) => {
                for a in ancestor_records(&r.parent) {
                    add(a);
                }
                add(r);
            }
        }
    }
    (map.into_values().collect(), root_opaque)
}

/// The path index of `entries` built whole in memory (see `fold_paths`).
pub fn model_paths(entries: &[LayerEntry]) -> (Vec<PathRecord>, bool) {
    fold_paths(
        entries
            .iter()
            .enumerate()
            .map(|(n, e)| (n as u64, e.meta.path.as_slice(), e.meta.kind)),
    )
}

/// The checks an entry passes before it is written or trusted after decoding: chunk blob
/// indexes in range, chunk and frame numbers as the blob ToC rules say, chunks adding up to
/// the entry's size.
pub(crate) fn check_entry(entry: &LayerEntry, blob_count: usize) -> Result<(), String> {
    let mut total = 0u64;
    for (i, chunk) in entry.chunks.iter().enumerate() {
        chunk
            .check(blob_count)
            .map_err(|e| format!("chunk {i}{e}"))?;
        total += chunk.slice.len as u64;
    }
    if total != entry.meta.size {
        return Err(format!(
            "chunks hold {total} bytes, size is {}",
            entry.meta.size
        ));
    }
    Ok(())
}

/// The object id: BLAKE3 of the header, the stored tables and the footer.
pub(crate) fn root_id(header: &[u8], tables: &[u8], footer: &[u8]) -> LayerMetaId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(header);
    hasher.update(tables);
    hasher.update(footer);
    LayerMetaId(*hasher.finalize().as_bytes())
}

/// The bincode configuration of every record, bounded by a block's decoded length.
pub(crate) fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_BLOCK_LEN as usize }>()
}

#[cfg(test)]
mod tests;
