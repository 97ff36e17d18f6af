//! `rm`: removes image names. The bootstrap and chunk data stay until `gc` finds them unused.
//!
//! The image record stays too: a record no name reaches marks a bootstrap that was committed
//! and then removed, which gc may delete (it drops the record once the file is gone). A
//! bootstrap without any record is one the index never knew or has lost, and gc refuses to
//! delete it unless told `--force-orphans` (see `rewrite`).

use crate::error::Result;
use crate::index::IndexBatch;
use crate::store::StoreWriter;

/// Removes the names (all or nothing, in one synced index batch); returns the image ids they
/// named.
pub(crate) fn remove(writer: &StoreWriter, names: &[String]) -> Result<Vec<crate::ImageId>> {
    let mut batch = IndexBatch::default();
    let mut ids = Vec::new();
    for name in names {
        ids.push(writer.store().resolve(name)?);
        batch.delete_refs.push(name.clone());
    }
    crate::failpoint::check("rm.index.batch")?;
    writer.store().index().commit(batch)?;
    Ok(ids)
}

/// `cairn rm`.
impl crate::store::StoreWriter {
    /// Removes image names; their data stays until `gc`.
    pub fn remove(&self, names: &[String]) -> Result<Vec<crate::ImageId>> {
        remove(self, names)
    }
}
