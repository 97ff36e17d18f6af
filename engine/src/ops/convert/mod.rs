//! `convert`: an image source into the store, deduplicated against a dictionary.
//!
//! Per layer, a pipeline of two threads: the reader (source file -> sha256 -> decompress ->
//! sha256 -> tar stream -> chunker) sends batches of chunks to a processor that hashes them
//! (BLAKE3, in parallel), decides per chunk whether the dictionary or this convert already has
//! it, compresses the new ones (in parallel) and appends them, in stream order, to the layer's
//! blob under `tmp/`. Entries and chunk decisions are spilled to `tmp/` as they stream by
//! (`spill.rs`); once every layer's blobs are sealed, each layer's metadata object is written
//! from its spills (`resolve.rs`). A layer whose digest or diff_id the store already has an
//! object for is not read at all (`layer.rs`). Layers run concurrently. Memory is bounded by
//! the batches in flight and the set of new chunks (an id each), not by the number of files.
//!
//! Several converts may run into one store at once (`store::SharedWriter`): all of the above
//! runs without a lock, against the index as this writer opened it. Only the commit is
//! serialised (`commit.rs`): it waits for the commit lock, opens the index for writing and
//! re-checks the new chunks against it. A new chunk another writer committed meanwhile is a
//! duplicate: it is not indexed, the layer objects are written again to use the indexed copy,
//! and its copy here is dead space that gc's compaction reclaims (a blob holding nothing else
//! is not added at all). The report counts duplicates.
//!
//! Commit, once every layer's digest and diff_id verified (the write order that keeps the store
//! consistent across a crash at any instant), under the commit lock:
//!   0. the names are checked again and the new chunks re-checked (above);
//!   1. each sealed blob (already fsynced) is renamed into `blobs/`, then `blobs/` is fsynced;
//!      the new chunk entries go to the index (synced batches; harmless before step 4: they
//!      name blobs that are in place);
//!   2. each new layer object (already fsynced) is renamed into `layers/`, the dir fsynced;
//!   3. the image record goes to the index (a synced batch, unless the index has it), then the
//!      bootstrap is written to `tmp/`, fsynced, renamed into `bootstraps/`, dir fsynced;
//!   4. one synced RocksDB write batch adds the layer keys and the image's name.
//!
//! A crash before 4 leaves only files no name reaches (gc removes them: a bootstrap in place
//! has its record, which tells gc it is no orphan); after 4 the image is complete. Before 1, an error leaves the store exactly as it was (this writer's directory
//! under `tmp/` is emptied; a crashed writer's is reclaimed by the next writer to start).

pub(crate) mod commit;
mod delta;
mod earlier_layers;
mod layer;
mod resolve;
mod spill;

use crate::error::{Error, Result};
use crate::format::blob::SealedBlob;
use crate::format::bootstrap::ImageLayer;
use crate::format::ChunkLocation;
use crate::index::Index;
use crate::layer::Compression;
use crate::progress::{Progress, Unit};
use crate::source::{ImageSource, PlatformChoice, SourceSpec};
use crate::store::Writer;
use crate::{ChunkId, Sha256Digest};
use layer::convert_layers;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

/// What `convert` reads, the name it records, and how it stores new chunks.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConvertOptions {
    /// The image to read: an OCI layout, a `docker save` archive, a layer tar or a registry.
    pub source: SourceSpec,
    /// The name to record; with several platforms each gets `NAME@os/arch[/variant]`.
    pub name: String,
    /// Reuse only chunks of these images; empty: every chunk in the store.
    pub dict: Vec<String>,
    /// Which platforms of a multi-platform index to convert (default: the only one, else the
    /// host's).
    pub platform: PlatformChoice,
    /// Point an existing name at the new image instead of refusing.
    pub replace: bool,
    /// Delta-compress new chunks against their old versions; `None`: the store's default.
    pub delta: Option<DeltaMode>,
    /// Layers converted at the same time (at least 1); `None`: `DEFAULT_LAYERS_IN_FLIGHT`.
    /// With one, every earlier layer of the image is complete before a layer starts, so the
    /// delta bases its files find there do not depend on timing.
    pub layers_in_flight: Option<usize>,
    /// Compress new chunks at the store's `optimize` target (zstd-18) instead of its convert
    /// level: a smaller store at once, for a slower convert.
    pub optimize: bool,
}

impl ConvertOptions {
    /// Converts `source` into an image named `name`: every chunk in the store reused, the
    /// default platform, an existing name refused, the store's delta mode and levels.
    pub fn new(source: SourceSpec, name: impl Into<String>) -> ConvertOptions {
        ConvertOptions {
            source,
            name: name.into(),
            dict: Vec::new(),
            platform: PlatformChoice::default(),
            replace: false,
            delta: None,
            layers_in_flight: None,
            optimize: false,
        }
    }
}

/// Layers converted at the same time unless `ConvertOptions::layers_in_flight` says otherwise.
pub const DEFAULT_LAYERS_IN_FLIGHT: usize = 2;

pub use crate::format::store_config::DeltaMode;

/// New chunks stored as delta frames (`format::delta`).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaReport {
    /// New chunks stored as delta frames.
    pub chunks: u64,
    /// Their plain (uncompressed) bytes.
    pub bytes: u64,
    /// Of `chunks`, those whose base is the old version at the same path in a base image.
    pub by_path: u64,
    /// Of `chunks`, those whose base is a base image's file found by similarity (a file
    /// renamed or moved).
    pub by_sketch: u64,
    /// Of `chunks`, those whose base is the version at the same path in an earlier layer of
    /// the same image.
    pub by_earlier_layer: u64,
    /// Stored bytes plain zstd compression took for these chunks (measured when they were
    /// written), to compare with `stored_bytes`.
    pub plain_stored_bytes: u64,
    /// Stored bytes their delta frames take.
    pub stored_bytes: u64,
}

impl DeltaReport {
    fn merge(&mut self, other: DeltaReport) {
        self.chunks += other.chunks;
        self.bytes += other.bytes;
        self.by_path += other.by_path;
        self.by_sketch += other.by_sketch;
        self.by_earlier_layer += other.by_earlier_layer;
        self.plain_stored_bytes += other.plain_stored_bytes;
        self.stored_bytes += other.stored_bytes;
    }
}

/// What a convert did: one report per image it recorded.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct ConvertReport {
    /// One per converted image: one, or one per platform when several were chosen.
    pub images: Vec<ImageReport>,
    /// What dead writers had left under `tmp/`, removed when this convert started.
    pub tmp_reclaimed: crate::TmpReclaimed,
}

/// Chunk and byte counts.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Count {
    /// Number of chunks in this category.
    pub chunks: u64,
    /// Their uncompressed bytes.
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

/// What a convert did with one layer (or, as `ImageReport::totals`, the sums over them).
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct LayerReport {
    /// The layer's digest as the source stores it (`sha256:...`, of the compressed blob).
    pub digest: String,
    /// The digest of the uncompressed tar (`sha256:...`), computed by this convert or, for a
    /// reused layer, recorded in the stored layer object.
    pub diff_id: String,
    /// The layer's compression in the source (e.g. `gzip`, `zstd`, `none`).
    pub compression: String,
    /// Bytes of the layer blob as the source stores it (compressed).
    pub compressed_bytes: u64,
    /// Bytes of the uncompressed tar.
    pub tar_bytes: u64,
    /// Tar entries of every kind (files, directories, links, ...).
    pub entries: u64,
    /// Regular files among the entries.
    pub files: u64,
    /// Chunk references of the layer's files, and their bytes.
    pub chunks: Count,
    /// New chunks, stored by this convert (bytes uncompressed).
    pub new: Count,
    /// Chunks found in the dictionary.
    pub from_dictionary: Count,
    /// Chunks that repeat a chunk seen earlier in this same convert.
    pub repeated: Count,
    /// Bytes this layer wrote into blobs (compressed chunks, as stored); 0 for a reused layer.
    pub stored_bytes: u64,
    /// The store had this layer's metadata (same digest or diff_id): the layer was not read.
    pub reused_metadata: bool,
    /// New chunks stored as delta frames (part of `new`).
    pub delta: DeltaReport,
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
        self.delta.merge(other.delta);
    }
}

/// What a convert did for one image (one platform).
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct ImageReport {
    /// The name recorded for the image (`NAME@os/arch[/variant]` when several platforms).
    pub name: String,
    /// The new image's id (hex BLAKE3 of its bootstrap).
    pub image_id: String,
    /// How the user can name the source again (e.g. `oci:/images/py:v1`).
    pub reference: String,
    /// The image's platform (`os/arch[/variant]`), when the source states one.
    pub platform: Option<String>,
    /// The digest of the source manifest, when the source has one (a bare layer tar has not).
    pub manifest_digest: Option<String>,
    /// `store` (every stored chunk) or the names given with `--dict`.
    pub dictionary: Vec<String>,
    /// One report per layer, bottom layer first.
    pub layers: Vec<LayerReport>,
    /// Sums over the layers.
    pub totals: LayerReport,
    /// New blobs this convert published into the store.
    pub blobs_written: u64,
    /// Layer metadata objects this image added to the store.
    pub layer_objects_written: u64,
    /// Bytes of those layer objects (as stored).
    pub layer_object_bytes: u64,
    /// Bytes of the image's bootstrap file.
    pub bootstrap_bytes: u64,
    /// Bytes added to the store: new blobs, layer objects and the bootstrap.
    pub added_bytes: u64,
    /// New chunks another writer committed while this one converted (part of `new`): the
    /// image uses the indexed copy; this convert's copies are dead space in the blobs it added
    /// (`duplicate_stored_bytes`, reclaimed by gc's compaction) or were not added at all.
    pub duplicate: Count,
    /// Stored (compressed) bytes of the duplicate chunks' copies left in this convert's blobs.
    pub duplicate_stored_bytes: u64,
    /// Seconds spent waiting for other writers' commits before this one's.
    pub commit_wait_seconds: f64,
    /// Wall-clock seconds this image's convert took, its commit included.
    pub seconds: f64,
    /// Throughput: uncompressed tar megabytes (10^6 bytes) per second of `seconds`.
    pub tar_mb_per_s: f64,
}

/// The chunks (and layer objects) a convert may reuse.
enum Dictionary {
    /// Every chunk in the store (index lookups), every layer object.
    Store,
    /// Only the chunks and layer objects of named images.
    Images {
        chunks: HashMap<ChunkId, ChunkLocation>,
        layers: HashSet<crate::LayerMetaId>,
    },
}

impl Dictionary {
    /// Where the dictionary has chunk `id`; `index`: the index the writer looks chunks up in.
    fn get(&self, index: &Index, id: &ChunkId) -> Result<Option<ChunkLocation>> {
        match self {
            Dictionary::Store => index.get_chunk(id),
            Dictionary::Images { chunks, .. } => Ok(chunks.get(id).copied()),
        }
    }

    /// May the convert use this stored layer object as it is?
    fn has_layer(&self, id: &crate::LayerMetaId) -> bool {
        match self {
            Dictionary::Store => true,
            Dictionary::Images { layers, .. } => layers.contains(id),
        }
    }
}

pub(crate) fn convert(
    writer: &Writer,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    crate::check_image_name(&options.name)?;
    if options.layers_in_flight == Some(0) {
        return Err(Error::Usage(
            "layers in flight must be at least 1".to_string(),
        ));
    }
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
    // Checked again under the commit lock: another writer may take a name meanwhile.
    for (name, _) in &named {
        crate::check_image_name(name)?;
        crate::write::check_name(writer.store().index(), name, options.replace)?;
    }
    let dictionary = if options.dict.is_empty() {
        Dictionary::Store
    } else {
        let mut chunks = HashMap::new();
        let mut layers = HashSet::new();
        // Names as they are now: this writer may have committed the dictionary images itself
        // since it opened the index.
        let index = writer.lookup_index(true)?;
        for name in &options.dict {
            let id = index.get_ref(name)?.ok_or_else(|| {
                Error::NotFound(crate::NotFound::Image {
                    name: name.clone(),
                    store: writer.store().root().to_path_buf(),
                })
            })?;
            let (bootstrap, objects) = writer.store().image_layers_by_id(&id)?;
            layers.extend(bootstrap.layers.iter().map(|l| l.meta));
            for object in &objects {
                for entry in object.entries() {
                    for chunk in entry?.chunks {
                        chunks.insert(chunk.id, chunk.location(object.blobs()));
                    }
                }
            }
        }
        Dictionary::Images { chunks, layers }
    };
    let total: u64 = named
        .iter()
        .flat_map(|(_, i)| &i.layers)
        .map(|l| l.bytes.len())
        .sum();
    progress.set_length(total, Unit::Bytes);
    let mut report = ConvertReport {
        images: Vec::new(),
        tmp_reclaimed: writer.tmp_reclaimed(),
    };
    for (i, (name, image)) in named.iter().enumerate() {
        progress.set_message(name);
        // Later images look up what the earlier ones committed.
        let result = writer.lookup_index(i > 0).and_then(|index| {
            convert_image(writer, &index, &dictionary, name, image, options, progress)
        });
        match result {
            Ok(image_report) => report.images.push(image_report),
            Err(e) => {
                // Nothing of this image was committed: drop its temporary files.
                let _ = writer.clear_tmp();
                return Err(e);
            }
        }
    }
    progress.finish();
    Ok(report)
}

/// What one layer's conversion produced.
struct LayerOutput {
    digest: Sha256Digest,
    media_type: String,
    compression: Compression,
    compressed_size: u64,
    content: LayerContent,
    report: LayerReport,
}

enum LayerContent {
    /// The store's layer object for this layer, used as it is.
    Reused(ImageLayer),
    /// Read and chunked: what the layer object is written from.
    Converted(Converted),
}

/// A layer read and chunked by this convert, waiting for its layer object (`resolve.rs`).
struct Converted {
    label: String,
    /// Spill files: the entries and each chunk reference (see `spill.rs`).
    entries: PathBuf,
    chunks: PathBuf,
    source: crate::format::layer_meta::LayerSource,
    blobs: Vec<SealedBlob>,
}

/// State shared by the layers of one image.
struct Shared<'a> {
    store: &'a Writer,
    /// The index chunks and layer objects are looked up in.
    index: &'a Index,
    dictionary: &'a Dictionary,
    /// Chunks this convert is storing (first claim wins), by their index key (the first 16
    /// bytes of the id: half the memory). Two new chunks sharing a key (about n^2 / 2^129 among
    /// n) would make the convert fail when it places the second, never store wrong data.
    claimed: Mutex<HashSet<crate::id::ChunkKey>>,
    cancel: AtomicBool,
    progress: &'a dyn Progress,
    /// Finds bases for new chunks, unless delta compression is off.
    delta: Option<&'a delta::DeltaFinder<'a>>,
    /// Layers converted at the same time.
    layers_in_flight: usize,
    /// New chunks' compression, when not the store's convert level (`--optimize`).
    compress: Option<crate::format::blob::CompressedWith>,
}

fn convert_image(
    writer: &Writer,
    index: &Index,
    dictionary: &Dictionary,
    name: &str,
    image: &ImageSource,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ImageReport> {
    let started = Instant::now();
    let delta_mode = options
        .delta
        .unwrap_or(writer.store().config().compression.delta);
    let finder = match delta_mode {
        DeltaMode::Off => None,
        DeltaMode::Auto => {
            let bases = delta::base_images(writer.store(), name, &options.dict)?;
            let level = match options.optimize {
                true => writer.store().config().optimize.level,
                false => writer.store().config().compression.level,
            };
            Some(delta::DeltaFinder::new(
                writer.store(),
                index,
                &bases,
                level,
            )?)
        }
    };
    let shared = Shared {
        store: writer,
        index,
        dictionary,
        claimed: Mutex::new(HashSet::new()),
        cancel: AtomicBool::new(false),
        progress,
        delta: finder.as_ref(),
        layers_in_flight: options.layers_in_flight.unwrap_or(DEFAULT_LAYERS_IN_FLIGHT),
        compress: options.optimize.then(|| {
            let target = writer.store().config().optimize;
            crate::format::blob::CompressedWith {
                level: target.level,
                frame_size: target.frame_size,
            }
        }),
    };
    let outputs = convert_layers(&shared, &image.layers)?;
    // The claims are the new chunks, which the sealed blobs' ToCs now list; the finder's
    // record of this image's files and written chunks served the layers only.
    drop(shared);
    drop(finder);
    let resolved = resolve::layer_objects(writer, &outputs, &HashMap::new())?;
    let mut totals = LayerReport::default();
    for output in &outputs {
        totals.merge_counts(&output.report);
    }
    let prepared = commit::Prepared {
        name,
        image,
        replace: options.replace,
        use_indexed_copies: matches!(dictionary, Dictionary::Store),
        outputs: &outputs,
        totals: &totals,
    };
    let committed = commit::commit(writer, &prepared, resolved)?;
    resolve::remove_spills(&outputs);
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
        blobs_written: committed.blobs_written,
        layer_objects_written: committed.objects_written,
        layer_object_bytes: committed.object_bytes,
        bootstrap_bytes: committed.bootstrap_bytes,
        added_bytes: committed.blob_bytes + committed.object_bytes + committed.bootstrap_bytes,
        duplicate: committed.duplicate,
        duplicate_stored_bytes: committed.duplicate_stored_bytes,
        commit_wait_seconds: committed.waited.as_secs_f64(),
        seconds,
        tar_mb_per_s: totals.tar_bytes as f64 / 1e6 / seconds.max(1e-9),
        layers: outputs.into_iter().map(|o| o.report).collect(),
        totals,
    })
}

/// `cairn convert` alongside other writers.
impl crate::store::SharedWriter {
    /// Converts an image source into the store; other converts may run meanwhile.
    pub fn convert(
        &self,
        options: &ConvertOptions,
        progress: &dyn Progress,
    ) -> Result<ConvertReport> {
        convert(self.writer(), options, progress)
    }
}

/// `cairn convert` by the exclusive writer.
impl crate::store::StoreWriter {
    /// Converts an image source into the store.
    pub fn convert(
        &self,
        options: &ConvertOptions,
        progress: &dyn Progress,
    ) -> Result<ConvertReport> {
        convert(self.writer(), options, progress)
    }
}
