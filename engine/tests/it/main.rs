//! Integration tests of the engine (one binary, so the suite links once).

mod bundle;
mod convert;
mod delta;
mod delta_layers;
mod dict_build;
mod export;
mod helpers;
mod implicit_dirs;
mod import_trust;
mod lifecycle;
mod malformed;
mod mount;
mod plan;
mod py_dataset;
mod registry;
mod registry_auth;
mod registry_push;
mod registry_stall;
mod registry_store_format;
mod rejects;
mod repair;
mod report;
mod tar_shapes;
mod tree;
mod unpack;
mod writers;
