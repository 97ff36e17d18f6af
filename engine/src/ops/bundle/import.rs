//! `cairn bundle import`: reads a bundle in one pass (a file or a pipe) into this writer's
//! directory under `tmp/` (its frames appended as stored to new blobs, its objects to files),
//! refusing it before the frames when a chunk it relies on is missing here; after the end
//! record's checksum, each image's layer objects are written again with their chunks where
//! this store has them (the new blobs, or the index), and `write::import` checks everything whole
//! (every arriving layer re-created against its diff_id) and commits all images together, in
//! one index batch, or none. Nothing is committed before the whole bundle is read and checked.

use super::file::{BundleManifest, BundleReader, FrameRecord, Kind, RecordHead};
use crate::error::{Error, IoContext, Result};
use crate::format::blob::{BlobWriter, SealedBlob};
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::{LayerMeta, LayerMetaWriter};
use crate::format::{ChunkLocation, Codec};
use crate::index::LayerKey;
use crate::progress::{Progress, Unit};
use crate::store::{SharedWriter, Writer};
use crate::write::image_write::BlobTable;
use crate::write::import::{Arriving, ImportReport, Incoming, IncomingImage};
use crate::{BlobId, ChunkId, ImageId, LayerMetaId};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

/// What `bundle import` committed.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BundleImportReport {
    /// The bundle's size in bytes.
    pub bytes: u64,
    /// Chunks the bundle relied on this store holding (from its manifest), found here.
    pub relied_chunks: u64,
    /// One report per image committed.
    pub images: Vec<ImportReport>,
    /// Images whose name already named the same image (an import done before): unchanged.
    pub unchanged: Vec<String>,
    /// Wall-clock seconds of the whole import.
    pub seconds: f64,
}

/// What was read from the bundle into `tmp/`.
#[derive(Default)]
struct Received {
    blobs: Vec<SealedBlob>,
    objects: HashMap<LayerMetaId, PathBuf>,
    bootstraps: HashMap<ImageId, PathBuf>,
}

pub(crate) fn import_bundle(
    writer: &SharedWriter,
    input: &mut dyn Read,
    what: &str,
    replace: bool,
    progress: &dyn Progress,
) -> Result<BundleImportReport> {
    let result = import_inner(writer.writer(), input, what, replace, progress);
    if result.is_err() {
        let _ = writer.writer().clear_tmp();
    }
    result
}

fn import_inner(
    writer: &Writer,
    input: &mut dyn Read,
    what: &str,
    replace: bool,
    progress: &dyn Progress,
) -> Result<BundleImportReport> {
    let started = std::time::Instant::now();
    let mut reader = BundleReader::new(std::io::BufReader::with_capacity(1 << 20, input), what)?;
    let head = reader
        .next_head()?
        .filter(|h| h.kind == Kind::Manifest)
        .ok_or_else(|| {
            Error::bad_input(what.to_string(), "its first record is not its manifest")
        })?;
    let manifest = reader.manifest(&head)?;
    check_manifest(writer, &manifest, what)?;
    let held_layers = held_layers(writer, &manifest, what)?;
    progress.set_length(manifest.chunk_bytes, Unit::Bytes);
    progress.set_message("reading the bundle");
    let received = receive(writer, &mut reader, &manifest, progress)?;
    let bytes = reader.offset();
    progress.set_message("checking");
    let new_locations: HashMap<ChunkId, ChunkLocation> = received
        .blobs
        .iter()
        .flat_map(|b| b.toc.iter().map(|e| (e.id, b.location(e))))
        .collect();
    let sizes: HashMap<BlobId, u64> = received.blobs.iter().map(|b| (b.id, b.size)).collect();
    let mut prepared = Vec::new();
    for image in &manifest.images {
        let sent = ImageId::from_hex(&image.id).ok_or_else(|| {
            Error::bad_input(what.to_string(), "an image id is not 64 hex digits")
        })?;
        let path = received.bootstraps.get(&sent).ok_or_else(|| {
            Error::bad_input(
                what.to_string(),
                format!("holds no bootstrap for image {}", image.name),
            )
        })?;
        let bootstrap = crate::store::read_bootstrap(path, &sent)?;
        let placed = Placed {
            store: writer,
            new: &new_locations,
            sizes: &sizes,
        };
        prepared.push(rehome(
            writer,
            &image.name,
            &bootstrap,
            &received,
            &held_layers,
            &placed,
            what,
        )?);
    }
    // Names first, so that nothing is checked when one is taken; checked again under the
    // commit lock, where all images are committed together or none.
    for image in &prepared {
        match writer.store().index().get_ref(&image.name)? {
            Some(id) if id != image.image && !replace => {
                return Err(crate::write::import::name_taken(&image.name))
            }
            _ => {}
        }
    }
    let incoming = Incoming {
        origin: what.to_string(),
        blobs: received
            .blobs
            .iter()
            .map(|b| Arriving {
                id: b.id,
                path: b.tmp_path.clone(),
                size: b.size,
            })
            .collect(),
        images: prepared,
    };
    let outcome = crate::write::import::import(writer, &incoming, replace, progress)?;
    Ok(BundleImportReport {
        bytes,
        relied_chunks: manifest.relied_chunks,
        images: outcome.images,
        unchanged: outcome.unchanged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The layers the bundle relies on, by the sender's layer object id: this store's own layer
/// object for the same diff_id. Refused, before anything is read further, when one is missing.
fn held_layers(
    writer: &Writer,
    manifest: &BundleManifest,
    what: &str,
) -> Result<HashMap<LayerMetaId, LayerMetaId>> {
    let mut held = HashMap::new();
    let mut missing = 0;
    for (diff_id, sent) in &manifest.relied_layers {
        let bad = || Error::bad_input(what.to_string(), "a relied-on layer is not named by ids");
        let diff_id = crate::Sha256Digest::from_hex(diff_id).ok_or_else(bad)?;
        let sent = LayerMetaId::from_hex(sent).ok_or_else(bad)?;
        match writer
            .store()
            .index()
            .get_layer(&LayerKey::DiffId(diff_id))?
        {
            Some(own) => {
                held.insert(sent, own);
            }
            None => missing += 1,
        }
    }
    if missing > 0 {
        let expected: Vec<&str> = manifest.relies_on.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::bad_input(
            what.to_string(),
            format!(
                "it relies on {} whole layers of this store, and {missing} of them are missing: \
                 it expects the layers of {}. Import the bundles it follows first. The store \
                 is unchanged",
                manifest.relied_layers.len(),
                expected.join(", ")
            ),
        ));
    }
    Ok(held)
}

fn check_manifest(writer: &Writer, manifest: &BundleManifest, what: &str) -> Result<()> {
    let refuse = |detail: String| Err(Error::bad_input(what.to_string(), detail));
    if manifest.format_version != crate::FORMAT_VERSION {
        return refuse(format!(
            "its objects are of store format {}, this cairn reads and writes format {}",
            manifest.format_version,
            crate::FORMAT_VERSION
        ));
    }
    if manifest.chunker != writer.store().config().chunker {
        return refuse(format!(
            "its store chunks with {:?}, this store with {:?}",
            manifest.chunker,
            writer.store().config().chunker
        ));
    }
    if manifest.images.is_empty() {
        return refuse("it holds no image".into());
    }
    // The names before anything else is read (`write::import` checks them again).
    let mut names = std::collections::HashSet::new();
    for image in &manifest.images {
        crate::check_image_name(&image.name).or_else(|e| refuse(e.to_string()))?;
        if !names.insert(&image.name) {
            return refuse(format!("it holds two images named {:?}", image.name));
        }
    }
    Ok(())
}

/// Reads the records after the manifest into `tmp/`, up to and including the end record.
fn receive<R: Read>(
    writer: &Writer,
    reader: &mut BundleReader<R>,
    manifest: &BundleManifest,
    progress: &dyn Progress,
) -> Result<Received> {
    let mut received = Received::default();
    let mut missing = (0u64, 0u64);
    let mut blob: Option<BlobWriter> = None;
    let mut past_relied = false;
    while let Some(head) = reader.next_head()? {
        if head.kind != Kind::Relied && !past_relied {
            past_relied = true;
            if missing.0 > 0 {
                return Err(missing_error(reader.what(), manifest, missing));
            }
        }
        match head.kind {
            Kind::Relied => {
                for (id, len) in reader.relied(&head)? {
                    if writer.store().index().get_chunk(&id)?.is_none() {
                        missing.0 += 1;
                        missing.1 += len as u64;
                    }
                }
            }
            Kind::Frame => {
                let frame = reader.frame(&head)?;
                check_frame(&frame, &head, reader.what())?;
                if blob
                    .as_ref()
                    .is_some_and(|w| w.len() >= crate::write::blob_builder::BLOB_SPLIT_BYTES)
                {
                    let full = blob.take().expect("checked");
                    received.blobs.push(full.seal("import.blob.fsync")?);
                }
                if blob.is_none() {
                    blob = Some(BlobWriter::create(writer.tmp_file("blob"))?);
                }
                let writer = blob.as_mut().expect("set above");
                writer.append_frame(frame.codec, &frame.stored, frame.frame_len, &frame.parts)?;
                progress.inc(frame.parts.iter().map(|p| p.len as u64).sum());
            }
            Kind::LayerObject | Kind::Bootstrap => {
                let path = writer.tmp_file(if head.kind == Kind::Bootstrap {
                    "bootstrap"
                } else {
                    "layer"
                });
                let mut file = std::fs::File::create(&path).with_path("create", &path)?;
                let id = reader.object(&head, &mut file)?;
                match head.kind {
                    Kind::Bootstrap => received.bootstraps.insert(ImageId(id), path),
                    _ => received.objects.insert(LayerMetaId(id), path),
                };
            }
            Kind::Manifest | Kind::End => {
                return Err(Error::bad_input(
                    format!("{} at byte {}", reader.what(), head.offset),
                    "a second manifest",
                ))
            }
        }
    }
    if let Some(writer) = blob {
        received.blobs.push(writer.seal("import.blob.fsync")?);
    }
    Ok(received)
}

fn missing_error(what: &str, manifest: &BundleManifest, (chunks, bytes): (u64, u64)) -> Error {
    let expected: Vec<String> = manifest
        .relies_on
        .iter()
        .map(|(name, id)| format!("{name} ({})", &id[..12.min(id.len())]))
        .collect();
    Error::bad_input(
        what.to_string(),
        format!(
            "it relies on {} of this store's chunks, and {chunks} of them ({bytes} bytes) are \
             missing: it expects the chunks of {}. Import the bundles it follows first, or \
             create a bundle against what this store holds (`cairn dict export`, then \
             `bundle create --have-dict`). The store is unchanged",
            manifest.relied_chunks,
            if expected.is_empty() {
                "images the sender named".into()
            } else {
                expected.join(", ")
            }
        ),
    )
}

fn check_frame(frame: &FrameRecord, head: &RecordHead, what: &str) -> Result<()> {
    let bad = |detail: &str| {
        Error::bad_input(
            format!("{what} at byte {}", head.offset),
            detail.to_string(),
        )
    };
    if frame.frame_len > crate::format::MAX_FRAME_LEN
        || frame.stored.len() > (crate::format::MAX_FRAME_LEN as usize) * 2
    {
        return Err(bad("frame over the size limit"));
    }
    if frame.codec == Codec::Delta && frame.parts.len() != 1 {
        return Err(bad("a delta frame of more than one chunk"));
    }
    if frame
        .parts
        .iter()
        .any(|p| p.skip as u64 + p.len as u64 > frame.frame_len as u64)
    {
        return Err(bad("a chunk beyond its frame"));
    }
    Ok(())
}

/// Where this store will have each chunk: in the bundle's new blobs, else where its index has it.
struct Placed<'a> {
    store: &'a Writer,
    new: &'a HashMap<ChunkId, ChunkLocation>,
    sizes: &'a HashMap<BlobId, u64>,
}

impl Placed<'_> {
    fn location(&self, id: &ChunkId, object: &str) -> Result<ChunkLocation> {
        if let Some(location) = self.new.get(id) {
            return Ok(*location);
        }
        self.store.store().index().get_chunk(id)?.ok_or_else(|| {
            Error::bad_input(
                object.to_string(),
                format!("chunk {id} is neither in the bundle nor in this store"),
            )
        })
    }

    fn size(&self, blob: &BlobId) -> Result<u64> {
        match self.sizes.get(blob) {
            Some(size) => Ok(*size),
            None => crate::write::image_write::stored_blob_size(self.store, blob),
        }
    }
}

/// The image as this store will hold it: its layer objects written again with their chunks
/// where this store has them, and a bootstrap naming those.
fn rehome(
    writer: &Writer,
    name: &str,
    bootstrap: &Bootstrap,
    received: &Received,
    held: &HashMap<LayerMetaId, LayerMetaId>,
    placed: &Placed,
    what: &str,
) -> Result<IncomingImage> {
    let mut rewritten: HashMap<LayerMetaId, Arriving<LayerMetaId>> = HashMap::new();
    let mut new = bootstrap.clone();
    for layer in &mut new.layers {
        if let Some(done) = rewritten.get(&layer.meta) {
            layer.meta = done.id;
            continue;
        }
        if let Some(own) = held.get(&layer.meta) {
            layer.meta = *own;
            continue;
        }
        let object = format!("{what} layer object {}", layer.meta);
        let path = received.objects.get(&layer.meta).ok_or_else(|| {
            Error::bad_input(
                what.to_string(),
                format!("holds no layer object {}", layer.meta),
            )
        })?;
        let meta = LayerMeta::open(path, layer.meta, &object)?;
        let mut writer = LayerMetaWriter::create(writer.tmp_file("layer"))?;
        let mut table = BlobTable::default();
        for entry in meta.entries() {
            let mut entry = entry?;
            for chunk in entry.chunks.iter_mut() {
                let location = placed.location(&chunk.id, &object)?;
                *chunk = table.record(chunk.id, &location, || placed.size(&location.blob))?;
            }
            writer.push(entry)?;
        }
        let sealed = writer.finish(
            meta.info().source.clone(),
            table.blobs,
            "import.layer_meta.fsync",
        )?;
        let arriving = Arriving {
            id: sealed.id,
            path: sealed.tmp_path,
            size: sealed.size,
        };
        rewritten.insert(layer.meta, arriving.clone());
        layer.meta = arriving.id;
    }
    let encoded = new.encode()?;
    let image = crate::format::bootstrap::image_id(&encoded);
    let path = writer.tmp_file("bootstrap");
    std::fs::write(&path, &encoded).with_path("write", &path)?;
    Ok(IncomingImage {
        name: name.to_string(),
        image,
        bootstrap: (!writer.store().bootstrap_path(&image).exists()).then_some(path),
        objects: rewritten.into_values().collect(),
    })
}

impl SharedWriter {
    /// Imports a bundle read from `input` (`what` names it in messages); nothing is committed
    /// unless every object in it checks.
    pub fn import_bundle(
        &self,
        input: &mut dyn Read,
        what: &str,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<BundleImportReport> {
        import_bundle(self, input, what, replace, progress)
    }
}
