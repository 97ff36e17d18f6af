//! `verify`: checks the store against its own promises and reports each problem by object.
//!
//! Always: every blob's header, footer and ToC; every layer object's id and every block of it
//! (hashes, decoding, records); every chunk a layer object names exists in the blob it names,
//! at the offset and with the sizes it names (a ToC entry says so); every bootstrap's checksum,
//! name and decoding, and the layer objects it names; every index chunk location likewise;
//! every name leads to an image record and a bootstrap; every layer key to a layer object,
//! and every diff_id key to one holding that diff_id. With `full`, also every blob's BLAKE3
//! against its name, every chunk decompressed and checked against its id, and every layer
//! object's tar re-created and its sha256 checked against the diff_id it holds (so a layer key
//! an older cairn indexed for an object relabelled with another layer's diff_id is found).

use crate::error::Result;
use crate::format::blob::{decode_toc, BlobReader, TocEntry};
use crate::format::layer_meta::LayerMeta;
use crate::format::ChunkLocation;
use crate::index::LayerKey;
use crate::layout::hex_files;
use crate::problem::Problem;
use crate::progress::NoProgress;
use crate::progress::Unit;
use crate::store::Store;
use crate::view::chunks::check_frames;
use crate::view::{write_layer_tar, ChunkReader, LayerTar};
use crate::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What `verify` checked and every problem it found.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Whether this was a full verify (blob hashes, every chunk decoded, every layer tar
    /// re-created).
    pub full: bool,
    /// Files under `blobs/` with a blob name (64 hex digits) that were checked.
    pub blobs: u64,
    /// Bytes of the blobs that opened (compressed, as stored).
    pub blob_bytes: u64,
    /// Chunks decompressed and checked against their ids (0 unless `full`).
    pub chunks_decoded: u64,
    /// Files under `layers/` with a layer object name that were checked.
    pub layer_objects: u64,
    /// Files under `bootstraps/` with a bootstrap name that were checked.
    pub bootstraps: u64,
    /// Names in the index that were checked (an image with two names counts twice).
    pub images: u64,
    /// Chunk location entries in the index that were checked.
    pub index_chunks: u64,
    /// Everything found wrong, each naming its object; empty for a clean store.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether verify found no problem.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, object: impl Into<String>, detail: impl Into<String>) {
        self.problems.push(Problem {
            object: object.into(),
            detail: detail.into(),
        });
    }
}

/// A blob's ToC by (chunk id, offset).
type Toc = HashMap<(ChunkId, u64), TocEntry>;

pub(crate) fn verify(
    store: &Store,
    full: bool,
    progress: &dyn crate::Progress,
) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        full,
        ..VerifyReport::default()
    };
    let blob_files = hex_files(&store.layout().blobs_dir())?;
    progress.set_length(blob_files.len() as u64, Unit::Items);
    let mut tocs: HashMap<BlobId, Toc> = HashMap::new();
    for (name, path) in &blob_files {
        progress.inc(1);
        let Some(id) = BlobId::from_hex(name) else {
            report.problem(format!("blobs/{name}"), "not a blob name (64 hex digits)");
            continue;
        };
        report.blobs += 1;
        let reader = match BlobReader::open(path, id) {
            Ok(r) => r,
            Err(e) => {
                report.problem(format!("blob {id}"), e.to_string());
                continue;
            }
        };
        let bytes = reader.bytes();
        report.blob_bytes += bytes.len() as u64;
        let toc = match decode_toc(bytes, &format!("blob {id}")) {
            Ok(toc) => toc,
            Err(e) => {
                report.problem(format!("blob {id}"), e.to_string());
                continue;
            }
        };
        if full {
            let actual = blake3::hash(bytes);
            if actual.as_bytes() != &id.0 {
                report.problem(
                    format!("blob {id}"),
                    format!("content hashes to {}", actual.to_hex()),
                );
            }
            let mut decoded = 0;
            let mut problems = Vec::new();
            check_frames(&reader, id, &toc, store, &mut decoded, &mut |o, d| {
                problems.push((o, d))
            });
            report.chunks_decoded += decoded;
            for (object, detail) in problems {
                report.problem(object, detail);
            }
        }
        tocs.insert(
            id,
            toc.into_iter()
                .map(|e| ((e.id, e.slice.offset), e))
                .collect(),
        );
    }

    // Layer objects, and every chunk they name; then the bootstraps naming them.
    let objects = check_layer_objects(store, &tocs, full, &mut report)?;
    let bootstraps = check_bootstraps(store, &objects, &mut report)?;
    check_layer_keys(store, &objects, &mut report)?;

    // The index: names -> records -> bootstraps; chunk locations -> blob ToCs.
    let refs = store.index().refs()?;
    for (name, id) in &refs {
        report.images += 1;
        if store.index().get_image(id)?.is_none() {
            report.problem(
                format!("image {name:?}"),
                format!("no index record for image {id}"),
            );
        }
        if !bootstraps.contains(id) {
            report.problem(
                format!("image {name:?}"),
                format!("bootstrap {id} is missing or damaged"),
            );
        }
    }
    store.index().for_each_chunk_entry(|entry| {
        report.index_chunks += 1;
        let (id, location) = match entry.resolved {
            Ok(found) => found,
            Err(e) => {
                report.problem(format!("index entry {}", entry.key), e);
                return Ok(());
            }
        };
        if !toc_has(&tocs, &id, &location) {
            report.problem(
                format!("index entry for chunk {id}"),
                format!(
                    "blob {} has no such chunk at offset {}",
                    location.blob, location.slice.offset
                ),
            );
        }
        Ok(())
    })?;
    progress.finish();
    Ok(report)
}

fn toc_has(tocs: &HashMap<BlobId, Toc>, id: &ChunkId, location: &ChunkLocation) -> bool {
    tocs.get(&location.blob)
        .and_then(|toc| toc.get(&(*id, location.slice.offset)))
        .is_some_and(|e| e.location(location.blob) == *location)
}

/// Every bootstrap decodes under its name and names whole layer objects holding the diff_ids it
/// says; returns the images whose bootstrap and layers are whole.
fn check_bootstraps(
    store: &Store,
    objects: &HashMap<LayerMetaId, Sha256Digest>,
    report: &mut VerifyReport,
) -> Result<HashSet<ImageId>> {
    let mut bootstraps: HashSet<ImageId> = HashSet::new();
    for (name, _) in hex_files(&store.layout().bootstraps_dir())? {
        let Some(id) = ImageId::from_hex(&name) else {
            report.problem(
                format!("bootstraps/{name}"),
                "not a bootstrap name (64 hex digits)",
            );
            continue;
        };
        report.bootstraps += 1;
        match store.bootstrap_by_id(&id) {
            Ok(bootstrap) => {
                let mut whole = true;
                for (l, layer) in bootstrap.layers.iter().enumerate() {
                    let problem = match objects.get(&layer.meta) {
                        None => Some(format!("layer object {} is missing or damaged", layer.meta)),
                        Some(diff_id) if *diff_id != layer.diff_id => Some(format!(
                            "layer object {} holds diff_id {diff_id}, the bootstrap says {}",
                            layer.meta, layer.diff_id
                        )),
                        Some(_) => None,
                    };
                    if let Some(problem) = problem {
                        report.problem(format!("image {id} layer {l}"), problem);
                        whole = false;
                    }
                }
                if whole {
                    bootstraps.insert(id);
                }
            }
            Err(e) => report.problem(format!("bootstrap {id}"), e.to_string()),
        }
    }
    Ok(bootstraps)
}

/// Every `layers` key of the index names a whole layer object; a diff_id key one holding that
/// diff_id.
fn check_layer_keys(
    store: &Store,
    objects: &HashMap<LayerMetaId, Sha256Digest>,
    report: &mut VerifyReport,
) -> Result<()> {
    for (key, parsed) in store.index().layer_entries()? {
        match parsed {
            Some((key, id)) if !objects.contains_key(&id) => report.problem(
                format!("index entry for {key}"),
                format!("layer object {id} is missing or damaged"),
            ),
            Some((LayerKey::DiffId(diff_id), id)) if objects[&id] != diff_id => report.problem(
                format!("index entry for layer diff_id {diff_id}"),
                format!(
                    "names layer object {id}, which holds diff_id {}",
                    objects[&id]
                ),
            ),
            Some(_) => {}
            None => report.problem(
                format!("index layer entry {}", hex::encode(&key)),
                "malformed key or value",
            ),
        }
    }
    Ok(())
}

/// Opens every object in `layers/` (its id checked), decodes every block (each checked against
/// its hash, every record checked) and checks every chunk reference against the blob ToCs.
/// Returns the objects found whole, with the diff_id each holds.
fn check_layer_objects(
    store: &Store,
    tocs: &HashMap<BlobId, Toc>,
    full: bool,
    report: &mut VerifyReport,
) -> Result<HashMap<LayerMetaId, Sha256Digest>> {
    let mut whole = HashMap::new();
    for (name, _) in hex_files(&store.layout().layers_dir())? {
        let Some(id) = LayerMetaId::from_hex(&name) else {
            report.problem(
                format!("layers/{name}"),
                "not a layer object name (64 hex digits)",
            );
            continue;
        };
        report.layer_objects += 1;
        let object = format!("layer object {id}");
        let checked = store.layer_meta(&id).and_then(|meta| {
            let problems = check_layer_chunks(&meta, &object, tocs)?;
            for record in meta.paths() {
                record?;
            }
            let diff_id = meta.info().source.diff_id;
            if full && problems.is_empty() {
                // The tar the object re-creates must hash to the diff_id it holds.
                let tar = LayerTar {
                    meta: &meta,
                    diff_id,
                    label: &object,
                };
                let dest = store.layer_meta_path(&id);
                // A reader per object: its blobs are unmapped once the object is checked.
                let mut reader = ChunkReader::unheld(store);
                write_layer_tar(&mut reader, &tar, &mut std::io::sink(), &dest, &NoProgress)?;
            }
            Ok((diff_id, problems))
        });
        match checked {
            Ok((diff_id, problems)) => {
                if problems.is_empty() {
                    whole.insert(id, diff_id);
                }
                for (where_, detail) in problems {
                    report.problem(where_, detail);
                }
            }
            Err(e) => report.problem(object, e.to_string()),
        }
    }
    Ok(whole)
}

/// Every chunk the object's entries name is in its blob's ToC: (object and path, problem) for
/// each chunk that is not, the first time it is met.
fn check_layer_chunks(
    meta: &LayerMeta,
    object: &str,
    tocs: &HashMap<BlobId, Toc>,
) -> Result<Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut named = HashSet::new();
    for entry in meta.entries() {
        let entry = entry?;
        for chunk in &entry.chunks {
            let location = chunk.location(meta.blobs());
            if !toc_has(tocs, &chunk.id, &location)
                && named.insert((chunk.id, location.slice.offset))
            {
                problems.push((
                    format!("{object} path {:?}", entry.meta.path_lossy()),
                    format!(
                        "chunk {} is not in blob {} at offset {}",
                        chunk.id, location.blob, location.slice.offset
                    ),
                ));
            }
        }
    }
    Ok(problems)
}

/// `cairn verify`.
impl Store {
    /// Checks blobs, bootstraps and the index; `full` also decodes every chunk.
    pub fn verify(&self, full: bool, progress: &dyn crate::Progress) -> Result<VerifyReport> {
        verify(self, full, progress)
    }
}
