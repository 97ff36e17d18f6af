//! Progress reporting: the engine calls a `Progress` it is given; the CLI draws bars with it on
//! a terminal. The default does nothing.
//!
//! A long operation reports its whole with `set_length`/`inc`. Where several things move at
//! once (blobs uploading or downloading in parallel), each can also report on its own through
//! an `ItemProgress` from `Progress::item`; the whole still counts through `inc`, so an
//! implementation that ignores items loses nothing.

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
    /// One thing among several in flight (a blob being sent or received), `total` `unit`s
    /// long, named by `label`. Its counts are its own: the caller still reports them to the
    /// whole with `inc`. The handle owns what it needs (it can move to another thread or task)
    /// and is done when finished or dropped.
    fn item(&self, _label: &str, _total: u64, _unit: Unit) -> Box<dyn ItemProgress> {
        Box::new(NoProgress)
    }
}

/// Progress of one item from `Progress::item`.
pub trait ItemProgress: Send + Sync {
    /// `delta` more units of this item are done.
    fn inc(&self, _delta: u64) {}
    /// The item is done (as when the handle is dropped).
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

impl ItemProgress for NoProgress {}
