//! The steps of the tar and squashfs rows that this binary does itself, each run as a measured
//! child (`cairn-bench internal image-tar|tar-import|unpack-layers`):
//!
//! - `image_tar`: a `docker save`-style archive of one image, the layer blobs as the source
//!   stores them (gzip from a registry), with the config and the manifest, laid out as Docker 25+
//!   writes it (`oci-layout`, `index.json`, `manifest.json`, `blobs/sha256/<hex>`), so cairn
//!   reads it back as `docker-archive:FILE`. Given images the receiver holds, it leaves out the
//!   layers whose digest they have (image-transmit's tar mode); `manifest.json` still names
//!   every layer.
//! - `tar_import`: what `docker load` must at least do with such an archive: read it through and
//!   gunzip and untar each layer it carries that the receiver lacks into `DIR/layers/<hex>`.
//! - `unpack_layers`: each layer of an image unpacked into `DIR/layers/<hex>` (the squashfs
//!   row's tree; whiteouts stay files).

use crate::harness::image::{self, append};
use anyhow::{bail, Context, Result};
use cairn_engine::{LayerBytes, Sha256Digest};
use serde_json::json;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// One stored object of the image: its digest and where its bytes are.
struct Blob {
    digest: Sha256Digest,
    media_type: String,
    source: BlobBytes,
}

enum BlobBytes {
    Memory(Vec<u8>),
    File {
        path: std::path::PathBuf,
        offset: u64,
        len: u64,
    },
}

impl Blob {
    fn len(&self) -> u64 {
        match &self.source {
            BlobBytes::Memory(bytes) => bytes.len() as u64,
            BlobBytes::File { len, .. } => *len,
        }
    }

    fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match &self.source {
            BlobBytes::Memory(bytes) => Box::new(bytes.as_slice()),
            BlobBytes::File { path, offset, len } => {
                let mut file =
                    File::open(path).with_context(|| format!("open {}", path.display()))?;
                file.seek(SeekFrom::Start(*offset))
                    .with_context(|| format!("seek in {}", path.display()))?;
                Box::new(file.take(*len))
            }
        })
    }
}

/// An image's manifest, config and layers as stored objects.
struct ImageBlobs {
    manifest: Blob,
    config: Blob,
    layers: Vec<Blob>,
}

fn image_blobs(source: &str) -> Result<ImageBlobs> {
    let image = image::resolve_one(source)?;
    let (Some(manifest), Some(config)) = (image.manifest, image.config) else {
        bail!("{source}: an image with a manifest and a config is needed (not a bare layer)");
    };
    let layers = image
        .layers
        .into_iter()
        .map(|l| {
            let (LayerBytes::File(range), Some(digest)) = (l.bytes, l.digest) else {
                bail!("{source}: the bench reads local images with layer digests only");
            };
            Ok(Blob {
                digest,
                media_type: l.media_type,
                source: BlobBytes::File {
                    path: range.path,
                    offset: range.offset,
                    len: range.len,
                },
            })
        })
        .collect::<Result<_>>()?;
    Ok(ImageBlobs {
        manifest: Blob {
            digest: manifest.digest,
            media_type: manifest.media_type,
            source: BlobBytes::Memory(manifest.bytes),
        },
        config: Blob {
            digest: config.digest,
            media_type: config.media_type,
            source: BlobBytes::Memory(config.bytes),
        },
        layers,
    })
}

/// The layer digests of an image.
pub fn layer_digests(source: &str) -> Result<Vec<Sha256Digest>> {
    Ok(image_blobs(source)?
        .layers
        .iter()
        .map(|l| l.digest)
        .collect())
}

fn blob_path(digest: &Sha256Digest) -> String {
    format!("blobs/sha256/{}", digest.to_hex())
}

/// Writes the `docker save`-style archive of `source` to `out`, without the layers of the
/// images `receiver_has` (sources). Returns the number of layers written.
pub fn image_tar(source: &str, out: &Path, receiver_has: &[String]) -> Result<usize> {
    let image = image_blobs(source)?;
    let mut known = HashSet::new();
    for other in receiver_has {
        known.extend(layer_digests(other)?);
    }
    let file = File::create(out).with_context(|| format!("create {}", out.display()))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": image.manifest.media_type,
            "digest": image.manifest.digest.to_string(),
            "size": image.manifest.len(),
        }],
    });
    let docker_manifest = json!([{
        "Config": blob_path(&image.config.digest),
        "RepoTags": [],
        "Layers": image.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
    }]);
    let small = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", serde_json::to_vec(&index)?),
        ("manifest.json", serde_json::to_vec(&docker_manifest)?),
    ];
    for (name, bytes) in &small {
        append(&mut tar, name, bytes.len() as u64, &mut bytes.as_slice())?;
    }
    for blob in [&image.manifest, &image.config] {
        append_blob(&mut tar, blob)?;
    }
    let mut written = 0;
    let mut seen = HashSet::new();
    for layer in &image.layers {
        if !known.contains(&layer.digest) && seen.insert(layer.digest) {
            append_blob(&mut tar, layer)?;
            written += 1;
        }
    }
    let mut out_file = tar.into_inner().context("finish the archive")?;
    out_file.flush().context("write the archive")?;
    out_file
        .get_ref()
        .sync_all()
        .with_context(|| format!("sync {}", out.display()))?;
    Ok(written)
}

fn append_blob(tar: &mut tar::Builder<impl Write>, blob: &Blob) -> Result<()> {
    append(tar, &blob_path(&blob.digest), blob.len(), &mut blob.open()?)
}

/// Reads the archive `archive` through and unpacks each layer it carries that `dir` lacks into
/// `dir/layers/<hex>`. Returns the number of layers unpacked.
pub fn tar_import(archive: &Path, dir: &Path) -> Result<usize> {
    let file = File::open(archive).with_context(|| format!("open {}", archive.display()))?;
    let mut tar = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut layers: Option<HashSet<String>> = None;
    let mut unpacked = 0;
    for entry in tar.entries().context("read the archive")? {
        let mut entry = entry.with_context(|| format!("read {}", archive.display()))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if path == "manifest.json" {
            let mut text = Vec::new();
            entry.read_to_end(&mut text).context("read manifest.json")?;
            layers = Some(manifest_layers(&text)?);
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let Some(layers) = &layers else {
                bail!(
                    "{}: manifest.json is not before the blobs",
                    archive.display()
                );
            };
            if layers.contains(hex) {
                let dest = dir.join("layers").join(hex);
                let mut tar = image::decoded(&mut entry, None)?;
                unpacked += usize::from(unpack_once(&dest, |to| image::untar(&mut tar, to, hex))?);
            }
        }
    }
    Ok(unpacked)
}

/// The layers' hex digests that a `manifest.json` names.
fn manifest_layers(text: &[u8]) -> Result<HashSet<String>> {
    let manifest: serde_json::Value =
        serde_json::from_slice(text).context("parse manifest.json")?;
    let layers = manifest
        .get(0)
        .and_then(|m| m.get("Layers"))
        .and_then(|l| l.as_array())
        .context("manifest.json has no Layers")?;
    layers
        .iter()
        .map(|l| {
            l.as_str()
                .and_then(|p| p.strip_prefix("blobs/sha256/"))
                .map(str::to_string)
                .with_context(|| format!("manifest.json: layer {l} is not blobs/sha256/<hex>"))
        })
        .collect()
}

/// Unpacks every layer of `source` that `dir` lacks into `dir/layers/<hex>`. Returns the
/// number of layers unpacked.
pub fn unpack_layers(source: &str, dir: &Path) -> Result<usize> {
    let mut unpacked = 0;
    for layer in image::layers(source)? {
        let hex = layer
            .digest
            .with_context(|| format!("{source}: a layer has no digest"))?
            .to_hex();
        unpacked += usize::from(unpack_once(&dir.join("layers").join(&hex), |to| {
            layer.unpack(to)
        })?);
    }
    Ok(unpacked)
}

/// Runs `unpack` into a partial directory renamed to `dest`, unless `dest` exists. Returns
/// whether it ran.
fn unpack_once(dest: &Path, unpack: impl FnOnce(&Path) -> Result<()>) -> Result<bool> {
    if dest.exists() {
        return Ok(false);
    }
    let partial = dest.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("remove {}", partial.display()))?;
    }
    unpack(&partial)?;
    std::fs::rename(&partial, dest)
        .with_context(|| format!("rename {} to {}", partial.display(), dest.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_read_back_and_unpack() {
        let tmp = tempfile::tempdir().unwrap();
        let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
        let (old, new) = (
            format!("oci:{}:v1", v1.display()),
            format!("oci:{}:v2", v2.display()),
        );
        let whole = tmp.path().join("new.tar");
        let layers = layer_digests(&new).unwrap();
        assert_eq!(image_tar(&new, &whole, &[]).unwrap(), layers.len());
        // cairn reads the archive as `docker save` output, with the layers as stored.
        let archive = format!("docker-archive:{}", whole.display());
        assert_eq!(layer_digests(&archive).unwrap(), layers);
        // Nothing is left to ship to a receiver holding the image itself.
        let none = tmp.path().join("none.tar");
        assert_eq!(
            image_tar(&new, &none, std::slice::from_ref(&new)).unwrap(),
            0
        );

        let receiver = tmp.path().join("receiver");
        let old_tar = tmp.path().join("old.tar");
        image_tar(&old, &old_tar, &[]).unwrap();
        let old_layers = layer_digests(&old).unwrap().len();
        assert_eq!(tar_import(&old_tar, &receiver).unwrap(), old_layers);
        assert_eq!(tar_import(&old_tar, &receiver).unwrap(), 0, "already there");
        let unpacked = std::fs::read_dir(receiver.join("layers")).unwrap().count();
        assert_eq!(unpacked, old_layers);
        // unpack-layers makes the same tree from the source.
        let tree = tmp.path().join("tree");
        assert_eq!(unpack_layers(&old, &tree).unwrap(), old_layers);
        let du = |dir: &Path| crate::harness::sizes::files_bytes(dir);
        assert_eq!(du(&tree), du(&receiver));
        assert!(du(&tree) > 3 << 20, "the demo holds a 3 MiB binary");
    }
}
