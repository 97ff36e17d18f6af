//! `verify`: checks the store against its own promises and reports each problem by object.
//!
//! Always: every blob's header, footer and ToC; every bootstrap's checksum, name and decoding;
//! every chunk a bootstrap names exists in the blob it names, at the offset and with the sizes
//! it names (a ToC entry says so); every index chunk location likewise; every name leads to an
//! image record and a bootstrap. With `full`, also every blob's BLAKE3 against its name and every
//! chunk decompressed and checked against its id.

use crate::error::Result;
use crate::format::blob::{decode_toc, BlobReader, TocEntry};
use crate::format::bootstrap::Bootstrap;
use crate::format::ChunkLocation;
use crate::progress::Unit;
use crate::store::Store;
use crate::{BlobId, ChunkId, ImageId};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub full: bool,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub chunks_decoded: u64,
    pub bootstraps: u64,
    pub images: u64,
    pub index_chunks: u64,
    pub problems: Vec<Problem>,
}

/// One thing found wrong: the object (blob and offset, image and path, index entry) and what.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub object: String,
    pub detail: String,
}

impl VerifyReport {
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

pub fn verify(store: &Store, full: bool, progress: &dyn crate::Progress) -> Result<VerifyReport> {
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
            check_frames(&reader, id, &toc, &mut report);
        }
        tocs.insert(id, toc.into_iter().map(|e| ((e.id, e.offset), e)).collect());
    }

    // Bootstraps, and every chunk they name.
    let mut bootstraps: HashMap<ImageId, Bootstrap> = HashMap::new();
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
                check_bootstrap_chunks(&bootstrap, &id.to_hex(), &tocs, &mut report);
                bootstraps.insert(id, bootstrap);
            }
            Err(e) => report.problem(format!("bootstrap {id}"), e.to_string()),
        }
    }

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
        if !bootstraps.contains_key(id) {
            report.problem(
                format!("image {name:?}"),
                format!("bootstrap {id} is missing or damaged"),
            );
        }
    }
    for entry in store.index().chunk_entries()? {
        report.index_chunks += 1;
        let (id, location) = match entry.resolved {
            Ok(found) => found,
            Err(e) => {
                report.problem(format!("index entry {}", entry.key), e);
                continue;
            }
        };
        if !toc_has(&tocs, &id, &location) {
            report.problem(
                format!("index entry for chunk {id}"),
                format!(
                    "blob {} has no such chunk at offset {}",
                    location.blob, location.offset
                ),
            );
        }
    }
    progress.finish();
    Ok(report)
}

/// Decodes every frame of a blob once and checks each chunk in it against its id.
fn check_frames(reader: &BlobReader, blob: BlobId, toc: &[TocEntry], report: &mut VerifyReport) {
    let mut start = 0;
    while start < toc.len() {
        let offset = toc[start].offset;
        let end = start
            + toc[start..]
                .iter()
                .take_while(|e| e.offset == offset)
                .count();
        let object = || format!("blob {blob} offset {offset}");
        match reader.read_frame(&toc[start].location(blob)) {
            Ok(frame) => {
                for entry in &toc[start..end] {
                    report.chunks_decoded += 1;
                    let checked = entry.location(blob).check().map_err(|e| {
                        crate::Error::corrupt(object(), format!("chunk {}: {e}", entry.id))
                    });
                    let checked = checked.and_then(|()| {
                        crate::format::chunk_from_frame(
                            &entry.id, &frame, entry.skip, entry.len, object,
                        )
                        .map(|_| ())
                    });
                    if let Err(e) = checked {
                        report.problem(object(), e.to_string());
                    }
                }
            }
            Err(e) => report.problem(object(), e.to_string()),
        }
        start = end;
    }
}

fn toc_has(tocs: &HashMap<BlobId, Toc>, id: &ChunkId, location: &ChunkLocation) -> bool {
    tocs.get(&location.blob)
        .and_then(|toc| toc.get(&(*id, location.offset)))
        .is_some_and(|e| e.location(location.blob) == *location)
}

/// Every chunk the bootstrap names is in its blob's ToC; problems name the image and a path.
fn check_bootstrap_chunks(
    bootstrap: &Bootstrap,
    image: &str,
    tocs: &HashMap<BlobId, Toc>,
    report: &mut VerifyReport,
) {
    let mut bad: HashSet<u32> = HashSet::new();
    for (i, chunk) in bootstrap.chunks.iter().enumerate() {
        if !toc_has(tocs, &chunk.id, &bootstrap.location(chunk)) {
            bad.insert(i as u32);
        }
    }
    if bad.is_empty() {
        return;
    }
    // Name each bad chunk by the first file that uses it.
    let mut named = HashSet::new();
    for (l, layer) in bootstrap.layers.iter().enumerate() {
        for entry in &layer.entries {
            for &c in &entry.chunks {
                if bad.contains(&c) && named.insert(c) {
                    let chunk = &bootstrap.chunks[c as usize];
                    report.problem(
                        format!("image {image} layer {l} path {:?}", entry.meta.path_lossy()),
                        format!(
                            "chunk {} is not in blob {} at offset {}",
                            chunk.id, bootstrap.blobs[chunk.blob as usize].id, chunk.offset
                        ),
                    );
                }
            }
        }
    }
}
