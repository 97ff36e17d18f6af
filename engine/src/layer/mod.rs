//! Reading one layer: undo its compression (`decompress`) and walk its tar stream while keeping
//! every byte that is not file content (`tar_stream`), so the exact tar can be re-created.

pub mod decompress;
pub mod digest_reader;
pub mod tar_stream;

pub use decompress::Compression;
pub use digest_reader::{DigestReader, DigestWriter};
pub use tar_stream::{EntryKind, EntryMeta, TarStream};
