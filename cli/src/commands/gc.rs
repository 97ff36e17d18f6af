//! `cairn gc`: delete what no named image uses.

use crate::args::{Cli, GcArgs};
use crate::output::{bytes, count};
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &GcArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let r = store.gc(args.dry_run)?;
    if args.json {
        return super::print_json(&r);
    }
    println!(
        "{} {} blobs and {} bootstraps: {} ({} images and {} blobs in use)",
        if r.dry_run { "would delete" } else { "deleted" },
        count(r.dead_blobs),
        count(r.dead_bootstraps),
        bytes(r.freed_bytes),
        count(r.live_images),
        count(r.live_blobs)
    );
    Ok(())
}
