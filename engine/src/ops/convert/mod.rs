//! `convert`: an image source into the store, deduplicated against a dictionary.
//!
//! Per layer, a pipeline of two threads: the reader (source file -> sha256 -> decompress ->
//! sha256 -> tar stream -> chunker) sends batches of chunks to a processor that hashes them
//! (BLAKE3, in parallel), decides per chunk whether the dictionary or this convert already has
//! it, compresses the new ones (in parallel) and appends them, in stream order, to the layer's
//! blob under `tmp/`. Layers run concurrently. Memory is bounded by the batches in flight.
//!
//! Commit, once every layer's digest and diff_id verified (the write order that keeps the store
//! consistent across a crash at any instant):
//!   1. each sealed blob (already fsynced) is renamed into `blobs/`, then `blobs/` is fsynced;
//!   2. the bootstrap is written to `tmp/`, fsynced, renamed into `bootstraps/`, dir fsynced;
//!   3. one synced RocksDB write batch adds the new chunk locations, the image record, its name.
//!
//! A crash before 3 leaves only files no name reaches (gc removes them); after 3 the image is
//! complete. Before 1, an error leaves the store exactly as it was (`tmp/` is emptied).

mod layer;

use crate::error::{Error, Result};
use crate::format::blob::SealedBlob;
use crate::format::bootstrap::{
    BlobRecord, Bootstrap, ChunkRecord, LayerRecord, SourceRecord, StoredObject,
};
use crate::format::ChunkLocation;
use crate::index::{ImageRecord, IndexBatch};
use crate::progress::{Progress, Unit};
use crate::source::{ImageSource, PlatformChoice, RawObject, SourceSpec};
use crate::store::{Store, StoreWriter};
use crate::ChunkId;
use layer::convert_layers;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub source: SourceSpec,
    /// The name to record; with several platforms each gets `NAME@os/arch[/variant]`.
    pub name: String,
    /// Reuse only chunks of these images; empty: every chunk in the store.
    pub dict: Vec<String>,
    pub platform: PlatformChoice,
    /// Point an existing name at the new image instead of refusing.
    pub replace: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConvertReport {
    pub images: Vec<ImageReport>,
}

/// Chunk and byte counts.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Count {
    pub chunks: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.chunks += 1;
        self.bytes += bytes;
    }

    fn merge(&mut self, other: Count) {
        self.chunks += other.chunks;
        self.bytes += other.bytes;
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerReport {
    pub digest: String,
    pub diff_id: String,
    pub compression: String,
    pub compressed_bytes: u64,
    pub tar_bytes: u64,
    pub entries: u64,
    pub files: u64,
    /// Chunk references of the layer's files, and their bytes.
    pub chunks: Count,
    /// New chunks, stored by this convert (bytes uncompressed).
    pub new: Count,
    /// Chunks found in the dictionary.
    pub from_dictionary: Count,
    /// Chunks that repeat a chunk seen earlier in this same convert.
    pub repeated: Count,
    /// Bytes this layer wrote into blobs (compressed chunks).
    pub stored_bytes: u64,
}

impl LayerReport {
    fn merge_counts(&mut self, other: &LayerReport) {
        self.compressed_bytes += other.compressed_bytes;
        self.tar_bytes += other.tar_bytes;
        self.entries += other.entries;
        self.files += other.files;
        self.chunks.merge(other.chunks);
        self.new.merge(other.new);
        self.from_dictionary.merge(other.from_dictionary);
        self.repeated.merge(other.repeated);
        self.stored_bytes += other.stored_bytes;
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub image_id: String,
    pub reference: String,
    pub platform: Option<String>,
    pub manifest_digest: Option<String>,
    /// `store` (every stored chunk) or the names given with `--dict`.
    pub dictionary: Vec<String>,
    pub layers: Vec<LayerReport>,
    /// Sums over the layers.
    pub totals: LayerReport,
    pub unique_chunks: u64,
    pub blobs_written: u64,
    pub bootstrap_bytes: u64,
    /// Bytes added to the store: new blobs plus the bootstrap.
    pub added_bytes: u64,
    pub seconds: f64,
    /// Uncompressed tar bytes per second.
    pub tar_mb_per_s: f64,
}

/// The chunks a convert may reuse.
enum Dictionary<'a> {
    /// Every chunk in the store (index lookups).
    Store(&'a crate::index::Index),
    /// Only the chunks of named images.
    Images(HashMap<ChunkId, ChunkLocation>),
}

impl Dictionary<'_> {
    fn get(&self, id: &ChunkId) -> Result<Option<ChunkLocation>> {
        match self {
            Dictionary::Store(index) => index.get_chunk(id),
            Dictionary::Images(map) => Ok(map.get(id).copied()),
        }
    }
}

pub fn convert(
    store: &StoreWriter,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    validate_name(&options.name)?;
    let images = options.source.resolve(&options.platform)?;
    let several = images.len() > 1;
    let named: Vec<(String, ImageSource)> = images
        .into_iter()
        .map(|image| {
            let name = match (&image.platform, several) {
                (Some(p), true) => format!("{}@{p}", options.name),
                _ => options.name.clone(),
            };
            (name, image)
        })
        .collect();
    for (name, _) in &named {
        if !options.replace && store.index().get_ref(name)?.is_some() {
            return Err(Error::Usage(format!(
                "an image named {name:?} already exists; choose another --name or pass --replace"
            )));
        }
    }
    let dictionary = if options.dict.is_empty() {
        Dictionary::Store(store.index())
    } else {
        let mut map = HashMap::new();
        for name in &options.dict {
            let bootstrap = store.bootstrap(name)?;
            for chunk in &bootstrap.chunks {
                map.insert(chunk.id, bootstrap.location(chunk));
            }
        }
        Dictionary::Images(map)
    };
    let total: u64 = named
        .iter()
        .flat_map(|(_, i)| &i.layers)
        .map(|l| l.bytes.len)
        .sum();
    progress.set_length(total, Unit::Bytes);
    let mut report = ConvertReport::default();
    for (name, image) in &named {
        progress.set_message(name);
        let result = convert_image(store, &dictionary, name, image, options, progress);
        match result {
            Ok(image_report) => report.images.push(image_report),
            Err(e) => {
                // Nothing of this image was committed: drop its temporary files.
                let _ = store.layout().clear_tmp();
                return Err(e);
            }
        }
    }
    progress.finish();
    Ok(report)
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_control()) {
        return Err(Error::Usage(format!(
            "image name {name:?} must be 1 to 255 printable characters"
        )));
    }
    Ok(())
}

/// What one layer's conversion produced, before the image-wide chunk table exists.
struct LayerOutput {
    record: LayerRecord,
    /// Chunk id of each layer-local chunk number used in `record`'s entries.
    chunk_ids: Vec<ChunkId>,
    /// Locations of chunks that came from the dictionary.
    reused: HashMap<ChunkId, ChunkLocation>,
    blobs: Vec<SealedBlob>,
    report: LayerReport,
}

/// State shared by the layers of one image.
struct Shared<'a> {
    store: &'a StoreWriter,
    dictionary: &'a Dictionary<'a>,
    /// Chunks this convert is storing (first claim wins).
    claimed: Mutex<HashSet<ChunkId>>,
    cancel: AtomicBool,
    progress: &'a dyn Progress,
}

fn convert_image(
    store: &StoreWriter,
    dictionary: &Dictionary,
    name: &str,
    image: &ImageSource,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ImageReport> {
    let started = Instant::now();
    let shared = Shared {
        store,
        dictionary,
        claimed: Mutex::new(HashSet::new()),
        cancel: AtomicBool::new(false),
        progress,
    };
    let mut outputs = convert_layers(&shared, &image.layers)?;
    let sealed: Vec<SealedBlob> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.blobs))
        .collect();

    // The image's chunk table: every distinct chunk in order of first use.
    let mut locations: HashMap<ChunkId, ChunkLocation> = HashMap::new();
    for blob in &sealed {
        for entry in &blob.toc {
            locations.insert(entry.id, blob.location(entry));
        }
    }
    for output in &outputs {
        for (id, location) in &output.reused {
            locations.entry(*id).or_insert(*location);
        }
    }
    let mut table = ChunkTable::new(store, &sealed);
    let mut layers = Vec::new();
    let mut totals = LayerReport::default();
    let mut layer_reports = Vec::new();
    for output in outputs {
        let mut record = output.record;
        for entry in &mut record.entries {
            for local in entry.chunks.iter_mut() {
                let id = output.chunk_ids[*local as usize];
                *local = table.index_of(id, &locations)?;
            }
        }
        layers.push(record);
        totals.merge_counts(&output.report);
        layer_reports.push(output.report);
    }
    let bootstrap = Bootstrap {
        source: SourceRecord {
            reference: image.reference.clone(),
            platform: image.platform.clone(),
            manifest: image.manifest.as_ref().map(stored_object),
            config: image.config.as_ref().map(stored_object),
        },
        layers,
        blobs: table.blobs,
        chunks: table.chunks,
    };
    let committed = commit(store, name, image, &bootstrap, &sealed, totals.new.chunks)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImageReport {
        name: name.to_string(),
        image_id: committed.image_id.to_hex(),
        reference: image.reference.clone(),
        platform: image.platform.as_ref().map(|p| p.to_string()),
        manifest_digest: image.manifest.as_ref().map(|m| m.digest.to_string()),
        dictionary: if options.dict.is_empty() {
            vec!["store".to_string()]
        } else {
            options.dict.clone()
        },
        unique_chunks: bootstrap.chunks.len() as u64,
        blobs_written: committed.blobs_written,
        bootstrap_bytes: committed.bootstrap_bytes,
        added_bytes: committed.blob_bytes + committed.bootstrap_bytes,
        seconds,
        tar_mb_per_s: totals.tar_bytes as f64 / 1e6 / seconds.max(1e-9),
        layers: layer_reports,
        totals,
    })
}

/// What the commit of one image wrote.
struct Committed {
    image_id: crate::ImageId,
    blobs_written: u64,
    blob_bytes: u64,
    bootstrap_bytes: u64,
}

/// Commits one converted image in the write order of the module's doc: sealed blobs renamed
/// into place, the bootstrap, then one synced index batch naming it.
fn commit(
    store: &StoreWriter,
    name: &str,
    image: &ImageSource,
    bootstrap: &Bootstrap,
    sealed: &[SealedBlob],
    new_chunks: u64,
) -> Result<Committed> {
    let encoded = bootstrap.encode()?;
    let image_id = crate::format::bootstrap::image_id(&encoded);
    // Step 1: blobs, already fsynced, renamed into place.
    let (blobs_written, blob_bytes) = crate::ops::blob_builder::publish(
        store,
        sealed,
        "convert.blob.rename",
        Some("convert.blobs.dir_fsync"),
    )?;
    // Step 2: the bootstrap.
    let bootstrap_path = store.bootstrap_path(&image_id);
    if !bootstrap_path.exists() {
        crate::failpoint::check("convert.bootstrap.write")?;
        crate::fsutil::write_durably(
            &store.layout().tmp_file("bootstrap"),
            &bootstrap_path,
            &encoded,
            "convert.bootstrap.rename",
        )?;
    }
    // Step 3: one synced index batch.
    let mut batch = IndexBatch::default();
    for blob in sealed {
        for entry in &blob.toc {
            if store.index().get_chunk(&entry.id)?.is_none() {
                batch.chunks.push((entry.id, blob.location(entry)));
            }
        }
    }
    let record = ImageRecord {
        image_id,
        bootstrap_size: encoded.len() as u64,
        reference: image.reference.clone(),
        platform: image.platform.clone(),
        manifest_digest: image.manifest.as_ref().map(|m| m.digest.to_string()),
        layers: bootstrap.layers.len() as u64,
        files: bootstrap.file_count(),
        logical_bytes: bootstrap.logical_bytes(),
        new_chunks,
        added_stored_bytes: blob_bytes,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    // The same image converted again under another name keeps the record of its first convert.
    if store.index().get_image(&image_id)?.is_none() {
        batch.images.push(record);
    }
    batch.refs.push((name.to_string(), image_id));
    crate::failpoint::check("convert.index.batch")?;
    store.index().commit(batch)?;
    store.index().flush()?;
    Ok(Committed {
        image_id,
        blobs_written,
        blob_bytes,
        bootstrap_bytes: encoded.len() as u64,
    })
}

fn stored_object(raw: &RawObject) -> StoredObject {
    StoredObject {
        digest: raw.digest,
        media_type: raw.media_type.clone(),
        bytes: raw.bytes.clone(),
    }
}

/// Builds a bootstrap's blob and chunk tables.
struct ChunkTable<'a> {
    store: &'a Store,
    blobs: Vec<BlobRecord>,
    blob_index: HashMap<crate::BlobId, u32>,
    chunks: Vec<ChunkRecord>,
    chunk_index: HashMap<ChunkId, u32>,
}

impl<'a> ChunkTable<'a> {
    fn new(store: &'a Store, sealed: &[SealedBlob]) -> Self {
        let mut table = ChunkTable {
            store,
            blobs: Vec::new(),
            blob_index: HashMap::new(),
            chunks: Vec::new(),
            chunk_index: HashMap::new(),
        };
        for blob in sealed {
            table.blob_index.insert(blob.id, table.blobs.len() as u32);
            table.blobs.push(BlobRecord {
                id: blob.id,
                size: blob.size,
            });
        }
        table
    }

    fn index_of(
        &mut self,
        id: ChunkId,
        locations: &HashMap<ChunkId, ChunkLocation>,
    ) -> Result<u32> {
        if let Some(&i) = self.chunk_index.get(&id) {
            return Ok(i);
        }
        let location = *locations.get(&id).ok_or_else(|| {
            Error::corrupt(format!("chunk {id}"), "internal: no location after convert")
        })?;
        let blob = match self.blob_index.get(&location.blob) {
            Some(&b) => b,
            None => {
                let path = self.store.blob_path(&location.blob);
                let size = std::fs::metadata(&path)
                    .map_err(|e| Error::io("read dictionary blob", &path, e))?
                    .len();
                self.blobs.push(BlobRecord {
                    id: location.blob,
                    size,
                });
                let b = (self.blobs.len() - 1) as u32;
                self.blob_index.insert(location.blob, b);
                b
            }
        };
        self.chunks.push(ChunkRecord {
            id,
            blob,
            offset: location.offset,
            stored_len: location.stored_len,
            frame_len: location.frame_len,
            skip: location.skip,
            len: location.len,
            codec: location.codec,
        });
        let i = (self.chunks.len() - 1) as u32;
        self.chunk_index.insert(id, i);
        Ok(i)
    }
}
