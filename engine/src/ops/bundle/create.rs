//! `cairn bundle create`: the named images' metadata and only the chunk data the receiver
//! lacks. What the receiver holds comes from `--have` images of this store, dictionary files
//! and earlier bundles. Frames are copied as stored (each decoded and its chunks checked on the
//! way); a frame mixing needed and unneeded chunks is split: its needed chunks are compressed
//! again into a frame of their own. A delta frame's bases travel with it unless the receiver
//! holds them.

use super::dict::ChunkDictionary;
use super::file::{BundleImage, BundleManifest, BundleReader, BundleWriter, FrameRecord, Kind};
use crate::error::{Error, IoContext, Result};
use crate::format::blob::{decode_toc, BlobReader, FramePart, TocEntry};
use crate::format::{chunk_from_frame, ChunkLocation, Codec};
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

/// What to bundle, and what the receiver holds.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct BundleOptions {
    /// The images of this store to bundle, by name.
    pub images: Vec<String>,
    /// Images of this store the receiver holds.
    pub have: Vec<String>,
    /// Dictionary files exported from the receiver.
    pub have_dicts: Vec<PathBuf>,
    /// Bundles the receiver imported.
    pub since: Vec<PathBuf>,
}

/// What `bundle create` wrote.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BundleReport {
    /// The manifest written into the bundle: its images and what it relies on.
    #[serde(flatten)]
    pub manifest: BundleManifest,
    /// Frames copied as stored (every chunk of the frame was needed).
    pub frames_copied: u64,
    /// Frames split: only some chunks were needed, and those were compressed again.
    pub frames_split: u64,
    /// The bundle's BLAKE3 (hex), as its end record holds it.
    pub checksum: String,
    /// Bytes of the bundle written.
    pub bytes: u64,
    /// Wall-clock seconds of the whole create.
    pub seconds: f64,
}

/// The chunks the receiver holds.
#[derive(Default)]
struct Have {
    ids: HashSet<ChunkId>,
    dicts: Vec<ChunkDictionary>,
    images: Vec<(String, String)>,
    /// diff_ids (hex) of whole layers the receiver holds.
    layers: HashSet<String>,
}

impl Have {
    fn contains(&self, id: &ChunkId) -> bool {
        self.ids.contains(id) || self.dicts.iter().any(|d| d.contains(id))
    }

    fn gather(store: &Store, options: &BundleOptions) -> Result<Have> {
        let mut have = Have::default();
        for name in &options.have {
            let id = store.resolve(name)?;
            have.images.push((name.clone(), id.to_hex()));
            let (bootstrap, objects) = store.image_layers_by_id(&id)?;
            have.layers
                .extend(bootstrap.layers.iter().map(|l| l.diff_id.to_hex()));
            for layer in objects {
                for entry in layer.entries() {
                    have.ids.extend(entry?.chunks.iter().map(|c| c.id));
                }
            }
        }
        for path in &options.have_dicts {
            let what = format!("dictionary {}", path.display());
            let mut file = std::fs::File::open(path).with_path("open", path)?;
            let dict = ChunkDictionary::read(&mut std::io::BufReader::new(&mut file), &what)?;
            have.images
                .extend(dict.images.iter().map(|i| (i.name.clone(), i.id.clone())));
            have.dicts.push(dict);
        }
        for path in &options.since {
            let file = std::fs::File::open(path).with_path("open", path)?;
            let what = format!("bundle {}", path.display());
            let mut reader = BundleReader::new(std::io::BufReader::new(file), &what)?;
            while let Some(head) = reader.next_head()? {
                match head.kind {
                    Kind::Manifest => {
                        let manifest = reader.manifest(&head)?;
                        for image in manifest.images {
                            have.layers.extend(image.diff_ids);
                            have.images.push((image.name, image.id));
                        }
                        have.layers
                            .extend(manifest.relied_layers.into_iter().map(|(d, _)| d));
                    }
                    Kind::Relied => have
                        .ids
                        .extend(reader.relied(&head)?.into_iter().map(|c| c.0)),
                    Kind::Frame => have
                        .ids
                        .extend(reader.frame(&head)?.parts.iter().map(|p| p.id)),
                    _ => reader.skip(&head)?,
                }
            }
        }
        Ok(have)
    }
}

/// What goes into the bundle.
struct Plan {
    manifest: BundleManifest,
    relied: Vec<(ChunkId, u32)>,
    /// Needed chunks by the frame holding them.
    frames: BTreeMap<(BlobId, u64), Vec<(ChunkId, ChunkLocation)>>,
    /// (kind, id, path, size) of the layer objects and bootstraps.
    objects: Vec<(Kind, [u8; 32], PathBuf, u64)>,
}

pub(crate) fn create(
    store: &Store,
    options: &BundleOptions,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<BundleReport> {
    let started = std::time::Instant::now();
    if options.images.is_empty() {
        return Err(Error::Usage("name at least one image to bundle".into()));
    }
    progress.set_message("planning");
    let have = Have::gather(store, options)?;
    let plan = plan(store, options, &have)?;
    let mut writer = BundleWriter::new(out).map_err(write_error)?;
    writer.manifest(&plan.manifest).map_err(write_error)?;
    for chunks in plan.relied.chunks(super::file::RELIED_PER_RECORD) {
        writer.relied(chunks).map_err(write_error)?;
    }
    let total: u64 = plan
        .frames
        .values()
        .map(|chunks| chunks[0].1.slice.stored_len as u64)
        .sum();
    progress.set_length(total, Unit::Bytes);
    progress.set_message("writing chunks");
    let (mut copied, mut split) = (0, 0);
    let mut current: Option<(BlobId, BlobReader, HashMap<u64, Vec<TocEntry>>)> = None;
    for (&(blob, offset), needed) in &plan.frames {
        if current.as_ref().is_none_or(|(b, _, _)| *b != blob) {
            let reader = BlobReader::open(&store.blob_path(&blob), blob)?;
            let mut by_frame: HashMap<u64, Vec<TocEntry>> = HashMap::new();
            for entry in decode_toc(reader.bytes(), &format!("blob {blob}"))? {
                by_frame.entry(entry.slice.offset).or_default().push(entry);
            }
            current = Some((blob, reader, by_frame));
        }
        let (_, reader, by_frame) = current.as_ref().expect("set above");
        let toc = by_frame.get(&offset).map_or(&[][..], Vec::as_slice);
        let record = frame_record(store, reader, blob, toc, needed, &mut copied, &mut split)?;
        writer.frame(&record).map_err(write_error)?;
        progress.inc(needed[0].1.slice.stored_len as u64);
    }
    for (kind, id, path, size) in &plan.objects {
        let mut file = std::fs::File::open(path).with_path("open", path)?;
        writer
            .object(*kind, id, &mut file, *size)
            .map_err(write_error)?;
    }
    let (checksum, bytes) = writer.finish().map_err(write_error)?;
    progress.finish();
    Ok(BundleReport {
        manifest: plan.manifest,
        frames_copied: copied,
        frames_split: split,
        checksum: checksum.to_hex().to_string(),
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn write_error(e: std::io::Error) -> Error {
    Error::io("write the bundle", std::path::Path::new("-"), e)
}

fn plan(store: &Store, options: &BundleOptions, have: &Have) -> Result<Plan> {
    let mut plan = Plan {
        manifest: BundleManifest {
            format_version: crate::FORMAT_VERSION,
            chunker: store.config().chunker.clone(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            relies_on: have.images.clone(),
            ..BundleManifest::default()
        },
        relied: Vec::new(),
        frames: BTreeMap::new(),
        objects: Vec::new(),
    };
    let mut seen: HashSet<ChunkId> = HashSet::new();
    let mut objects_seen: HashSet<LayerMetaId> = HashSet::new();
    let mut needed: Vec<(ChunkId, ChunkLocation)> = Vec::new();
    let mut bootstraps: Vec<(ImageId, PathBuf)> = Vec::new();
    for name in &options.images {
        let id = store.resolve(name)?;
        let (bootstrap, layers) = store.image_layers_by_id(&id)?;
        plan.manifest.images.push(BundleImage {
            name: name.clone(),
            id: id.to_hex(),
            reference: bootstrap.source.reference.clone(),
            platform: bootstrap.source.platform.clone(),
            layers: bootstrap.layers.len() as u64,
            files: layers.iter().map(|l| l.info().file_count).sum(),
            logical_bytes: bootstrap.logical_bytes(),
            diff_ids: bootstrap
                .layers
                .iter()
                .map(|l| l.diff_id.to_hex())
                .collect(),
        });
        bootstraps.push((id, store.bootstrap_path(&id)));
        for (layer, meta) in bootstrap.layers.iter().zip(&layers) {
            if !objects_seen.insert(layer.meta) {
                continue;
            }
            let diff_id = layer.diff_id.to_hex();
            if have.layers.contains(&diff_id) {
                plan.manifest
                    .relied_layers
                    .push((diff_id, layer.meta.to_hex()));
                continue;
            }
            plan.objects.push((
                Kind::LayerObject,
                layer.meta.0,
                store.layer_meta_path(&layer.meta),
                0,
            ));
            for entry in meta.entries() {
                for chunk in entry?.chunks {
                    if !seen.insert(chunk.id) {
                        continue;
                    }
                    match have.contains(&chunk.id) {
                        true => plan.relied.push((chunk.id, chunk.slice.len)),
                        false => needed.push((chunk.id, chunk.location(meta.blobs()))),
                    }
                }
            }
        }
    }
    add_bases(store, have, &mut seen, &mut needed, &mut plan.relied)?;
    for (id, location) in needed {
        plan.manifest.chunks += 1;
        plan.manifest.chunk_bytes += location.slice.len as u64;
        plan.frames
            .entry(location.frame_key())
            .or_default()
            .push((id, location));
    }
    plan.objects.extend(
        bootstraps
            .into_iter()
            .map(|(id, path)| (Kind::Bootstrap, id.0, path, 0)),
    );
    for (_, _, path, size) in plan.objects.iter_mut() {
        *size = std::fs::metadata(&*path).with_path("stat", path)?.len();
    }
    plan.manifest.frames = plan.frames.len() as u64;
    plan.manifest.relied_chunks = plan.relied.len() as u64;
    plan.manifest.relied_bytes = plan.relied.iter().map(|(_, len)| *len as u64).sum();
    plan.manifest.objects = plan.objects.len() as u64;
    plan.manifest.object_bytes = plan.objects.iter().map(|o| o.3).sum();
    Ok(plan)
}

/// The bases of needed delta frames: relied on when the receiver holds them, else carried
/// (from where the index has them, plain).
fn add_bases(
    store: &Store,
    have: &Have,
    seen: &mut HashSet<ChunkId>,
    needed: &mut Vec<(ChunkId, ChunkLocation)>,
    relied: &mut Vec<(ChunkId, u32)>,
) -> Result<()> {
    let deltas: Vec<ChunkLocation> = needed
        .iter()
        .filter(|(_, l)| l.slice.codec == Codec::Delta)
        .map(|(_, l)| *l)
        .collect();
    let mut readers: HashMap<BlobId, BlobReader> = HashMap::new();
    for location in deltas {
        if let std::collections::hash_map::Entry::Vacant(e) = readers.entry(location.blob) {
            e.insert(BlobReader::open(
                &store.blob_path(&location.blob),
                location.blob,
            )?);
        }
        let header = readers[&location.blob].delta_header(&location)?;
        for base in header.bases {
            if !seen.insert(base) {
                continue;
            }
            let found = store
                .index()
                .get_chunk(&base)?
                .filter(|l| l.slice.codec != Codec::Delta);
            let found = found.ok_or_else(|| {
                Error::corrupt(
                    format!(
                        "base chunk {base} of blob {} offset {}",
                        location.blob, location.slice.offset
                    ),
                    "not in the index as a plain chunk",
                )
            })?;
            match have.contains(&base) {
                true => relied.push((base, found.slice.len)),
                false => needed.push((base, found)),
            }
        }
    }
    Ok(())
}

/// One frame for the bundle: the stored frame when every chunk in it is needed, else its needed
/// chunks compressed again; each chunk checked against its id on the way.
fn frame_record(
    store: &Store,
    reader: &BlobReader,
    blob: BlobId,
    toc: &[TocEntry],
    needed: &[(ChunkId, ChunkLocation)],
    copied: &mut u64,
    split: &mut u64,
) -> Result<FrameRecord> {
    let first = needed[0].1;
    let frame = reader.read_frame(&first, store)?;
    let object = || format!("blob {blob} offset {}", first.slice.offset);
    let wanted: HashSet<ChunkId> = needed.iter().map(|(id, _)| *id).collect();
    for entry in toc {
        chunk_from_frame(&entry.id, &frame, entry.slice.skip, entry.slice.len, object)?;
    }
    if !toc.is_empty() && toc.iter().all(|e| wanted.contains(&e.id)) {
        *copied += 1;
        return Ok(FrameRecord {
            codec: first.slice.codec,
            frame_len: first.slice.frame_len,
            parts: toc
                .iter()
                .map(|e| FramePart {
                    id: e.id,
                    skip: e.slice.skip,
                    len: e.slice.len,
                })
                .collect(),
            stored: reader.read_stored(&first)?,
        });
    }
    *split += 1;
    let mut data = Vec::new();
    let mut parts = Vec::with_capacity(needed.len());
    for (id, location) in needed {
        let chunk = chunk_from_frame(id, &frame, location.slice.skip, location.slice.len, object)?;
        parts.push(FramePart {
            id: *id,
            skip: data.len() as u32,
            len: location.slice.len,
        });
        data.extend_from_slice(chunk);
    }
    let level = store.config().compression.level;
    let compressed = crate::write::blob_builder::compress(&data, level)
        .map_err(|e| Error::corrupt(object(), format!("zstd compression: {e}")))?;
    let frame_len = data.len() as u32;
    Ok(match compressed {
        Some(stored) => FrameRecord {
            codec: Codec::Zstd,
            frame_len,
            parts,
            stored,
        },
        None => FrameRecord {
            codec: Codec::Raw,
            frame_len,
            parts,
            stored: data,
        },
    })
}

impl Store {
    /// Writes a bundle of `options.images` to `out`, holding only what the receiver lacks.
    pub fn create_bundle(
        &self,
        options: &BundleOptions,
        out: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<BundleReport> {
        create(self, options, out, progress)
    }
}
