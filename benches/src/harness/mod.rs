//! What the benches share, so that each bench module imports this and not another bench:
//!
//! - `measure`: a child process run and measured under GNU time (wall, CPU, peak RSS); the
//!   `cairn` binary to run; programs on PATH.
//! - `sizes`: bytes on disk (`du -sb`) and bytes of file content.
//! - `image`: an image source's layers (stored bytes, tar stream, unpacked), and tar entries
//!   for the archives benches write.
//! - `node`: what a node stores without cairn (a registry's blobs, a containerd-style node).
//! - `big_layer`: a generated layer holding one large file.
//! - `pipeline`: each stage of a convert alone, in CPU seconds, and the pipeline limit.
//! - `machine`: the machine and its load, for the reports.
//! - `work`: the work directory, scratch directories, the report files.

pub mod big_layer;
pub mod image;
pub mod machine;
pub mod measure;
pub mod node;
pub mod pipeline;
pub mod sizes;
pub mod work;
