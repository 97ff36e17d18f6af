//! End-to-end tests of the `cairn` binary.

mod bundle;
mod columns;
mod commands;
mod concurrency;
mod containerd;
mod crash;
mod diff_paths;
mod failpoint;
mod helpers;
mod inventory_parquet;
mod listing;
mod lost_index;
mod mount;
mod names;
mod optimize;
mod overwrite;
mod plan;
mod push_original;
mod registry;
mod remote_inventory;
mod source_errors;
mod writers;
