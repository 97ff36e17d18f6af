//! One layer's bytes: undo its compression (`decompress`) and walk its tar stream while keeping
//! every byte that is not file content (`tar_stream`), so the exact tar can be re-created; and,
//! for export, compress a re-created tar again (`compress`). PAX records as the walker applies
//! them (`pax`); GNU sparse maps read back from an entry's raw header bytes (`sparse`).

pub mod compress;
pub mod decompress;
pub mod digest_reader;
pub mod entry_path;
pub mod pax;
pub mod pipe;
pub mod sparse;
pub mod tar_stream;

pub use compress::Encoder;
pub use decompress::Compression;
pub use digest_reader::{DigestReader, DigestWriter};
pub use tar_stream::{EntryKind, EntryMeta, TarStream};
