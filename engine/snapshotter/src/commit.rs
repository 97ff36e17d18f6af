//! A commit: the active snapshot's applied tree, read as a layer tar (`dir_tar.rs`), converted
//! into the store on top of the parent chain's layers (reused as they are, nothing read), as a
//! new image that is the whole chain. The convert chunks and deduplicates against every
//! stored chunk and keeps the store's write order: the image is complete or absent.

use crate::dir_tar::DirTar;
use crate::error::{SnapError, SnapResult};
use crate::records::ChainImage;
use cairn_engine::source::{ImageSource, LayerSource};
use cairn_engine::{ConvertOptions, ImageId, NoProgress, SharedWriter, SourceSpec, Store};
use std::path::Path;
use std::sync::Arc;

/// Converts the tree under `fs` as the top layer of `parent`'s chain into image `image_name`
/// (replacing a name a crashed commit left); `snapshot` names the snapshot for messages.
pub fn commit_tree(
    store: &Path,
    image_name: &str,
    parent: Option<&ChainImage>,
    fs: &Path,
    snapshot: &str,
) -> SnapResult<ChainImage> {
    let mut layers = match parent {
        Some(chain) => parent_layers(store, chain)?,
        None => Vec::new(),
    };
    layers.push(LayerSource::stream(Arc::new(DirTar::new(fs))));
    let source = ImageSource {
        reference: format!("containerd snapshot {snapshot}"),
        platform: None,
        manifest: None,
        config: None,
        layers,
    };
    let mut options = ConvertOptions::new(SourceSpec::Resolved(Box::new(source)), image_name);
    options.replace = true;
    let writer = SharedWriter::open(store)?;
    let report = writer.convert(&options, &NoProgress).map_err(|e| {
        SnapError::Internal(format!(
            "commit of snapshot {snapshot:?} into the store: {e}"
        ))
    })?;
    let image = report
        .images
        .first()
        .ok_or_else(|| SnapError::Internal(format!("commit of {snapshot:?} recorded no image")))?;
    let top = image
        .layers
        .last()
        .ok_or_else(|| SnapError::Internal(format!("commit of {snapshot:?} has no layer")))?;
    Ok(ChainImage {
        name: image_name.to_string(),
        top: image.layers.len() - 1,
        image_id: image.image_id.clone(),
        layer_bytes: top.tar_bytes,
        layer_entries: top.entries,
    })
}

/// The layers of `chain` up to its top, as layers the convert reuses; the image must still be
/// the one the chain was made from.
fn parent_layers(store: &Path, chain: &ChainImage) -> SnapResult<Vec<LayerSource>> {
    let store = Store::open(store)?;
    let id = store.resolve(&chain.name)?;
    if ImageId::from_hex(&chain.image_id) != Some(id) {
        return Err(SnapError::Internal(format!(
            "image {:?} is no longer the one the parent snapshot was made from (it was {}, it is \
             {id}); was it replaced?",
            chain.name, chain.image_id
        )));
    }
    let bootstrap = store.bootstrap_by_id(&id)?;
    let layers = bootstrap.layers.get(..=chain.top).ok_or_else(|| {
        SnapError::Internal(format!(
            "image {:?} has {} layers, the parent snapshot is layer {}",
            chain.name,
            bootstrap.layers.len(),
            chain.top
        ))
    })?;
    Ok(layers.iter().map(LayerSource::stored).collect())
}
