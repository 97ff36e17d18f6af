//! The `cairn` command. Parses arguments, runs one engine operation, renders its result.

mod about;
mod args;
mod bundle_args;
mod commands;
mod examples;
mod mount_args;
mod optimize_args;
mod output;
mod plan_args;
mod priority;
mod progress;
mod snapshotter_args;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`cairn ... | head`) is not an error.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            if let Some(incomplete) = err.downcast_ref::<commands::Incomplete>() {
                eprintln!("cairn: {incomplete}");
                return ExitCode::from(commands::Incomplete::EXIT);
            }
            eprintln!("cairn: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
