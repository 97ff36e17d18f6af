//! The on-disk path index of a layer metadata object, read through `LayerPaths`: lookups and
//! listings decode the one or few path blocks they need, each checked against its hash.

use super::{LayerPaths, PathRecord};
use crate::error::{Error, Result};
use crate::format::layer_meta::{LayerEntry, LayerMeta};

impl LayerPaths for LayerMeta {
    fn lookup(&self, parent: &[u8], name: &[u8]) -> Result<Option<PathRecord>> {
        LayerMeta::lookup(self, parent, name)
    }

    fn children(&self, dir: &[u8]) -> Result<Box<dyn Iterator<Item = Result<PathRecord>> + '_>> {
        Ok(Box::new(LayerMeta::children(self, dir)))
    }

    fn root_opaque(&self) -> Result<bool> {
        Ok(self.info().root_opaque)
    }
}

/// The entry a record of the view over `layers` names (decoding its one entry block).
pub(crate) fn record_entry(
    layers: &[LayerMeta],
    layer: usize,
    record: &PathRecord,
) -> Result<LayerEntry> {
    match (layers.get(layer), record.entry) {
        (Some(meta), Some(n)) => meta.entry(n),
        _ => Err(Error::corrupt(
            format!("layer {layer}"),
            format!(
                "internal: no entry for path record {:?}",
                String::from_utf8_lossy(&record.name)
            ),
        )),
    }
}
