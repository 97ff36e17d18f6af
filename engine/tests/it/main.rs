//! Integration tests of the engine (one binary, so the suite links once).

mod convert;
mod helpers;
mod py_dataset;
mod rejects;
mod report;
mod unpack;
