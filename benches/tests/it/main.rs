//! End-to-end tests of the `cairn-bench` binary on the generated demo pair, so the benchmarks
//! cannot rot. They check what is reported, never how fast.

mod bundle;
mod footprint;
mod helpers;
mod limits;
mod many_files;
mod sweep;
