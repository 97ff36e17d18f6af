//! The RocksDB index: `chunks` (chunk key -> blob number and ToC record, used by convert to
//! dedup and by gc), `blobs` (blob number -> blob id), `images` (image id -> record) and `refs`
//! (name -> image id) and `layers` (layer digest or diff_id -> layer metadata object, see
//! `layers.rs`). A commit writes synced batches in `ops::convert`'s write order: chunk entries
//! first (several batches), the image record, then one batch of layer keys and the name.
//!
//! A chunk entry costs about 25 bytes on disk: a 16-byte key (the first half of the chunk id)
//! and two varints. The chunk's full id and location are its blob's ToC record, which the index
//! reads (memory-mapped, the ToC's checksum checked once per blob) and compares with the id
//! asked for: an entry whose record names another chunk is no match.

pub(crate) mod blobs;
mod derived;
mod layers;
mod record;

pub(crate) use derived::derived_record;
pub use derived::RECOVERED_PREFIX;
pub(crate) use layers::LayerKey;
pub use record::ImageRecord;

use crate::error::{Error, Result};
use crate::format::blob::CheckedToc;
use crate::format::varint::{get_varint, put_varint};
use crate::format::ChunkLocation;
use crate::id::ChunkKey;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use blobs::BlobNumbers;
use rocksdb::{
    ColumnFamilyDescriptor, DBCompressionType, IteratorMode, LogLevel, Options, WriteBatch,
    WriteOptions, DB,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const CF_CHUNKS: &str = "chunks";
const CF_BLOBS: &str = "blobs";
const CF_IMAGES: &str = "images";
const CF_REFS: &str = "refs";
const CF_LAYERS: &str = "layers";
const FAMILIES: [&str; 5] = [CF_CHUNKS, CF_BLOBS, CF_IMAGES, CF_REFS, CF_LAYERS];
/// How many times a read-only open that raced a writer's flush is tried again.
const READ_ONLY_OPEN_TRIES: usize = 8;

/// True if an open failed because a file of the database vanished while it was being opened
/// (RocksDB reports it as an I/O error, or as corruption when a table file the MANIFEST names
/// is gone: both say "No such file").
fn vanished(e: &rocksdb::Error) -> bool {
    matches!(
        e.kind(),
        rocksdb::ErrorKind::IOError | rocksdb::ErrorKind::Corruption
    ) && e.to_string().contains("No such file")
}

/// A RocksDB error of the index at `path`.
fn index_error(path: &Path, source: rocksdb::Error) -> Error {
    Error::Index {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// The changes of one commit. A chunk's location must be in a blob already in `blobs/`.
#[derive(Default)]
pub(crate) struct IndexBatch {
    pub chunks: Vec<(ChunkId, ChunkLocation)>,
    /// Chunks given by the blob and the number of their ToC record (a writer that just wrote
    /// the blob knows it, and need not have the index read the ToC back).
    pub chunk_records: Vec<(ChunkId, BlobId, u64)>,
    pub images: Vec<ImageRecord>,
    pub refs: Vec<(String, ImageId)>,
    pub delete_chunks: Vec<ChunkKey>,
    /// Blobs whose number is dropped (gc deletes them; no chunk entry may still name them).
    pub delete_blobs: Vec<BlobId>,
    pub delete_images: Vec<ImageId>,
    pub delete_refs: Vec<String>,
    /// Layer objects by the digests of the layer they were made from.
    pub layers: Vec<(LayerKey, LayerMetaId)>,
    pub delete_layers: Vec<LayerKey>,
}

impl IndexBatch {
    /// The layer keys of one layer whose tar this writer read or re-created and checked against
    /// its diff_id (see `layer_keys`).
    pub(crate) fn add_layer_keys(
        &mut self,
        layer: &crate::format::bootstrap::ImageLayer,
        digest_checked: bool,
    ) {
        self.layers.extend(layer_keys(layer, digest_checked));
    }
}

/// The `layers` keys of a layer that cairn checked itself (docs/FORMAT.md, "Reusing a stored
/// layer"): no key is indexed that cairn did not compute from the bytes. The diff_id key
/// always (the caller hashed the tar it read or re-created); the digest key only when
/// `digest_checked` (the caller hashed the layer blob as it read it: a convert) or when the
/// layer is an uncompressed tar whose digest is its diff_id. An imported layer arrives as
/// metadata and chunks, so its compressed blob, and the digest the sender claims for it,
/// cannot be checked: it gets no digest key.
pub(crate) fn layer_keys(
    layer: &crate::format::bootstrap::ImageLayer,
    digest_checked: bool,
) -> impl Iterator<Item = (LayerKey, LayerMetaId)> {
    let uncompressed =
        layer.compression == crate::layer::Compression::None && layer.digest == layer.diff_id;
    let digest =
        (digest_checked || uncompressed).then_some((LayerKey::Digest(layer.digest), layer.meta));
    std::iter::once((LayerKey::DiffId(layer.diff_id), layer.meta)).chain(digest)
}

/// One entry of the chunk index, resolved against its blob's ToC: the chunk's id and location,
/// or why the entry does not lead to one.
pub(crate) struct ChunkEntry {
    pub key: ChunkKey,
    pub resolved: std::result::Result<(ChunkId, ChunkLocation), String>,
}

/// An entry of the `layers` column family: its key bytes, and the key and object id when both
/// are well formed.
pub(crate) type RawLayerEntry = (Vec<u8>, Option<(LayerKey, LayerMetaId)>);

/// What can still be read of an index that may be damaged (see `Index::salvage`).
#[derive(Default)]
pub(crate) struct Salvage {
    pub refs: Vec<(String, ImageId)>,
    pub images: HashMap<ImageId, ImageRecord>,
    pub chunks: HashMap<ChunkId, ChunkLocation>,
    /// One line per malformed entry skipped or column family that could not be read.
    pub problems: Vec<String>,
}

/// The chunk index of a store whose blobs are in `blobs_dir`.
pub(crate) struct Index {
    db: DB,
    path: PathBuf,
    blobs_dir: PathBuf,
    numbers: RwLock<BlobNumbers>,
    /// Blobs whose ToC the index has read (checked once each).
    tocs: Mutex<HashMap<BlobId, Arc<CheckedToc>>>,
}

/// Table files a read-only open keeps open at once (see `Index::open_read_only`).
const READ_ONLY_OPEN_FILES: i32 = 256;

impl Index {
    /// The options of a writer's open; only `create` makes a database or column family.
    fn options(create: bool) -> Options {
        let mut opts = Options::default();
        opts.create_if_missing(create);
        opts.create_missing_column_families(create);
        opts.set_log_level(LogLevel::Warn);
        opts.set_keep_log_file_num(1);
        opts.set_max_log_file_size(1 << 20);
        opts.set_write_buffer_size(16 << 20);
        opts
    }

    fn descriptors() -> Vec<ColumnFamilyDescriptor> {
        FAMILIES
            .iter()
            .map(|name| {
                let mut cf = Options::default();
                if *name == CF_CHUNKS {
                    let mut table = rocksdb::BlockBasedOptions::default();
                    table.set_bloom_filter(10.0, false);
                    cf.set_block_based_table_factory(&table);
                    cf.set_compression_type(DBCompressionType::Lz4);
                    cf.set_bottommost_compression_type(DBCompressionType::Lz4);
                }
                ColumnFamilyDescriptor::new(*name, cf)
            })
            .collect()
    }

    /// Creates a new, empty index at `path` (which must not hold one) and opens it for
    /// writing: only `init` and the index repair (building `index.new`) do this.
    pub(crate) fn create(path: &Path, blobs_dir: &Path) -> Result<Index> {
        if Self::exists(path) {
            return Err(Error::corrupt(
                path.display().to_string(),
                "internal: an index is already there",
            ));
        }
        Self::open_with(path, blobs_dir, true)
    }

    /// Opens an existing index for writing; a missing or empty one (or one lacking a column
    /// family) is an error naming the repair, never created. Only the holder of the store
    /// lock may do this.
    pub(crate) fn open(path: &Path, blobs_dir: &Path) -> Result<Index> {
        Self::require(path)?;
        Self::open_with(path, blobs_dir, false)
    }

    fn open_with(path: &Path, blobs_dir: &Path, create: bool) -> Result<Index> {
        let db = DB::open_cf_descriptors(&Self::options(create), path, Self::descriptors())
            .map_err(|source| index_error(path, source))?;
        Self::with_db(db, path, blobs_dir)
    }

    /// Whether `path` holds a database (its `CURRENT` file names the live manifest; RocksDB
    /// writes it last when it creates one).
    pub(crate) fn exists(path: &Path) -> bool {
        path.join("CURRENT").is_file()
    }

    /// An error naming the repair unless `path` holds a database.
    pub(crate) fn require(path: &Path) -> Result<()> {
        match Self::exists(path) {
            true => Ok(()),
            false => Err(Error::corrupt(
                path.display().to_string(),
                format!(
                    "the index is {}; `cairn verify --repair-index` rebuilds it from the blobs \
                     and bootstraps (only `cairn init` creates an index)",
                    match path.exists() {
                        true => "empty (no CURRENT file)",
                        false => "missing",
                    }
                ),
            )),
        }
    }

    /// Whether the index holds no entry at all: no name, no image record, no chunk.
    pub(crate) fn is_blank(&self) -> Result<bool> {
        for name in [CF_REFS, CF_IMAGES, CF_CHUNKS] {
            let mut iter = self.db.iterator_cf(self.cf(name)?, IteratorMode::Start);
            if iter.next().transpose().map_err(|e| self.err(e))?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Opens read-only; works while a writer holds the index.
    ///
    /// A reader lists the writer's files, then opens them; when the writer flushed in between
    /// (every commit does), a write-ahead log or table file it listed is gone. Such an open
    /// is tried again, a few times, from a fresh listing.
    pub(crate) fn open_read_only(path: &Path, blobs_dir: &Path) -> Result<Index> {
        // Table files are opened when first read, not all at open: a reader that looks up a
        // name and a few chunks does not load the index blocks and filters of every table.
        Self::open_read_only_with(path, blobs_dir, READ_ONLY_OPEN_FILES)
    }

    /// Opens read-only with every table file opened at once and kept open: a writer's
    /// compaction may delete the files meanwhile (a shared writer's long lookups while other
    /// writers commit), and an open file stays readable.
    pub(crate) fn open_pinned(path: &Path, blobs_dir: &Path) -> Result<Index> {
        Self::open_read_only_with(path, blobs_dir, -1)
    }

    fn open_read_only_with(path: &Path, blobs_dir: &Path, open_files: i32) -> Result<Index> {
        Self::require(path)?;
        let mut opts = Options::default();
        opts.set_log_level(LogLevel::Warn);
        opts.set_keep_log_file_num(1);
        opts.set_max_open_files(open_files);
        opts.set_skip_stats_update_on_db_open(true);
        let mut attempt = 0;
        let db = loop {
            match DB::open_cf_for_read_only(&opts, path, FAMILIES, false) {
                Ok(db) => break db,
                Err(source) if attempt < READ_ONLY_OPEN_TRIES && vanished(&source) => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10 * attempt as u64));
                }
                Err(source) => return Err(index_error(path, source)),
            }
        };
        Self::with_db(db, path, blobs_dir)
    }

    fn with_db(db: DB, path: &Path, blobs_dir: &Path) -> Result<Index> {
        let index = Index {
            db,
            path: path.to_path_buf(),
            blobs_dir: blobs_dir.to_path_buf(),
            numbers: RwLock::new(BlobNumbers::default()),
            tocs: Mutex::new(HashMap::new()),
        };
        let mut numbers = BlobNumbers::default();
        for item in index
            .db
            .iterator_cf(index.cf(CF_BLOBS)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| index.err(e))?;
            let (Ok(number), Ok(id)) = (<[u8; 4]>::try_from(&key[..]), value[..].try_into()) else {
                return Err(Error::corrupt(
                    format!("index blob number {}", hex::encode(&key)),
                    "malformed entry",
                ));
            };
            numbers.insert(u32::from_be_bytes(number), BlobId(id));
        }
        *index.numbers.write().expect("blob numbers lock") = numbers;
        Ok(index)
    }

    /// The checked ToC of a blob the index names (opened once).
    fn toc(&self, blob: &BlobId) -> Result<Arc<CheckedToc>> {
        let mut tocs = self.tocs.lock().expect("tocs lock");
        if let Some(toc) = tocs.get(blob) {
            return Ok(toc.clone());
        }
        let toc = Arc::new(CheckedToc::open(
            &self.blobs_dir.join(blob.to_hex()),
            *blob,
        )?);
        tocs.insert(*blob, toc.clone());
        Ok(toc)
    }

    /// Resolves a chunk entry's value to the chunk id and location in its blob's ToC.
    fn resolve(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> std::result::Result<(ChunkId, ChunkLocation), String> {
        let mut rest = value;
        let (Some(number), Some(record), true) = (
            get_varint(&mut rest),
            get_varint(&mut rest),
            rest.is_empty(),
        ) else {
            return Err("malformed value".into());
        };
        let number = u32::try_from(number).map_err(|_| "malformed blob number".to_string())?;
        let blob = self
            .numbers
            .read()
            .expect("blob numbers lock")
            .id(number)
            .ok_or_else(|| format!("names blob number {number}, which the index does not know"))?;
        let entry = self
            .toc(&blob)
            .and_then(|toc| toc.get(record))
            .map_err(|e| e.to_string())?;
        if entry.id.0[..16] != key[..] {
            return Err(format!(
                "blob {blob} ToC record {record} holds chunk {}",
                entry.id
            ));
        }
        Ok((entry.id, entry.location(blob)))
    }

    fn err(&self, source: rocksdb::Error) -> Error {
        index_error(&self.path, source)
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| {
            Error::corrupt(
                self.path.display().to_string(),
                format!("column family {name} is missing"),
            )
        })
    }

    /// Where the store holds chunk `id`, if the index knows it. An entry that names another
    /// chunk with the same key is no match; one that leads nowhere is an error (the index must
    /// never name a missing blob).
    pub(crate) fn get_chunk(&self, id: &ChunkId) -> Result<Option<ChunkLocation>> {
        let key = id.key();
        let Some(value) = self
            .db
            .get_cf(self.cf(CF_CHUNKS)?, key.0)
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        match self.resolve(&key.0, &value) {
            // Another chunk with the same key: a collision, no match.
            Ok((found, location)) => Ok((found == *id).then_some(location)),
            Err(e) => Err(Error::corrupt(
                format!("index entry for chunk {id}"),
                format!(
                    "{e}; `cairn verify --repair-index` rebuilds the index from the blobs and \
                     bootstraps"
                ),
            )),
        }
    }

    pub(crate) fn get_ref(&self, name: &str) -> Result<Option<ImageId>> {
        let value = self
            .db
            .get_cf(self.cf(CF_REFS)?, name.as_bytes())
            .map_err(|e| self.err(e))?;
        value
            .map(|v| {
                v.as_slice().try_into().map(ImageId).map_err(|_| {
                    Error::corrupt(format!("index ref {name:?}"), "malformed image id")
                })
            })
            .transpose()
    }

    pub(crate) fn get_image(&self, id: &ImageId) -> Result<Option<ImageRecord>> {
        let value = self
            .db
            .get_cf(self.cf(CF_IMAGES)?, id.0)
            .map_err(|e| self.err(e))?;
        value
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| {
                    Error::corrupt(format!("index record of image {id}"), e.to_string())
                })
            })
            .transpose()
    }

    /// The layer object made from the layer `key` names, if the store has one.
    pub(crate) fn get_layer(&self, key: &LayerKey) -> Result<Option<LayerMetaId>> {
        let value = self
            .db
            .get_cf(self.cf(CF_LAYERS)?, key.bytes())
            .map_err(|e| self.err(e))?;
        value
            .map(|v| {
                layers::meta_id(&v).ok_or_else(|| {
                    Error::corrupt(format!("index entry of {key}"), "malformed object id")
                })
            })
            .transpose()
    }

    /// The files whose first chunk has super-feature `feature`: (layer object, entry number).
    /// At most `limit` of them.
    pub(crate) fn sketch_matches(
        &self,
        feature: u64,
        limit: usize,
    ) -> Result<Vec<(LayerMetaId, u64)>> {
        let prefix = layers::sketch_prefix(feature);
        let mut out = Vec::new();
        let from = IteratorMode::From(&prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_LAYERS)?, from) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if let (Some(LayerKey::Sketch { entry, .. }), Some(id)) =
                (LayerKey::from_bytes(&key), layers::meta_id(&value))
            {
                out.push((id, entry));
            }
        }
        Ok(out)
    }

    /// Every entry of the `layers` column family; malformed ones are skipped (gc drops what
    /// no live image uses, the index repair rebuilds the rest).
    pub(crate) fn layer_entries(&self) -> Result<Vec<RawLayerEntry>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_LAYERS)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let parsed = LayerKey::from_bytes(&key).zip(layers::meta_id(&value));
            out.push((key.to_vec(), parsed));
        }
        Ok(out)
    }

    /// All names, sorted.
    pub(crate) fn refs(&self) -> Result<Vec<(String, ImageId)>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_REFS)?, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let id =
                value.as_ref().try_into().map(ImageId).map_err(|_| {
                    Error::corrupt(format!("index ref {name:?}"), "malformed image id")
                })?;
            out.push((name, id));
        }
        Ok(out)
    }

    /// Calls `visit` with every chunk entry, in key order, resolved against the blob ToCs,
    /// holding none of them (a store of millions of chunks would otherwise hold them all).
    pub(crate) fn for_each_chunk_entry(
        &self,
        mut visit: impl FnMut(ChunkEntry) -> Result<()>,
    ) -> Result<()> {
        for item in self
            .db
            .iterator_cf(self.cf(CF_CHUNKS)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let key = ChunkKey(key.as_ref().try_into().map_err(|_| {
                Error::corrupt(
                    "index chunks",
                    format!("malformed key of {} bytes", key.len()),
                )
            })?);
            let resolved = self.resolve(&key.0, &value);
            visit(ChunkEntry { key, resolved })?;
        }
        Ok(())
    }

    /// Every image record.
    pub(crate) fn image_records(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_IMAGES)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(&value).map_err(|e| {
                Error::corrupt(format!("index record {}", hex::encode(&key)), e.to_string())
            })?);
        }
        Ok(out)
    }

    /// Reads every entry it can: malformed entries are skipped and a column family that fails
    /// to read stops there, each noted in `problems` (for `verify --repair-index`).
    pub(crate) fn salvage(&self) -> Salvage {
        let mut out = Salvage::default();
        for name in [CF_REFS, CF_IMAGES, CF_CHUNKS] {
            if name == CF_CHUNKS && self.cf(CF_BLOBS).is_err() {
                out.problems
                    .push(format!("column family {CF_BLOBS} is missing"));
            }
            let cf = match self.cf(name) {
                Ok(cf) => cf,
                Err(e) => {
                    out.problems.push(e.to_string());
                    continue;
                }
            };
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, value) = match item {
                    Ok(kv) => kv,
                    Err(e) => {
                        out.problems
                            .push(format!("column family {name}: {}", self.err(e)));
                        break;
                    }
                };
                let ok = match name {
                    CF_REFS => value
                        .as_ref()
                        .try_into()
                        .map(|id| {
                            let name = String::from_utf8_lossy(&key).into_owned();
                            out.refs.push((name, ImageId(id)))
                        })
                        .is_ok(),
                    CF_IMAGES => serde_json::from_slice::<ImageRecord>(&value)
                        .ok()
                        .filter(|r| r.image_id.0[..] == key[..])
                        .map(|r| out.images.insert(r.image_id, r))
                        .is_some(),
                    _ => match self.resolve(&key, &value) {
                        Ok((id, location)) if key.len() == 16 => {
                            out.chunks.insert(id, location);
                            true
                        }
                        _ => false,
                    },
                };
                if !ok {
                    out.problems.push(format!(
                        "column family {name}: malformed entry {} skipped",
                        hex::encode(&key[..key.len().min(32)])
                    ));
                }
            }
        }
        out
    }

    /// Writes one commit's changes atomically and durably.
    pub(crate) fn commit(&self, batch: IndexBatch) -> Result<()> {
        let mut wb = WriteBatch::default();
        let chunks = self.cf(CF_CHUNKS)?;
        let blobs = self.cf(CF_BLOBS)?;
        for key in &batch.delete_chunks {
            wb.delete_cf(chunks, key.0);
        }
        let mut numbers = self.numbers.write().expect("blob numbers lock");
        for id in &batch.delete_blobs {
            if let Some(number) = numbers.number(id) {
                wb.delete_cf(blobs, number.to_be_bytes());
            }
        }
        for id in &batch.delete_images {
            wb.delete_cf(self.cf(CF_IMAGES)?, id.0);
        }
        for name in &batch.delete_refs {
            wb.delete_cf(self.cf(CF_REFS)?, name.as_bytes());
        }
        for key in &batch.delete_layers {
            wb.delete_cf(self.cf(CF_LAYERS)?, key.bytes());
        }
        for (key, id) in &batch.layers {
            wb.put_cf(self.cf(CF_LAYERS)?, key.bytes(), id.0);
        }
        let mut new_numbers: HashMap<BlobId, u32> = HashMap::new();
        let mut number_of = |wb: &mut WriteBatch, blob: BlobId| -> u32 {
            if let Some(n) = numbers
                .number(&blob)
                .or_else(|| new_numbers.get(&blob).copied())
            {
                return n;
            }
            let n = numbers.next() + new_numbers.len() as u32;
            wb.put_cf(blobs, n.to_be_bytes(), blob.0);
            new_numbers.insert(blob, n);
            n
        };
        let mut value = Vec::with_capacity(16);
        let mut put = |wb: &mut WriteBatch, id: &ChunkId, number: u32, record: u64| {
            value.clear();
            put_varint(&mut value, number as u64);
            put_varint(&mut value, record);
            wb.put_cf(chunks, id.key().0, &value);
        };
        for (id, location) in &batch.chunks {
            let number = number_of(&mut wb, location.blob);
            let record = self.record_of(id, location)?;
            put(&mut wb, id, number, record);
        }
        for (id, blob, record) in &batch.chunk_records {
            let number = number_of(&mut wb, *blob);
            put(&mut wb, id, number, *record);
        }
        let images = self.cf(CF_IMAGES)?;
        for record in &batch.images {
            let json = serde_json::to_vec(record).expect("image record serializes");
            wb.put_cf(images, record.image_id.0, json);
        }
        let refs = self.cf(CF_REFS)?;
        for (name, id) in &batch.refs {
            wb.put_cf(refs, name.as_bytes(), id.0);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts).map_err(|e| self.err(e))?;
        for id in &batch.delete_blobs {
            numbers.remove(id);
            self.tocs.lock().expect("tocs lock").remove(id);
        }
        for (blob, number) in new_numbers {
            numbers.insert(number, blob);
        }
        Ok(())
    }

    /// The number of the ToC record of `location`'s blob that holds chunk `id`.
    fn record_of(&self, id: &ChunkId, location: &ChunkLocation) -> Result<u64> {
        let toc = self.toc(&location.blob)?;
        toc.find(location.slice.offset, location.slice.skip)
            .filter(|&r| {
                toc.get(r)
                    .is_ok_and(|e| e.id == *id && e.location(location.blob) == *location)
            })
            .ok_or_else(|| {
                Error::corrupt(
                    format!("blob {} offset {}", location.blob, location.slice.offset),
                    format!("internal: no ToC record for chunk {id} to index"),
                )
            })
    }

    /// Moves what the memtables hold into table files (compressed), so that the write-ahead
    /// log does not keep a second copy on disk.
    pub(crate) fn flush(&self) -> Result<()> {
        for name in FAMILIES {
            self.db.flush_cf(self.cf(name)?).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob::{BlobWriter, FramePart};
    use crate::format::Codec;

    /// A blob in `dir/blobs` holding two raw chunks; returns their ids and locations.
    fn blob_with_two_chunks(dir: &Path) -> [(ChunkId, ChunkLocation); 2] {
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        let mut writer = BlobWriter::create(dir.join("tmp-blob")).unwrap();
        let data = b"firstsecond";
        let (a, b) = (ChunkId::of(&data[..5]), ChunkId::of(&data[5..]));
        let parts = [
            FramePart {
                id: a,
                skip: 0,
                len: 5,
            },
            FramePart {
                id: b,
                skip: 5,
                len: 6,
            },
        ];
        writer
            .append_frame(Codec::Raw, data, data.len() as u32, &parts)
            .unwrap();
        let sealed = writer.seal("convert.blob.fsync").unwrap();
        std::fs::rename(&sealed.tmp_path, blobs.join(sealed.id.to_hex())).unwrap();
        [
            (a, sealed.location(&sealed.toc[0])),
            (b, sealed.location(&sealed.toc[1])),
        ]
    }

    #[test]
    fn only_create_makes_an_index_and_an_open_of_none_names_the_repair() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        let path = dir.path().join("index");
        for exists in [false, true] {
            if exists {
                std::fs::create_dir(&path).unwrap();
            }
            let opens = [
                Index::open(&path, &blobs).err(),
                Index::open_read_only(&path, &blobs).err(),
                Index::open_pinned(&path, &blobs).err(),
            ];
            for err in opens {
                let err = err.expect("an index where there is none").to_string();
                assert!(err.contains("--repair-index"), "{err}");
            }
            // Nothing was created.
            assert_eq!(path.exists(), exists);
            if exists {
                assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
            }
        }
        let index = Index::create(&path, &blobs).unwrap();
        assert!(index.is_blank().unwrap());
        drop(index);
        assert!(Index::create(&path, &blobs).is_err());
        Index::open(&path, &blobs).unwrap();
    }

    #[test]
    fn entries_resolve_through_the_blob_toc_and_a_key_naming_another_chunk_is_no_match() {
        let dir = tempfile::tempdir().unwrap();
        let [(a, loc_a), (b, loc_b)] = blob_with_two_chunks(dir.path());
        let index = Index::create(&dir.path().join("index"), &dir.path().join("blobs")).unwrap();
        index
            .commit(IndexBatch {
                chunks: vec![(a, loc_a), (b, loc_b)],
                ..IndexBatch::default()
            })
            .unwrap();
        assert_eq!(index.get_chunk(&a).unwrap(), Some(loc_a));
        assert_eq!(index.get_chunk(&b).unwrap(), Some(loc_b));
        // An id that shares a's key but is another chunk (a key collision) is not found.
        let mut twin = a;
        twin.0[31] ^= 1;
        assert_eq!(index.get_chunk(&twin).unwrap(), None);
        // A location that is not the chunk's own ToC record is refused at commit.
        let wrong = index.commit(IndexBatch {
            chunks: vec![(a, loc_b)],
            ..IndexBatch::default()
        });
        assert!(wrong.is_err());
        // An entry pointing at a record whose chunk has another key is damage: an error that
        // points to the repair, for lookups, verify and gc alike.
        let mut value = Vec::new();
        put_varint(&mut value, 0);
        put_varint(&mut value, 1);
        index
            .db
            .put_cf(index.cf(CF_CHUNKS).unwrap(), a.key().0, &value)
            .unwrap();
        let err = index.get_chunk(&a).unwrap_err().to_string();
        assert!(err.contains("--repair-index"), "{err}");
        let mut entries = Vec::new();
        index
            .for_each_chunk_entry(|entry| {
                entries.push(entry);
                Ok(())
            })
            .unwrap();
        let bad = entries.iter().find(|e| e.key == a.key()).unwrap();
        assert!(bad.resolved.as_ref().unwrap_err().contains("holds chunk"));
        // A record number past the ToC is an error naming the blob.
        value.clear();
        put_varint(&mut value, 0);
        put_varint(&mut value, 7);
        index
            .db
            .put_cf(index.cf(CF_CHUNKS).unwrap(), a.key().0, &value)
            .unwrap();
        let err = index.get_chunk(&a).unwrap_err().to_string();
        assert!(err.contains("no ToC record 7"), "{err}");
    }
}
