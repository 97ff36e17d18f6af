//! The engine's error type. Every variant names the object it is about (a file, a layer digest,
//! a path inside a tar, a blob and offset), so that the CLI can print it as is.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a named file.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The image being read is malformed (bad JSON, bad tar, unsupported media type, ...).
    #[error("{object}: {reason}")]
    BadInput { object: String, reason: String },

    /// A digest computed over input or stored data differs from the one it must have.
    #[error("{object}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        object: String,
        expected: String,
        actual: String,
    },

    /// Data in the store is damaged or not what its format says.
    #[error("corrupt store object {object}: {reason}")]
    Corrupt { object: String, reason: String },

    /// The request cannot be carried out as asked (unknown name, name taken, wrong version, ...).
    #[error("{0}")]
    Usage(String),

    /// The store is held by another writer.
    #[error("store {} is in use by another writer ({holder}); try again when it has finished (the lock goes with the process, so a crashed writer never leaves it held)", store.display())]
    Locked { store: PathBuf, holder: String },

    /// A read error inside an input stream; its message names the layer and the entry.
    #[error("{0}")]
    Stream(#[from] std::io::Error),

    /// An error from the chunk index (the engine's RocksDB database; boxed here, so that this
    /// crate does not depend on RocksDB).
    #[error("chunk index {}: {source}", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn bad_input(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadInput {
            object: object.into(),
            reason: reason.into(),
        }
    }

    pub fn corrupt(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.into(),
            reason: reason.into(),
        }
    }
}

/// Adds the failing file's path to an `io::Result`.
pub trait IoContext<T> {
    fn with_path(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn with_path(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
