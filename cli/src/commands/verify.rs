//! `cairn verify`: report damage per object; exit status 1 if there is any.

use crate::args::{Cli, VerifyArgs};
use crate::output::{bytes, count};
use crate::progress::Bar;
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &VerifyArgs) -> anyhow::Result<()> {
    let store = Store::open_read_only(&cli.store)?;
    let report = store.verify(args.full, &Bar::bytes(cli.quiet))?;
    if args.json {
        super::print_json(&report)?;
    } else {
        println!(
            "checked {} blobs ({}), {} bootstraps, {} images, {} index chunk entries{}",
            count(report.blobs),
            bytes(report.blob_bytes),
            count(report.bootstraps),
            count(report.images),
            count(report.index_chunks),
            if report.full {
                format!(", {} chunks decoded", count(report.chunks_decoded))
            } else {
                String::new()
            }
        );
        for p in &report.problems {
            println!("DAMAGED  {}: {}", p.object, p.detail);
        }
        if report.is_clean() {
            println!("no problems found");
        }
    }
    anyhow::ensure!(
        report.is_clean(),
        "{} problem(s) found in {}",
        report.problems.len(),
        store.root().display()
    );
    Ok(())
}
