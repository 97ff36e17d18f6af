//! Spill files: what a layer's reader and processor learn as the layer streams by (entries in
//! tar order, and each chunk reference's id and, for a dictionary chunk, its location), written
//! to `tmp/` so that memory does not grow with the layer. Once every new chunk of the image has
//! its place in a sealed blob, `resolve` reads both back in step and writes the layer metadata
//! object. Records are bincode, each preceded by its length (u32 LE).

use crate::error::{Error, IoContext, Result};
use crate::format::ChunkLocation;
use crate::layer::EntryMeta;
use crate::ChunkId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// An entry as the reader saw it: its chunks are the next `chunks` records of the chunk spill.
#[derive(Serialize, Deserialize)]
pub(super) struct SpilledEntry {
    pub raw_header: Vec<u8>,
    pub meta: EntryMeta,
    pub chunks: u64,
    /// The similarity sketch of a large file's first chunk (`chunk::sketch`).
    pub sketch: Option<crate::chunk::sketch::Sketch>,
}

/// One chunk reference: the dictionary's location, or none for a chunk this convert stores.
#[derive(Serialize, Deserialize)]
pub(super) struct SpilledChunk {
    pub id: ChunkId,
    pub dictionary: Option<ChunkLocation>,
}

/// Appends records of type `T` to a file under `tmp/`.
pub(super) struct SpillWriter<T> {
    path: PathBuf,
    out: BufWriter<File>,
    buf: Vec<u8>,
    _records: PhantomData<T>,
}

impl<T: Serialize> SpillWriter<T> {
    pub(super) fn create(path: PathBuf) -> Result<Self> {
        let file = File::create(&path).with_path("create spill file", &path)?;
        Ok(SpillWriter {
            out: BufWriter::with_capacity(256 << 10, file),
            path,
            buf: Vec::new(),
            _records: PhantomData,
        })
    }

    pub(super) fn push(&mut self, record: &T) -> Result<()> {
        self.buf.clear();
        bincode::serde::encode_into_std_write(record, &mut self.buf, bincode::config::standard())
            .map_err(|e| Error::io("encode spill record", &self.path, std::io::Error::other(e)))?;
        self.out
            .write_all(&(self.buf.len() as u32).to_le_bytes())
            .and_then(|()| self.out.write_all(&self.buf))
            .with_path("write spill file", &self.path)
    }

    /// Flushes and returns the path, for a `SpillReader`.
    pub(super) fn finish(mut self) -> Result<PathBuf> {
        self.out.flush().with_path("write spill file", &self.path)?;
        Ok(self.path)
    }
}

/// Reads back the records a `SpillWriter` wrote, in order.
pub(super) struct SpillReader<T> {
    path: PathBuf,
    input: BufReader<File>,
    buf: Vec<u8>,
    _records: PhantomData<T>,
}

impl<T: DeserializeOwned> SpillReader<T> {
    pub(super) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_path("open spill file", path)?;
        Ok(SpillReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(256 << 10, file),
            buf: Vec::new(),
            _records: PhantomData,
        })
    }

    /// The next record, or `None` at the end of the file.
    pub(super) fn next_record(&mut self) -> Result<Option<T>> {
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::io("read spill file", &self.path, e)),
        }
        self.buf.resize(u32::from_le_bytes(len) as usize, 0);
        self.input
            .read_exact(&mut self.buf)
            .with_path("read spill file", &self.path)?;
        let (record, _) = bincode::serde::decode_from_slice(&self.buf, bincode::config::standard())
            .map_err(|e| Error::io("decode spill record", &self.path, std::io::Error::other(e)))?;
        Ok(Some(record))
    }
}
