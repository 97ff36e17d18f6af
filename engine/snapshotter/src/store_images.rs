//! The store images the snapshotter made (`snapshot/<id>`): removed with their snapshot, and
//! at cleanup when their snapshot is gone. Removing a name needs the store's exclusive lock;
//! when another writer holds it the name stays, and the next cleanup removes it.

use crate::error::SnapResult;
use crate::snapshots::IMAGE_PREFIX;
use cairn_engine::{Store, StoreWriter};
use std::path::Path;

/// Removes image `name`; a failure is logged, the next cleanup tries again.
pub fn remove_image(store: &Path, name: &str) {
    let result = StoreWriter::open(store).and_then(|writer| writer.remove(&[name.to_string()]));
    match result {
        Ok(_) | Err(cairn_engine::Error::NotFound(_)) => {}
        Err(e) => eprintln!("cairn snapshotter: image {name:?} stays until the next cleanup: {e}"),
    }
}

/// Removes the snapshotter's images whose snapshot `gone` says is gone.
pub fn remove_gone(store: &Path, gone: impl Fn(u64) -> bool) -> SnapResult<()> {
    let images = Store::open(store)?.images()?;
    for image in images {
        let id = image
            .name
            .strip_prefix(IMAGE_PREFIX)
            .and_then(|id| id.parse::<u64>().ok());
        if id.is_some_and(&gone) {
            remove_image(store, &image.name);
        }
    }
    Ok(())
}
