//! gc's sweep: the files of `blobs/`, `layers/` and `bootstraps/` nothing live uses, and the
//! refusal to delete orphan bootstraps (no name and no image record: see the module doc of
//! `rewrite`).

use super::compact::Rewrites;
use super::live::LiveSet;
use super::GcReport;
use crate::error::{Error, Result};
use crate::format::blob::TocEntry;
use crate::store::Store;
use crate::{BlobId, ImageId, LayerMetaId};
use std::collections::HashSet;
use std::path::PathBuf;

/// A file in `blobs/` or `bootstraps/`: (name, path, size).
pub(super) type StoreFile = (String, PathBuf, u64);

fn files(dir: &std::path::Path) -> Result<Vec<StoreFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        let size = entry
            .metadata()
            .map_err(|e| Error::io("stat", &entry.path(), e))?
            .len();
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
            size,
        ));
    }
    Ok(out)
}

/// The files nothing live uses.
pub(super) struct Sweep {
    pub dead_blobs: Vec<StoreFile>,
    pub dead_bootstraps: Vec<StoreFile>,
    pub dead_layer_objects: Vec<StoreFile>,
    pub live_blobs: HashSet<BlobId>,
    /// Bytes of the compacted blobs (dead once compaction ran).
    pub compacted_bytes: u64,
}

impl Sweep {
    /// Lists `blobs/`, `layers/` and `bootstraps/` against `live`; counts into `report` the
    /// dead files other than compacted blobs and the objects and bootstraps compaction replaced.
    pub(super) fn find(
        store: &Store,
        live: &LiveSet,
        compact: &[(BlobId, Vec<TocEntry>)],
        rewritten: &Rewrites,
        report: &mut GcReport,
    ) -> Result<Sweep> {
        let live_blobs = live.blobs();
        let layout = store.layout();
        let dead = |dir: &std::path::Path, is_live: &dyn Fn(&str) -> bool| -> Result<_> {
            Ok(files(dir)?
                .into_iter()
                .filter(|(name, _, _)| !is_live(name))
                .collect::<Vec<StoreFile>>())
        };
        let dead_blobs = dead(&layout.blobs_dir(), &|name| {
            BlobId::from_hex(name).is_some_and(|id| live_blobs.contains(&id))
        })?;
        let dead_bootstraps = dead(&layout.bootstraps_dir(), &|name| {
            ImageId::from_hex(name).is_some_and(|id| live.bootstraps.contains_key(&id))
        })?;
        let dead_layer_objects = dead(&layout.layers_dir(), &|name| {
            LayerMetaId::from_hex(name).is_some_and(|id| live.objects.contains_key(&id))
        })?;
        let replaced: HashSet<String> = compact
            .iter()
            .map(|(id, _)| id.to_hex())
            .chain(rewritten.images.keys().map(|id| id.to_hex()))
            .chain(rewritten.objects.keys().map(|id| id.to_hex()))
            .collect();
        let garbage = |files: &[StoreFile]| -> (u64, u64) {
            let kept = files.iter().filter(|(name, _, _)| !replaced.contains(name));
            (
                kept.clone().count() as u64,
                kept.map(|(_, _, size)| size).sum(),
            )
        };
        let (blobs, blob_bytes) = garbage(&dead_blobs);
        let (bootstraps, bootstrap_bytes) = garbage(&dead_bootstraps);
        let (objects, object_bytes) = garbage(&dead_layer_objects);
        report.dead_blobs = blobs;
        report.dead_bootstraps = bootstraps;
        report.dead_layer_objects = objects;
        report.dead_bytes = blob_bytes + bootstrap_bytes + object_bytes;
        Ok(Sweep {
            dead_blobs,
            dead_bootstraps,
            dead_layer_objects,
            live_blobs,
            compacted_bytes: report.compacted_bytes,
        })
    }
}

/// Counts the dead bootstraps the index has no image record for (orphans, see the module doc)
/// and refuses to go on while there are any, unless `force`.
pub(super) fn refuse_orphans(
    store: &Store,
    sweep: &Sweep,
    force: bool,
    report: &mut GcReport,
) -> Result<()> {
    let records: HashSet<ImageId> = store
        .index()
        .image_records()?
        .into_iter()
        .map(|r| r.image_id)
        .collect();
    let orphans: Vec<&str> = sweep
        .dead_bootstraps
        .iter()
        .map(|(name, _, _)| name.as_str())
        .filter(|name| !ImageId::from_hex(name).is_some_and(|id| records.contains(&id)))
        .collect();
    report.orphan_bootstraps = orphans.len() as u64;
    if orphans.is_empty() || force {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "stopped, nothing was deleted: {} bootstrap(s) in {} (first: {}) have neither a name \
         nor an image record in the index, so nothing proves them unused: the index may have \
         lost them. `cairn verify --repair-index` rebuilds the index and names each such image \
         `{}<id>` (then `cairn rm` those you do not want); `--force-orphans` deletes them",
        orphans.len(),
        store.layout().bootstraps_dir().display(),
        orphans[0],
        crate::index::RECOVERED_PREFIX,
    )))
}
