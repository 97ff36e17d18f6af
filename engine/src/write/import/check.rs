//! Checking objects that arrive from outside the store (a store-format pull, a bundle) before
//! anything of them is committed: every blob's BLAKE3 against its name, its ToC, and every
//! chunk decoded and checked against its id (a delta frame's bases taken from the arriving
//! blobs or from the store, never from a delta frame); every layer object's id and every block
//! of it, and every chunk it names present, as it names it, in an arriving or stored blob; each
//! bootstrap's checksum and name, and the layer objects it names, with their diff_ids; then
//! every arriving layer object's tar re-created from its entries and chunks (arriving or
//! stored) and its sha256 checked against the diff_id the bootstrap and object claim, so that
//! no layer key is indexed for bytes cairn did not hash itself (an object relabelled with
//! another layer's diff_id is refused here). Memory: one blob's ToC per arriving blob, and a
//! re-created layer's window of chunks (`view::layer_tar`).

use super::{Incoming, IncomingImage};
use crate::error::{Error, Result};
use crate::format::blob::{decode_toc, BlobReader, CheckedToc, TocEntry};
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::LayerMeta;
use crate::format::{chunk_from_frame, BaseSource, ChunkLocation, Codec, NoBases};
use crate::progress::{Progress, Unit};
use crate::store::Writer;
use crate::view::{write_layer_tar, ChunkReader, LayerTar};
use crate::{BlobId, ChunkId};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// What the checks found out that the commit needs.
pub(super) struct Checked {
    /// Each arriving blob's ToC, in the order of `Incoming::blobs`.
    pub tocs: Vec<Vec<TocEntry>>,
    /// Each image's, in the order of `Incoming::images`.
    pub images: Vec<CheckedImage>,
}

pub(super) struct CheckedImage {
    pub bootstrap: Bootstrap,
    /// Files in the image (over its layers).
    pub files: u64,
}

pub(super) fn check(
    writer: &Writer,
    incoming: &Incoming,
    progress: &dyn Progress,
) -> Result<Checked> {
    let total: u64 = incoming.blobs.iter().map(|b| b.size).sum();
    progress.set_length(total, Unit::Bytes);
    progress.set_message("checking blobs");
    let mut tocs = Vec::with_capacity(incoming.blobs.len());
    let mut plain: HashMap<ChunkId, (usize, TocEntry)> = HashMap::new();
    for (n, blob) in incoming.blobs.iter().enumerate() {
        // Read in pieces, not through the map: mapped pages would stay in the resident set.
        let actual = blake3_of_file(&blob.path)?;
        let reader = BlobReader::open(&blob.path, blob.id)?;
        if actual.as_bytes() != &blob.id.0 {
            return Err(Error::corrupt(
                format!("{} blob {}", incoming.origin, blob.id),
                format!("content hashes to {}", actual.to_hex()),
            ));
        }
        let toc = decode_toc(reader.bytes(), &format!("blob {}", blob.id))?;
        for entry in toc.iter().filter(|e| e.slice.codec != Codec::Delta) {
            plain.entry(entry.id).or_insert((n, *entry));
        }
        tocs.push(toc);
    }
    let bases = ArrivingBases {
        store: writer,
        incoming,
        plain: &plain,
        readers: Mutex::new(HashMap::new()),
    };
    for (blob, toc) in incoming.blobs.iter().zip(&tocs) {
        let reader = BlobReader::open(&blob.path, blob.id)?;
        let mut first = None;
        let mut decoded = 0;
        crate::view::chunks::check_frames(
            &reader,
            blob.id,
            toc,
            &bases,
            &mut decoded,
            &mut |o, d| {
                first.get_or_insert((o, d));
            },
        );
        if let Some((object, detail)) = first {
            return Err(Error::corrupt(
                format!("{} {object}", incoming.origin),
                detail,
            ));
        }
        progress.inc(blob.size);
    }
    progress.set_message("checking metadata");
    let mut blob_tocs = BlobTocs {
        store: writer,
        incoming,
        open: HashMap::new(),
    };
    let mut images = Vec::with_capacity(incoming.images.len());
    for image in &incoming.images {
        for object in &image.objects {
            let what = format!("{} layer object {}", incoming.origin, object.id);
            let meta = LayerMeta::open(&object.path, object.id, &what)?;
            check_layer_chunks(&meta, &what, &mut blob_tocs)?;
            for record in meta.paths() {
                record?;
            }
        }
        let (bootstrap, files) = check_bootstrap(writer, incoming, image)?;
        images.push(CheckedImage { bootstrap, files });
    }
    drop(blob_tocs);
    recreate_layers(writer, incoming, &images, &bases, progress)?;
    Ok(Checked { tocs, images })
}

/// Re-creates the tar of every arriving layer object an image names (each once) from its
/// entries and chunks, arriving or stored, and checks its sha256 against the diff_id the
/// bootstrap says (which the object holds too, `check_bootstrap`); the error names the
/// import, the image, the layer and its object. A layer whose object the store holds already
/// was checked when that object was made (a convert hashed the tar it read; an import
/// re-created it here).
fn recreate_layers(
    writer: &Writer,
    incoming: &Incoming,
    images: &[CheckedImage],
    bases: &ArrivingBases,
    progress: &dyn Progress,
) -> Result<()> {
    let arriving: HashMap<BlobId, std::path::PathBuf> = incoming
        .blobs
        .iter()
        .map(|b| (b.id, b.path.clone()))
        .collect();
    let mut reader = ChunkReader::with_arriving(writer.store(), arriving, bases);
    let mut done = HashSet::new();
    let mut todo = Vec::new();
    for (image, checked) in incoming.images.iter().zip(images) {
        for (n, layer) in checked.bootstrap.layers.iter().enumerate() {
            let object = image.objects.iter().find(|o| o.id == layer.meta);
            if let Some(object) = object.filter(|o| done.insert(o.id)) {
                todo.push((image, n, layer, object));
            }
        }
    }
    progress.set_length(todo.iter().map(|t| t.2.size).sum(), Unit::Bytes);
    progress.set_message("re-creating layers");
    for (image, n, layer, object) in todo {
        let label = format!(
            "{} image {} layer {n} (diff_id {}, layer object {})",
            incoming.origin,
            shown_name(&image.name),
            layer.diff_id,
            object.id
        );
        let meta = LayerMeta::open(&object.path, object.id, &label)?;
        let tar = LayerTar {
            meta: &meta,
            diff_id: layer.diff_id,
            label: &label,
        };
        write_layer_tar(
            &mut reader,
            &tar,
            &mut std::io::sink(),
            &object.path,
            progress,
        )?;
    }
    Ok(())
}

/// A name as error messages show it: quoted, its characters escaped, at most 64 of them.
fn shown_name(name: &str) -> String {
    let mut shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        shown.push_str("...");
    }
    format!("\"{shown}\"")
}

fn blake3_of_file(path: &std::path::Path) -> Result<blake3::Hash> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut piece)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&piece[..n]);
    }
}

/// The bootstrap (arriving or stored) and the layer objects it names (arriving or stored),
/// each holding the diff_id the bootstrap says; and the image's file count.
fn check_bootstrap(
    writer: &Writer,
    incoming: &Incoming,
    image: &IncomingImage,
) -> Result<(Bootstrap, u64)> {
    let bootstrap = match &image.bootstrap {
        Some(path) => crate::store::read_bootstrap(path, &image.image)?,
        None => writer.store().bootstrap_by_id(&image.image)?,
    };
    let mut files = 0;
    for layer in &bootstrap.layers {
        let meta = match image.objects.iter().find(|o| o.id == layer.meta) {
            Some(o) => LayerMeta::open(&o.path, o.id, &format!("layer object {}", o.id))?,
            None if writer.store().layer_meta_path(&layer.meta).exists() => {
                writer.store().layer_meta(&layer.meta)?
            }
            None => {
                return Err(Error::corrupt(
                    format!("{} image {}", incoming.origin, image.image),
                    format!(
                        "names layer object {}, which neither it nor this store holds",
                        layer.meta
                    ),
                ))
            }
        };
        if meta.info().source.diff_id != layer.diff_id {
            return Err(Error::corrupt(
                format!("{} layer object {}", incoming.origin, layer.meta),
                format!(
                    "holds layer {}, the bootstrap says {}",
                    meta.info().source.diff_id,
                    layer.diff_id
                ),
            ));
        }
        files += meta.info().file_count;
    }
    Ok((bootstrap, files))
}

/// The ToCs of the blobs layer objects name, arriving or stored, opened as they are named.
struct BlobTocs<'a> {
    store: &'a Writer,
    incoming: &'a Incoming,
    open: HashMap<BlobId, CheckedToc>,
}

impl BlobTocs<'_> {
    fn get(&mut self, blob: BlobId, object: &str) -> Result<&CheckedToc> {
        if !self.open.contains_key(&blob) {
            let path = match self.incoming.blobs.iter().find(|b| b.id == blob) {
                Some(b) => b.path.clone(),
                None => self.store.store().blob_path(&blob),
            };
            if !path.exists() {
                return Err(Error::corrupt(
                    object.to_string(),
                    format!("names blob {blob}, which neither it nor this store holds"),
                ));
            }
            self.open.insert(blob, CheckedToc::open(&path, blob)?);
        }
        Ok(&self.open[&blob])
    }
}

/// Every chunk the object's entries name is in its blob as the object says.
fn check_layer_chunks(meta: &LayerMeta, what: &str, tocs: &mut BlobTocs) -> Result<()> {
    for entry in meta.entries() {
        let entry = entry?;
        for chunk in &entry.chunks {
            let location = chunk.location(meta.blobs());
            let toc = tocs.get(location.blob, what)?;
            let found = toc
                .find(location.slice.offset, location.slice.skip)
                .map(|i| toc.get(i))
                .transpose()?;
            if !found.is_some_and(|e| e.id == chunk.id && e.location(location.blob) == location) {
                return Err(Error::corrupt(
                    format!("{what} path {:?}", entry.meta.path_lossy()),
                    format!(
                        "chunk {} is not in blob {} at offset {}",
                        chunk.id, location.blob, location.slice.offset
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Delta bases for checking arriving blobs: a plain copy among the arriving blobs, else the
/// store's (through its index).
struct ArrivingBases<'a> {
    store: &'a Writer,
    incoming: &'a Incoming,
    plain: &'a HashMap<ChunkId, (usize, TocEntry)>,
    readers: Mutex<HashMap<usize, BlobReader>>,
}

impl BaseSource for ArrivingBases<'_> {
    fn base_bytes(&self, ids: &[ChunkId]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for id in ids {
            match self.plain.get(id) {
                Some((n, entry)) => out.extend_from_slice(&self.arriving(*n, id, entry)?),
                None => {
                    let location = self.store.store().index().get_chunk(id)?.ok_or_else(|| {
                        Error::corrupt(
                            format!("{} base chunk {id}", self.incoming.origin),
                            "a delta frame needs it, and neither the arriving blobs nor this \
                             store hold it",
                        )
                    })?;
                    out.extend_from_slice(&self.store.store().base_chunk(id, &location)?);
                }
            }
        }
        Ok(out)
    }
}

impl ArrivingBases<'_> {
    fn arriving(&self, n: usize, id: &ChunkId, entry: &TocEntry) -> Result<Vec<u8>> {
        let blob = &self.incoming.blobs[n];
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        let reader = match readers.entry(n) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(BlobReader::open(&blob.path, blob.id)?)
            }
        };
        let location: ChunkLocation = entry.location(blob.id);
        let frame = reader.read_frame(&location, &NoBases)?;
        let object = || {
            format!(
                "base chunk {id} in blob {} offset {}",
                blob.id, entry.slice.offset
            )
        };
        chunk_from_frame(id, &frame, entry.slice.skip, entry.slice.len, object).map(<[u8]>::to_vec)
    }
}
