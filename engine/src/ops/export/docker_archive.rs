//! Writing an image as a `docker save`-style archive for `docker load`: per layer a
//! `<diff_id hex>/` directory holding `layer.tar`, then `<config hex>.json`, `manifest.json`
//! and, for a reference that is a valid `repo:tag`, the older `repositories` file.
//!
//! The archive is written to `FILE.cairn-partial`, fsynced and renamed to FILE. Its layers are
//! plain tars (their digest is their diff_id), written one after the other: a tar member's size
//! goes in its header, before its content, so each layer's size is checked first.

use super::{ExportedLayer, Job, Written, WRITE_BUFFER};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, PartialFile};
use crate::oci::{self, media_type, ArchiveManifest};
use crate::view::{write_layer_tar, ChunkReader, LayerTar};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

const TAR_BLOCK: u64 = 512;

/// Writes the image as a docker archive at `file`, tagged `reference` if it is a `repo:tag`.
pub(super) fn write(job: &Job, file: &Path, reference: &str) -> Result<Written> {
    let mut partial_name = file.as_os_str().to_owned();
    partial_name.push(".cairn-partial");
    let partial = PartialFile::new(PathBuf::from(partial_name));
    let path = partial.path();
    let write_err = |e: io::Error| Error::io("write", path, e);
    let handle = File::create(path).with_path("create", path)?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, handle);
    let mut reader = ChunkReader::new(job.store);
    let mut layers = Vec::new();
    let mut layer_names = Vec::new();
    let mut seen = HashSet::new();
    for (i, layer) in job.bootstrap.layers.iter().enumerate() {
        let label = job.layer_label(i, layer);
        let hex = layer.diff_id.to_hex();
        let name = format!("{hex}/layer.tar");
        // A layer that repeats an earlier one is stored once and named twice.
        if seen.insert(layer.diff_id) {
            // The member's size goes in its header, before the content: it must be right.
            let meta = &job.layers[i];
            let len = meta.info().source.size;
            if len != layer.size {
                return Err(Error::corrupt(
                    label,
                    format!(
                        "its layer object holds {len} tar bytes, its size is {}",
                        layer.size
                    ),
                ));
            }
            append_header(&mut out, &format!("{hex}/"), 0, tar::EntryType::Directory)
                .map_err(write_err)?;
            append_header(&mut out, &name, layer.size, tar::EntryType::Regular)
                .map_err(write_err)?;
            let tar = LayerTar {
                meta,
                diff_id: layer.diff_id,
                label: &label,
            };
            // Checks that the tar comes to `len` bytes and to its diff_id.
            write_layer_tar(&mut reader, &tar, &mut out, path, job.progress)?;
            pad(&mut out, layer.size).map_err(write_err)?;
        } else {
            job.progress.inc(layer.size);
        }
        layers.push(ExportedLayer {
            digest: layer.diff_id.to_string(),
            diff_id: layer.diff_id.to_string(),
            media_type: media_type::DOCKER_LAYER.into(),
            size: layer.size,
            compressed_size: layer.size,
            already_present: false,
        });
        layer_names.push(name);
    }
    let config_name = format!("{}.json", job.config.digest.to_hex());
    append_file(&mut out, &config_name, &job.config.bytes).map_err(write_err)?;
    let repo_tag = docker_repo_tag(reference);
    let manifest = [ArchiveManifest {
        config: config_name,
        repo_tags: Some(repo_tag.into_iter().map(str::to_string).collect()),
        layers: layer_names,
    }];
    let manifest_bytes = oci::encode(&manifest, "manifest.json")?;
    append_file(&mut out, "manifest.json", &manifest_bytes).map_err(write_err)?;
    if let (Some(repo_tag), Some(top)) = (repo_tag, job.bootstrap.layers.last()) {
        // The pre-manifest.json way of naming the image; `docker load` still reads it.
        let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or((repo_tag, "latest"));
        let repositories = BTreeMap::from([(repo, BTreeMap::from([(tag, top.diff_id.to_hex())]))]);
        let bytes = oci::encode(&repositories, "repositories")?;
        append_file(&mut out, "repositories", &bytes).map_err(write_err)?;
    }
    // End of archive: two zero blocks.
    out.write_all(&[0; 2 * TAR_BLOCK as usize])
        .map_err(write_err)?;
    let handle = out
        .into_inner()
        .map_err(|e| Error::io("write", path, e.into_error()))?;
    handle.sync_all().with_path("fsync", path)?;
    let bytes = handle.metadata().with_path("read", path)?.len();
    drop(handle);
    fsutil::rename_durably(path, file, "export.archive.rename")?;
    partial.keep();
    Ok(Written {
        reference: repo_tag.map(str::to_string),
        manifest_digest: None,
        layers,
        bytes,
    })
}

/// `reference` as a docker `[host[:port]/]repo/path:tag`, if it is one.
fn docker_repo_tag(reference: &str) -> Option<&str> {
    let (repo, tag) = reference.rsplit_once(':')?;
    let tag_ok = tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let components: Vec<&str> = repo.split('/').collect();
    let path_ok = |component: &str| {
        !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    };
    // A first component with a `.` or a `:port`, or `localhost`, is a registry host.
    let host_ok = |component: &str| {
        let (host, port) = component.split_once(':').unwrap_or((component, "0"));
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            && !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
    };
    let repo_ok = match components.as_slice() {
        [first, rest @ ..]
            if !rest.is_empty() && (first.contains(['.', ':']) || *first == "localhost") =>
        {
            host_ok(first) && rest.iter().all(|c| path_ok(c))
        }
        all => all.iter().all(|c| path_ok(c)),
    };
    (tag_ok && repo_ok).then_some(reference)
}

/// A ustar header block for a member of the docker archive (names are under 100 bytes).
fn append_header(
    out: &mut dyn Write,
    name: &str,
    size: u64,
    kind: tar::EntryType,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    out.write_all(header.as_bytes())
}

/// Zeros up to the next 512-byte block after `len` bytes of content.
fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let rest = (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
    out.write_all(&[0; TAR_BLOCK as usize][..rest as usize])
}

fn append_file(out: &mut dyn Write, name: &str, data: &[u8]) -> io::Result<()> {
    append_header(out, name, data.len() as u64, tar::EntryType::Regular)?;
    out.write_all(data)?;
    pad(out, data.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags() {
        assert_eq!(docker_repo_tag("app:v1"), Some("app:v1"));
        assert_eq!(
            docker_repo_tag("localhost:5000/team/app:1.0"),
            Some("localhost:5000/team/app:1.0")
        );
        assert_eq!(docker_repo_tag("app"), None);
        assert_eq!(docker_repo_tag("App:v1"), None);
        assert_eq!(docker_repo_tag("app@linux/amd64"), None);
    }
}
