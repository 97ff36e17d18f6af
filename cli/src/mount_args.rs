//! Arguments of `cairn mount` and `cairn umount`.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MountArgs {
    /// NAME DIR: the image and where to mount it; with --all, only DIR.
    #[arg(value_name = "NAME DIR", num_args = 1..=2, required = true)]
    pub operands: Vec<String>,
    /// Every named image, as DIR/NAME.
    #[arg(long, conflicts_with = "layer")]
    pub all: bool,
    /// Show the tree as of this layer (0 is the bottom one) instead of all layers.
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// Stay in the foreground (serve until unmounted or interrupted) instead of returning once
    /// mounted.
    #[arg(long)]
    pub foreground: bool,
    /// Let other users see the files (FUSE allow_other; needs root or user_allow_other in
    /// /etc/fuse.conf).
    #[arg(long)]
    pub allow_other: bool,
    /// Honour the image's setuid/setgid bits and device nodes (mount without nosuid,nodev):
    /// only for one image, only where it is trusted, and never with --allow-other.
    #[arg(long, conflicts_with_all = ["allow_other", "all"])]
    pub suid_dev: bool,
    /// Decoded data kept in memory for reads, in MiB (frames decoded in part count whole,
    /// with their stored bytes).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub cache_mb: usize,
    /// Data decoded ahead of reads that go through a file, or through the files of a layer,
    /// in the order they were stored, in MiB (0: none; at most half the cache).
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    pub readahead_mb: u64,
    /// Threads answering file system requests.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub threads: usize,
    /// Where the background mount writes its log (errors such as damaged chunks); default
    /// STORE/logs/mount-NAME-PID.log, of which the store keeps the last 20 (older ones are
    /// removed when a mount makes a new one).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UmountArgs {
    /// The mount point.
    pub dir: PathBuf,
    /// Detach now even if busy (an overlay or a process still uses it); it goes once unused.
    #[arg(long)]
    pub lazy: bool,
}
