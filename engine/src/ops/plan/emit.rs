//! Writing a planned base, or an image rebuilt on its bases, into an OCI image layout.
//!
//! Base N is an image of one layer per base of its chain (root first): a base's layer holds
//! the entries it holds (`Tree::holds`), written in the view's order from the first image it
//! serves, so every image that names the base gets the same layer bytes (the same diff_id).
//! An image rebuilt on its bases is its chain's layers plus one top layer: its entries no base
//! holds. Layers are gzip-compressed tars written afresh (`tar_entry`), their content read
//! from the store's blobs and checked chunk by chunk. The config keeps the source image's
//! platform and execution parameters (a base keeps only `Env`), with new `rootfs` and
//! `history`. The layout is written as `export` writes one: blobs first, `index.json` last.

use super::catalog::Catalog;
use super::choose::{Bits, Tree};
use super::tar_entry::{self, END_OF_ARCHIVE};
use super::visible::{for_each_visible, Visible};
use crate::error::{Error, IoContext, Result};
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::LayerMeta;
use crate::fsutil::{self, PartialFile};
use crate::layer::{Compression, DigestWriter, Encoder};
use crate::oci::{self, media_type, Descriptor, Manifest, PlatformJson, REF_NAME};
use crate::ops::export::oci_layout;
use crate::ops::export::ExportTarget;
use crate::progress::Progress;
use crate::source::Platform;
use crate::store::Store;
use crate::view::ChunkReader;
use crate::Sha256Digest;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What an emit request writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmitWhat {
    /// A base by its number in the plan.
    Base(usize),
    /// An image of the plan, rebuilt on its bases.
    Image(String),
}

/// A base or a rebuilt image to write into an OCI image layout.
#[derive(Clone, Debug)]
pub struct EmitRequest {
    /// The base or image to write.
    pub what: EmitWhat,
    /// `oci:DIR[:REF]`; without REF, the image is named `base-N` or `NAME-rebased`.
    pub target: String,
}

/// One image an emit request wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Emitted {
    /// `base 2` or `image NAME`.
    pub what: String,
    /// The OCI layout directory written to.
    pub layout: String,
    /// The ref name of the image in the layout's `index.json`.
    pub reference: String,
    /// The digest of the written manifest.
    pub manifest_digest: String,
    /// The written layers, bottom first.
    pub layers: Vec<EmittedLayer>,
}

/// One layer of an emitted image.
#[derive(Clone, Debug, Serialize)]
pub struct EmittedLayer {
    /// The digest of the gzip-compressed layer blob.
    pub digest: String,
    /// The digest of the uncompressed tar.
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// Bytes of the gzip-compressed blob.
    pub compressed_size: u64,
}

const GZIP_LEVEL: i32 = 6;

/// Checks a request without writing anything: its target, and the base or image it names.
pub(super) fn check(catalog: &Catalog, tree: &Tree, request: &EmitRequest) -> Result<()> {
    target(request)?;
    choose(catalog, tree, &request.what).map(|_| ())
}

fn target(request: &EmitRequest) -> Result<(std::path::PathBuf, Option<String>)> {
    match ExportTarget::parse(&request.target)? {
        ExportTarget::OciLayout { dir, reference } => {
            // The reference names the image written: the name rule of the store's images.
            if let Some(reference) = &reference {
                crate::check_image_name(reference)?;
            }
            Ok((dir, reference))
        }
        ExportTarget::DockerArchive { .. } => Err(Error::Usage(format!(
            "{}: plan writes OCI image layouts only (oci:DIR[:REF])",
            request.target
        ))),
    }
}

pub(super) fn emit(
    store: &Store,
    catalog: &Catalog,
    tree: &Tree,
    request: &EmitRequest,
    progress: &dyn Progress,
) -> Result<Emitted> {
    let (dir, reference) = target(request)?;
    let Chosen {
        what,
        chain,
        top,
        source,
    } = choose(catalog, tree, &request.what)?;
    let reference = reference.unwrap_or_else(|| match &request.what {
        EmitWhat::Base(n) => format!("base-{n}"),
        EmitWhat::Image(name) => format!("{name}-rebased"),
    });
    crate::check_image_name(&reference)?;
    oci_layout::prepare_layout(&dir)?;
    let mut layers = Vec::new();
    for &b in &chain {
        progress.set_message(&format!("writing {what}: base {}", b + 1));
        let first = tree.bases[b].members[0];
        let selected = Selector::new(catalog, |set| tree.holds(b, set));
        layers.push(write_layer(store, catalog, first, selected, &dir)?);
    }
    if let Some(image) = top {
        progress.set_message(&format!("writing {what}: top layer"));
        let selected = Selector::new(catalog, |set| tree.base_of(set, image).is_none());
        layers.push(write_layer(store, catalog, image, selected, &dir)?);
    }
    let bootstrap = &catalog.images[source as usize].bootstrap;
    let history: Vec<String> = chain
        .iter()
        .map(|b| format!("cairn plan: base {} of {}", b + 1, catalog.images.len()))
        .chain(top.map(|i| {
            format!(
                "cairn plan: {} on its bases",
                catalog.images[i as usize].name
            )
        }))
        .collect();
    let (config, platform) = config(bootstrap, &layers, &history, top.is_some())?;
    let config_digest = Sha256Digest::of(&config);
    oci_layout::write_json_blob(&dir, &config_digest, &config)?;
    let manifest = Manifest::new(
        Descriptor::new(media_type::OCI_CONFIG, &config_digest, config.len() as u64),
        layers
            .iter()
            .map(|l| {
                Descriptor::new(
                    Compression::Gzip.oci_layer_media_type(),
                    &l.digest,
                    l.compressed_size,
                )
            })
            .collect(),
    );
    let manifest_bytes = oci::encode(&manifest, "image manifest")?;
    let manifest_digest = Sha256Digest::of(&manifest_bytes);
    oci_layout::write_json_blob(&dir, &manifest_digest, &manifest_bytes)?;
    fsutil::fsync_dir(&dir.join("blobs/sha256"))?;
    let mut entry = Descriptor::new(
        media_type::OCI_MANIFEST,
        &manifest_digest,
        manifest_bytes.len() as u64,
    );
    entry.platform = Some(PlatformJson::from(&platform));
    entry
        .annotations
        .insert(REF_NAME.to_string(), reference.clone());
    oci_layout::update_index(&dir, &entry, &reference)?;
    Ok(Emitted {
        what,
        layout: dir.display().to_string(),
        reference,
        manifest_digest: manifest_digest.to_string(),
        layers: layers
            .iter()
            .map(|l| EmittedLayer {
                digest: l.digest.to_string(),
                diff_id: l.diff_id.to_string(),
                size: l.size,
                compressed_size: l.compressed_size,
            })
            .collect(),
    })
}

/// What one request writes.
struct Chosen {
    /// `base N` or `image NAME`.
    what: String,
    /// The bases whose layers come first, root first.
    chain: Vec<usize>,
    /// The image whose top layer comes last, if an image is written.
    top: Option<u16>,
    /// The image whose config the written one starts from.
    source: u16,
}

fn choose(catalog: &Catalog, tree: &Tree, what: &EmitWhat) -> Result<Chosen> {
    Ok(match what {
        EmitWhat::Base(n) => {
            let b = n
                .checked_sub(1)
                .filter(|&b| b < tree.bases.len())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--emit-base {n}: the plan has bases 1 to {}",
                        tree.bases.len()
                    ))
                })?;
            let mut chain = vec![b];
            while let Some(p) = tree.bases[*chain.last().expect("not empty")].parent {
                chain.push(p);
            }
            chain.reverse();
            let first = tree.bases[b].members[0];
            Chosen {
                what: format!("base {n}"),
                chain,
                top: None,
                source: first,
            }
        }
        EmitWhat::Image(name) => {
            let i = catalog
                .images
                .iter()
                .position(|image| &image.name == name)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--emit-image {name}: not one of the images planned"
                    ))
                })?;
            let i = i as u16;
            Chosen {
                what: format!("image {name}"),
                chain: tree.chain(i),
                top: Some(i),
                source: i,
            }
        }
    })
}

/// Which entries a layer takes, by the set of images sharing them (answers kept per set).
struct Selector<'c, F> {
    catalog: &'c Catalog,
    take: F,
    answers: HashMap<u32, bool>,
}

impl<'c, F: Fn(&Bits) -> bool> Selector<'c, F> {
    fn new(catalog: &'c Catalog, take: F) -> Self {
        Selector {
            catalog,
            take,
            answers: HashMap::new(),
        }
    }

    fn takes(&mut self, v: &Visible) -> Result<bool> {
        let info = self.catalog.keys.get(&v.key).ok_or_else(|| {
            Error::Retry(format!(
                "{}: the image changed since it was read for the plan",
                String::from_utf8_lossy(v.path)
            ))
        })?;
        let (catalog, take) = (self.catalog, &self.take);
        Ok(*self.answers.entry(info.set).or_insert_with(|| {
            take(&Bits::of(
                &catalog.sets[info.set as usize],
                catalog.images.len(),
            ))
        }))
    }
}

struct LayerOut {
    digest: Sha256Digest,
    diff_id: Sha256Digest,
    size: u64,
    compressed_size: u64,
}

type TarSink = DigestWriter<Encoder<DigestWriter<BufWriter<File>>>>;

/// Writes the entries of image `image` that `selected` takes as one gzip layer in `dir`.
fn write_layer<F: Fn(&Bits) -> bool>(
    store: &Store,
    catalog: &Catalog,
    image: u16,
    mut selected: Selector<F>,
    dir: &Path,
) -> Result<LayerOut> {
    let name = &catalog.images[image as usize].name;
    let (_, layers) = store.image_layers(name)?;
    let partial = PartialFile::new(fsutil::tmp_path(dir, "cairn-partial"));
    let path = partial.path().to_path_buf();
    let file = File::create(&path).with_path("create", &path)?;
    let compressed = DigestWriter::new(BufWriter::with_capacity(1 << 20, file));
    let encoder = Encoder::new(Compression::Gzip, GZIP_LEVEL, compressed)
        .with_path("compress into", &path)?;
    let mut tar: TarSink = DigestWriter::new(encoder);
    let mut reader = ChunkReader::new(store);
    for_each_visible(&layers, image, |v| {
        if selected.takes(v)? {
            write_entry(&mut tar, v, &layers, &mut reader, &path)?;
        }
        Ok(())
    })?;
    tar.write_all(&[0; END_OF_ARCHIVE as usize])
        .with_path("write", &path)?;
    let (diff_id, size, encoder) = tar.finish();
    let compressed = encoder.finish().with_path("compress into", &path)?;
    let (digest, compressed_size, _) = oci_layout::place_blob(dir, partial, compressed)?;
    Ok(LayerOut {
        digest,
        diff_id,
        size,
        compressed_size,
    })
}

fn write_entry(
    tar: &mut TarSink,
    v: &Visible,
    layers: &[LayerMeta],
    reader: &mut ChunkReader,
    path: &Path,
) -> Result<()> {
    let meta = &v.entry.meta;
    tar.write_all(&tar_entry::header(meta, v.path))
        .with_path("write", path)?;
    let size = tar_entry::content_size(meta);
    if size > 0 {
        let written = reader.write_entry(v.entry, layers[v.layer].blobs(), tar)?;
        if written != size {
            return Err(Error::corrupt(
                format!("{} in layer {}", meta.path_lossy(), v.layer),
                format!("its chunks hold {written} bytes, its header says {size}"),
            ));
        }
        let pad = (tar_entry::padded(size) - size) as usize;
        tar.write_all(&[0; tar_entry::BLOCK as usize][..pad])
            .with_path("write", path)?;
    }
    Ok(())
}

/// The config: the source's platform and (for an image) execution parameters, or (for a base)
/// its `Env` only; the new layers' diff_ids and history.
fn config(
    bootstrap: &Bootstrap,
    layers: &[LayerOut],
    history: &[String],
    whole_image: bool,
) -> Result<(Vec<u8>, Platform)> {
    let source: Option<serde_json::Value> = bootstrap
        .source
        .config
        .as_ref()
        .and_then(|c| serde_json::from_slice(&c.bytes).ok());
    let from_config = source
        .as_ref()
        .and_then(|s| serde_json::from_value::<oci::Config>(s.clone()).ok())
        .map(|c| c.platform())
        .filter(|p| !p.os.is_empty() && !p.architecture.is_empty());
    let platform = bootstrap
        .source
        .platform
        .clone()
        .or(from_config)
        .unwrap_or_else(Platform::host);
    let diff_ids: Vec<Sha256Digest> = layers.iter().map(|l| l.diff_id).collect();
    let mut config = serde_json::to_value(oci::Config::minimal(&platform, &diff_ids))
        .map_err(|e| Error::corrupt("image config", format!("encode: {e}")))?;
    let execution = source
        .as_ref()
        .and_then(|s| s.get("config"))
        .and_then(|c| c.as_object())
        .map(|c| {
            c.iter()
                .filter(|(k, _)| whole_image || k.as_str() == "Env")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<serde_json::Map<_, _>>()
        })
        .unwrap_or_default();
    let fields = config
        .as_object_mut()
        .ok_or_else(|| Error::corrupt("image config", "not an object"))?;
    fields.insert("config".into(), serde_json::Value::Object(execution));
    fields.insert(
        "history".into(),
        serde_json::Value::Array(
            history
                .iter()
                .map(|h| serde_json::json!({ "created_by": h }))
                .collect(),
        ),
    );
    Ok((oci::encode(&config, "image config")?, platform))
}
