//! Arguments of `cairn optimize`.

use clap::Args;

#[derive(Args, Debug)]
pub struct OptimizeArgs {
    /// zstd level to recompress to (default: the store's, recorded in store.json at init: 18).
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,
    /// Frames of up to this many bytes (default: the store's, 1 MiB; at most 1 MiB). Reading
    /// one chunk decodes its whole frame.
    #[arg(long, value_name = "BYTES")]
    pub frame_size: Option<u32>,
    /// Start no new round after this many seconds; a round that has started finishes (it is
    /// about 32 MiB of old blobs, or one larger blob: up to 256 MiB, a minute or more at zstd-18
    /// on 2 cores). Run again later to go on.
    #[arg(long, value_name = "S", conflicts_with = "budget_mb")]
    pub max_seconds: Option<f64>,
    /// Rewrite at most this many megabytes of old blobs; run again later to go on.
    #[arg(long, value_name = "MB")]
    pub budget_mb: Option<f64>,
    /// Estimate what would be saved (from a sample of frames recompressed), change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete orphan bootstraps (see `cairn gc --help`); without it optimize refuses to
    /// run while there are any.
    #[arg(long)]
    pub force_orphans: bool,
    /// Niceness to run at (0 to 19; never raised above the current priority).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub nice: i32,
    /// Also use the idle I/O class: disk time only when nothing else wants it.
    #[arg(long)]
    pub io_idle: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}
