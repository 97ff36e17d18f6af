//! Counters of what a mount did, for finding where its time goes: kernel requests by kind,
//! bytes served, frames decoded (for a read that waited, or ahead of one) and the time spent
//! decoding. Kept only when `CAIRN_MOUNT_STATS` is set in the mount's environment, and written
//! to its stderr (its log) when it ends; otherwise every count is a no-op.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What is counted.
#[derive(Clone, Copy)]
pub(super) enum Count {
    Lookup,
    Getattr,
    Open,
    Read,
    Readdir,
    Getxattr,
    /// Bytes answered to reads.
    BytesServed,
    /// Frames read and decoding started while a read waited, bytes decoded for waiting reads,
    /// and microseconds spent (reading stored bytes and decoding).
    FramesNow,
    BytesNow,
    MicrosNow,
    /// Frames read and decoding started ahead of readers, bytes decoded ahead (the rest of
    /// frames read in part, and read-ahead), and microseconds spent.
    FramesAhead,
    BytesAhead,
    MicrosAhead,
    /// Frames decoded ahead that left the cache unread.
    AheadWasted,
}

const NAMES: [&str; 14] = [
    "lookup",
    "getattr, readlink, statfs",
    "open",
    "read",
    "opendir, readdir",
    "getxattr, listxattr",
    "bytes served",
    "frames started for a waiting read",
    "bytes decoded for waiting reads",
    "their decoding us",
    "frames started ahead",
    "bytes decoded ahead",
    "their decoding us",
    "frames decoded ahead never read",
];

pub(super) struct Stats {
    on: bool,
    counts: [AtomicU64; NAMES.len()],
    /// Microseconds spent answering each kind of request (the first six counts).
    micros: [AtomicU64; 6],
}

/// Adds the time from its making to its drop to a kind of request.
pub(super) struct Timed<'s> {
    stats: &'s Stats,
    what: Count,
    started: Option<Instant>,
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        if let Some(started) = self.started {
            let micros = started.elapsed().as_micros() as u64;
            self.stats.micros[self.what as usize].fetch_add(micros, Ordering::Relaxed);
        }
    }
}

impl Stats {
    pub(super) fn from_env() -> Stats {
        Stats {
            on: std::env::var_os("CAIRN_MOUNT_STATS").is_some(),
            counts: Default::default(),
            micros: Default::default(),
        }
    }

    pub(super) fn add(&self, what: Count, n: u64) {
        if self.on {
            self.counts[what as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts a request of kind `what`, timed until the guard is dropped.
    pub(super) fn request(&self, what: Count) -> Timed<'_> {
        self.add(what, 1);
        Timed {
            stats: self,
            what,
            started: self.clock(),
        }
    }

    /// Counts `bytes` decoded since `started`, for a waiting read or ahead.
    pub(super) fn decoded(&self, bytes: usize, started: Option<Instant>, ahead: bool) {
        let Some(started) = started else { return };
        let micros = started.elapsed().as_micros() as u64;
        let (size, time) = if ahead {
            (Count::BytesAhead, Count::MicrosAhead)
        } else {
            (Count::BytesNow, Count::MicrosNow)
        };
        self.add(size, bytes as u64);
        self.add(time, micros);
    }

    /// A start time when counting (`Instant::now` is not free on a hot path).
    pub(super) fn clock(&self) -> Option<Instant> {
        self.on.then(Instant::now)
    }

    /// The counts, one `name: value` a line.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        for (i, (name, count)) in NAMES.iter().zip(&self.counts).enumerate() {
            out.push_str(&format!("{name}: {}", count.load(Ordering::Relaxed)));
            if let Some(micros) = self.micros.get(i) {
                out.push_str(&format!(" ({} us)", micros.load(Ordering::Relaxed)));
            }
            out.push('\n');
        }
        out
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if self.on {
            eprint!("cairn mount stats\n{}", self.render());
        }
    }
}
