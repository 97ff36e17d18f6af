//! `rm`: removes image names. The bootstrap and chunk data stay until `gc` finds them unused.

use crate::error::Result;
use crate::index::IndexBatch;
use crate::store::StoreWriter;
use std::collections::HashSet;

/// Removes the names (all or nothing, in one synced index batch); returns the image ids they
/// named. An image record goes too when no other name refers to its image.
pub fn remove(store: &StoreWriter, names: &[String]) -> Result<Vec<crate::ImageId>> {
    let mut batch = IndexBatch::default();
    let mut ids = Vec::new();
    for name in names {
        ids.push(store.resolve(name)?);
        batch.delete_refs.push(name.clone());
    }
    let removed: HashSet<&String> = names.iter().collect();
    let still_named: HashSet<crate::ImageId> = store
        .index()
        .refs()?
        .into_iter()
        .filter(|(name, _)| !removed.contains(name))
        .map(|(_, id)| id)
        .collect();
    for id in &ids {
        if !still_named.contains(id) && !batch.delete_images.contains(id) {
            batch.delete_images.push(*id);
        }
    }
    crate::failpoint::check("rm.index.batch")?;
    store.index().commit(batch)?;
    Ok(ids)
}
