//! Integration tests of the engine (one binary, so the suite links once).

mod convert;
mod delta;
mod delta_layers;
mod export;
mod helpers;
mod lifecycle;
mod local_registry;
mod malformed;
mod mount;
mod py_dataset;
mod registry;
mod registry_push;
mod rejects;
mod repair;
mod report;
mod unpack;
mod writers;
