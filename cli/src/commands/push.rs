//! `cairn push`: an image from the store to a registry.

use crate::args::{Cli, PushArgs};
use crate::output::{bytes, count};
use crate::progress::Bar;
use cairn_engine::remote::{push, PushOptions};
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &PushArgs) -> anyhow::Result<()> {
    let target = args
        .target
        .strip_prefix("docker://")
        .unwrap_or(&args.target);
    let spec = args.registry.spec(target)?;
    let store = Store::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "push");
    let mut options = PushOptions::default();
    options.store_format = args.store_format;
    options.mount_from = args.mount_from.clone();
    let report = push(&store, &args.name, &spec, &options, &bar)?;
    if args.json {
        return super::print_json(&report);
    }
    println!(
        "pushed {} as {}{} ({})\n  sent {} blobs ({}), mounted {} ({}), {} already there ({}), in {:.2} s",
        report.name,
        report.target,
        if report.store_format {
            " in store format"
        } else {
            ""
        },
        report.manifest_digest,
        count(report.transferred.blobs_uploaded),
        bytes(report.transferred.bytes_uploaded),
        count(report.transferred.blobs_mounted),
        bytes(report.transferred.bytes_mounted),
        count(report.transferred.blobs_present),
        bytes(report.transferred.bytes_present),
        report.seconds
    );
    Ok(())
}
