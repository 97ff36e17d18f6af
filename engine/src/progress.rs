//! Progress reporting: the engine calls a `Progress` it is given; the CLI draws bars with it on
//! a terminal. The default does nothing.

/// Receives progress of a long operation. Implementations must be cheap: `inc` is called from
/// worker threads for every read.
pub trait Progress: Sync {
    /// Total units of work (bytes, usually) now known.
    fn set_length(&self, _total: u64) {}
    /// `delta` more units are done.
    fn inc(&self, _delta: u64) {}
    /// What is being worked on now.
    fn set_message(&self, _message: &str) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
