//! `cairn pull`: an image from an OCI registry into the store, through the converter.

use crate::args::{Cli, PullArgs};
use cairn_engine::SourceSpec;

pub fn run(cli: &Cli, args: &PullArgs) -> anyhow::Result<()> {
    let reference = args
        .reference
        .strip_prefix("docker://")
        .unwrap_or(&args.reference);
    let source = SourceSpec::Registry(args.registry.spec(reference)?);
    super::convert::into_store(cli, source, &args.into)
}
