//! The snapshotter's errors, each with the gRPC code containerd acts on: NotFound and
//! AlreadyExists drive its unpacking (an existing chain is skipped), FailedPrecondition and
//! InvalidArgument are refusals it reports.

use containerd_snapshots::tonic::{Code, Status};
use std::path::Path;

/// A refused or failed snapshot operation.
#[derive(Debug)]
pub enum SnapError {
    /// No snapshot (or parent) of that key.
    NotFound(String),
    /// A snapshot of that key exists already.
    AlreadyExists(String),
    /// The snapshot is in a state the operation does not apply to (it has children, it is
    /// not active, it is being committed).
    FailedPrecondition(String),
    /// The request itself is wrong (a parent that is not committed, an unknown field).
    InvalidArgument(String),
    /// The store or the file system failed.
    Internal(String),
}

/// The snapshotter's results.
pub type SnapResult<T> = std::result::Result<T, SnapError>;

impl SnapError {
    /// A file system error naming the path and what was being done.
    pub fn io(action: &str, path: &Path, e: std::io::Error) -> SnapError {
        SnapError::Internal(format!("{action} {}: {e}", path.display()))
    }

    /// The gRPC code containerd maps to its error kinds.
    pub fn code(&self) -> Code {
        match self {
            SnapError::NotFound(_) => Code::NotFound,
            SnapError::AlreadyExists(_) => Code::AlreadyExists,
            SnapError::FailedPrecondition(_) => Code::FailedPrecondition,
            SnapError::InvalidArgument(_) => Code::InvalidArgument,
            SnapError::Internal(_) => Code::Internal,
        }
    }

    fn message(&self) -> &str {
        match self {
            SnapError::NotFound(m)
            | SnapError::AlreadyExists(m)
            | SnapError::FailedPrecondition(m)
            | SnapError::InvalidArgument(m)
            | SnapError::Internal(m) => m,
        }
    }
}

impl std::fmt::Display for SnapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SnapError {}

impl From<cairn_engine::Error> for SnapError {
    fn from(e: cairn_engine::Error) -> Self {
        match e {
            cairn_engine::Error::NotFound(n) => SnapError::NotFound(n.to_string()),
            other => SnapError::Internal(other.to_string()),
        }
    }
}

impl From<SnapError> for Status {
    fn from(e: SnapError) -> Status {
        Status::new(e.code(), e.message().to_string())
    }
}
