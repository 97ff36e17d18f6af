//! One module per command.

mod bundle;
mod cat;
mod convert;
mod convert_source;
mod demo;
mod diff;
mod export;
mod export_layer;
mod gc;
mod images;
mod init;
mod inventory;
mod inventory_parquet;
mod ls;
mod mount;
mod optimize;
mod plan;
mod pull;
mod push;
mod rm;
mod snapshotter;
mod stats;
mod unpack;
mod verify;

use crate::args::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Init(args) => init::run(&cli, args),
        Command::Convert(args) => convert::run(&cli, args),
        Command::Pull(args) => pull::run(&cli, args),
        Command::Push(args) => push::run(&cli, args),
        Command::Images(args) => images::run(&cli, args),
        Command::Export(args) => export::run(&cli, args),
        Command::ExportLayer(args) => export_layer::run(&cli, args),
        Command::Cat(args) => cat::run(&cli, args),
        Command::Ls(args) => ls::run(&cli, args),
        Command::Diff(args) => diff::run(&cli, args),
        Command::Stats(args) => stats::run(&cli, args),
        Command::Inventory(args) => inventory::run(&cli, args),
        Command::Plan(args) => plan::run(&cli, args),
        Command::Unpack(args) => unpack::run(&cli, args),
        Command::Verify(args) => verify::run(&cli, args),
        Command::Rm(args) => rm::run(&cli, args),
        Command::Gc(args) => gc::run(&cli, args),
        Command::Optimize(args) => optimize::run(&cli, args),
        Command::Mount(args) => mount::run(&cli, args),
        Command::Umount(args) => mount::umount(args),
        Command::Demo(args) => demo::run(&cli, args),
        Command::Dict(args) => bundle::dict(&cli, args),
        Command::Bundle(args) => bundle::bundle(&cli, args),
        Command::Snapshotter(args) => snapshotter::run(&cli, args),
        Command::Snapshots(args) => snapshotter::list(&cli, args),
    }
}

/// A command that did its work but for some of it (a remote inventory with rows of kind
/// error): its output is complete otherwise, and the exit status is `Incomplete::EXIT`.
#[derive(Debug)]
pub struct Incomplete(pub String);

impl Incomplete {
    pub const EXIT: u8 = 3;
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Incomplete {}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = buffered_stdout();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Stdout buffered whole lines at a time (Rust's stdout flushes every line: a listing of
/// ten thousand names would be ten thousand writes). Flush it before returning.
pub fn buffered_stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock())
}
