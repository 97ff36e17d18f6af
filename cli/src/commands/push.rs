//! `cairn push`: an image from the store to a registry. Says before uploading when the layers
//! must be re-compressed (the registry lacks the original ones), and then prints the original
//! manifest digest beside the new one.

use crate::args::{Cli, PushArgs};
use crate::output::{bytes, count, wrap};
use crate::progress::Bar;
use cairn_engine::remote::{PushOptions, PushReport, PushedAs};
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &PushArgs) -> anyhow::Result<()> {
    let target = args
        .target
        .strip_prefix("docker://")
        .unwrap_or(&args.target);
    let spec = args.registry.spec(target)?;
    let store = Store::open(&cli.store)?;
    let mut options = PushOptions::default();
    options.store_format = args.store_format;
    options.mount_from = args.mount_from.clone();
    let plan = store.prepare_push(&args.name, &spec, &options)?;
    if let Some(why) = plan.recompressed_because() {
        let note = format!(
            "re-compressing the layers of {}, which gets a new manifest digest: {why}",
            args.name
        );
        eprintln!("{}", wrap("cairn: ", &note));
    }
    let report = plan.push(&Bar::new(cli.quiet, "push"))?;
    if args.json {
        return super::print_json(&report);
    }
    print!("{}", render(&report));
    Ok(())
}

/// The human report: what went where, and which manifest the tag now names.
fn render(report: &PushReport) -> String {
    let how = match report.pushed_as {
        PushedAs::Original => " as it came (original manifest)",
        PushedAs::Recompressed => " (layers re-compressed)",
        PushedAs::StoreFormat => " in store format",
    };
    let mut out = wrap(
        "",
        &format!("pushed {} to {}{how}", report.name, report.target),
    ) + "\n";
    // A digest is 71 columns: each goes on a line of its own.
    out += &format!("  manifest\n    {}\n", report.manifest_digest);
    if let (Some(old), PushedAs::Recompressed) =
        (&report.original_manifest_digest, report.pushed_as)
    {
        out += &format!("  the original manifest was\n    {old}\n");
    }
    let t = &report.transferred;
    let line = format!(
        "sent {} blobs ({}), mounted {} ({}), {} already there ({}), in {:.2} s",
        count(t.blobs_uploaded),
        bytes(t.bytes_uploaded),
        count(t.blobs_mounted),
        bytes(t.bytes_mounted),
        count(t.blobs_present),
        bytes(t.bytes_present),
        report.seconds
    );
    out + &wrap("  ", &line) + "\n"
}
