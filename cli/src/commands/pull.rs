//! `cairn pull`: an image from an OCI registry into the store, through the converter.

use crate::args::{Cli, PullArgs};
use cairn_engine::source::registry::{Credentials, RegistrySpec};
use cairn_engine::SourceSpec;

pub fn run(cli: &Cli, args: &PullArgs) -> anyhow::Result<()> {
    let reference = args
        .reference
        .strip_prefix("docker://")
        .unwrap_or(&args.reference);
    let credentials = args.user.as_deref().map(Credentials::parse).transpose()?;
    let source = SourceSpec::Registry(RegistrySpec {
        reference: reference.to_string(),
        insecure: args.insecure,
        credentials,
    });
    super::convert::into_store(cli, source, &args.into)
}
