//! `cairn rm`: remove image names.

use crate::args::{Cli, RmArgs};
use cairn_engine::StoreWriter;

pub fn run(cli: &Cli, args: &RmArgs) -> anyhow::Result<()> {
    let store = StoreWriter::open(&cli.store)?;
    store.remove(&args.names)?;
    println!(
        "removed {}; run `cairn gc` to free their data",
        args.names
            .iter()
            .map(|n| crate::output::escape(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
