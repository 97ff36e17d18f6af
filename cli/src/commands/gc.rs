//! `cairn gc`: delete what no named image uses.

use crate::args::{Cli, GcArgs};
use crate::output::{bytes, count};
use cairn_engine::{GcOptions, StoreWriter};

pub fn run(cli: &Cli, args: &GcArgs) -> anyhow::Result<()> {
    let store = StoreWriter::open(&cli.store)?;
    let options = GcOptions::default()
        .with_dry_run(args.dry_run)
        .with_compact_below(args.compact_below)
        .with_force_orphans(args.force_orphans);
    let r = store.gc(&options)?;
    if args.json {
        return super::print_json(&r);
    }
    let (delete, compact) = if r.dry_run {
        ("would delete", "would compact")
    } else {
        ("deleted", "compacted")
    };
    println!(
        "{delete} {} blobs, {} layer objects and {} bootstraps no named image uses: {}",
        count(r.dead_blobs),
        count(r.dead_layer_objects),
        count(r.dead_bootstraps),
        bytes(r.dead_bytes)
    );
    if r.compacted_blobs > 0 {
        println!(
            "{compact} {} blobs of {} holding {} of live chunks (below {:.0}% live){}",
            count(r.compacted_blobs),
            bytes(r.compacted_bytes),
            bytes(r.compacted_live_bytes),
            r.compact_below * 100.0,
            if r.dry_run {
                String::new()
            } else {
                format!(
                    ": wrote {} new blobs of {}, rewrote {} image bootstraps",
                    count(r.new_blobs),
                    bytes(r.new_blob_bytes),
                    count(r.rewritten_images)
                )
            }
        );
    }
    if r.orphan_bootstraps > 0 {
        println!(
            "of those bootstraps, {} had no image record in the index (--force-orphans)",
            count(r.orphan_bootstraps)
        );
    }
    if r.tmp_reclaimed_writers > 0 {
        println!(
            "removed {} left in tmp/ by {} interrupted writer(s)",
            bytes(r.tmp_reclaimed_bytes),
            count(r.tmp_reclaimed_writers)
        );
    }
    if r.mounted_images > 0 {
        println!(
            "kept {} mounted images and their blobs as they are (a running `cairn mount`)",
            count(r.mounted_images)
        );
    }
    println!(
        "{} {} ({} images and {} blobs in use before)",
        if r.dry_run { "would free" } else { "freed" },
        bytes(r.freed_bytes),
        count(r.live_images),
        count(r.live_blobs)
    );
    Ok(())
}
