//! `cairn pull`: an image from an OCI registry into the store, through the converter; or, with
//! `--store-format`, a cairn artifact's store files as they are.

use crate::args::{Cli, IntoStoreArgs, PullArgs};
use crate::output::{bytes, count};
use crate::progress::Bar;
use cairn_engine::{SharedWriter, SourceSpec};

pub fn run(cli: &Cli, args: &PullArgs) -> anyhow::Result<()> {
    let reference = args
        .reference
        .strip_prefix("docker://")
        .unwrap_or(&args.reference);
    let spec = args.registry.spec(reference)?;
    if !args.store_format {
        return super::convert::into_store(cli, SourceSpec::Registry(spec), &args.into);
    }
    refuse_convert_options(&args.into)?;
    let store = SharedWriter::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "pull");
    let report = store.pull_store_format(&spec, &args.into.name, args.into.replace, &bar)?;
    if args.into.json {
        return super::print_json(&report);
    }
    let i = &report.import;
    println!(
        "pulled {} as {} (image {})\n  downloaded {} files ({}), {} already here ({}), in {:.2} s\n  \
         added {} blobs ({}), {} layer objects, {} new chunks indexed",
        crate::output::escape(&report.reference),
        crate::output::escape(&i.name),
        &i.image_id[..12.min(i.image_id.len())],
        count(report.files_downloaded),
        bytes(report.bytes_downloaded),
        count(report.files_present),
        bytes(report.bytes_present),
        report.seconds,
        count(i.blobs_added),
        bytes(i.blob_bytes_added),
        count(i.layer_objects_added),
        count(i.chunks_indexed),
    );
    Ok(())
}

/// A store-format pull takes the files as they are: converting options do not apply.
fn refuse_convert_options(into: &IntoStoreArgs) -> anyhow::Result<()> {
    let given = [
        ("--dict", !into.dict.is_empty()),
        ("--platform", into.platform.is_some()),
        ("--all-platforms", into.all_platforms),
        ("--delta", into.delta.is_some()),
        ("--layers-in-flight", into.layers_in_flight.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
        anyhow::bail!(
            "{flag} does not apply to --store-format: the artifact's files are taken as they \
             were converted"
        );
    }
    Ok(())
}
