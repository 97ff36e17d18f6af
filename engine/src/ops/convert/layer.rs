//! One layer's conversion: a decoder thread (source -> sha256 -> decompress, `layer::pipe`)
//! feeds a reader thread (sha256 -> tar stream -> chunker), which sends batches of chunks to a
//! processor that hashes them, decides per chunk whether the dictionary or this convert
//! already has it, and hands the new ones to the layer's blob builder. Entries (reader) and chunk decisions (processor) are spilled to
//! `tmp/` (`spill.rs`) for the layer object, written once every new chunk has its place.
//! A layer whose digest or diff_id the store already has a layer object for is not read at
//! all: that object is reused. Layers run `Shared::layers_in_flight` at a time. With delta
//! compression on, each processor registers its layer's large files and its blob builder
//! records where it wrote their chunks, for later layers' delta bases (`earlier_layers.rs`).

use super::delta::{BaseOrigin, DeltaFrame, FileRef, Origin, SKETCH_MIN_FILE};
use super::earlier_layers::LayerFiles;
use super::spill::{SpillWriter, SpilledChunk, SpilledEntry};
use super::DeltaReport;
use super::{Converted, Count, LayerContent, LayerOutput, LayerReport, Shared};
use crate::chunk::Chunker;
use crate::error::{Error, Result};
use crate::format::blob::SealedBlob;
use crate::format::bootstrap::ImageLayer;
use crate::index::LayerKey;
use crate::layer::{Compression, DigestReader, TarStream};
use crate::source::{LayerBytes, LayerSource};
use crate::write::blob_builder::BlobBuilder;
use crate::ChunkId;
use rayon::prelude::*;
use std::io::BufReader;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Chunks are handed from reader to processor in batches of about this many bytes.
const BATCH_BYTES: usize = 8 << 20;

/// Converts every layer, `layers_in_flight` at a time, each taking the next unstarted layer
/// in image order; the first error stops the others.
pub(super) fn convert_layers(shared: &Shared, layers: &[LayerSource]) -> Result<Vec<LayerOutput>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<LayerOutput>>>> =
        Mutex::new((0..layers.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..shared.layers_in_flight.min(layers.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= layers.len() || shared.cancel.load(Ordering::Relaxed) {
                    break;
                }
                let result = convert_layer(shared, i, &layers[i]);
                if result.is_err() {
                    shared.cancel.store(true, Ordering::Relaxed);
                }
                results.lock().expect("results lock")[i] = Some(result);
            });
        }
    });
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for result in results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
    {
        match result {
            Ok(output) => outputs.push(output),
            Err(e) => errors.push(e),
        }
    }
    // Report a layer's real error rather than another layer's "cancelled".
    let is_cancel = |e: &Error| matches!(e, Error::Usage(m) if m == CANCELLED);
    if let Some(i) = errors.iter().position(|e| !is_cancel(e)) {
        return Err(errors.swap_remove(i));
    }
    if let Some(e) = errors.pop() {
        return Err(e);
    }
    if outputs.len() != layers.len() {
        return Err(Error::Usage(CANCELLED.into()));
    }
    Ok(outputs)
}

const CANCELLED: &str = "convert cancelled after an error in another layer";

/// A batch of chunks from the reader, each with its file and offset there.
#[derive(Default)]
struct Batch {
    chunks: Vec<Vec<u8>>,
    origins: Vec<Origin>,
}

fn layer_label(index: usize, layer: &LayerSource) -> String {
    match &layer.digest {
        Some(d) => format!("layer {index} ({d})"),
        None => format!("layer {index} ({})", layer.bytes.describe()),
    }
}

fn convert_layer(shared: &Shared, index: usize, layer: &LayerSource) -> Result<LayerOutput> {
    let label = layer_label(index, layer);
    let io_err = |e: std::io::Error| Error::bad_input(&label, e.to_string());
    let mut raw = DigestReader::with_progress(
        BufReader::with_capacity(256 * 1024, layer.bytes.open()?),
        shared.progress,
    );
    let compression = match layer.compression {
        Some(c) => c,
        None => {
            let mut head = [0u8; 4];
            let n = peek(&mut raw, &mut head).map_err(io_err)?;
            Compression::sniff(&head[..n])
        }
    };
    if let Some(output) = reuse(shared, layer, compression)? {
        shared.progress.inc(layer.bytes.len());
        return Ok(output);
    }
    if let LayerBytes::Stored { .. } = layer.bytes {
        return Err(Error::NotFound(crate::NotFound::StoredLayer {
            what: label,
            store: shared.store.store().root().to_path_buf(),
        }));
    }
    let (sender, receiver) = mpsc::sync_channel::<Batch>(2);
    let mut processor = Processor::new(shared, &label, index)?;
    let (pump, decoded) = crate::layer::pipe::pipe();
    let (read, processed) = std::thread::scope(|scope| {
        let handle = scope.spawn(move || -> Result<Processor> {
            for batch in receiver {
                processor.process(batch)?;
            }
            Ok(processor)
        });
        // Decompression on a thread of its own, beside the tar walker and the chunker.
        let source = &mut raw;
        let decoding = scope.spawn(move || match compression.decoder(source) {
            Ok(decoder) => pump.run(decoder),
            Err(e) => pump.fail(e),
        });
        let read = read_layer(shared, &label, decoded, sender);
        decoding.join().expect("layer decoder panicked");
        let processed = handle.join().expect("chunk processor panicked");
        (read, processed)
    });
    let processor = processed?;
    let (read, mut report) = read?;
    let (digest, compressed_size) = raw.finish().map_err(io_err)?;
    if let Some(expected) = &layer.digest {
        if *expected != digest {
            return Err(Error::DigestMismatch {
                object: label,
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    if let Some(expected) = &layer.diff_id {
        if *expected != read.diff_id {
            return Err(Error::DigestMismatch {
                object: format!("{label} uncompressed (diff_id)"),
                expected: expected.to_string(),
                actual: read.diff_id.to_string(),
            });
        }
    }
    let (chunks, blobs, counts) = processor.finish()?;
    report.digest = digest.to_string();
    report.diff_id = read.diff_id.to_string();
    report.compression = compression.name().into();
    report.compressed_bytes = compressed_size;
    report.new = counts.new;
    report.from_dictionary = counts.from_dictionary;
    report.repeated = counts.repeated;
    report.stored_bytes = counts.stored_bytes;
    report.delta = counts.delta;
    Ok(LayerOutput {
        digest,
        media_type: layer.media_type.clone(),
        compression,
        compressed_size,
        content: LayerContent::Converted(Converted {
            label,
            entries: read.entries,
            chunks,
            source: crate::format::layer_meta::LayerSource {
                diff_id: read.diff_id,
                size: read.tar_bytes,
                trailer: read.trailer,
            },
            blobs,
        }),
        report,
    })
}

/// The stored layer object this layer can reuse without being read: one made from a layer with
/// the same digest, or with the same diff_id (see `docs/FORMAT.md`), that the dictionary
/// allows (with `--dict`, only the named images' layers). Only a layer whose digest and diff_id
/// the source states is skipped (the bootstrap records the digest); the object must open and
/// hold the diff_id the source states.
fn reuse(
    shared: &Shared,
    layer: &LayerSource,
    compression: Compression,
) -> Result<Option<LayerOutput>> {
    let Some(digest) = layer.digest else {
        return Ok(None);
    };
    let keys = std::iter::once(LayerKey::Digest(digest)).chain(layer.diff_id.map(LayerKey::DiffId));
    for key in keys {
        let Some(id) = shared.index.get_layer(&key)? else {
            continue;
        };
        if !shared.dictionary.has_layer(&id) {
            continue;
        }
        let Ok(meta) = shared.store.store().layer_meta(&id) else {
            continue;
        };
        let info = meta.info();
        // Whichever key found it, the object must hold the diff_id the source states: a digest
        // key alone never decides what a layer holds.
        if layer.diff_id != Some(info.source.diff_id) {
            continue;
        }
        let report = LayerReport {
            digest: digest.to_string(),
            diff_id: info.source.diff_id.to_string(),
            compression: compression.name().into(),
            compressed_bytes: layer.bytes.len(),
            tar_bytes: info.source.size,
            entries: info.entry_count,
            files: info.file_count,
            chunks: Count {
                chunks: info.chunk_refs,
                bytes: info.content_bytes,
            },
            reused_metadata: true,
            ..LayerReport::default()
        };
        return Ok(Some(LayerOutput {
            digest,
            media_type: layer.media_type.clone(),
            compression,
            compressed_size: layer.bytes.len(),
            content: LayerContent::Reused(ImageLayer {
                digest,
                media_type: layer.media_type.clone(),
                compression,
                compressed_size: layer.bytes.len(),
                diff_id: info.source.diff_id,
                size: info.source.size,
                meta: id,
            }),
            report,
        }));
    }
    Ok(None)
}

/// Fills `buf` from a buffered reader without consuming (for recognising compression).
fn peek<R: std::io::BufRead>(
    reader: &mut DigestReader<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let head = reader.inner_mut().fill_buf()?;
    let n = head.len().min(buf.len());
    buf[..n].copy_from_slice(&head[..n]);
    Ok(n)
}

/// What the reader learned of the layer's tar.
struct ReadLayer {
    /// The entry spill (see `spill.rs`).
    entries: std::path::PathBuf,
    trailer: Vec<u8>,
    diff_id: crate::Sha256Digest,
    tar_bytes: u64,
}

/// The reader half: decompress, walk the tar, cut file contents into chunks and send them on.
fn read_layer(
    shared: &Shared,
    label: &str,
    decoded: impl std::io::Read,
    sender: mpsc::SyncSender<Batch>,
) -> Result<(ReadLayer, LayerReport)> {
    let io_err = |e: std::io::Error| Error::bad_input(label, e.to_string());
    let mut plain = DigestReader::new(decoded);
    let mut report = LayerReport::default();
    let mut entries = SpillWriter::create(shared.store.tmp_file("entries"))?;
    let mut chunker = Chunker::new(&shared.store.store().config().chunker)
        .map_err(|e| Error::corrupt("store.json", e))?;
    let mut batch = Batch::default();
    let mut batch_bytes = 0usize;
    let mut tar = TarStream::new(&mut plain, label);
    let disconnected = || Error::Usage(CANCELLED.into());
    while let Some(header) = tar.next_entry()? {
        if shared.cancel.load(Ordering::Relaxed) {
            return Err(disconnected());
        }
        let mut chunks = 0u64;
        let size = header.meta.size;
        let mut sketch_of = None;
        if size > 0 {
            let file = Arc::new(FileRef {
                path: crate::view::tree::normalize(&header.meta.path),
                size,
                regular: header.meta.kind == crate::layer::EntryKind::File,
                sketch: std::sync::OnceLock::new(),
            });
            let mut offset = 0u64;
            let read = chunker.chunk_stream(tar.content(), |chunk| -> Result<()> {
                if offset == 0 && size >= SKETCH_MIN_FILE {
                    let _ = file.sketch.set(crate::chunk::sketch::sketch(chunk));
                }
                batch.chunks.push(chunk.to_vec());
                batch.origins.push(Origin {
                    file: file.clone(),
                    offset,
                });
                offset += chunk.len() as u64;
                batch_bytes += chunk.len();
                chunks += 1;
                report.chunks.add(chunk.len() as u64);
                if batch_bytes >= BATCH_BYTES {
                    let full = std::mem::take(&mut batch);
                    batch_bytes = 0;
                    sender.send(full).map_err(|_| disconnected())?;
                }
                Ok(())
            });
            let read = read?;
            sketch_of = Some(file);
            if read != size {
                return Err(Error::bad_input(
                    label,
                    format!(
                        "entry {:?}: read {read} of {size} bytes",
                        header.meta.path_lossy()
                    ),
                ));
            }
        }
        report.entries += 1;
        if header.meta.kind == crate::layer::EntryKind::File {
            report.files += 1;
        }
        entries.push(&SpilledEntry {
            raw_header: header.raw,
            meta: header.meta,
            chunks,
            sketch: sketch_of.and_then(|f| f.sketch.get().copied().flatten()),
        })?;
    }
    let trailer = tar.take_trailer();
    let tar_bytes = tar.offset();
    drop(tar);
    if !batch.chunks.is_empty() {
        sender.send(batch).map_err(|_| disconnected())?;
    }
    drop(sender);
    let (diff_id, counted) = plain.finish().map_err(io_err)?;
    debug_assert_eq!(counted, tar_bytes);
    report.tar_bytes = counted;
    let read = ReadLayer {
        entries: entries.finish()?,
        trailer,
        diff_id,
        tar_bytes: counted,
    };
    Ok((read, report))
}

#[derive(Default)]
struct Counts {
    new: Count,
    from_dictionary: Count,
    repeated: Count,
    stored_bytes: u64,
    delta: DeltaReport,
}

/// The processor half: hash, look up, and hand the new chunks of one layer, in stream order,
/// to its blob builder (which groups them into frames, compresses and writes them); every
/// chunk reference goes to the chunk spill with the dictionary's location if it had one.
struct Processor<'a> {
    shared: &'a Shared<'a>,
    /// The layer's index in the image.
    layer: usize,
    spill: SpillWriter<SpilledChunk>,
    blobs: BlobBuilder<'a>,
    /// The layer's large files, for later layers' delta bases (with delta compression on).
    files: LayerFiles,
    counts: Counts,
}

enum Decision {
    New,
    Dictionary(crate::format::ChunkLocation),
    Repeated,
}

impl<'a> Processor<'a> {
    fn new(shared: &'a Shared<'a>, label: &str, layer: usize) -> Result<Self> {
        let mut blobs = BlobBuilder::new(shared.store, label, "convert.blob.fsync");
        if let Some(finder) = shared.delta {
            blobs = blobs.sharing(&finder.earlier().written);
        }
        if let Some(with) = shared.compress {
            blobs = blobs.compressing_with(with);
        }
        Ok(Processor {
            shared,
            layer,
            spill: SpillWriter::create(shared.store.tmp_file("chunks"))?,
            blobs,
            files: LayerFiles::default(),
            counts: Counts::default(),
        })
    }

    fn decide(&mut self, id: &ChunkId, len: u64) -> Result<Decision> {
        let claimed = |id: &ChunkId| {
            self.shared
                .claimed
                .lock()
                .expect("claims lock")
                .contains(&id.key())
        };
        let decision = if claimed(id) {
            Decision::Repeated
        } else if let Some(location) = self.shared.dictionary.get(self.shared.index, id)? {
            Decision::Dictionary(location)
        } else if self
            .shared
            .claimed
            .lock()
            .expect("claims lock")
            .insert(id.key())
        {
            Decision::New
        } else {
            Decision::Repeated
        };
        match &decision {
            Decision::New => self.counts.new.add(len),
            Decision::Dictionary(_) => self.counts.from_dictionary.add(len),
            Decision::Repeated => self.counts.repeated.add(len),
        }
        Ok(decision)
    }

    fn process(&mut self, batch: Batch) -> Result<()> {
        let ids: Vec<ChunkId> = batch.chunks.par_iter().map(|c| ChunkId::of(c)).collect();
        let decisions = ids
            .iter()
            .zip(&batch.chunks)
            .map(|(id, data)| self.decide(id, data.len() as u64))
            .collect::<Result<Vec<_>>>()?;
        let deltas = self.delta_frames(&batch, &decisions)?;
        for (i, (decision, delta)) in decisions.into_iter().zip(deltas).enumerate() {
            let (id, data, origin) = (ids[i], &batch.chunks[i], &batch.origins[i]);
            let (dictionary, is_delta) = match decision {
                Decision::New => match delta {
                    Some(frame) => {
                        self.count_delta(&frame, data.len());
                        self.blobs.push_delta(id, data.len() as u32, frame.stored);
                        (None, true)
                    }
                    None if origin.file.may_be_base() => {
                        self.blobs.push_shared(id, data);
                        (None, false)
                    }
                    None => {
                        self.blobs.push(id, data);
                        (None, false)
                    }
                },
                Decision::Dictionary(location) => (
                    Some(location),
                    location.slice.codec == crate::format::Codec::Delta,
                ),
                Decision::Repeated => (None, false),
            };
            if self.shared.delta.is_some() {
                self.files.chunk(origin, id, data.len() as u32, is_delta);
            }
            self.spill.push(&SpilledChunk { id, dictionary })?;
        }
        self.blobs.flush()?;
        // The files whose last chunk this batch held are written (but for chunks still in the
        // builder's open frame, which are no base until the next batch writes them).
        if let Some(finder) = self.shared.delta {
            self.files.register(finder.earlier(), self.layer);
        }
        Ok(())
    }

    fn count_delta(&mut self, frame: &DeltaFrame, len: usize) {
        let delta = &mut self.counts.delta;
        delta.chunks += 1;
        delta.bytes += len as u64;
        match frame.origin {
            BaseOrigin::SamePath => delta.by_path += 1,
            BaseOrigin::Similar => delta.by_sketch += 1,
            BaseOrigin::EarlierLayer => delta.by_earlier_layer += 1,
        }
        delta.plain_stored_bytes += frame.plain_stored as u64;
        delta.stored_bytes += frame.stored.len() as u64;
    }

    /// The delta frames of the batch's new chunks that have a base (in parallel).
    fn delta_frames(
        &self,
        batch: &Batch,
        decisions: &[Decision],
    ) -> Result<Vec<Option<DeltaFrame>>> {
        let Some(finder) = self.shared.delta else {
            return Ok(decisions.iter().map(|_| None).collect());
        };
        (0..decisions.len())
            .into_par_iter()
            .map(|i| match decisions[i] {
                Decision::New => {
                    finder.delta_frame(self.layer, &batch.chunks[i], &batch.origins[i])
                }
                _ => Ok(None),
            })
            .collect()
    }

    fn finish(mut self) -> Result<(std::path::PathBuf, Vec<SealedBlob>, Counts)> {
        let (sealed, stored_bytes) = self.blobs.finish()?;
        // The last files' chunks are all written now.
        if let Some(finder) = self.shared.delta {
            self.files.register(finder.earlier(), self.layer);
        }
        self.counts.stored_bytes = stored_bytes;
        Ok((self.spill.finish()?, sealed, self.counts))
    }
}
