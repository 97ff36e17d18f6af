//! One module per operation on a store. Each is reached through one `Store` method.

pub(crate) mod bases;
pub(crate) mod blob_builder;
pub mod bundle;
pub mod convert;
pub mod export;
pub mod gc;
pub(crate) mod image_write;
pub mod images;
pub(crate) mod import;
pub mod optimize;
pub mod plan;
pub mod read;
pub mod remove;
pub mod repair;
pub mod report;
pub mod tree;
pub mod unpack;
pub mod verify;
pub(crate) mod view;
#[cfg(any(test, feature = "testing"))]
pub mod whole_image;
pub(crate) mod written_chunks;
