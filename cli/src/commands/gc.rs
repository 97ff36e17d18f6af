//! `cairn gc`: delete what no named image uses.

use crate::args::{Cli, GcArgs};
use crate::output::{bytes, count};
use cairn_engine::{GcOptions, StoreWriter};

/// `println!`, wrapped at 80 columns.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", crate::output::wrap("", &format!($($arg)*)))
    };
}

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
    say!(
        "{delete} {} blobs, {} layer objects and {} bootstraps no named image uses: {}",
        count(r.dead_blobs),
        count(r.dead_layer_objects),
        count(r.dead_bootstraps),
        bytes(r.dead_bytes)
    );
    if r.compacted_blobs > 0 {
        say!(
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
        say!(
            "of those bootstraps, {} had no image record in the index (--force-orphans)",
            count(r.orphan_bootstraps)
        );
    }
    if r.tmp_reclaimed_writers > 0 {
        say!(
            "removed {} left in tmp/ by {} interrupted writer(s)",
            bytes(r.tmp_reclaimed_bytes),
            count(r.tmp_reclaimed_writers)
        );
    }
    if r.mounted_images > 0 {
        say!(
            "kept {} mounted images and their blobs as they are (a running `cairn mount`)",
            count(r.mounted_images)
        );
    }
    say!(
        "{} {} ({} images and {} blobs in use before)",
        if r.dry_run { "would free" } else { "freed" },
        bytes(r.freed_bytes),
        count(r.live_images),
        count(r.live_blobs)
    );
    if r.dead_bootstraps > 0 && r.live_images > 0 {
        // Chunks a removed image shared stay while a named image uses them: say which.
        let names: Vec<String> = store
            .store()
            .images()?
            .into_iter()
            .map(|i| crate::output::escape(&i.name).into_owned())
            .collect();
        let shown = match names.len() {
            0..=5 => names.join(", "),
            n => format!("{}, and {} more", names[..4].join(", "), n - 4),
        };
        let text = format!(
            "what the removed images shared is kept: {} named images still use it ({shown}); \
             `cairn stats` shows what each owns alone, `cairn diff` what two share",
            count(names.len() as u64)
        );
        say!("{text}");
    }
    Ok(())
}
