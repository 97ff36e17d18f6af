//! Writes a layer metadata object as the layer's entries stream in: entries go to the current
//! entry block (written out when full), their path records to the external sort; `finish`
//! writes the sorted path blocks, the tables and the footer, and fsyncs. Memory is one entry
//! block, one sort run and one decoded block per run being merged (plus the block tables,
//! about 60 bytes per block), whatever the number of entries.

use super::sort::PathSorter;
use super::{
    ancestor_records, bincode_config, check_entry, path_update, BlobRecord, EntryBlockRef,
    LayerEntry, LayerInfo, LayerSource, PathBlockRef, PathUpdate, Tables, END_MAGIC,
    ENTRY_BLOCK_TARGET, HEADER_LEN, LAYER_META_VERSION, MAGIC, MAX_BLOCK_LEN, MAX_TABLES_LEN,
    PATH_BLOCK_TARGET, ZSTD_LEVEL,
};
use crate::error::{Error, IoContext, Result};
use crate::layer::EntryKind;
use crate::LayerMetaId;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The writer's bounds. The defaults are the format's block targets, a 4 MiB sort run and a
/// merge of up to 64 runs at once; tests make them small to force many blocks and runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterLimits {
    /// Encoded bytes of entries per entry block.
    pub entry_block: usize,
    /// Encoded bytes of records per path block.
    pub path_block: usize,
    /// Bytes of path records held in memory before they are sorted and spilled.
    pub sort_run: usize,
    /// Runs merged at once (at least 2); more runs are merged in several passes.
    pub sort_fan_in: usize,
}

impl Default for WriterLimits {
    fn default() -> Self {
        WriterLimits {
            entry_block: ENTRY_BLOCK_TARGET,
            path_block: PATH_BLOCK_TARGET,
            sort_run: 4 << 20,
            sort_fan_in: 64,
        }
    }
}

/// A complete, fsynced object still under its temporary name.
#[derive(Debug)]
pub struct SealedLayerMeta {
    pub id: LayerMetaId,
    pub tmp_path: PathBuf,
    pub size: u64,
    pub info: LayerInfo,
    pub entry_blocks: usize,
    pub path_blocks: usize,
    pub path_records: u64,
    /// Sort runs spilled to disk while writing (0 when the path index fit in one run).
    pub sort_runs: usize,
}

fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&LAYER_META_VERSION.to_le_bytes());
    h
}

/// The object file being written: appends bytes and compressed, hashed blocks.
struct BlockFile {
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    compressor: zstd::bulk::Compressor<'static>,
}

/// A block as written: where it lies and the BLAKE3 of its stored bytes.
struct Written {
    offset: u64,
    stored_len: u32,
    decoded_len: u32,
    hash: [u8; 32],
}

impl BlockFile {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_path("write layer metadata", &self.path)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.compressor
            .compress(data)
            .map_err(|e| Error::io("compress layer metadata", &self.path, e))
    }

    fn write_block(&mut self, data: &[u8]) -> Result<Written> {
        let stored = self.compress(data)?;
        let offset = self.offset;
        self.write(&stored)?;
        Ok(Written {
            offset,
            stored_len: stored.len() as u32,
            decoded_len: data.len() as u32,
            hash: *blake3::hash(&stored).as_bytes(),
        })
    }
}

/// Streams one layer's entries into a new layer metadata object (see the module comment).
pub struct LayerMetaWriter {
    file: BlockFile,
    limits: WriterLimits,
    /// Encoded entries of the block being filled, its first entry's number and entry count.
    block: Vec<u8>,
    block_first: u64,
    block_count: u32,
    entry_blocks: Vec<EntryBlockRef>,
    next_entry: u64,
    file_count: u64,
    chunk_refs: u64,
    content_bytes: u64,
    root_opaque: bool,
    /// The parent directory of the last path record pushed (its ancestors have records).
    last_parent: Vec<u8>,
    /// One past the highest blob index any chunk names.
    blobs_named: u64,
    paths: PathSorter,
    /// The most bytes held in the entry block and the sort run at once.
    peak_buffered: usize,
}

impl LayerMetaWriter {
    /// Creates the object at `path` (under `STORE/tmp/`) with the default limits.
    pub fn create(path: PathBuf) -> Result<Self> {
        Self::with_limits(path, WriterLimits::default())
    }

    /// Creates the object at `path`; its sort runs are written beside it (`<path>.run<N>`).
    pub fn with_limits(path: PathBuf, limits: WriterLimits) -> Result<Self> {
        if limits.sort_fan_in < 2 {
            return Err(Error::Usage(format!(
                "layer metadata writer: a merge of {} runs at once cannot make progress",
                limits.sort_fan_in
            )));
        }
        let largest = limits.entry_block.max(limits.path_block) as u64;
        if largest > MAX_BLOCK_LEN {
            return Err(Error::Usage(format!(
                "layer metadata writer: blocks of {largest} bytes are over the {MAX_BLOCK_LEN}-byte limit"
            )));
        }
        let file = File::create(&path).with_path("create layer metadata", &path)?;
        let mut file = BlockFile {
            out: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(|e| Error::io("compress layer metadata", &path, e))?,
            path: path.clone(),
        };
        file.write(&header())?;
        Ok(LayerMetaWriter {
            file,
            limits,
            block: Vec::new(),
            block_first: 0,
            block_count: 0,
            entry_blocks: Vec::new(),
            next_entry: 0,
            file_count: 0,
            chunk_refs: 0,
            content_bytes: 0,
            root_opaque: false,
            last_parent: Vec::new(),
            blobs_named: 0,
            paths: PathSorter::new(path, limits.sort_run, limits.sort_fan_in),
            peak_buffered: 0,
        })
    }

    fn object(&self) -> String {
        format!("layer metadata {}", self.file.path.display())
    }

    /// Appends the layer's next entry (in tar order); returns its number.
    pub fn push(&mut self, entry: LayerEntry) -> Result<u64> {
        let number = self.next_entry;
        let bad = |reason: String| {
            Error::bad_input(
                self.object(),
                format!("entry {number} {:?}: {reason}", entry.meta.path_lossy()),
            )
        };
        check_entry(&entry, usize::MAX).map_err(bad)?;
        let encoded = bincode::serde::encode_to_vec(&entry, bincode_config())
            .map_err(|e| bad(format!("encode: {e}")))?;
        if encoded.len() as u64 > MAX_BLOCK_LEN {
            return Err(bad(format!(
                "{} bytes of metadata, over the {MAX_BLOCK_LEN}-byte block limit",
                encoded.len()
            )));
        }
        if self.block_count > 0 && self.block.len() + encoded.len() > self.limits.entry_block {
            self.flush_entry_block()?;
        }
        if self.block_count == 0 {
            self.block_first = number;
        }
        self.block.extend_from_slice(&encoded);
        self.block_count += 1;
        self.next_entry += 1;
        self.count(&entry);
        match path_update(&entry.meta.path, entry.meta.kind, number) {
            PathUpdate::Nothing => {}
            PathUpdate::RootOpaque => self.root_opaque = true,
            PathUpdate::Record(record) => {
                // Entries of one directory usually follow each other: its ancestors' records
                // are pushed once per run of them (the sort merges any repeats).
                if record.parent != self.last_parent {
                    for a in ancestor_records(&record.parent) {
                        self.paths.push(a)?;
                    }
                    self.last_parent.clone_from(&record.parent);
                }
                self.paths.push(record)?
            }
        }
        let buffered = self.block.len() + self.paths.buffered_bytes();
        self.peak_buffered = self.peak_buffered.max(buffered);
        Ok(number)
    }

    fn count(&mut self, entry: &LayerEntry) {
        if entry.meta.kind == EntryKind::File {
            self.file_count += 1;
        }
        self.chunk_refs += entry.chunks.len() as u64;
        self.content_bytes += entry.meta.size;
        if let Some(max) = entry.chunks.iter().map(|c| c.blob as u64 + 1).max() {
            self.blobs_named = self.blobs_named.max(max);
        }
    }

    fn flush_entry_block(&mut self) -> Result<()> {
        let written = self.file.write_block(&self.block)?;
        self.entry_blocks.push(EntryBlockRef {
            offset: written.offset,
            stored_len: written.stored_len,
            decoded_len: written.decoded_len,
            first_entry: self.block_first,
            count: self.block_count,
            hash: written.hash,
        });
        self.block.clear();
        self.block_count = 0;
        Ok(())
    }

    /// The most bytes the writer has held in its entry block and sort run at once.
    #[cfg(test)]
    pub fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }

    /// Writes the path index, the tables and the footer, and fsyncs; the object id is known
    /// only now. `blobs` is the table the entries' `ChunkRecord::blob` index. `fail_at` names
    /// the fail point checked before the fsync (the caller's write path).
    pub fn finish(
        mut self,
        source: LayerSource,
        blobs: Vec<BlobRecord>,
        fail_at: &'static str,
    ) -> Result<SealedLayerMeta> {
        if self.block_count > 0 {
            self.flush_entry_block()?;
        }
        if self.blobs_named > blobs.len() as u64 {
            return Err(Error::bad_input(
                self.object(),
                format!(
                    "entries name blob {} but the blob table has {}",
                    self.blobs_named - 1,
                    blobs.len()
                ),
            ));
        }
        let sort_runs = self.paths.run_count();
        let sorted = self.paths.finish()?;
        let (path_blocks, path_records) =
            write_path_blocks(&mut self.file, sorted, self.limits.path_block)?;
        let info = LayerInfo {
            source,
            entry_count: self.next_entry,
            file_count: self.file_count,
            chunk_refs: self.chunk_refs,
            content_bytes: self.content_bytes,
            root_opaque: self.root_opaque,
        };
        let tables = Tables {
            info: info.clone(),
            blobs,
            entry_blocks: std::mem::take(&mut self.entry_blocks),
            path_blocks,
        };
        let (id, entry_blocks, path_blocks) = (
            write_tail(&mut self.file, &tables)?,
            tables.entry_blocks.len(),
            tables.path_blocks.len(),
        );
        let BlockFile {
            path, out, offset, ..
        } = self.file;
        let file = out
            .into_inner()
            .map_err(|e| Error::io("write layer metadata", &path, e.into_error()))?;
        crate::failpoint::check(fail_at)?;
        file.sync_all().with_path("fsync layer metadata", &path)?;
        Ok(SealedLayerMeta {
            id,
            tmp_path: path,
            size: offset,
            info,
            entry_blocks,
            path_blocks,
            path_records,
            sort_runs,
        })
    }
}

/// Writes the sorted path records as path blocks; returns the block table and record count.
fn write_path_blocks(
    file: &mut BlockFile,
    sorted: super::sort::Sorted,
    target: usize,
) -> Result<(Vec<PathBlockRef>, u64)> {
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    let mut first = (Vec::new(), Vec::new());
    let mut count = 0u32;
    let mut total = 0u64;
    for record in sorted {
        let record = record?;
        let encoded = bincode::serde::encode_to_vec(&record, bincode_config())
            .map_err(|e| Error::io("encode path record", &file.path, std::io::Error::other(e)))?;
        if count > 0 && block.len() + encoded.len() > target {
            blocks.push(path_block(file, &block, std::mem::take(&mut first), count)?);
            block.clear();
            count = 0;
        }
        if count == 0 {
            first = (record.parent, record.name);
        }
        block.extend_from_slice(&encoded);
        count += 1;
        total += 1;
    }
    if count > 0 {
        blocks.push(path_block(file, &block, first, count)?);
    }
    Ok((blocks, total))
}

fn path_block(
    file: &mut BlockFile,
    block: &[u8],
    (first_parent, first_name): (Vec<u8>, Vec<u8>),
    count: u32,
) -> Result<PathBlockRef> {
    let written = file.write_block(block)?;
    Ok(PathBlockRef {
        offset: written.offset,
        stored_len: written.stored_len,
        decoded_len: written.decoded_len,
        count,
        hash: written.hash,
        first_parent,
        first_name,
    })
}

/// Writes the tables and the footer; returns the object id (BLAKE3 of header, tables, footer).
fn write_tail(file: &mut BlockFile, tables: &Tables) -> Result<LayerMetaId> {
    let path: &Path = &file.path;
    let encoded = bincode::serde::encode_to_vec(
        tables,
        bincode::config::standard().with_limit::<{ MAX_TABLES_LEN as usize }>(),
    )
    .map_err(|e| {
        Error::io(
            "encode layer metadata tables",
            path,
            std::io::Error::other(e),
        )
    })?;
    if encoded.len() as u64 > MAX_TABLES_LEN {
        return Err(Error::io(
            "encode layer metadata tables",
            path,
            std::io::Error::other(format!("{} bytes of tables", encoded.len())),
        ));
    }
    let stored = file.compress(&encoded)?;
    let tables_offset = file.offset;
    file.write(&stored)?;
    let mut footer = Vec::with_capacity(super::FOOTER_LEN as usize);
    footer.extend_from_slice(&tables_offset.to_le_bytes());
    footer.extend_from_slice(&(stored.len() as u64).to_le_bytes());
    footer.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
    footer.extend_from_slice(END_MAGIC);
    file.write(&footer)?;
    Ok(super::root_id(&header(), &stored, &footer))
}
