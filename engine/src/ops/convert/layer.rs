//! One layer's conversion: a reader thread (source -> sha256 -> decompress -> sha256 -> tar
//! stream -> chunker) sends batches of chunks to a processor that hashes them, decides per
//! chunk whether the dictionary or this convert already has it, and hands the new ones to the
//! layer's blob builder. Layers run `PARALLEL_LAYERS` at a time.

use super::{Count, LayerOutput, LayerReport, Shared};
use crate::chunk::Chunker;
use crate::error::{Error, Result};
use crate::format::blob::SealedBlob;
use crate::format::bootstrap::{EntryRecord, LayerRecord};
use crate::format::ChunkLocation;
use crate::layer::{Compression, DigestReader, TarStream};
use crate::ops::blob_builder::BlobBuilder;
use crate::source::LayerSource;
use crate::ChunkId;
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::BufReader;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

/// Chunks are handed from reader to processor in batches of about this many bytes.
const BATCH_BYTES: usize = 8 << 20;
/// Layers converted at the same time.
const PARALLEL_LAYERS: usize = 2;

/// Converts every layer, `PARALLEL_LAYERS` at a time; the first error stops the others.
pub(super) fn convert_layers(shared: &Shared, layers: &[LayerSource]) -> Result<Vec<LayerOutput>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<LayerOutput>>>> =
        Mutex::new((0..layers.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_LAYERS.min(layers.len()) {
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

/// A batch of chunks from the reader: layer-local numbers start at `first`.
struct Batch {
    chunks: Vec<Vec<u8>>,
}

fn layer_label(index: usize, layer: &LayerSource) -> String {
    match &layer.digest {
        Some(d) => format!("layer {index} ({d})"),
        None => format!("layer {index} ({})", layer.bytes.path.display()),
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
    let (sender, receiver) = mpsc::sync_channel::<Batch>(2);
    let mut processor = Processor::new(shared, &label)?;
    let (record_parts, processed) = std::thread::scope(|scope| {
        let handle = scope.spawn(move || -> Result<Processor> {
            for batch in receiver {
                processor.process(batch)?;
            }
            Ok(processor)
        });
        let read = read_layer(shared, &label, &mut raw, compression, sender);
        let processed = handle.join().expect("chunk processor panicked");
        (read, processed)
    });
    let processor = processed?;
    let (entries, trailer, diff_id, tar_bytes, mut report) = record_parts?;
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
        if *expected != diff_id {
            return Err(Error::DigestMismatch {
                object: format!("{label} uncompressed (diff_id)"),
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
    }
    let (chunk_ids, reused, blobs, counts) = processor.finish()?;
    report.digest = digest.to_string();
    report.diff_id = diff_id.to_string();
    report.compression = compression.name().into();
    report.compressed_bytes = compressed_size;
    report.new = counts.new;
    report.from_dictionary = counts.from_dictionary;
    report.repeated = counts.repeated;
    report.stored_bytes = counts.stored_bytes;
    Ok(LayerOutput {
        record: LayerRecord {
            digest,
            diff_id,
            media_type: layer.media_type.clone(),
            compression,
            compressed_size,
            size: tar_bytes,
            entries,
            trailer,
        },
        chunk_ids,
        reused,
        blobs,
        report,
    })
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

type ReadResult = (
    Vec<EntryRecord>,
    Vec<u8>,
    crate::Sha256Digest,
    u64,
    LayerReport,
);

/// The reader half: decompress, walk the tar, cut file contents into chunks and send them on.
fn read_layer<R: std::io::Read>(
    shared: &Shared,
    label: &str,
    raw: &mut R,
    compression: Compression,
    sender: mpsc::SyncSender<Batch>,
) -> Result<ReadResult> {
    let io_err = |e: std::io::Error| Error::bad_input(label, e.to_string());
    let decoder = compression.decoder(raw).map_err(io_err)?;
    let mut plain = DigestReader::new(decoder);
    let mut report = LayerReport::default();
    let mut entries = Vec::new();
    let mut chunker = Chunker::new(&shared.store.config().chunker)
        .map_err(|e| Error::corrupt("store.json", e))?;
    let mut batch = Batch { chunks: Vec::new() };
    let mut batch_bytes = 0usize;
    let mut next_chunk: u32 = 0;
    let mut tar = TarStream::new(&mut plain, label);
    let disconnected = || Error::Usage(CANCELLED.into());
    while let Some(header) = tar.next_entry()? {
        if shared.cancel.load(Ordering::Relaxed) {
            return Err(disconnected());
        }
        let mut chunks = Vec::new();
        let size = header.meta.size;
        if size > 0 {
            let read = chunker.chunk_stream(tar.content(), |chunk| -> Result<()> {
                batch.chunks.push(chunk.to_vec());
                batch_bytes += chunk.len();
                chunks.push(next_chunk);
                report.chunks.add(chunk.len() as u64);
                next_chunk = next_chunk.checked_add(1).ok_or_else(|| {
                    Error::bad_input(label, "more than 4 billion chunks in one layer")
                })?;
                if batch_bytes >= BATCH_BYTES {
                    let full = std::mem::replace(&mut batch, Batch { chunks: Vec::new() });
                    batch_bytes = 0;
                    sender.send(full).map_err(|_| disconnected())?;
                }
                Ok(())
            });
            let read = read?;
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
        entries.push(EntryRecord {
            raw_header: header.raw,
            meta: header.meta,
            chunks,
        });
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
    Ok((entries, trailer, diff_id, counted, report))
}

#[derive(Default)]
struct Counts {
    new: Count,
    from_dictionary: Count,
    repeated: Count,
    stored_bytes: u64,
}

/// The processor half: hash, look up, and hand the new chunks of one layer, in stream order,
/// to its blob builder (which groups them into frames, compresses and writes them).
struct Processor<'a> {
    shared: &'a Shared<'a>,
    chunk_ids: Vec<ChunkId>,
    reused: HashMap<ChunkId, ChunkLocation>,
    blobs: BlobBuilder<'a>,
    counts: Counts,
}

enum Decision {
    New,
    Dictionary(ChunkLocation),
    Repeated,
}

impl<'a> Processor<'a> {
    fn new(shared: &'a Shared<'a>, label: &str) -> Result<Self> {
        Ok(Processor {
            shared,
            chunk_ids: Vec::new(),
            reused: HashMap::new(),
            blobs: BlobBuilder::new(shared.store, label, "convert.blob.fsync"),
            counts: Counts::default(),
        })
    }

    fn decide(&mut self, id: &ChunkId, len: u64) -> Result<Decision> {
        let decision = if let Some(location) = self.reused.get(id) {
            Decision::Dictionary(*location)
        } else if self
            .shared
            .claimed
            .lock()
            .expect("claims lock")
            .contains(id)
        {
            Decision::Repeated
        } else if let Some(location) = self.shared.dictionary.get(id)? {
            Decision::Dictionary(location)
        } else if self.shared.claimed.lock().expect("claims lock").insert(*id) {
            Decision::New
        } else {
            Decision::Repeated
        };
        match &decision {
            Decision::New => self.counts.new.add(len),
            Decision::Dictionary(location) => {
                self.counts.from_dictionary.add(len);
                self.reused.insert(*id, *location);
            }
            Decision::Repeated => self.counts.repeated.add(len),
        }
        Ok(decision)
    }

    fn process(&mut self, batch: Batch) -> Result<()> {
        let ids: Vec<ChunkId> = batch.chunks.par_iter().map(|c| ChunkId::of(c)).collect();
        for (id, data) in ids.iter().zip(&batch.chunks) {
            if let Decision::New = self.decide(id, data.len() as u64)? {
                self.blobs.push(*id, data);
            }
        }
        self.blobs.flush()?;
        self.chunk_ids.extend(ids);
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn finish(
        mut self,
    ) -> Result<(
        Vec<ChunkId>,
        HashMap<ChunkId, ChunkLocation>,
        Vec<SealedBlob>,
        Counts,
    )> {
        let (sealed, stored_bytes) = self.blobs.finish()?;
        self.counts.stored_bytes = stored_bytes;
        Ok((self.chunk_ids, self.reused, sealed, self.counts))
    }
}
