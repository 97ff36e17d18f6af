//! Arguments of `cairn snapshotter`.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SnapshotterArgs {
    /// The unix socket containerd connects to (its `proxy_plugins` address).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Where containers' upper directories and the chains' views go (default: STORE/snapshotter).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The log file (default: STORE/logs/snapshotter.log; `-` for stderr).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}
