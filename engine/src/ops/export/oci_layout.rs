//! Writing an image into an OCI image layout directory, created if missing and added to if it
//! is one: its layers compressed in parallel, its config and manifest, and its `index.json`
//! entry under the reference.
//!
//! Write order, so that an interrupted export never leaves `index.json` naming a blob that is
//! not durably there:
//!   1. `oci-layout`, if missing (so that a failed export leaves a layout a retry can add to);
//!   2. each layer (in parallel) is compressed into `DIR/<tmp>.cairn-partial` while hashed,
//!      fsynced and renamed to `blobs/sha256/<digest>`; then the config and the manifest; then
//!      `blobs/sha256/` is fsynced. A blob already present is kept: a blob's name is its digest,
//!      and compression here is deterministic, so images exported into one layout share blobs.
//!   3. `index.json` is read, its entry with the same ref name replaced (or one added), written
//!      to a temporary file, fsynced and renamed over the old one.
//!
//! Two exports into one layout at the same time may lose one's `index.json` entry (there is no
//! lock, as with other OCI tools); the blobs are safe either way.

use super::{ExportedLayer, Job, Written, WRITE_BUFFER};
use crate::error::{Error, IoContext, Result};
use crate::format::bootstrap::ImageLayer;
use crate::fsutil::{self, PartialFile};
use crate::layer::{DigestWriter, Encoder};
use crate::oci::{self, media_type, Descriptor, Index, Manifest, PlatformJson, REF_NAME};
use crate::source::MAX_JSON_LEN;
use crate::view::{write_layer_tar, ChunkReader, LayerTar};
use crate::Sha256Digest;
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const LAYOUT_VERSION: &str = "1.0.0";

/// Writes the image into the layout at `dir`, named `reference` in its `index.json`.
pub(super) fn write(job: &Job, dir: &Path, reference: &str) -> Result<Written> {
    // Step 1: the layout itself.
    let mut bytes = prepare_layout(dir)?;
    // Step 2: the blobs. Layers are independent: compressed side by side.
    let layers = job
        .bootstrap
        .layers
        .par_iter()
        .enumerate()
        .map(|(i, layer)| write_layer(job, dir, i, layer))
        .collect::<Result<Vec<_>>>()?;
    bytes += layers
        .iter()
        .filter(|(_, l)| !l.already_present)
        .map(|(_, l)| l.compressed_size)
        .sum::<u64>();
    bytes += write_json_blob(dir, &job.config.digest, &job.config.bytes)?;
    let layer_type = job.compression.oci_layer_media_type();
    let manifest = Manifest::new(
        Descriptor::new(
            media_type::OCI_CONFIG,
            &job.config.digest,
            job.config.bytes.len() as u64,
        ),
        layers
            .iter()
            .map(|(digest, l)| Descriptor::new(layer_type, digest, l.compressed_size))
            .collect(),
    );
    let manifest_bytes = oci::encode(&manifest, "image manifest")?;
    let manifest_digest = Sha256Digest::of(&manifest_bytes);
    bytes += write_json_blob(dir, &manifest_digest, &manifest_bytes)?;
    fsutil::fsync_dir(&dir.join("blobs/sha256"))?;
    // Step 3: the index entry.
    let mut entry = Descriptor::new(
        media_type::OCI_MANIFEST,
        &manifest_digest,
        manifest_bytes.len() as u64,
    );
    entry.platform = job.config.platform.as_ref().map(PlatformJson::from);
    entry
        .annotations
        .insert(REF_NAME.to_string(), reference.to_string());
    bytes += update_index(dir, &entry, reference)?;
    Ok(Written {
        reference: Some(reference.to_string()),
        manifest_digest: Some(manifest_digest),
        layers: layers.into_iter().map(|(_, l)| l).collect(),
        bytes,
    })
}

/// Compresses one layer into a temporary file in `dir` and renames it to its digest.
fn write_layer(
    job: &Job,
    dir: &Path,
    index: usize,
    layer: &ImageLayer,
) -> Result<(Sha256Digest, ExportedLayer)> {
    let label = job.layer_label(index, layer);
    let partial = PartialFile::new(fsutil::tmp_path(dir, "cairn-partial"));
    let path = partial.path();
    let file = File::create(path).with_path("create", path)?;
    let counted = DigestWriter::new(BufWriter::with_capacity(WRITE_BUFFER, file));
    let mut encoder =
        Encoder::new(job.compression, job.level, counted).with_path("compress into", path)?;
    let mut reader = ChunkReader::new(job.store);
    let tar = LayerTar {
        meta: &job.layers[index],
        diff_id: layer.diff_id,
        label: &label,
    };
    let diff_id = write_layer_tar(&mut reader, &tar, &mut encoder, path, job.progress)?;
    let counted = encoder.finish().with_path("compress into", path)?;
    let (digest, compressed_size, already_present) = place_blob(dir, partial, counted)?;
    let report = ExportedLayer {
        digest: digest.to_string(),
        diff_id: diff_id.to_string(),
        media_type: job.compression.oci_layer_media_type().to_string(),
        size: layer.size,
        compressed_size,
        already_present,
    };
    Ok((digest, report))
}

/// Finishes a blob written into `partial` through `counted`: flushed, and unless the layout
/// already has a blob of that digest and size, fsynced and renamed to its digest. Returns the
/// digest, the size, and whether the blob was already there.
pub(crate) fn place_blob(
    dir: &Path,
    partial: PartialFile,
    counted: DigestWriter<BufWriter<File>>,
) -> Result<(Sha256Digest, u64, bool)> {
    let path = partial.path().to_path_buf();
    let (digest, size, buffered) = counted.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| Error::io("write", &path, e.into_error()))?;
    let dest = blob_path(dir, &digest);
    let already_present = blob_present(&dest, size);
    if !already_present {
        file.sync_all().with_path("fsync", &path)?;
        drop(file);
        std::fs::rename(&path, &dest).with_path("rename into place", &dest)?;
        partial.keep();
    }
    Ok((digest, size, already_present))
}

pub(crate) fn blob_path(dir: &Path, digest: &Sha256Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.to_hex())
}

/// A blob of the right size is taken to be the one its name says (names are digests); one of
/// another size (a broken copy) is replaced.
pub(crate) fn blob_present(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// Step 1: checks that `dir` is an OCI layout cairn can add to, or a new or empty directory;
/// writes `oci-layout` if missing, then makes `blobs/sha256/`. Returns the bytes written.
pub(crate) fn prepare_layout(dir: &Path) -> Result<u64> {
    let layout_file = dir.join("oci-layout");
    let exists = layout_file.exists();
    if exists {
        let bytes = read_bounded(&layout_file)?;
        let version = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
        if version.as_deref() != Some(LAYOUT_VERSION) {
            return Err(Error::bad_input(
                layout_file.display().to_string(),
                format!(
                    "image layout version {version:?}; cairn adds to version {LAYOUT_VERSION} only"
                ),
            ));
        }
    } else if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_path("read", dir)?;
        if entries.next().is_some() {
            return Err(Error::Usage(format!(
                "{} is not empty and not an OCI image layout (it has no oci-layout file); \
                 export into a new directory or an existing layout",
                dir.display()
            )));
        }
    }
    // `oci-layout` before `blobs/`: an export stopped in between leaves an empty directory or a
    // layout, both of which a re-run accepts; `blobs/` without `oci-layout` would be refused.
    let mut written = 0;
    if !exists {
        std::fs::create_dir_all(dir).with_path("create", dir)?;
        let marker = format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#);
        fsutil::write_durably(
            &fsutil::tmp_path(dir, "cairn-partial"),
            &layout_file,
            marker.as_bytes(),
            "export.layout.rename",
        )?;
        written = marker.len() as u64;
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_path("create", &blobs)?;
    Ok(written)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_path("read", path)?.len();
    if len > MAX_JSON_LEN {
        return Err(Error::bad_input(
            path.display().to_string(),
            format!("{len} bytes is over the {MAX_JSON_LEN}-byte limit"),
        ));
    }
    std::fs::read(path).with_path("read", path)
}

/// Writes a small blob (fsynced, renamed; the caller fsyncs the directory) unless it is there.
/// Returns the bytes written.
pub(crate) fn write_json_blob(dir: &Path, digest: &Sha256Digest, bytes: &[u8]) -> Result<u64> {
    let dest = blob_path(dir, digest);
    if blob_present(&dest, bytes.len() as u64) {
        return Ok(0);
    }
    let partial = PartialFile::new(fsutil::tmp_path(dir, "cairn-partial"));
    let path = partial.path();
    let mut file = File::create(path).with_path("create", path)?;
    file.write_all(bytes).with_path("write", path)?;
    file.sync_all().with_path("fsync", path)?;
    drop(file);
    std::fs::rename(path, &dest).with_path("rename into place", &dest)?;
    partial.keep();
    Ok(bytes.len() as u64)
}

/// Adds `entry` to `DIR/index.json` (created if missing), replacing any entry with the same ref
/// name; other entries and fields are kept. Returns the bytes written.
pub(crate) fn update_index(dir: &Path, entry: &Descriptor, reference: &str) -> Result<u64> {
    let path = dir.join("index.json");
    let object = path.display().to_string();
    // Through `serde_json::Value`, not `Index`: the fields and entries cairn does not know
    // are kept as they are.
    let mut index = if path.exists() {
        oci::parse::<serde_json::Value>(&read_bounded(&path)?, &object)?
    } else {
        serde_json::to_value(Index::new(Vec::new()))
            .map_err(|e| Error::corrupt(&object, format!("encode: {e}")))?
    };
    let fields = index
        .as_object_mut()
        .ok_or_else(|| Error::bad_input(&object, "not a JSON object"))?;
    let manifests = fields
        .entry("manifests")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| Error::bad_input(&object, "\"manifests\" is not an array"))?;
    manifests.retain(|m| {
        m.get("annotations")
            .and_then(|a| a.get(REF_NAME))
            .and_then(|r| r.as_str())
            != Some(reference)
    });
    manifests.push(
        serde_json::to_value(entry)
            .map_err(|e| Error::corrupt("index entry", format!("encode: {e}")))?,
    );
    let bytes = oci::encode(&index, &object)?;
    fsutil::write_durably(
        &fsutil::tmp_path(dir, "cairn-partial"),
        &path,
        &bytes,
        "export.index.rename",
    )?;
    Ok(bytes.len() as u64)
}
