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

    /// What the request names is not there (a store, an image, a file in an image, a layer).
    #[error("{0}")]
    NotFound(NotFound),

    /// Another writer holds the store, or the name asked for is taken.
    #[error("{0}")]
    Conflict(Conflict),

    /// A race with another process (a gc or optimize rewrote what was being read): running
    /// the request again may succeed. The message says what happened.
    #[error("{0}")]
    Retry(String),

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

/// What a request named that is not there (`Error::NotFound`). Displayed as the message the
/// CLI prints.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotFound {
    /// No store at this directory.
    #[error("no cairn store at {root}; create one with `cairn init --store {root}`", root = .root.display())]
    Store { root: PathBuf },
    /// No image of this name in the store at `store`.
    #[error("no image named {name:?} in {}; `cairn images` lists them", store.display())]
    Image { name: String, store: PathBuf },
    /// No regular file (or symlink to one) at `path` in the image.
    #[error("{path}: no such file in image {image:?}")]
    File { image: String, path: String },
    /// Nothing at all (file or directory) at `path` in the image.
    #[error("{path}: no such file or directory in image {image:?}")]
    Entry { image: String, path: String },
    /// The image has `count` layers, none numbered `layer`.
    #[error("image {image:?} has {count} layers (0 to {}); there is no layer {layer}", count.saturating_sub(1))]
    Layer {
        image: String,
        count: usize,
        layer: usize,
    },
    /// A layer to reuse by its digests (`what`) has no layer object in the store at `store`.
    #[error("{what}: the store at {} holds no such layer (was it removed?)", store.display())]
    StoredLayer { what: String, store: PathBuf },
}

/// What holds what the request needs (`Error::Conflict`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// The store is held by another writer (or by gc, rm or an index repair).
    #[error("store {} is in use by another writer ({holder}); try again when it has finished (the lock goes with the process, so a crashed writer never leaves it held)", store.display())]
    Locked { store: PathBuf, holder: String },
    /// An image of this name exists and was not to be replaced. `choose` is the hint's way of
    /// naming another name ("another --name", "another name").
    #[error("an image named {name:?} already exists; choose {choose} or pass --replace")]
    ImageExists { name: String, choose: &'static str },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds print the messages the CLI printed when they were `Usage` strings.
    #[test]
    fn kinds_print_the_same_messages() {
        let store = PathBuf::from("/s");
        let cases: [(Error, &str); 7] = [
            (
                Error::NotFound(NotFound::Store {
                    root: store.clone(),
                }),
                "no cairn store at /s; create one with `cairn init --store /s`",
            ),
            (
                Error::NotFound(NotFound::Image {
                    name: "py".into(),
                    store: store.clone(),
                }),
                "no image named \"py\" in /s; `cairn images` lists them",
            ),
            (
                Error::NotFound(NotFound::File {
                    image: "py".into(),
                    path: "/etc/x".into(),
                }),
                "/etc/x: no such file in image \"py\"",
            ),
            (
                Error::NotFound(NotFound::Entry {
                    image: "py".into(),
                    path: "/etc/x".into(),
                }),
                "/etc/x: no such file or directory in image \"py\"",
            ),
            (
                Error::NotFound(NotFound::Layer {
                    image: "py".into(),
                    count: 3,
                    layer: 7,
                }),
                "image \"py\" has 3 layers (0 to 2); there is no layer 7",
            ),
            (
                Error::Conflict(Conflict::ImageExists {
                    name: "py".into(),
                    choose: "another --name",
                }),
                "an image named \"py\" already exists; choose another --name or pass --replace",
            ),
            (
                Error::Conflict(Conflict::Locked {
                    store,
                    holder: "gc".into(),
                }),
                "store /s is in use by another writer (gc); try again when it has finished (the \
                 lock goes with the process, so a crashed writer never leaves it held)",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }
}
