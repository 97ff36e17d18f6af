//! `cairn push --store-format NAME REGISTRY/REPO:TAG`: the image's own files as a cairn
//! artifact (`artifact`): its bootstrap, its layer objects, the blobs they name and the blobs
//! holding the delta bases its frames need; only those the repository lacks are sent (a HEAD
//! each, as for a plain push), the config and then the manifest last.

use crate::error::{Error, IoContext, Result};
use crate::oci::{media_type, Descriptor};
use crate::progress::Progress;
use crate::registry::artifact::{self, ArtifactConfig, ArtifactFile, ArtifactManifest};
use crate::registry::upload::{put_manifest, upload_missing, LocalBlob, Transferred};
use crate::registry::Registry;
use crate::store::Store;
use crate::{BlobId, Sha256Digest};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Pushes the files; returns the manifest's digest and what was sent.
pub(super) fn push_store_format(
    store: &Store,
    name: &str,
    registry: &Registry,
    mount_from: &[String],
    progress: &dyn Progress,
) -> Result<(Sha256Digest, Transferred)> {
    progress.set_message("reading the image");
    let image = store.resolve(name)?;
    let bootstrap = store.bootstrap_by_id(&image)?;
    let mut files = vec![(ArtifactFile::Bootstrap(image), store.bootstrap_path(&image))];
    let mut objects = Vec::new();
    let mut data_blobs = BTreeSet::new();
    for layer in &bootstrap.layers {
        if objects.iter().any(|(id, _)| *id == layer.meta) {
            continue;
        }
        let meta = store.layer_meta(&layer.meta)?;
        data_blobs.extend(meta.blobs().iter().map(|b| b.id));
        files.push((
            ArtifactFile::LayerMeta(layer.meta),
            store.layer_meta_path(&layer.meta),
        ));
        objects.push((layer.meta, meta));
    }
    let mut bases: BTreeMap<BlobId, BTreeSet<String>> = BTreeMap::new();
    crate::view::bases::for_each_delta_frame(
        store,
        objects.iter().map(|(_, m)| m),
        |_, _, found| {
            for (base, location) in found {
                if !data_blobs.contains(&location.blob) {
                    bases
                        .entry(location.blob)
                        .or_default()
                        .insert(base.to_hex());
                }
            }
            Ok(())
        },
    )?;
    files.extend(
        data_blobs
            .iter()
            .map(|b| (ArtifactFile::Blob(*b), store.blob_path(b))),
    );
    files.extend(
        bases
            .keys()
            .map(|b| (ArtifactFile::BaseBlob(*b), store.blob_path(b))),
    );
    progress.set_message("hashing files");
    let hashed: Vec<(Sha256Digest, u64)> = files
        .par_iter()
        .map(|(_, path)| {
            let size = std::fs::metadata(path).with_path("stat", path)?.len();
            Ok((artifact::sha256_of_file(path)?, size))
        })
        .collect::<Result<_>>()?;
    let bases = bases
        .into_iter()
        .map(|(blob, chunks)| (blob.to_hex(), chunks.into_iter().collect()))
        .collect();
    let config = artifact::new_config(&store.config().chunker, &image, name, bases);
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| Error::corrupt("artifact config", e.to_string()))?;
    let config_file = TempFile::write(&config_bytes)?;
    let config_digest = Sha256Digest::of(&config_bytes);
    let layers: Vec<Descriptor> = files
        .iter()
        .zip(&hashed)
        .map(|((file, _), (digest, size))| file.descriptor(digest, *size))
        .collect();
    let mut blobs = vec![LocalBlob {
        path: config_file.0.clone(),
        digest: config_digest.to_string(),
        size: config_bytes.len() as u64,
    }];
    blobs.extend(
        files
            .iter()
            .zip(&hashed)
            .map(|((_, path), (digest, size))| LocalBlob {
                path: path.clone(),
                digest: digest.to_string(),
                size: *size,
            }),
    );
    let config_desc = Descriptor::new(
        artifact::CONFIG_TYPE,
        &config_digest,
        config_bytes.len() as u64,
    );
    let manifest = ArtifactManifest::new(config_desc, layers);
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::corrupt("artifact manifest", e.to_string()))?;
    let digest = Sha256Digest::of(&manifest_bytes);
    // Nothing is sent that a puller would refuse (an image past the artifact limits).
    let origin = format!("store-format artifact of {name}");
    ArtifactManifest::decode(&manifest_bytes, &origin)?;
    ArtifactConfig::decode(&config_bytes, &format!("{origin} config"))?;
    progress.set_message("sending");
    let transferred = upload_missing(registry, &blobs, mount_from, progress)?;
    put_manifest(registry, manifest_bytes, media_type::OCI_MANIFEST)?;
    Ok((digest, transferred))
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(bytes: &[u8]) -> Result<TempFile> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "cairn-artifact-config-{}-{nanos}.json",
            std::process::id()
        ));
        std::fs::write(&path, bytes).with_path("write", &path)?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
