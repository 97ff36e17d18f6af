//! `StoreLayout`: the one owner of a store directory's paths, its locks, the writers' own
//! directories under `tmp/` and the swap of a rebuilt index.
//!
//! ```text
//! STORE/store.json      format version, chunker and compression (fixed at init)
//! STORE/index/          RocksDB (`index`): chunks, blobs, images, refs, layers
//! STORE/index.new/, index.old/  only while `verify --repair-index` swaps in a rebuilt index
//! STORE/blobs/<hex>     sealed data blobs
//! STORE/layers/<hex>    layer metadata objects, one per distinct layer content and placement
//! STORE/bootstraps/<hex> one per image, naming its layer objects
//! STORE/tmp/<pid>-<nanos>/       one per running writer: its files in progress
//! STORE/tmp/<pid>-<nanos>/LIVE   held (flock) by that writer while it runs; names it
//! STORE/WRITERS         flock held by every writer for its whole run: shared by converts,
//!                       exclusive by gc, rm and the index repair (their text names them)
//! STORE/LOCK            the commit lock (flock): a convert holds it while it starts (below)
//!                       and while it commits; gc, rm and the index repair for their whole run
//! STORE/leases/<pid>-<n>.lease  one per running mount, held (flock) while it runs: gc keeps
//!                       the images it names (`lease`)
//! STORE/leases/GUARD    gc holds it (flock) exclusively while it runs; a mount shares it
//!                       while it takes its lease
//! ```
//!
//! A writer starting takes `WRITERS`, then `LOCK`, and under `LOCK` finishes an interrupted
//! index swap, removes the directories of dead writers (whose `LIVE` nobody holds) and creates
//! its own. Since directories are created and removed only under `LOCK`, a reclaim never sees a
//! writer's directory before its `LIVE` is held.

use crate::error::{Error, IoContext, Result};
use crate::index::Index;
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
const WRITERS: &str = "WRITERS";
const LIVE: &str = "LIVE";
const LEASES: &str = "leases";
const LOGS: &str = "logs";
const LEASE_GUARD: &str = "GUARD";

/// The paths of one store directory.
#[derive(Clone, Debug)]
pub(crate) struct StoreLayout {
    root: PathBuf,
}

/// The commit lock of a store (`LOCK`): held (flock) until dropped.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

/// A writer's hold on `WRITERS` (shared or exclusive), until dropped.
#[derive(Debug)]
pub(crate) struct WritersGuard {
    _file: File,
}

/// A running writer's own directory under `tmp/`, with its `LIVE` file locked; removed (with
/// whatever is left in it) when dropped.
#[derive(Debug)]
pub(crate) struct WriterDir {
    path: PathBuf,
    _live: File,
}

/// What dead writers left under `tmp/` and a starting writer removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TmpReclaimed {
    /// Directories of writers that had died (a crash, a kill), removed.
    pub writers: u64,
    /// Loose files directly under `tmp/`, removed.
    pub files: u64,
    /// Bytes of everything removed (writers' directories and loose files).
    pub bytes: u64,
}

/// Who this process is, for the lock files: `pid N (command line)`.
fn identity() -> String {
    format!(
        "pid {} ({})",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    )
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_path("open", path)
}

/// Takes `file`'s flock, shared or exclusive, without waiting for a real holder. A refusal is
/// retried for a moment (under 0.2 s): a child that another thread of this process is spawning
/// holds copies of this process's descriptors until its exec closes them, so a lock released
/// here just before can look held for that long.
fn try_flock(file: &File, shared: bool) -> std::result::Result<(), std::fs::TryLockError> {
    const ATTEMPTS: u32 = 10;
    let mut attempt = 1;
    loop {
        let outcome = match shared {
            true => file.try_lock_shared(),
            false => file.try_lock(),
        };
        match outcome {
            Err(std::fs::TryLockError::WouldBlock) if attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Replaces a held lock file's text by this process's identity.
fn write_identity(file: &mut File, path: &Path) -> Result<()> {
    file.set_len(0).with_path("write", path)?;
    file.write_all(identity().as_bytes())
        .with_path("write", path)
}

/// The text of a lock file, or "unknown process".
fn holder_in(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match text.trim() {
        "" => "unknown process".into(),
        text => text.to_string(),
    }
}

/// Bytes of the files under `path` (a file or a directory tree), as far as they can be listed.
fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_bytes(&e.path())).sum())
        .unwrap_or(0)
}

impl WriterDir {
    /// A fresh, unique path in this writer's directory.
    pub(crate) fn file(&self, suffix: &str) -> PathBuf {
        crate::fsutil::tmp_path(&self.path, suffix)
    }

    /// Removes this writer's files in progress (after an error), keeping `LIVE`.
    pub(crate) fn clear(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.path).with_path("read", &self.path)? {
            let path = entry.with_path("read", &self.path)?.path();
            if path.file_name() == Some(LIVE.as_ref()) {
                continue;
            }
            let removed = match path.is_dir() {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
            removed.with_path("remove", &path)?;
        }
        Ok(())
    }
}

impl Drop for WriterDir {
    fn drop(&mut self) {
        // Whatever is left (an error's files) goes now; what a crash leaves, the next writer
        // reclaims.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl StoreLayout {
    pub(crate) fn new(root: &Path) -> StoreLayout {
        StoreLayout {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn store_json(&self) -> PathBuf {
        self.root.join(STORE_JSON)
    }

    pub(crate) fn index_dir(&self) -> PathBuf {
        self.root.join(INDEX)
    }

    /// Where a rebuilt index is written before it is swapped in.
    pub(crate) fn index_new_dir(&self) -> PathBuf {
        self.root.join(INDEX_NEW)
    }

    /// Where the replaced index waits, during a swap, until the new one is in place.
    fn index_old_dir(&self) -> PathBuf {
        self.root.join(INDEX_OLD)
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS)
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join(LAYERS)
    }

    pub(crate) fn bootstraps_dir(&self) -> PathBuf {
        self.root.join(BOOTSTRAPS)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP)
    }

    pub(crate) fn leases_dir(&self) -> PathBuf {
        self.root.join(LEASES)
    }

    /// Logs of background mounts (`crate::mount::log_file`).
    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.root.join(LOGS)
    }

    pub(crate) fn lease_guard(&self) -> PathBuf {
        self.leases_dir().join(LEASE_GUARD)
    }

    pub(crate) fn blob(&self, id: &BlobId) -> PathBuf {
        self.blobs_dir().join(id.to_hex())
    }

    pub(crate) fn layer_meta(&self, id: &LayerMetaId) -> PathBuf {
        self.layers_dir().join(id.to_hex())
    }

    pub(crate) fn bootstrap(&self, id: &ImageId) -> PathBuf {
        self.bootstraps_dir().join(id.to_hex())
    }

    /// Creates the directories of a new store.
    pub(crate) fn create_dirs(&self) -> Result<()> {
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

    /// Creates this writer's directory under `tmp/` and takes its `LIVE` lock. Under `lock`,
    /// so that no reclaim runs in between.
    pub(crate) fn create_writer_dir(&self, _lock: &WriterLock) -> Result<WriterDir> {
        let tmp = self.tmp_dir();
        std::fs::create_dir_all(&tmp).with_path("create", &tmp)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = tmp.join(format!("{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_path("create", &path)?;
        let live = path.join(LIVE);
        let mut file = open_lock_file(&live)?;
        file.try_lock()
            .map_err(|e| Error::io("lock", &live, std::io::Error::other(e.to_string())))?;
        write_identity(&mut file, &live)?;
        Ok(WriterDir { path, _live: file })
    }

    /// Whether the writer directory `dir` belongs to a running writer: its `LIVE` is held.
    fn is_live_writer(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(LIVE)) else {
            return false;
        };
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }

    /// Removes what dead writers left under `tmp/`: the directories whose `LIVE` nobody holds,
    /// and loose files (from cairn releases before writer directories). Under `lock`.
    pub(crate) fn reclaim_dead_writers(&self, _lock: &WriterLock) -> Result<TmpReclaimed> {
        let tmp = self.tmp_dir();
        let mut reclaimed = TmpReclaimed::default();
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return Ok(reclaimed);
        };
        for entry in entries {
            let path = entry.with_path("read", &tmp)?.path();
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir && Self::is_live_writer(&path) {
                continue;
            }
            reclaimed.bytes += tree_bytes(&path);
            let removed = match is_dir {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
            match is_dir {
                true => reclaimed.writers += 1,
                false => reclaimed.files += 1,
            }
        }
        Ok(reclaimed)
    }

    /// The running writers, as their `LIVE` files name them.
    fn live_writers(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.tmp_dir()) else {
            return Vec::new();
        };
        let mut holders: Vec<String> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|dir| dir.is_dir() && Self::is_live_writer(dir))
            .map(|dir| holder_in(&dir.join(LIVE)))
            .collect();
        holders.sort();
        holders
    }

    /// The index a reader opens: `index`, or between the two renames of an index swap (or
    /// after a crash there, until the next writer opens the store) the complete old one. A
    /// directory without a database (its files deleted) counts as none: only `init` creates an
    /// index, so a missing one is an error naming `verify --repair-index`.
    pub(crate) fn readable_index_dir(&self) -> Result<PathBuf> {
        let index = self.index_dir();
        if Index::exists(&index) {
            return Ok(index);
        }
        let old = self.index_old_dir();
        if Index::exists(&old) {
            return Ok(old);
        }
        Err(self.missing_index())
    }

    /// The error for a store whose index is gone (or whose index directory is empty).
    pub(crate) fn missing_index(&self) -> Error {
        match Index::require(&self.index_dir()) {
            Err(e) => e,
            Ok(()) => Error::corrupt(
                self.index_dir().display().to_string(),
                "the index is missing; `cairn verify --repair-index` rebuilds it from the \
                 blobs and bootstraps",
            ),
        }
    }

    /// Refuses an index that holds nothing (no name, no image record, no chunk) in a store
    /// whose `bootstraps/` is not empty: an index created afresh over a store that had one
    /// (every committed image has a record from before its bootstrap is in place, and `rm`
    /// keeps it until gc has deleted the bootstrap), which would make every image look unused.
    pub(crate) fn require_not_blank(&self, index: &Index) -> Result<()> {
        if !index.is_blank()? {
            return Ok(());
        }
        let dir = self.bootstraps_dir();
        let Ok(mut entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        if entries.next().is_none() {
            return Ok(());
        }
        Err(Error::corrupt(
            self.index_dir().display().to_string(),
            format!(
                "the index is empty but {} holds bootstraps: the index was lost or created \
                 afresh; `cairn verify --repair-index` rebuilds it from the blobs and bootstraps",
                dir.display()
            ),
        ))
    }

    fn locked(&self, holder: String) -> Error {
        Error::Conflict(crate::Conflict::Locked {
            store: self.root.clone(),
            holder,
        })
    }

    /// Takes `WRITERS` shared, for a convert's whole run; fails at once, naming the holder,
    /// while gc, rm or the index repair holds it.
    pub(crate) fn writers_shared(&self) -> Result<WritersGuard> {
        let path = self.root.join(WRITERS);
        let file = open_lock_file(&path)?;
        match try_flock(&file, true) {
            Ok(()) => Ok(WritersGuard { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(self.locked(holder_in(&path))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }

    /// Takes `WRITERS` exclusively (gc, rm, the index repair) and writes who holds it; fails at
    /// once, naming the running writers, while any other writer runs.
    pub(crate) fn writers_exclusive(&self) -> Result<WritersGuard> {
        let path = self.root.join(WRITERS);
        let mut file = open_lock_file(&path)?;
        match try_flock(&file, false) {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let running = self.live_writers();
                let holder = match running.is_empty() {
                    true => holder_in(&path),
                    false => running.join(", "),
                };
                return Err(self.locked(holder));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        write_identity(&mut file, &path)?;
        Ok(WritersGuard { _file: file })
    }

    /// Takes the commit lock and writes who holds it into `LOCK`; fails at once, naming the
    /// holder, when another process has it (for the exclusive writers, which hold `WRITERS`
    /// exclusively already).
    pub(crate) fn lock(&self) -> Result<WriterLock> {
        let path = self.root.join(LOCK);
        let mut file = open_lock_file(&path)?;
        match try_flock(&file, false) {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(self.locked(holder_in(&path))),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        write_identity(&mut file, &path)?;
        Ok(WriterLock { _file: file })
    }

    /// Takes the commit lock, waiting while another convert starts or commits.
    pub(crate) fn lock_wait(&self) -> Result<WriterLock> {
        let path = self.root.join(LOCK);
        let mut file = open_lock_file(&path)?;
        file.lock().with_path("lock", &path)?;
        write_identity(&mut file, &path)?;
        Ok(WriterLock { _file: file })
    }

    /// Replaces `index` by the complete, synced `index.new`: rename `index` -> `index.old`,
    /// rename `index.new` -> `index`, fsync the store, remove `index.old`. A crash at any point
    /// leaves a state that `recover_interrupted_swap` turns back into one whole index.
    pub(crate) fn swap_in_new_index(&self, _lock: &WriterLock) -> Result<()> {
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

    /// Run under the commit lock before the index is opened. If a crash stopped an index swap
    /// between its two renames (`index` missing, `index.old` present), the old index is renamed
    /// back; then a leftover `index.old` (the swap had finished) and `index.new` (it had not
    /// started) are removed.
    pub(crate) fn recover_interrupted_swap(&self, _lock: &WriterLock) -> Result<()> {
        let index = self.index_dir();
        let old = self.index_old_dir();
        let new = self.index_new_dir();
        let mut changed = false;
        if !Index::exists(&index) && Index::exists(&old) {
            // `index` may be an empty directory (its files lost): the old index is whole.
            if index.exists() {
                std::fs::remove_dir_all(&index).with_path("remove", &index)?;
            }
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

/// The files of a store directory (`blobs/`, `bootstraps/`, ...), by name, sorted.
pub(crate) fn hex_files(dir: &std::path::Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| crate::Error::io("read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| crate::Error::io("read", dir, e))?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_released_within_the_grace_is_taken_and_a_held_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("LOCK");
        let holder = open_lock_file(&path).unwrap();
        holder.try_lock().unwrap();
        let contender = open_lock_file(&path).unwrap();
        assert!(matches!(
            try_flock(&contender, true),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(holder);
        });
        try_flock(&contender, false).unwrap();
        release.join().unwrap();
    }
}
