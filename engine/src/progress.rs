//! Progress reporting: the engine calls a `Progress` it is given; the CLI draws bars with it on
//! a terminal. The default does nothing.

/// What a progress count counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes (of a source, of a layer, of file content).
    Bytes,
    /// Whole things: files checked, blobs read.
    Items,
}

/// Receives progress of a long operation. Implementations must be cheap: `inc` is called from
/// worker threads for every read.
pub trait Progress: Sync {
    /// Total units of work now known, and what they count.
    fn set_length(&self, _total: u64, _unit: Unit) {}
    /// `delta` more units are done.
    fn inc(&self, _delta: u64) {}
    /// What is being worked on now.
    fn set_message(&self, _message: &str) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
