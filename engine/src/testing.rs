//! Hostile store objects for tests (not a stable API): what a sender who controls a bundle or
//! a registry could send, or what an older cairn could have indexed, made with the engine's own
//! writers so that every id and checksum is right and only the claim is false.

use crate::error::Result;
use crate::format::layer_meta::{LayerMeta, LayerMetaWriter, LayerSource};
use crate::index::{IndexBatch, LayerKey};
use crate::store::StoreWriter;
use crate::{LayerMetaId, Sha256Digest};
use std::path::Path;

/// Writes to `dst` a copy of the layer object at `src` (id `id`) that claims `diff_id`: the
/// same entries, chunks and blob table, another diff_id. Returns the copy's id.
pub fn relabel_layer_object(
    src: &Path,
    id: LayerMetaId,
    dst: &Path,
    diff_id: Sha256Digest,
) -> Result<LayerMetaId> {
    let meta = LayerMeta::open(src, id, "layer object to relabel")?;
    let mut writer = LayerMetaWriter::create(dst.to_path_buf())?;
    for entry in meta.entries() {
        writer.push(entry?)?;
    }
    let source = LayerSource {
        diff_id,
        ..meta.info().source.clone()
    };
    let sealed = writer.finish(source, meta.blobs().to_vec(), "convert.layer_meta.fsync")?;
    if sealed.tmp_path != dst {
        std::fs::rename(&sealed.tmp_path, dst).map_err(|e| crate::Error::io("rename", dst, e))?;
    }
    Ok(sealed.id)
}

/// What an older cairn's import could have left: a copy of the store's layer object `object`
/// relabelled with `diff_id` in `layers/`, and the index key `diff_id` -> that copy. Returns
/// the copy's id.
pub fn plant_relabelled_layer(
    writer: &StoreWriter,
    object: &LayerMetaId,
    diff_id: Sha256Digest,
) -> Result<LayerMetaId> {
    let tmp = writer.writer().tmp_file("layer");
    let id = relabel_layer_object(
        &writer.store().layer_meta_path(object),
        *object,
        &tmp,
        diff_id,
    )?;
    std::fs::rename(&tmp, writer.store().layer_meta_path(&id))
        .map_err(|e| crate::Error::io("rename", &tmp, e))?;
    writer.store().index().commit(IndexBatch {
        layers: vec![(LayerKey::DiffId(diff_id), id)],
        ..IndexBatch::default()
    })?;
    Ok(id)
}

/// What an older cairn could have named an image: `name`, unchecked, for image `id`.
pub fn plant_name(writer: &StoreWriter, name: &str, id: crate::ImageId) -> Result<()> {
    writer.store().index().commit(IndexBatch {
        refs: vec![(name.to_string(), id)],
        ..IndexBatch::default()
    })
}

/// What a sender who controls its own store could push as a store-format artifact: image
/// `name` copied as `new_name` with layer `layer` relabelled as `diff_id` and `digest` (its
/// layer object relabelled too, and the bootstrap naming that copy). Returns the copy's id.
pub fn plant_relabelled_image(
    writer: &StoreWriter,
    name: &str,
    new_name: &str,
    layer: usize,
    (diff_id, digest): (Sha256Digest, Sha256Digest),
) -> Result<crate::ImageId> {
    let mut bootstrap = writer.store().bootstrap(name)?;
    let target = bootstrap
        .layers
        .get_mut(layer)
        .ok_or_else(|| crate::Error::Usage(format!("no layer {layer}")))?;
    let tmp = writer.writer().tmp_file("layer");
    let object = relabel_layer_object(
        &writer.store().layer_meta_path(&target.meta),
        target.meta,
        &tmp,
        diff_id,
    )?;
    std::fs::rename(&tmp, writer.store().layer_meta_path(&object))
        .map_err(|e| crate::Error::io("rename", &tmp, e))?;
    (target.meta, target.diff_id, target.digest) = (object, diff_id, digest);
    let encoded = bootstrap.encode()?;
    let id = crate::format::bootstrap::image_id(&encoded);
    let path = writer.store().bootstrap_path(&id);
    std::fs::write(&path, &encoded).map_err(|e| crate::Error::io("write", &path, e))?;
    let files = writer
        .store()
        .image_record(&writer.store().resolve(name)?)?
        .files;
    let record = crate::index::derived_record(
        id,
        &bootstrap,
        files,
        encoded.len() as u64,
        std::time::Duration::ZERO,
    );
    writer.store().index().commit(IndexBatch {
        images: vec![record],
        refs: vec![(new_name.to_string(), id)],
        ..IndexBatch::default()
    })?;
    Ok(id)
}
