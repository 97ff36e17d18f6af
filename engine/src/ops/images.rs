//! `images`: the named images of a store and what each added.

use crate::error::Result;
use crate::index::ImageRecord;
use crate::store::Store;
use serde::Serialize;

/// One named image, as `cairn images` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    /// The image's name in the store.
    pub name: String,
    /// What the index records of the image (its id, source, sizes, what it added).
    #[serde(flatten)]
    pub record: ImageRecord,
}

pub(crate) fn list(store: &Store) -> Result<Vec<ImageSummary>> {
    store
        .index()
        .refs()?
        .into_iter()
        .map(|(name, id)| {
            Ok(ImageSummary {
                record: store.image_record(&id)?,
                name,
            })
        })
        .collect()
}

/// `cairn images`.
impl crate::store::Store {
    /// Every named image with its record.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        list(self)
    }
}
