//! The RocksDB index: `chunks` (chunk id -> location, used by convert to dedup and by gc),
//! `images` (image id -> record) and `refs` (name -> image id). Every change of a commit goes
//! into one synced write batch, the last step of the write order (see `ops::convert`).

use crate::error::{Error, Result};
use crate::format::{ChunkLocation, Codec};
use crate::source::Platform;
use crate::{BlobId, ChunkId, ImageId};
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const CF_CHUNKS: &str = "chunks";
const CF_IMAGES: &str = "images";
const CF_REFS: &str = "refs";
const LOCATION_LEN: usize = 57;

/// What the store knows about one image without opening its bootstrap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub image_id: ImageId,
    pub bootstrap_size: u64,
    pub reference: String,
    pub platform: Option<Platform>,
    pub manifest_digest: Option<String>,
    pub layers: u64,
    pub files: u64,
    /// Bytes of the uncompressed layer tars.
    pub logical_bytes: u64,
    /// Chunks this image was the first to store, and their bytes in blobs.
    pub new_chunks: u64,
    pub added_stored_bytes: u64,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// The changes of one commit.
#[derive(Default)]
pub struct IndexBatch {
    pub chunks: Vec<(ChunkId, ChunkLocation)>,
    pub images: Vec<ImageRecord>,
    pub refs: Vec<(String, ImageId)>,
    pub delete_chunks: Vec<ChunkId>,
    pub delete_images: Vec<ImageId>,
    pub delete_refs: Vec<String>,
}

/// What can still be read of an index that may be damaged (see `Index::salvage`).
#[derive(Default)]
pub struct Salvage {
    pub refs: Vec<(String, ImageId)>,
    pub images: HashMap<ImageId, ImageRecord>,
    pub chunks: HashMap<ChunkId, ChunkLocation>,
    /// One line per malformed entry skipped or column family that could not be read.
    pub problems: Vec<String>,
}

pub struct Index {
    db: DB,
    path: PathBuf,
}

impl Index {
    fn options() -> Options {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(2);
        opts.set_max_log_file_size(1 << 20);
        opts.set_write_buffer_size(16 << 20);
        opts
    }

    fn descriptors() -> Vec<ColumnFamilyDescriptor> {
        [CF_CHUNKS, CF_IMAGES, CF_REFS]
            .iter()
            .map(|name| {
                let mut cf = Options::default();
                if *name == CF_CHUNKS {
                    let mut table = rocksdb::BlockBasedOptions::default();
                    table.set_bloom_filter(10.0, false);
                    cf.set_block_based_table_factory(&table);
                }
                ColumnFamilyDescriptor::new(*name, cf)
            })
            .collect()
    }

    /// Opens (creating if needed) for writing. Only the holder of the store lock may do this.
    pub fn open(path: &Path) -> Result<Index> {
        let db = DB::open_cf_descriptors(&Self::options(), path, Self::descriptors()).map_err(
            |source| Error::Index {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Ok(Index {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Opens read-only; works while a writer holds the index.
    pub fn open_read_only(path: &Path) -> Result<Index> {
        let mut opts = Options::default();
        opts.set_keep_log_file_num(2);
        let db = DB::open_cf_for_read_only(&opts, path, [CF_CHUNKS, CF_IMAGES, CF_REFS], false)
            .map_err(|source| Error::Index {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Index {
            db,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rocksdb::Error) -> Error {
        Error::Index {
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| {
            Error::corrupt(
                self.path.display().to_string(),
                format!("column family {name} is missing"),
            )
        })
    }

    pub fn get_chunk(&self, id: &ChunkId) -> Result<Option<ChunkLocation>> {
        let value = self
            .db
            .get_cf(self.cf(CF_CHUNKS)?, id.0)
            .map_err(|e| self.err(e))?;
        value
            .map(|v| {
                decode_location(&v).ok_or_else(|| {
                    Error::corrupt(format!("index entry for chunk {id}"), "malformed location")
                })
            })
            .transpose()
    }

    pub fn get_ref(&self, name: &str) -> Result<Option<ImageId>> {
        let value = self
            .db
            .get_cf(self.cf(CF_REFS)?, name.as_bytes())
            .map_err(|e| self.err(e))?;
        value
            .map(|v| {
                v.as_slice().try_into().map(ImageId).map_err(|_| {
                    Error::corrupt(format!("index ref {name:?}"), "malformed image id")
                })
            })
            .transpose()
    }

    pub fn get_image(&self, id: &ImageId) -> Result<Option<ImageRecord>> {
        let value = self
            .db
            .get_cf(self.cf(CF_IMAGES)?, id.0)
            .map_err(|e| self.err(e))?;
        value
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| {
                    Error::corrupt(format!("index record of image {id}"), e.to_string())
                })
            })
            .transpose()
    }

    /// All names, sorted.
    pub fn refs(&self) -> Result<Vec<(String, ImageId)>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_REFS)?, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let id =
                value.as_ref().try_into().map(ImageId).map_err(|_| {
                    Error::corrupt(format!("index ref {name:?}"), "malformed image id")
                })?;
            out.push((name, id));
        }
        Ok(out)
    }

    /// Every chunk location, in chunk id order.
    pub fn chunk_locations(&self) -> Result<Vec<(ChunkId, ChunkLocation)>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_CHUNKS)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let id = ChunkId(key.as_ref().try_into().map_err(|_| {
                Error::corrupt(
                    "index chunks",
                    format!("malformed key of {} bytes", key.len()),
                )
            })?);
            let location = decode_location(&value).ok_or_else(|| {
                Error::corrupt(format!("index entry for chunk {id}"), "malformed location")
            })?;
            out.push((id, location));
        }
        Ok(out)
    }

    /// Every image record.
    pub fn image_records(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_IMAGES)?, IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(&value).map_err(|e| {
                Error::corrupt(format!("index record {}", hex::encode(&key)), e.to_string())
            })?);
        }
        Ok(out)
    }

    /// Reads every entry it can: malformed entries are skipped and a column family that fails
    /// to read stops there, each noted in `problems` (for `verify --repair-index`).
    pub fn salvage(&self) -> Salvage {
        let mut out = Salvage::default();
        for name in [CF_REFS, CF_IMAGES, CF_CHUNKS] {
            let cf = match self.cf(name) {
                Ok(cf) => cf,
                Err(e) => {
                    out.problems.push(e.to_string());
                    continue;
                }
            };
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, value) = match item {
                    Ok(kv) => kv,
                    Err(e) => {
                        out.problems
                            .push(format!("column family {name}: {}", self.err(e)));
                        break;
                    }
                };
                let ok = match name {
                    CF_REFS => value
                        .as_ref()
                        .try_into()
                        .map(|id| {
                            let name = String::from_utf8_lossy(&key).into_owned();
                            out.refs.push((name, ImageId(id)))
                        })
                        .is_ok(),
                    CF_IMAGES => serde_json::from_slice::<ImageRecord>(&value)
                        .ok()
                        .filter(|r| r.image_id.0[..] == key[..])
                        .map(|r| out.images.insert(r.image_id, r))
                        .is_some(),
                    _ => match (key.as_ref().try_into(), decode_location(&value)) {
                        (Ok(id), Some(location)) => {
                            out.chunks.insert(ChunkId(id), location);
                            true
                        }
                        _ => false,
                    },
                };
                if !ok {
                    out.problems.push(format!(
                        "column family {name}: malformed entry {} skipped",
                        hex::encode(&key[..key.len().min(32)])
                    ));
                }
            }
        }
        out
    }

    /// Writes one commit's changes atomically and durably.
    pub fn commit(&self, batch: IndexBatch) -> Result<()> {
        let mut wb = WriteBatch::default();
        let chunks = self.cf(CF_CHUNKS)?;
        for id in &batch.delete_chunks {
            wb.delete_cf(chunks, id.0);
        }
        for id in &batch.delete_images {
            wb.delete_cf(self.cf(CF_IMAGES)?, id.0);
        }
        for name in &batch.delete_refs {
            wb.delete_cf(self.cf(CF_REFS)?, name.as_bytes());
        }
        for (id, location) in &batch.chunks {
            wb.put_cf(chunks, id.0, encode_location(location));
        }
        let images = self.cf(CF_IMAGES)?;
        for record in &batch.images {
            let json = serde_json::to_vec(record).expect("image record serializes");
            wb.put_cf(images, record.image_id.0, json);
        }
        let refs = self.cf(CF_REFS)?;
        for (name, id) in &batch.refs {
            wb.put_cf(refs, name.as_bytes(), id.0);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts).map_err(|e| self.err(e))
    }
}

fn encode_location(location: &ChunkLocation) -> [u8; LOCATION_LEN] {
    let mut out = [0u8; LOCATION_LEN];
    out[..32].copy_from_slice(&location.blob.0);
    out[32..40].copy_from_slice(&location.offset.to_le_bytes());
    out[40..44].copy_from_slice(&location.stored_len.to_le_bytes());
    out[44..48].copy_from_slice(&location.frame_len.to_le_bytes());
    out[48..52].copy_from_slice(&location.skip.to_le_bytes());
    out[52..56].copy_from_slice(&location.len.to_le_bytes());
    out[56] = location.codec as u8;
    out
}

fn decode_location(bytes: &[u8]) -> Option<ChunkLocation> {
    if bytes.len() != LOCATION_LEN {
        return None;
    }
    let u32_at = |at: usize| bytes[at..at + 4].try_into().ok().map(u32::from_le_bytes);
    let location = ChunkLocation {
        blob: BlobId(bytes[..32].try_into().ok()?),
        offset: u64::from_le_bytes(bytes[32..40].try_into().ok()?),
        stored_len: u32_at(40)?,
        frame_len: u32_at(44)?,
        skip: u32_at(48)?,
        len: u32_at(52)?,
        codec: Codec::from_u8(bytes[56])?,
    };
    location.check().ok()?;
    Some(location)
}
