//! `StoreLayout`: the one owner of a store directory's paths, its writer lock and the swap of a
//! rebuilt index.
//!
//! ```text
//! STORE/store.json      format version, chunker and compression (fixed at init)
//! STORE/index/          RocksDB: chunks, images, refs
//! STORE/index.new/, index.old/  only while `verify --repair-index` swaps in a rebuilt index
//! STORE/blobs/<hex>     sealed data blobs
//! STORE/layers/<hex>    layer metadata objects, one per distinct layer content and placement
//! STORE/bootstraps/<hex> one per image, naming its layer objects
//! STORE/tmp/            files being written; emptied whenever a writer opens the store
//! STORE/LOCK            held (flock) by the one writer; names it for whoever waits
//! STORE/leases/<pid>-<n>.lease  one per running mount, held (flock) while it runs: gc keeps
//!                       the images it names (`mount::lease`)
//! STORE/leases/GUARD    gc holds it (flock) exclusively while it runs; a mount shares it
//!                       while it takes its lease
//! ```

use crate::error::{Error, IoContext, Result};
use crate::{BlobId, ImageId, LayerMetaId};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const STORE_JSON: &str = "store.json";
const INDEX: &str = "index";
const INDEX_NEW: &str = "index.new";
const INDEX_OLD: &str = "index.old";
const BLOBS: &str = "blobs";
const LAYERS: &str = "layers";
const BOOTSTRAPS: &str = "bootstraps";
const TMP: &str = "tmp";
const LOCK: &str = "LOCK";
const LEASES: &str = "leases";
const LEASE_GUARD: &str = "GUARD";

/// The paths of one store directory.
#[derive(Clone, Debug)]
pub(crate) struct StoreLayout {
    root: PathBuf,
}

/// The writer lock of a store: held (flock) until dropped.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

impl StoreLayout {
    pub fn new(root: &Path) -> StoreLayout {
        StoreLayout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store_json(&self) -> PathBuf {
        self.root.join(STORE_JSON)
    }

    pub fn index_dir(&self) -> PathBuf {
        self.root.join(INDEX)
    }

    /// Where a rebuilt index is written before it is swapped in.
    pub fn index_new_dir(&self) -> PathBuf {
        self.root.join(INDEX_NEW)
    }

    /// Where the replaced index waits, during a swap, until the new one is in place.
    fn index_old_dir(&self) -> PathBuf {
        self.root.join(INDEX_OLD)
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS)
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join(LAYERS)
    }

    pub fn bootstraps_dir(&self) -> PathBuf {
        self.root.join(BOOTSTRAPS)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP)
    }

    pub fn leases_dir(&self) -> PathBuf {
        self.root.join(LEASES)
    }

    pub fn lease_guard(&self) -> PathBuf {
        self.leases_dir().join(LEASE_GUARD)
    }

    pub fn blob(&self, id: &BlobId) -> PathBuf {
        self.blobs_dir().join(id.to_hex())
    }

    pub fn layer_meta(&self, id: &LayerMetaId) -> PathBuf {
        self.layers_dir().join(id.to_hex())
    }

    pub fn bootstrap(&self, id: &ImageId) -> PathBuf {
        self.bootstraps_dir().join(id.to_hex())
    }

    /// A fresh, unique path under `tmp/`.
    pub fn tmp_file(&self, suffix: &str) -> PathBuf {
        crate::fsutil::tmp_path(&self.tmp_dir(), suffix)
    }

    /// Creates the directories of a new store.
    pub fn create_dirs(&self) -> Result<()> {
        for dir in [
            self.blobs_dir(),
            self.layers_dir(),
            self.bootstraps_dir(),
            self.tmp_dir(),
        ] {
            std::fs::create_dir_all(&dir).with_path("create", &dir)?;
        }
        Ok(())
    }

    /// Empties `tmp/` of whatever interrupted work left there.
    pub fn clear_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_path("clear", &tmp)?;
        }
        std::fs::create_dir_all(&tmp).with_path("create", &tmp)
    }

    /// The index a reader opens: `index`, or between the two renames of an index swap (or
    /// after a crash there, until the next writer opens the store) the complete old one.
    pub fn readable_index_dir(&self) -> Result<PathBuf> {
        let index = self.index_dir();
        if index.exists() {
            return Ok(index);
        }
        let old = self.index_old_dir();
        if old.exists() {
            return Ok(old);
        }
        Err(self.missing_index())
    }

    /// The error for a store whose index is gone.
    pub fn missing_index(&self) -> Error {
        Error::corrupt(
            self.index_dir().display().to_string(),
            "the index is missing; `cairn verify --repair-index` rebuilds it from the blobs and \
             bootstraps",
        )
    }

    /// Takes the writer lock and writes who holds it into `LOCK`; fails at once, naming the
    /// holder, when another process has it.
    pub fn lock(&self) -> Result<WriterLock> {
        let path = self.root.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_path("open", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(Error::Locked {
                    store: self.root.clone(),
                    holder: if holder.trim().is_empty() {
                        "unknown process".into()
                    } else {
                        holder.trim().to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let who = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0).with_path("write", &path)?;
        file.write_all(who.as_bytes()).with_path("write", &path)?;
        Ok(WriterLock { _file: file })
    }

    /// Replaces `index` by the complete, synced `index.new`: rename `index` -> `index.old`,
    /// rename `index.new` -> `index`, fsync the store, remove `index.old`. A crash at any point
    /// leaves a state that `recover_interrupted_swap` turns back into one whole index.
    pub fn swap_in_new_index(&self, _lock: &WriterLock) -> Result<()> {
        let index = self.index_dir();
        let old = self.index_old_dir();
        let new = self.index_new_dir();
        if index.exists() {
            std::fs::rename(&index, &old).with_path("rename", &index)?;
        }
        std::fs::rename(&new, &index).with_path("rename", &new)?;
        crate::fsutil::fsync_dir(&self.root)?;
        if old.exists() {
            std::fs::remove_dir_all(&old).with_path("remove", &old)?;
            crate::fsutil::fsync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Run under the writer lock before the index is opened. If a crash stopped an index swap
    /// between its two renames (`index` missing, `index.old` present), the old index is renamed
    /// back; then a leftover `index.old` (the swap had finished) and `index.new` (it had not
    /// started) are removed.
    pub fn recover_interrupted_swap(&self, _lock: &WriterLock) -> Result<()> {
        let index = self.index_dir();
        let old = self.index_old_dir();
        let new = self.index_new_dir();
        let mut changed = false;
        if !index.exists() && old.exists() {
            std::fs::rename(&old, &index).with_path("rename", &old)?;
            changed = true;
        }
        for stale in [&old, &new] {
            if stale.exists() {
                std::fs::remove_dir_all(stale).with_path("remove", stale)?;
                changed = true;
            }
        }
        if changed {
            crate::fsutil::fsync_dir(&self.root)?;
        }
        Ok(())
    }
}
