//! `cairn cat`: one file of an image, streamed from the blobs.

use crate::args::{CatArgs, Cli};
use cairn_engine::Store;
use std::io::{BufWriter, Write};

pub fn run(cli: &Cli, args: &CatArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    store.cat(
        &args.name,
        &args.path,
        crate::args::follow(args.no_follow),
        &mut out,
    )?;
    out.flush()?;
    Ok(())
}
