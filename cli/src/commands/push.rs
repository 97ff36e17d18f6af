//! `cairn push`: an image from the store to a registry.

use crate::args::{Cli, PushArgs};
use crate::output::{bytes, count};
use crate::progress::Bar;
use cairn_engine::source::registry::push;
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &PushArgs) -> anyhow::Result<()> {
    let target = args
        .target
        .strip_prefix("docker://")
        .unwrap_or(&args.target);
    let spec = args.registry.spec(target)?;
    let store = Store::open(&cli.store)?;
    let bar = Bar::new(cli.quiet);
    let report = push(&store, &args.name, &spec, &bar)?;
    if args.json {
        return super::print_json(&report);
    }
    println!(
        "pushed {} as {} ({})\n  sent {} blobs ({}), {} already there ({}), in {:.2} s",
        report.name,
        report.target,
        report.manifest_digest,
        count(report.blobs_uploaded),
        bytes(report.bytes_uploaded),
        count(report.blobs_present),
        bytes(report.bytes_present),
        report.seconds
    );
    Ok(())
}
