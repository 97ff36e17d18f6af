//! The commands: one module per command. Each adds its methods to `Store` (or to the writers,
//! `SharedWriter` and `StoreWriter`) in an `impl` block of its own file; what needs no store
//! is a function (`bundle::inspect` reads a bundle file, `top_layers` sums inventory rows).
//! A command uses the store and the shared machinery
//! below it (`view`, `write`, `rewrite`), never another command, except `plan`, which exports,
//! and `bundle`'s dictionary build, which converts. The transports (`remote`, `mount`) sit
//! above.

pub mod bundle;
pub(crate) mod convert;
pub(crate) mod export;
pub(crate) mod images;
pub(crate) mod plan;
pub(crate) mod read;
pub(crate) mod remove;
pub(crate) mod repair;
pub(crate) mod report;
pub(crate) mod unpack;
pub(crate) mod verify;
