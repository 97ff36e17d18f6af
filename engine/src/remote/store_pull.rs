//! `cairn pull --store-format REGISTRY/REPO:TAG --name NAME`: a cairn artifact (`artifact`)
//! into this store. Only the files this store lacks are downloaded: a bootstrap, layer object or
//! data blob whose file is here already is not, and a blob of delta bases only when some base
//! it is listed for is missing from the index. The downloads run in parallel (bounded), each
//! checked against its sha256 as it arrives; then `write::import` checks everything whole (every
//! arriving layer re-created and hashed against its diff_id) and commits it.

use crate::error::{Error, Result};
use crate::oci::media_type;
use crate::progress::{Progress, Unit};
use crate::registry::artifact::{ArtifactConfig, ArtifactFile, ArtifactManifest};
use crate::registry::{manifest_at, Connection, Registry, RegistrySpec, PIECES_AHEAD};
use crate::source::parse_digest;
use crate::store::SharedWriter;
use crate::write::import::{Arriving, ImportReport, Incoming, IncomingImage};
use crate::Sha256Digest;
use futures_util::TryStreamExt;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// Downloads at the same time.
const DOWNLOADS_IN_FLIGHT: usize = 4;

/// What a store-format pull did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct StorePullReport {
    /// `REGISTRY/REPO[:TAG|@DIGEST]`.
    pub reference: String,
    /// The artifact's manifest digest.
    pub manifest_digest: String,
    /// Files of the artifact downloaded, and their bytes.
    pub files_downloaded: u64,
    /// Bytes of the files downloaded.
    pub bytes_downloaded: u64,
    /// Files of the artifact this store had (not downloaded).
    pub files_present: u64,
    /// Bytes of the files this store had.
    pub bytes_present: u64,
    /// What the commit of the downloaded objects added (as a bundle import reports it).
    #[serde(flatten)]
    pub import: ImportReport,
    /// Wall time of the pull, seconds.
    pub seconds: f64,
}

/// A file of the artifact to download.
struct Wanted {
    file: ArtifactFile,
    digest: Sha256Digest,
    size: u64,
    path: PathBuf,
}

/// See `SharedWriter::pull_store_format`.
fn pull_store_format(
    writer: &SharedWriter,
    spec: &RegistrySpec,
    name: &str,
    replace: bool,
    progress: &dyn Progress,
) -> Result<StorePullReport> {
    let started = std::time::Instant::now();
    crate::check_image_name(name)?;
    // As a convert: a taken name is refused before anything is downloaded (and again under
    // the commit lock, where one another writer took meanwhile for another image fails).
    crate::write::check_name(writer.store().index(), name, replace)?;
    let registry = Registry::connect(spec)?;
    let c = &registry.connection;
    let origin = format!("{} {}", c.url, c.reference);
    let limit = crate::oci::limits::len_limit(media_type::OCI_MANIFEST);
    let (manifest_digest, bytes) = registry.runtime.block_on(manifest_at(
        c,
        &c.reference,
        &[media_type::OCI_MANIFEST],
        limit,
    ))?;
    let manifest = ArtifactManifest::decode(&bytes, &origin)?;
    let config_digest = parse_digest(&manifest.config.digest, "artifact config")?;
    let config_bytes = registry.document(&manifest.config, &config_digest, "artifact config")?;
    let config = ArtifactConfig::decode(&config_bytes, &format!("{origin} config"))?;
    config.check(&origin, &writer.store().config().chunker)?;
    let mut report = StorePullReport {
        reference: spec.reference.clone(),
        manifest_digest: manifest_digest.to_string(),
        files_downloaded: 0,
        bytes_downloaded: 0,
        files_present: 0,
        bytes_present: 0,
        import: ImportReport::default(),
        seconds: 0.0,
    };
    let wanted = wanted_files(writer, &manifest, &config, &origin, &mut report)?;
    let result = download_all(&registry, &wanted, progress).and_then(|()| {
        let incoming = incoming(&origin, &config, &wanted, name)?;
        let image_id = incoming.images[0].image.to_string();
        let outcome = crate::write::import::import(writer.writer(), &incoming, replace, progress)?;
        // One image: committed, or its name named it already (nothing to do).
        Ok(outcome
            .images
            .into_iter()
            .next()
            .unwrap_or_else(|| ImportReport {
                name: name.to_string(),
                image_id,
                ..ImportReport::default()
            }))
    });
    let import = match result {
        Ok(import) => import,
        Err(e) => {
            let _ = writer.writer().clear_tmp();
            return Err(e);
        }
    };
    report.import = import;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The artifact's files this store lacks, each with its path under this writer's directory.
fn wanted_files(
    writer: &SharedWriter,
    manifest: &ArtifactManifest,
    config: &ArtifactConfig,
    origin: &str,
    report: &mut StorePullReport,
) -> Result<Vec<Wanted>> {
    let mut wanted = Vec::new();
    let mut bootstraps = 0;
    for desc in &manifest.layers {
        let file = ArtifactFile::from_descriptor(desc, origin)?;
        let digest = parse_digest(&desc.digest, &format!("{origin} layer"))?;
        let size = desc.size.unwrap_or(0);
        let (present, kind) = match &file {
            ArtifactFile::Bootstrap(id) => {
                bootstraps += 1;
                if id.to_hex() != config.image {
                    return Err(Error::corrupt(
                        origin.to_string(),
                        format!("its bootstrap is {id}, its config says {}", config.image),
                    ));
                }
                (writer.store().bootstrap_path(id).exists(), "bootstrap")
            }
            ArtifactFile::LayerMeta(id) => {
                (writer.store().layer_meta_path(id).exists(), "layer-meta")
            }
            ArtifactFile::Blob(id) => (writer.store().blob_path(id).exists(), "blob"),
            ArtifactFile::BaseBlob(id) => {
                let mut indexed = !config.bases_of(id)?.is_empty();
                for base in config.bases_of(id)? {
                    indexed &= writer.store().index().get_chunk(&base)?.is_some();
                }
                (writer.store().blob_path(id).exists() || indexed, "blob")
            }
        };
        if present {
            report.files_present += 1;
            report.bytes_present += size;
        } else {
            report.files_downloaded += 1;
            report.bytes_downloaded += size;
            let path = writer.writer().tmp_file(kind);
            wanted.push(Wanted {
                file,
                digest,
                size,
                path,
            });
        }
    }
    if bootstraps != 1 {
        return Err(Error::corrupt(
            origin.to_string(),
            format!("holds {bootstraps} bootstraps; a cairn artifact holds one"),
        ));
    }
    Ok(wanted)
}

/// The downloaded files, as an import.
fn incoming(
    origin: &str,
    config: &ArtifactConfig,
    wanted: &[Wanted],
    name: &str,
) -> Result<Incoming> {
    let image = crate::ImageId::from_hex(&config.image).ok_or_else(|| {
        Error::corrupt(
            format!("{origin} config"),
            "its image id is not 64 hex digits",
        )
    })?;
    let mut image = IncomingImage {
        name: name.to_string(),
        image,
        bootstrap: None,
        objects: Vec::new(),
    };
    let mut blobs = Vec::new();
    for w in wanted {
        match w.file {
            ArtifactFile::Bootstrap(_) => image.bootstrap = Some(w.path.clone()),
            ArtifactFile::LayerMeta(id) => image.objects.push(Arriving {
                id,
                path: w.path.clone(),
                size: w.size,
            }),
            ArtifactFile::Blob(id) | ArtifactFile::BaseBlob(id) => blobs.push(Arriving {
                id,
                path: w.path.clone(),
                size: w.size,
            }),
        }
    }
    Ok(Incoming {
        origin: origin.to_string(),
        blobs,
        images: vec![image],
    })
}

/// Downloads the files, `DOWNLOADS_IN_FLIGHT` at a time.
fn download_all(registry: &Registry, wanted: &[Wanted], progress: &dyn Progress) -> Result<()> {
    progress.set_length(wanted.iter().map(|w| w.size).sum(), Unit::Bytes);
    progress.set_message("downloading");
    let c = &registry.connection;
    registry.runtime.block_on(
        futures_util::stream::iter(wanted.iter().map(Ok))
            .map_ok(|w| download_to_file(c, w, progress))
            .try_buffer_unordered(DOWNLOADS_IN_FLIGHT)
            .try_collect::<Vec<()>>(),
    )?;
    Ok(())
}

/// One file, written to its path as it arrives, its size and sha256 checked.
async fn download_to_file(c: &Connection, w: &Wanted, progress: &dyn Progress) -> Result<()> {
    use sha2::Digest;
    let object = format!("{} blob {}", c.url, w.digest);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    let connection = c.clone();
    let digest = w.digest;
    let task = tokio::spawn(async move {
        if let Err(e) = crate::registry::download(&connection, &digest, &sender).await {
            let _ = sender.send(Err(std::io::Error::other(e))).await;
        }
    });
    let label = format!("{} {}", w.file.kind(), &w.digest.to_hex()[..12]);
    let item = progress.item(&label, w.size, Unit::Bytes);
    let mut file = std::fs::File::create(&w.path).map_err(|e| Error::io("create", &w.path, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut received = 0u64;
    while let Some(piece) = receiver.recv().await {
        let piece = piece.map_err(|e| Error::bad_input(object.clone(), e.to_string()))?;
        received += piece.len() as u64;
        if received > w.size {
            task.abort();
            return Err(Error::corrupt(
                object,
                format!("more than the {} bytes its descriptor says", w.size),
            ));
        }
        hasher.update(&piece);
        file.write_all(&piece)
            .map_err(|e| Error::io("write", &w.path, e))?;
        progress.inc(piece.len() as u64);
        item.inc(piece.len() as u64);
    }
    item.finish();
    let actual = Sha256Digest(hasher.finalize().into());
    if received != w.size || actual != w.digest {
        return Err(Error::DigestMismatch {
            object,
            expected: format!("{} ({} bytes)", w.digest, w.size),
            actual: format!("{actual} ({received} bytes)"),
        });
    }
    Ok(())
}

/// `cairn pull --store-format`.
impl SharedWriter {
    /// Downloads the store-format artifact `spec` names (only the files this store lacks,
    /// each checked against its digest) and commits its image as `name`; a taken name is
    /// refused unless `replace`.
    pub fn pull_store_format(
        &self,
        spec: &RegistrySpec,
        name: &str,
        replace: bool,
        progress: &dyn Progress,
    ) -> Result<StorePullReport> {
        pull_store_format(self, spec, name, replace, progress)
    }
}
