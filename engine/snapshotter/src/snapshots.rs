//! The snapshots containerd asked for, and what each operation does to them. The records are
//! kept in memory under one lock and written through to `records` before an operation
//! answers; the slow parts (a commit's convert, mounting a view, removing a tree) run with
//! the lock released, the snapshot marked busy meanwhile.
//!
//! On disk: `ROOT/snapshots/<id>/fs` and `work` are an active snapshot's upper and work
//! directories (a container's writes land there, never in the store); `ROOT/views/` holds
//! the chains' merged views (`views.rs`). A committed snapshot is an image in the store
//! (`snapshot/<id>`, all the chain's layers), so nothing of it stays unpacked.

use crate::chains::{find_chain, SNAPSHOT_REF};
use crate::commit::commit_tree;
use crate::error::{SnapError, SnapResult};
use crate::records::{ChainImage, Kind, Record, RecordFiles};
use crate::views::Views;
use containerd_snapshots::api::types::Mount;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// Prefix of the store images the snapshotter makes (one per committed snapshot).
pub const IMAGE_PREFIX: &str = "snapshot/";

/// Where the snapshotter keeps what.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The cairn store: committed snapshots and their records.
    pub store: PathBuf,
    /// Upper and work directories of active snapshots, and the views' mount points.
    pub root: PathBuf,
    /// The `cairn` program and its store arguments, to mount views with.
    pub mount_command: Vec<OsString>,
}

/// Every snapshot, and the operations on them.
pub struct Snapshots {
    layout: Layout,
    files: RecordFiles,
    views: Views,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: BTreeMap<String, Record>,
    next_id: u64,
    /// Keys an operation is working on with the lock released.
    busy: HashSet<String>,
}

impl Snapshots {
    /// Opens (or starts) the records of the store at `layout.store`.
    pub fn open(layout: Layout) -> SnapResult<Snapshots> {
        let files = RecordFiles::open(&layout.store.join("snapshotter").join("records"))?;
        let views = Views::new(&layout.root.join("views"), layout.mount_command.clone())?;
        let dir = layout.root.join("snapshots");
        std::fs::create_dir_all(&dir).map_err(|e| SnapError::io("create", &dir, e))?;
        let mut state = State::default();
        for record in files.load()? {
            state.next_id = state.next_id.max(record.id + 1);
            state.records.insert(record.key.clone(), record);
        }
        Ok(Snapshots {
            layout,
            files,
            views,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The store directory.
    pub fn store(&self) -> &Path {
        &self.layout.store
    }

    fn tree(&self, id: u64) -> PathBuf {
        self.layout.root.join("snapshots").join(id.to_string())
    }

    /// The record of `key`.
    pub fn stat(&self, key: &str) -> SnapResult<Record> {
        record_of(&self.lock(), key)
    }

    /// Every record, in key order.
    pub fn list(&self) -> Vec<Record> {
        self.lock().records.values().cloned().collect()
    }

    /// Changes labels: `fields` empty replaces them all; `labels` or `labels.KEY` name what
    /// changes. Nothing else of a snapshot can change.
    pub fn update(
        &self,
        key: &str,
        labels: BTreeMap<String, String>,
        fields: &[String],
    ) -> SnapResult<Record> {
        let mut state = self.lock();
        let record = state.records.get_mut(key).ok_or_else(|| not_found(key))?;
        let mut updated = record.clone();
        if fields.is_empty() {
            updated.labels = labels.clone();
        }
        for field in fields {
            if field == "labels" {
                updated.labels = labels.clone();
            } else if let Some(label) = field.strip_prefix("labels.") {
                match labels.get(label) {
                    Some(value) => updated.labels.insert(label.to_string(), value.clone()),
                    None => updated.labels.remove(label),
                };
            } else {
                return Err(SnapError::InvalidArgument(format!(
                    "cannot update field {field:?} of snapshot {key:?}: only labels change"
                )));
            }
        }
        updated.updated = SystemTime::now();
        self.files.save(&updated)?;
        *record = updated.clone();
        Ok(updated)
    }

    /// Bytes and inodes a snapshot takes: an active one's upper directory, a committed one's
    /// layer (as an uncompressed tar; its stored bytes are shared with every image).
    pub fn usage(&self, key: &str) -> SnapResult<(u64, u64)> {
        let record = self.stat(key)?;
        match (&record.kind, &record.image) {
            (Kind::Committed, Some(chain)) => Ok((chain.layer_bytes, chain.layer_entries)),
            _ => disk_usage(&self.tree(record.id).join("fs")),
        }
    }

    /// A new active or view snapshot on `parent` (empty: none), and its mounts.
    pub fn prepare(
        &self,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
        kind: Kind,
    ) -> SnapResult<Vec<Mount>> {
        if key.is_empty() {
            return Err(SnapError::InvalidArgument("a snapshot needs a key".into()));
        }
        if kind == Kind::Active {
            if let Some(target) = labels.get(SNAPSHOT_REF) {
                self.stored_chain(target, parent, &labels)?;
            }
        }
        let record = {
            let mut state = self.lock();
            if state.records.contains_key(key) || state.busy.contains(key) {
                return Err(SnapError::AlreadyExists(format!("snapshot {key:?} exists")));
            }
            if !parent.is_empty() {
                let p = state.records.get(parent).ok_or_else(|| not_found(parent))?;
                if p.kind != Kind::Committed {
                    return Err(SnapError::InvalidArgument(format!(
                        "parent {parent:?} of {key:?} is not a committed snapshot"
                    )));
                }
            }
            let now = SystemTime::now();
            let record = Record {
                id: state.next_id,
                key: key.to_string(),
                parent: parent.to_string(),
                kind,
                labels,
                created: now,
                updated: now,
                image: None,
                owns_image: false,
            };
            state.next_id += 1;
            let tree = self.tree(record.id);
            for dir in [tree.join("fs"), tree.join("work")] {
                std::fs::create_dir_all(&dir).map_err(|e| SnapError::io("create", &dir, e))?;
            }
            self.files.save(&record)?;
            state.records.insert(key.to_string(), record.clone());
            record
        };
        match self.mounts_of(&record) {
            Ok(mounts) => Ok(mounts),
            Err(e) => {
                // A view that cannot be mounted: the snapshot is not made.
                let _ = self.remove(key);
                Err(e)
            }
        }
    }

    /// When the store holds chain `target` (an image's layers), records it as a committed
    /// snapshot on `parent` and answers AlreadyExists, so that containerd applies nothing;
    /// otherwise returns and the layer is prepared for applying as usual.
    fn stored_chain(
        &self,
        target: &str,
        parent: &str,
        labels: &BTreeMap<String, String>,
    ) -> SnapResult<()> {
        let Some(chain) = find_chain(&self.layout.store, target)? else {
            return Ok(());
        };
        let mut state = self.lock();
        if !parent.is_empty() && !state.records.contains_key(parent) {
            return Err(not_found(parent));
        }
        let now = SystemTime::now();
        let id = state.next_id;
        let record = Record {
            id,
            key: format!("cairn/{id}/{target}"),
            parent: parent.to_string(),
            kind: Kind::Committed,
            labels: labels.clone(),
            created: now,
            updated: now,
            image: Some(chain.clone()),
            owns_image: false,
        };
        state.next_id += 1;
        self.files.save(&record)?;
        state.records.insert(record.key.clone(), record);
        crate::log::line(&format!(
            "chain {target}: in the store as image {:?} up to layer {}, nothing to apply",
            chain.name, chain.top
        ));
        Err(SnapError::AlreadyExists(format!(
            "target snapshot {target:?} exists: image {:?} layer {} in the store",
            chain.name, chain.top
        )))
    }

    /// The mounts of an active or view snapshot.
    pub fn mounts(&self, key: &str) -> SnapResult<Vec<Mount>> {
        let record = self.stat(key)?;
        if record.kind == Kind::Committed {
            return Err(SnapError::FailedPrecondition(format!(
                "snapshot {key:?} is committed: mount a view or an active snapshot on it"
            )));
        }
        self.mounts_of(&record)
    }

    fn mounts_of(&self, record: &Record) -> SnapResult<Vec<Mount>> {
        let tree = self.tree(record.id);
        let fs = tree.join("fs").to_string_lossy().into_owned();
        let lower = match self.parent_chain(record)? {
            Some(chain) => Some(self.views.ensure(&chain)?.to_string_lossy().into_owned()),
            None => None,
        };
        let mount = match (record.kind, lower) {
            (Kind::Active, None) => bind(fs, "rw"),
            (Kind::View, None) => bind(fs, "ro"),
            (Kind::View, Some(lower)) => bind(lower, "ro"),
            (Kind::Active, Some(lower)) => Mount {
                r#type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec![
                    "index=off".into(),
                    format!("workdir={}", tree.join("work").display()),
                    format!("upperdir={fs}"),
                    format!("lowerdir={lower}"),
                ],
            },
            (Kind::Committed, _) => {
                return Err(SnapError::FailedPrecondition(format!(
                    "snapshot {:?} is committed",
                    record.key
                )))
            }
        };
        Ok(vec![mount])
    }

    /// The chain (store image) of a snapshot's parent.
    fn parent_chain(&self, record: &Record) -> SnapResult<Option<ChainImage>> {
        if record.parent.is_empty() {
            return Ok(None);
        }
        let parent = self.stat(&record.parent)?;
        match parent.image {
            Some(chain) => Ok(Some(chain)),
            None => Err(SnapError::Internal(format!(
                "committed snapshot {:?} names no store image",
                parent.key
            ))),
        }
    }

    /// Takes the active snapshot `key`'s tree into the store as committed snapshot `name`.
    pub fn commit(
        &self,
        name: &str,
        key: &str,
        labels: BTreeMap<String, String>,
    ) -> SnapResult<()> {
        let active = {
            let mut state = self.lock();
            let record = record_of(&state, key)?;
            if record.kind != Kind::Active {
                return Err(SnapError::FailedPrecondition(format!(
                    "snapshot {key:?} is {}, only an active snapshot can be committed",
                    record.kind.name()
                )));
            }
            if state.records.contains_key(name) || state.busy.contains(name) {
                return Err(SnapError::AlreadyExists(format!(
                    "snapshot {name:?} exists"
                )));
            }
            if !state.busy.insert(key.to_string()) {
                return Err(SnapError::FailedPrecondition(format!(
                    "snapshot {key:?} is being committed or removed"
                )));
            }
            state.busy.insert(name.to_string());
            record
        };
        let result = self.commit_unlocked(name, &active, labels);
        let mut state = self.lock();
        state.busy.remove(key);
        state.busy.remove(name);
        let committed = result?;
        state.records.remove(key);
        state.records.insert(name.to_string(), committed);
        drop(state);
        let _ = std::fs::remove_dir_all(self.tree(active.id));
        self.release_unused_view(&active.parent)
    }

    /// Unmounts the view of committed snapshot `key` unless a view or active snapshot still
    /// stands on it (or on another snapshot of the same chain).
    fn release_unused_view(&self, key: &str) -> SnapResult<()> {
        let chain = self.lock().records.get(key).and_then(|r| r.image.clone());
        match chain {
            Some(chain) => self.release_unless_needed(&chain),
            None => Ok(()),
        }
    }

    /// Unmounts the view of `chain` unless a snapshot stands on it. Under the lock, so that a
    /// snapshot being made on it meanwhile keeps it.
    fn release_unless_needed(&self, chain: &ChainImage) -> SnapResult<()> {
        let state = self.lock();
        if self
            .needed_views(&state)
            .contains(&self.views.dir_of(chain))
        {
            return Ok(());
        }
        self.views.release(chain)
    }

    /// The views some view or active snapshot stands on.
    fn needed_views(&self, state: &State) -> HashSet<PathBuf> {
        state
            .records
            .values()
            .filter(|r| r.kind != Kind::Committed)
            .filter_map(|r| state.records.get(&r.parent)?.image.as_ref())
            .map(|chain| self.views.dir_of(chain))
            .collect()
    }

    fn commit_unlocked(
        &self,
        name: &str,
        active: &Record,
        labels: BTreeMap<String, String>,
    ) -> SnapResult<Record> {
        let parent = self.parent_chain(active)?;
        let image_name = format!("{IMAGE_PREFIX}{}", active.id);
        let fs = self.tree(active.id).join("fs");
        let chain = commit_tree(&self.layout.store, &image_name, parent.as_ref(), &fs, name)?;
        let now = SystemTime::now();
        let committed = Record {
            id: active.id,
            key: name.to_string(),
            parent: active.parent.clone(),
            kind: Kind::Committed,
            labels,
            created: now,
            updated: now,
            image: Some(chain),
            owns_image: true,
        };
        // One rename replaces the active record with the committed one.
        self.files.save(&committed)?;
        Ok(committed)
    }

    /// Removes a snapshot that no other stands on; a committed one's store image goes with
    /// it (its data is freed by the next `cairn gc`).
    pub fn remove(&self, key: &str) -> SnapResult<()> {
        let record = {
            let mut state = self.lock();
            let record = record_of(&state, key)?;
            if state.busy.contains(key) {
                return Err(SnapError::FailedPrecondition(format!(
                    "snapshot {key:?} is being committed"
                )));
            }
            if let Some(child) = state.records.values().find(|r| r.parent == key) {
                return Err(SnapError::FailedPrecondition(format!(
                    "snapshot {key:?} has a child, {:?}: remove that first",
                    child.key
                )));
            }
            self.files.remove(record.id)?;
            state.records.remove(key);
            record
        };
        let tree = self.tree(record.id);
        if tree.exists() {
            std::fs::remove_dir_all(&tree).map_err(|e| SnapError::io("remove", &tree, e))?;
        }
        self.release_unused_view(&record.parent)?;
        if let Some(chain) = &record.image {
            // Nothing stands on it (no child), but another snapshot of its chain may.
            self.release_unless_needed(chain)?;
            if record.owns_image {
                crate::store_images::remove_image(&self.layout.store, &chain.name);
            }
        }
        Ok(())
    }

    /// Removes what no record names: trees of snapshots that are gone, views no snapshot
    /// stands on, store images of commits that never got their record. Ids only grow, so
    /// what has an id below the next one and no record is gone for good.
    pub fn cleanup(&self) -> SnapResult<()> {
        let (ids, next_id) = {
            let state = self.lock();
            let ids: HashSet<u64> = state.records.values().map(|r| r.id).collect();
            (ids, state.next_id)
        };
        let gone = |id: u64| id < next_id && !ids.contains(&id);
        let trees = self.layout.root.join("snapshots");
        for entry in std::fs::read_dir(&trees)
            .map_err(|e| SnapError::io("list", &trees, e))?
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().parse::<u64>().ok();
            if id.is_some_and(gone) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        {
            // Under the lock: a snapshot made meanwhile is seen before its view is released.
            let state = self.lock();
            let needed = self.needed_views(&state);
            for dir in self.views.mounted()? {
                if !needed.contains(&dir) {
                    self.views.release_dir(&dir)?;
                }
            }
        }
        crate::store_images::remove_gone(&self.layout.store, gone)
    }
}

/// The record of `key`, or NotFound.
fn record_of(state: &State, key: &str) -> SnapResult<Record> {
    state
        .records
        .get(key)
        .cloned()
        .ok_or_else(|| not_found(key))
}

fn not_found(key: &str) -> SnapError {
    SnapError::NotFound(format!("snapshot {key:?} does not exist"))
}

fn bind(source: String, mode: &str) -> Mount {
    Mount {
        r#type: "bind".into(),
        source,
        target: String::new(),
        options: vec![mode.into(), "rbind".into()],
    }
}

/// Bytes (allocated) and inodes under `dir`, without following symlinks.
fn disk_usage(dir: &Path) -> SnapResult<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let mut inodes = 0;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| SnapError::io("list", &dir, e))?;
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if seen.insert((meta.dev(), meta.ino())) {
                bytes += meta.blocks() * 512;
                inodes += 1;
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok((bytes, inodes))
}
