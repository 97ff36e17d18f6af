//! Snapshot records: what containerd asked for, kept durably in the store
//! (`STORE/snapshotter/records/<id>.json`), one file per snapshot. A file is written to a
//! temporary name, fsynced and renamed over the old one, so a crash leaves either the old
//! record or the new one. A commit keeps the snapshot's id and replaces its record (active
//! -> committed) in one rename.

use crate::error::{SnapError, SnapResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// containerd's three kinds of snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Read-only, not committable.
    View,
    /// Writable (a container's layer, or a layer being applied).
    Active,
    /// Read-only, can be a parent; held in the store.
    Committed,
}

impl Kind {
    /// The word containerd's tools print.
    pub fn name(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

/// The store image a committed snapshot is: image `name` up to layer `top` (from 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainImage {
    /// The image's name in the store.
    pub name: String,
    /// The top layer of the chain (0 is the bottom layer).
    pub top: usize,
    /// The image the name pointed at when the snapshot was made (hex id).
    pub image_id: String,
    /// Bytes of the top layer's uncompressed tar.
    pub layer_bytes: u64,
    /// Entries of the top layer.
    pub layer_entries: u64,
}

/// One snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Its number: names its record file and its directories.
    pub id: u64,
    /// containerd's key (or, once committed, the name it was committed as).
    pub key: String,
    /// The parent's key; empty for none.
    pub parent: String,
    /// View, active or committed.
    pub kind: Kind,
    /// containerd's labels.
    pub labels: BTreeMap<String, String>,
    /// When it was made.
    pub created: SystemTime,
    /// When it last changed.
    pub updated: SystemTime,
    /// For a committed snapshot: the store image it is.
    pub image: Option<ChainImage>,
    /// Set when cairn itself made the store image (a commit), so removing the snapshot
    /// removes the image; unset for an image imported under its own name.
    #[serde(default)]
    pub owns_image: bool,
}

/// The record files in a directory.
pub struct RecordFiles {
    dir: PathBuf,
}

impl RecordFiles {
    /// The records under `dir` (created if missing).
    pub fn open(dir: &Path) -> SnapResult<RecordFiles> {
        fs::create_dir_all(dir).map_err(|e| SnapError::io("create", dir, e))?;
        Ok(RecordFiles {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every record; a file that cannot be read is an error naming it (never skipped: a
    /// record lost silently would let a parent be removed under its children).
    pub fn load(&self) -> SnapResult<Vec<Record>> {
        let mut records = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| SnapError::io("list", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SnapError::io("list", &self.dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") {
                // A write a crash interrupted: the record it was to replace is still there.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = fs::read(&path).map_err(|e| SnapError::io("read", &path, e))?;
            let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
                SnapError::Internal(format!("snapshot record {}: {e}", path.display()))
            })?;
            if record.id != id {
                return Err(SnapError::Internal(format!(
                    "snapshot record {} holds id {}",
                    path.display(),
                    record.id
                )));
            }
            records.push(record);
        }
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    /// Writes `record` durably, replacing the record of the same id.
    pub fn save(&self, record: &Record) -> SnapResult<()> {
        let path = self.path(record.id);
        let tmp = self.dir.join(format!(".tmp-{}.json", record.id));
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| SnapError::Internal(format!("encode snapshot record: {e}")))?;
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| SnapError::io("write", &path, e))
    }

    /// Removes the record of `id` durably.
    pub fn remove(&self, id: u64) -> SnapResult<()> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SnapError::io("remove", &path, e)),
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SnapError::io("sync", &self.dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, key: &str) -> Record {
        Record {
            id,
            key: key.into(),
            parent: String::new(),
            kind: Kind::Active,
            labels: BTreeMap::from([("a".to_string(), "b".to_string())]),
            created: SystemTime::UNIX_EPOCH,
            updated: SystemTime::now(),
            image: None,
            owns_image: false,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_a_replacement_keeps_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = RecordFiles::open(dir.path()).unwrap();
        files.save(&record(1, "k1")).unwrap();
        files.save(&record(2, "k2")).unwrap();
        let mut committed = record(1, "c1");
        committed.kind = Kind::Committed;
        files.save(&committed).unwrap();
        // A crashed write's leftover is ignored and removed.
        fs::write(dir.path().join(".tmp-3.json"), b"{").unwrap();
        let loaded = RecordFiles::open(dir.path()).unwrap().load().unwrap();
        let keys: Vec<_> = loaded
            .iter()
            .map(|r| (r.id, r.key.as_str(), r.kind))
            .collect();
        assert_eq!(keys, [(1, "c1", Kind::Committed), (2, "k2", Kind::Active)]);
        assert!(!dir.path().join(".tmp-3.json").exists());
        files.remove(2).unwrap();
        assert_eq!(files.load().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = RecordFiles::open(dir.path()).unwrap();
        fs::write(dir.path().join("7.json"), b"{\"id\": 7").unwrap();
        let err = files.load().unwrap_err().to_string();
        assert!(err.contains("7.json"), "{err}");
    }
}
