//! `cairn unpack`: an image's root filesystem written into a directory.

use crate::args::{Cli, UnpackArgs, XattrPolicy};
use crate::output::{bytes, count};
use crate::progress::Bar;
use cairn_engine::{Store, UnpackOptions, UnpackReport};

pub fn run(cli: &Cli, args: &UnpackArgs) -> anyhow::Result<()> {
    let mut options = UnpackOptions::default();
    options.top_layer = args.layer;
    options.strict_xattrs = args.xattrs == XattrPolicy::Strict;
    options.same_owner = args.same_owner;
    let store = Store::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "unpack");
    let report = store.unpack(&args.name, &args.dir, &options, &bar)?;
    for warning in warnings(&report) {
        eprintln!("warning: {warning}");
    }
    if args.json {
        return super::print_json(&report);
    }
    println!("{}", summary(&report, &args.dir));
    Ok(())
}

/// `unpacked into DIR`, then `  60 files, 12 dirs, 3 symlinks, 1 hardlinks` and
/// `  8.1 MB in 0.52 s (15.6 MB/s)` (each line within 80 columns, the path aside).
fn summary(r: &UnpackReport, dir: &std::path::Path) -> String {
    let mut out = format!(
        "unpacked into {}\n  {} files, {} dirs, {} symlinks, {} hardlinks",
        dir.display(),
        count(r.files),
        count(r.dirs),
        count(r.symlinks),
        count(r.hardlinks)
    );
    if r.devices + r.fifos > 0 {
        out += &format!(", {} devices, {} fifos", count(r.devices), count(r.fifos));
    }
    let rate = if r.seconds > 0.0 {
        r.bytes as f64 / 1e6 / r.seconds
    } else {
        0.0
    };
    out += &format!(
        "\n  {} in {:.2} s ({rate:.1} MB/s)",
        bytes(r.bytes),
        r.seconds
    );
    if !r.skipped.is_empty() || !r.xattr_failures.is_empty() {
        out += &format!(
            "\n  {} skipped, {} xattrs not set",
            r.skipped.len(),
            r.xattr_failures.len()
        );
    }
    out
}

fn warnings(r: &UnpackReport) -> impl Iterator<Item = String> + '_ {
    let xattrs = r
        .xattr_failures
        .iter()
        .map(|f| format!("{}: cannot set xattr {}: {}", f.path, f.name, f.error));
    let skipped = r
        .skipped
        .iter()
        .map(|s| format!("{}: skipped: {}", s.path, s.reason));
    xattrs.chain(skipped)
}
