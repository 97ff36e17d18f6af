//! Writing (shared machinery, above the store layer, below the commands): what every command
//! that adds to the store uses. `blob_builder` packs new chunks into zstd frames and seals
//! blobs under `tmp/`; `written_chunks` remembers the chunks written so far (for dedup within
//! a run and for delta bases); `image_write` writes bootstraps and layer objects in the write
//! order; `import` commits images that arrive whole (bundles, store-format pulls) after
//! checking every byte; `check_name` is the commit's check of a name. The convert
//! (`ops::convert`) and gc's rewrite (`rewrite`) write through these modules; nothing here
//! calls a command.

pub(crate) mod blob_builder;
pub(crate) mod image_write;
pub(crate) mod import;
pub(crate) mod written_chunks;

use crate::error::{Error, Result};
use crate::index::Index;

/// Refuses a name that is taken, unless it is to be replaced.
pub(crate) fn check_name(index: &Index, name: &str, replace: bool) -> Result<()> {
    if !replace && index.get_ref(name)?.is_some() {
        return Err(Error::Conflict(crate::Conflict::ImageExists {
            name: name.to_string(),
            choose: "another --name",
        }));
    }
    Ok(())
}
