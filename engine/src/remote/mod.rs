//! Commands over a registry (transport layer, above the registry client `crate::registry`):
//! `push` (an image as an OCI image, or in store format with `store_push`), the store-format
//! pull (`store_pull`, which commits through `write::import`), and the remote inventory
//! (`inventory`: tags, platforms and layers read from documents only). Push and pull are
//! methods (`Store::push`, `SharedWriter::pull_store_format`); the remote inventory, which
//! needs no store, is a function. The client's settings are re-exported here, so that a caller
//! needs this module only.

mod inventory;
mod original;
mod push;
mod store_pull;
mod store_push;

pub use crate::registry::{artifact, Credentials, RegistrySpec, Timeouts, Transferred};
pub use inventory::{remote_inventory, RemoteRow, RowKind, Tags};
pub use push::{PushOptions, PushPlan, PushReport, PushedAs};
pub use store_pull::StorePullReport;
