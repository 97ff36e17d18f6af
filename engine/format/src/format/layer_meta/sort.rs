//! The external sort of a layer's path records: records arrive in tar order, are gathered in a
//! bounded in-memory run, sorted by (parent, name) and spilled to a temporary run file when the
//! run is full; at the end the runs are merged (k-way, at most `fan_in` at a time), records with
//! the same key folded into one (`PathRecord::merge`). Memory is one run plus one decoded run
//! block per run being merged, whatever the number of records.
//!
//! A run file (temporary, private to one writer, deleted when the sort ends or is dropped) is a
//! sequence of blocks: `stored_len u32 | decoded_len u32 | count u32 | zstd(records)`, the
//! records bincode-encoded back to back as in a path block.

use super::{bincode_config, PathRecord, PATH_BLOCK_TARGET, ZSTD_LEVEL};
use crate::error::{Error, IoContext, Result};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::PathBuf;

/// A stream of sorted records.
pub(crate) type Sorted = Box<dyn Iterator<Item = Result<PathRecord>>>;

/// Temporary run files, removed when dropped.
#[derive(Default)]
struct RunFiles(Vec<PathBuf>);

impl Drop for RunFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(crate) struct PathSorter {
    /// Run files are named `<base>.run<N>`.
    base: PathBuf,
    next_run: u64,
    run: Vec<PathRecord>,
    run_bytes: usize,
    run_limit: usize,
    fan_in: usize,
    /// Spilled runs, oldest first (each with its file in `files`).
    runs: Vec<PathBuf>,
    files: RunFiles,
}

impl PathSorter {
    /// `run_limit`: bytes of records held in memory before a spill; `fan_in`: runs merged at
    /// once (at least 2).
    pub fn new(base: PathBuf, run_limit: usize, fan_in: usize) -> Self {
        PathSorter {
            base,
            next_run: 0,
            run: Vec::new(),
            run_bytes: 0,
            run_limit,
            fan_in: fan_in.max(2),
            runs: Vec::new(),
            files: RunFiles::default(),
        }
    }

    /// Bytes of records held in memory now.
    pub fn buffered_bytes(&self) -> usize {
        self.run_bytes
    }

    /// Runs spilled so far.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, record: PathRecord) -> Result<()> {
        self.run_bytes += record.mem_size();
        self.run.push(record);
        if self.run_bytes > self.run_limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        let run = sort_run(std::mem::take(&mut self.run));
        self.run_bytes = 0;
        let path = self.write_run(run.into_iter().map(Ok))?;
        self.runs.push(path);
        Ok(())
    }

    fn new_run_path(&mut self) -> PathBuf {
        let mut name = self.base.clone().into_os_string();
        name.push(format!(".run{}", self.next_run));
        self.next_run += 1;
        let path = PathBuf::from(name);
        self.files.0.push(path.clone());
        path
    }

    fn write_run(&mut self, records: impl Iterator<Item = Result<PathRecord>>) -> Result<PathBuf> {
        let path = self.new_run_path();
        let file = File::create(&path).with_path("create sort run", &path)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|e| Error::io("compress sort run", &path, e))?;
        let mut block = Vec::new();
        let mut count = 0u32;
        for record in records {
            let record = record?;
            bincode::serde::encode_into_std_write(&record, &mut block, bincode_config())
                .map_err(|e| Error::corrupt(path.display().to_string(), format!("encode: {e}")))?;
            count += 1;
            if block.len() >= PATH_BLOCK_TARGET {
                write_run_block(&mut out, &mut compressor, &block, count, &path)?;
                block.clear();
                count = 0;
            }
        }
        if count > 0 {
            write_run_block(&mut out, &mut compressor, &block, count, &path)?;
        }
        out.flush().with_path("write sort run", &path)?;
        Ok(path)
    }

    /// Every record, sorted by key, one per key. Run files are gone when the stream is dropped.
    pub fn finish(mut self) -> Result<Sorted> {
        if self.runs.is_empty() {
            let run = sort_run(std::mem::take(&mut self.run));
            return Ok(Box::new(run.into_iter().map(Ok)));
        }
        if !self.run.is_empty() {
            self.spill()?;
        }
        while self.runs.len() > self.fan_in {
            let group: Vec<PathBuf> = self.runs.drain(..self.fan_in).collect();
            let merged = merge(open_runs(&group)?);
            let path = self.write_run(merged)?;
            for done in &group {
                std::fs::remove_file(done).with_path("remove sort run", done)?;
            }
            self.files.0.retain(|p| !group.contains(p));
            self.runs.push(path);
        }
        Ok(Box::new(MergedRuns {
            merge: merge(open_runs(&self.runs)?),
            _files: std::mem::take(&mut self.files),
        }))
    }
}

/// The final merge, owning the run files it reads (removed when it is dropped).
struct MergedRuns {
    merge: Merge,
    _files: RunFiles,
}

impl Iterator for MergedRuns {
    type Item = Result<PathRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.merge.next()
    }
}

fn write_run_block(
    out: &mut BufWriter<File>,
    compressor: &mut zstd::bulk::Compressor<'static>,
    block: &[u8],
    count: u32,
    path: &std::path::Path,
) -> Result<()> {
    let stored = compressor
        .compress(block)
        .map_err(|e| Error::io("compress sort run", path, e))?;
    let mut head = [0u8; 12];
    head[0..4].copy_from_slice(&(stored.len() as u32).to_le_bytes());
    head[4..8].copy_from_slice(&(block.len() as u32).to_le_bytes());
    head[8..12].copy_from_slice(&count.to_le_bytes());
    out.write_all(&head).with_path("write sort run", path)?;
    out.write_all(&stored).with_path("write sort run", path)
}

/// Sorts a run by key (stable, so records of one key stay in tar order) and folds each key's
/// records into one.
fn sort_run(mut run: Vec<PathRecord>) -> Vec<PathRecord> {
    run.sort_by(|a, b| a.key().cmp(&b.key()));
    let mut out: Vec<PathRecord> = Vec::with_capacity(run.len());
    for record in run {
        match out.last_mut() {
            Some(last) if last.key() == record.key() => last.merge(record),
            _ => out.push(record),
        }
    }
    out
}

fn open_runs(paths: &[PathBuf]) -> Result<Vec<Sorted>> {
    paths
        .iter()
        .map(|path| {
            let file = File::open(path).with_path("open sort run", path)?;
            Ok(Box::new(RunReader {
                path: path.clone(),
                input: BufReader::with_capacity(1 << 16, file),
                block: Vec::new(),
                pos: 0,
                left: 0,
            }) as Sorted)
        })
        .collect()
}

/// Reads a run file back one block at a time.
struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
    block: Vec<u8>,
    pos: usize,
    left: u32,
}

impl RunReader {
    fn corrupt(&self, reason: impl std::fmt::Display) -> Error {
        Error::corrupt(
            format!("sort run {}", self.path.display()),
            reason.to_string(),
        )
    }

    /// Loads the next block; false at the end of the file.
    fn load(&mut self) -> Result<bool> {
        let mut head = [0u8; 12];
        match self.input.read_exact(&mut head) {
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
            other => other.with_path("read sort run", &self.path)?,
        }
        let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        let (stored_len, decoded_len, count) = (word(0), word(4), word(8));
        if decoded_len as u64 > super::MAX_BLOCK_LEN || stored_len as u64 > super::MAX_BLOCK_LEN {
            return Err(self.corrupt(format!("block of {decoded_len} bytes")));
        }
        let mut stored = vec![0u8; stored_len as usize];
        self.input
            .read_exact(&mut stored)
            .with_path("read sort run", &self.path)?;
        self.block = super::super::decompress(&stored, decoded_len as usize)
            .map_err(|e| self.corrupt(format!("zstd: {e}")))?;
        self.pos = 0;
        self.left = count;
        Ok(true)
    }

    fn next_record(&mut self) -> Result<Option<PathRecord>> {
        while self.left == 0 {
            if !self.load()? {
                return Ok(None);
            }
        }
        let (record, used): (PathRecord, usize) =
            bincode::serde::decode_from_slice(&self.block[self.pos..], bincode_config())
                .map_err(|e| self.corrupt(format!("record: {e}")))?;
        self.pos += used;
        self.left -= 1;
        Ok(Some(record))
    }
}

impl Iterator for RunReader {
    type Item = Result<PathRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// The head record of one source in the merge heap; the heap pops the smallest key first,
/// and of equal keys the older source first.
struct Head {
    record: PathRecord,
    source: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.record.key(), other.source).cmp(&(self.record.key(), self.source))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// Merges sorted sources (each one record per key) into one sorted stream, one record per key.
fn merge(sources: Vec<Sorted>) -> Merge {
    Merge {
        sources,
        heap: BinaryHeap::new(),
        started: false,
        failed: false,
    }
}

struct Merge {
    sources: Vec<Sorted>,
    heap: BinaryHeap<Head>,
    started: bool,
    failed: bool,
}

impl Merge {
    fn refill(&mut self, source: usize) -> Result<()> {
        if let Some(record) = self.sources[source].next().transpose()? {
            self.heap.push(Head { record, source });
        }
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<PathRecord>> {
        if !self.started {
            self.started = true;
            for source in 0..self.sources.len() {
                self.refill(source)?;
            }
        }
        let Some(Head { mut record, source }) = self.heap.pop() else {
            return Ok(None);
        };
        self.refill(source)?;
        while self
            .heap
            .peek()
            .is_some_and(|h| h.record.key() == record.key())
        {
            let head = self.heap.pop().expect("peeked");
            record.merge(head.record);
            self.refill(head.source)?;
        }
        Ok(Some(record))
    }
}

impl Iterator for Merge {
    type Item = Result<PathRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_record().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}
