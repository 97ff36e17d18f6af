//! Reads a layer metadata object with random access. `open` maps the file, checks the header,
//! the footer and the object id (BLAKE3 of header, tables and footer) and every offset and
//! count of the tables; afterwards each read decodes only the blocks it needs, each checked
//! against its BLAKE3 from the tables before it is decompressed, and every record in it checked
//! before it is returned. Corruption is an error naming the object and the offset.

use super::{
    bincode_config, check_entry, is_name, is_normalized, normalize, BlobRecord, LayerEntry,
    LayerInfo, PathRecord, Tables,
};
use crate::error::{Error, IoContext, Result};
use crate::LayerMetaId;
use rayon::prelude::*;
use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Decoded blocks kept per kind unless set otherwise (`with_block_cache`), so that sequential
/// reads decode each block once.
const CACHED_BLOCKS: usize = 2;

/// Where the object's bytes come from. Blocks are read with `pread` into buffers of their own
/// rather than through a memory map: a map keeps every page a reader touched in its resident
/// set (the kernel maps whole large folios on a fault, so releasing ranges does not bound it),
/// and a reader streaming a million-entry layer must hold only the block it decodes.
enum Backing {
    File {
        file: File,
        path: PathBuf,
        len: u64,
    },
    /// Bytes handed in whole (the fuzz targets).
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    Owned(Vec<u8>),
}

impl Backing {
    fn len(&self) -> u64 {
        match self {
            Backing::File { len, .. } => *len,
            Backing::Owned(bytes) => bytes.len() as u64,
        }
    }

    /// `len` bytes at `offset`, which the caller has checked lie inside the object.
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        match self {
            Backing::File { file, path, .. } => {
                let mut buf = vec![0; len];
                file.read_exact_at(&mut buf, offset)
                    .with_path("read layer metadata", path)?;
                Ok(Cow::Owned(buf))
            }
            Backing::Owned(bytes) => {
                let end = offset as usize + len;
                Ok(Cow::Borrowed(&bytes[offset as usize..end]))
            }
        }
    }
}

/// The last few decoded blocks of one kind, most recently used last.
type BlockCache<T> = Mutex<Vec<(usize, Arc<Vec<T>>)>>;

/// An open layer metadata object.
pub struct LayerMeta {
    object: String,
    backing: Backing,
    pub(super) tables: Tables,
    /// Off only for the fuzz targets, which reach the decoders with random blocks.
    check_hashes: bool,
    entry_cache: BlockCache<LayerEntry>,
    path_cache: BlockCache<PathRecord>,
    /// Blocks kept per cache.
    cache_blocks: usize,
}

impl LayerMeta {
    /// Opens the object at `path`, which must have id `id`; `object` names it in errors.
    pub fn open(path: &Path, id: LayerMetaId, object: &str) -> Result<Self> {
        let file = File::open(path).with_path("open layer metadata", path)?;
        let len = file
            .metadata()
            .with_path("read the size of layer metadata", path)?
            .len();
        let path = path.to_path_buf();
        Self::from_backing(Backing::File { file, path, len }, Some(id), object)
    }

    /// Opens bytes without checking the object id or any block hash, so that random bytes
    /// reach the decoders: for the fuzz targets only.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub(crate) fn open_unverified(bytes: Vec<u8>, object: &str) -> Result<Self> {
        Self::from_backing(Backing::Owned(bytes), None, object)
    }

    fn from_backing(backing: Backing, id: Option<LayerMetaId>, object: &str) -> Result<Self> {
        let tables =
            super::tables::read_tables(backing.len(), |o, l| backing.read_at(o, l), id, object)?;
        Ok(LayerMeta {
            object: object.to_string(),
            backing,
            tables,
            check_hashes: id.is_some(),
            entry_cache: Mutex::new(Vec::new()),
            path_cache: Mutex::new(Vec::new()),
            cache_blocks: CACHED_BLOCKS,
        })
    }

    /// Keeps up to `blocks` decoded blocks of each kind (at least 1): for readers that come
    /// back to the same blocks out of order, such as a mounted filesystem answering lookups.
    pub fn with_block_cache(mut self, blocks: usize) -> Self {
        self.cache_blocks = blocks.max(1);
        self
    }

    pub fn info(&self) -> &LayerInfo {
        &self.tables.info
    }

    pub fn blobs(&self) -> &[BlobRecord] {
        &self.tables.blobs
    }

    pub fn entry_count(&self) -> u64 {
        self.tables.info.entry_count
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(self.object.clone(), reason)
    }

    /// The stored bytes of a block, checked against its hash, decompressed.
    fn block_data(
        &self,
        what: &str,
        offset: u64,
        stored_len: u32,
        decoded_len: u32,
        hash: &[u8; 32],
    ) -> Result<Vec<u8>> {
        let end = offset.saturating_add(stored_len as u64);
        if end > self.backing.len() {
            return Err(self.corrupt(format!("{what} at offset {offset} lies outside the file")));
        }
        let stored = self.backing.read_at(offset, stored_len as usize)?;
        if self.check_hashes && blake3::hash(&stored).as_bytes() != hash {
            return Err(self.corrupt(format!("{what} at offset {offset}: checksum mismatch")));
        }
        let data = super::super::decompress(&stored, decoded_len as usize)
            .map_err(|e| self.corrupt(format!("{what} at offset {offset}: zstd: {e}")))?;
        if data.len() != decoded_len as usize {
            return Err(self.corrupt(format!(
                "{what} at offset {offset} decodes to {} bytes, the table says {decoded_len}",
                data.len()
            )));
        }
        Ok(data)
    }

    /// Decodes and checks entry block `i`.
    fn entry_block(&self, i: usize) -> Result<Vec<LayerEntry>> {
        let block = &self.tables.entry_blocks[i];
        let what = format!("entry block {i}");
        let data = self.block_data(
            &what,
            block.offset,
            block.stored_len,
            block.decoded_len,
            &block.hash,
        )?;
        let at = |n: u64| format!("{what} at offset {}: entry {n}", block.offset);
        let entries: Vec<LayerEntry> = decode_records(&data, block.count)
            .map_err(|(k, e)| self.corrupt(format!("{}: {e}", at(block.first_entry + k))))?;
        for (k, entry) in entries.iter().enumerate() {
            check_entry(entry, self.tables.blobs.len()).map_err(|e| {
                let n = block.first_entry + k as u64;
                self.corrupt(format!("{} {:?}: {e}", at(n), entry.meta.path_lossy()))
            })?;
        }
        Ok(entries)
    }

    /// Decodes and checks path block `i`: every record valid, keys strictly increasing from
    /// the block's first key to below the next block's.
    fn path_block(&self, i: usize) -> Result<Vec<PathRecord>> {
        let block = &self.tables.path_blocks[i];
        let what = format!("path block {i} at offset {}", block.offset);
        let data = self.block_data(
            &what,
            block.offset,
            block.stored_len,
            block.decoded_len,
            &block.hash,
        )?;
        let records: Vec<PathRecord> = decode_records(&data, block.count)
            .map_err(|(k, e)| self.corrupt(format!("{what}: record {k}: {e}")))?;
        let next_first = self.tables.path_blocks.get(i + 1).map(|b| b.first_key());
        for (k, record) in records.iter().enumerate() {
            let problem = check_path_record(record, self.entry_count());
            let order_ok = match k {
                0 => record.key() == block.first_key(),
                _ => records[k - 1].key() < record.key(),
            };
            let problem = problem.or_else(|| {
                (!order_ok).then(|| "out of order or not the table's first key".to_string())
            });
            if let Some(problem) = problem {
                return Err(self.corrupt(format!("{what}: record {k}: {problem}")));
            }
        }
        if let (Some(last), Some(next)) = (records.last(), next_first) {
            if last.key() >= next {
                return Err(self.corrupt(format!("{what}: last key not below the next block's")));
            }
        }
        Ok(records)
    }

    fn cached<T>(
        &self,
        cache: &BlockCache<T>,
        i: usize,
        decode: impl FnOnce() -> Result<Vec<T>>,
    ) -> Result<Arc<Vec<T>>> {
        {
            let mut slots = lock(cache);
            if let Some(k) = slots.iter().position(|(n, _)| *n == i) {
                let hit = slots.remove(k);
                let block = hit.1.clone();
                slots.push(hit);
                return Ok(block);
            }
        }
        let block = Arc::new(decode()?);
        let mut slots = lock(cache);
        if slots.len() >= self.cache_blocks {
            slots.remove(0);
        }
        slots.push((i, block.clone()));
        Ok(block)
    }

    /// Entry `n` (in tar order).
    pub fn entry(&self, n: u64) -> Result<LayerEntry> {
        if n >= self.entry_count() {
            return Err(self.corrupt(format!(
                "no entry {n}: the layer has {}",
                self.entry_count()
            )));
        }
        let blocks = &self.tables.entry_blocks;
        let i = blocks.partition_point(|b| b.first_entry <= n) - 1;
        let block = self.cached(&self.entry_cache, i, || self.entry_block(i))?;
        Ok(block[(n - blocks[i].first_entry) as usize].clone())
    }

    /// Entries `numbers` (in increasing order, repeats allowed), each block that holds some
    /// decoded once (blocks in parallel) and its entries moved out rather than copied: how a
    /// listing or a batch of a walk reads many entries at once.
    pub fn entries_at(&self, numbers: &[u64]) -> Result<Vec<LayerEntry>> {
        if !numbers.is_sorted() {
            return Err(self.corrupt("internal: entries asked for out of order".into()));
        }
        if let Some(&last) = numbers.last().filter(|&&n| n >= self.entry_count()) {
            return Err(self.corrupt(format!(
                "no entry {last}: the layer has {}",
                self.entry_count()
            )));
        }
        // (block, the numbers it holds)
        let blocks = &self.tables.entry_blocks;
        let mut groups: Vec<(usize, &[u64])> = Vec::new();
        let mut rest = numbers;
        while let Some(&first) = rest.first() {
            let i = blocks.partition_point(|b| b.first_entry <= first) - 1;
            let end = blocks[i].first_entry + blocks[i].count as u64;
            let (wanted, later) = rest.split_at(rest.partition_point(|&n| n < end));
            groups.push((i, wanted));
            rest = later;
        }
        let decode = |&(i, wanted): &(usize, &[u64])| -> Result<Vec<LayerEntry>> {
            let block = self.entry_block(i)?;
            Ok(take_sorted(block, blocks[i].first_entry, wanted))
        };
        // One block is decoded here: starting the thread pool would cost more than it.
        let decoded: Vec<Vec<LayerEntry>> = if groups.len() > 1 {
            groups.par_iter().map(decode).collect::<Result<_>>()?
        } else {
            groups.iter().map(decode).collect::<Result<_>>()?
        };
        Ok(decoded.into_iter().flatten().collect())
    }

    /// Every entry in tar order, one block decoded at a time.
    pub fn entries(&self) -> Entries<'_> {
        let count = self.tables.entry_blocks.len();
        Blocks::new(self, 0, count, LayerMeta::entry_block)
    }

    /// The record of `name` in directory `parent` (any spelling; see `normalize`), if the
    /// layer touches that path.
    pub fn lookup(&self, parent: &[u8], name: &[u8]) -> Result<Option<PathRecord>> {
        let parent = normalize(parent);
        let key = (&parent[..], name);
        let blocks = &self.tables.path_blocks;
        let i = blocks.partition_point(|b| b.first_key() <= key);
        if i == 0 {
            return Ok(None);
        }
        let block = self.cached(&self.path_cache, i - 1, || self.path_block(i - 1))?;
        Ok(block
            .binary_search_by(|r| r.key().cmp(&key))
            .ok()
            .map(|k| block[k].clone()))
    }

    /// The records whose parent is `dir` ("" for the root; any spelling), in name order,
    /// starting at the first block that can hold them.
    pub fn children(&self, dir: &[u8]) -> Children<'_> {
        let dir = normalize(dir);
        let start = (&dir[..], &b""[..]);
        // Names are never empty, so (dir, "") sorts before every child of dir.
        let first = self
            .tables
            .path_blocks
            .partition_point(|b| b.first_key() <= start)
            .saturating_sub(1);
        Children {
            paths: self.paths_from(first),
            dir,
            done: false,
        }
    }

    /// True if some record has parent `dir` (any spelling). Decodes at most one path block,
    /// through the block cache: a walk asks this of every file it passes, so that files next
    /// to each other cost one block, where `children` decodes its blocks afresh.
    pub fn has_children(&self, dir: &[u8]) -> Result<bool> {
        let dir = normalize(dir);
        let start = (&dir[..], &b""[..]);
        let blocks = &self.tables.path_blocks;
        // Names are never empty, so the first child of dir, if any, is the first key > start:
        // in the block before the first one starting past start, else that block's first.
        let i = blocks.partition_point(|b| b.first_key() <= start);
        if i > 0 {
            let block = self.cached(&self.path_cache, i - 1, || self.path_block(i - 1))?;
            let k = block.partition_point(|r| r.key() <= start);
            if let Some(record) = block.get(k) {
                return Ok(record.parent == dir);
            }
        }
        Ok(blocks.get(i).is_some_and(|b| b.first_parent == dir))
    }

    /// True if this reader keeps more blocks than a streaming one (`with_block_cache`).
    pub fn caches_blocks(&self) -> bool {
        self.cache_blocks > CACHED_BLOCKS
    }

    /// The records whose parent is `dir` (any spelling), in name order, read through the block
    /// cache: what a reader listing directories again and again (a mount) wants, where
    /// `children` decodes its blocks afresh.
    pub fn children_cached(&self, dir: &[u8]) -> Result<Vec<PathRecord>> {
        let dir = normalize(dir);
        let start = (&dir[..], &b""[..]);
        let blocks = &self.tables.path_blocks;
        let mut i = blocks
            .partition_point(|b| b.first_key() <= start)
            .saturating_sub(1);
        let mut out = Vec::new();
        while i < blocks.len() {
            let block = self.cached(&self.path_cache, i, || self.path_block(i))?;
            // Names are never empty: the first child is the first key past (dir, "").
            let first = block.partition_point(|r| r.key() <= start);
            let listed = block[first..].iter().take_while(|r| r.parent == dir);
            let before = out.len();
            out.extend(listed.cloned());
            if first + (out.len() - before) < block.len() {
                break;
            }
            i += 1;
        }
        Ok(out)
    }

    /// Every path record in key order, one block decoded at a time.
    pub fn paths(&self) -> Paths<'_> {
        self.paths_from(0)
    }

    fn paths_from(&self, block: usize) -> Paths<'_> {
        let count = self.tables.path_blocks.len();
        Blocks::new(self, block, count, LayerMeta::path_block)
    }
}

/// The entries numbered `wanted` (sorted, repeats allowed) of a block whose first is `first`.
fn take_sorted(block: Vec<LayerEntry>, first: u64, wanted: &[u64]) -> Vec<LayerEntry> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut taken = 0;
    for (n, entry) in (first..).zip(block) {
        let times = wanted[taken..].iter().take_while(|&&w| w == n).count();
        if times > 0 {
            out.extend(std::iter::repeat_n(entry, times));
            taken += times;
        }
        if taken == wanted.len() {
            break;
        }
    }
    out
}

fn lock<T>(cache: &BlockCache<T>) -> std::sync::MutexGuard<'_, Vec<(usize, Arc<Vec<T>>)>> {
    // A panic while the lock was held cannot leave the cache inconsistent (it only holds
    // complete blocks), so a poisoned lock is used as is.
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

/// Decodes exactly `count` records that fill `data`; on error, the record number and reason.
fn decode_records<T: serde::de::DeserializeOwned>(
    data: &[u8],
    count: u32,
) -> std::result::Result<Vec<T>, (u64, String)> {
    let mut out = Vec::with_capacity((count as usize).min(1024));
    let mut pos = 0;
    for k in 0..count as u64 {
        let (record, used) = bincode::serde::decode_from_slice(&data[pos..], bincode_config())
            .map_err(|e| (k, e.to_string()))?;
        out.push(record);
        pos += used;
    }
    if pos != data.len() {
        return Err((
            count as u64,
            format!("{} bytes after the last record", data.len() - pos),
        ));
    }
    Ok(out)
}

/// What is wrong with a decoded path record, if anything.
fn check_path_record(record: &PathRecord, entry_count: u64) -> Option<String> {
    if !is_normalized(&record.parent) || !is_name(&record.name) {
        return Some("not a normalized parent and name".into());
    }
    if record.entry.is_some() != record.kind.is_some() {
        return Some("an entry without a kind or a kind without an entry".into());
    }
    if record.entry.is_some_and(|n| n >= entry_count) {
        return Some(format!("names an entry past the layer's {entry_count}"));
    }
    None
}

/// Records of one kind of block, decoded one block at a time from some block on; stops at the
/// first block that fails its checks (after returning the error).
pub struct Blocks<'a, T> {
    meta: &'a LayerMeta,
    next_block: usize,
    block_count: usize,
    decode: fn(&LayerMeta, usize) -> Result<Vec<T>>,
    current: std::vec::IntoIter<T>,
    failed: bool,
}

impl<'a, T> Blocks<'a, T> {
    fn new(
        meta: &'a LayerMeta,
        first: usize,
        block_count: usize,
        decode: fn(&LayerMeta, usize) -> Result<Vec<T>>,
    ) -> Self {
        Blocks {
            meta,
            next_block: first,
            block_count,
            decode,
            current: Vec::new().into_iter(),
            failed: false,
        }
    }
}

impl<T> Iterator for Blocks<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.current.next() {
                return Some(Ok(record));
            }
            if self.failed || self.next_block >= self.block_count {
                return None;
            }
            match (self.decode)(self.meta, self.next_block) {
                Ok(block) => self.current = block.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            self.next_block += 1;
        }
    }
}

/// Every entry in tar order (see `LayerMeta::entries`).
pub type Entries<'a> = Blocks<'a, LayerEntry>;

/// Path records in key order from some block on (see `LayerMeta::paths`).
pub type Paths<'a> = Blocks<'a, PathRecord>;

/// The records of one directory, in name order (see `LayerMeta::children`).
pub struct Children<'a> {
    paths: Paths<'a>,
    dir: Vec<u8>,
    done: bool,
}

impl Iterator for Children<'_> {
    type Item = Result<PathRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let record = match self.paths.next()? {
                Ok(record) => record,
                Err(e) => return Some(Err(e)),
            };
            match record.parent.as_slice().cmp(&self.dir) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Some(Ok(record)),
                std::cmp::Ordering::Greater => self.done = true,
            }
        }
        None
    }
}
