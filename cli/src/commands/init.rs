//! `cairn init`: create a store.

use crate::args::{Cli, InitArgs};
use cairn_engine::{ChunkerParams, CompressionParams, InitOptions, StoreWriter};

pub fn run(cli: &Cli, args: &InitArgs) -> anyhow::Result<()> {
    let default = ChunkerParams::default();
    let chunker = ChunkerParams::fastcdc(
        args.min_chunk.unwrap_or(default.min_size),
        args.avg_chunk.unwrap_or(default.avg_size),
        args.max_chunk.unwrap_or(default.max_size),
    )
    .map_err(|e| anyhow::anyhow!("chunker: {e}"))?;
    let mut compression = CompressionParams::default();
    if let Some(level) = args.level {
        anyhow::ensure!((1..=22).contains(&level), "--level must be 1 to 22");
        compression.level = level;
    }
    if let Some(frame_size) = args.frame_size {
        compression.frame_size = frame_size;
    }
    if let Some(delta) = args.delta {
        compression.delta = delta.mode();
    }
    compression
        .validate()
        .map_err(|e| anyhow::anyhow!("compression: {e}"))?;
    let store = StoreWriter::init(&cli.store, &InitOptions::new(chunker, compression))?;
    println!(
        "created store {} (chunker {}, zstd level {}, frames up to {} KiB)",
        store.store().root().display(),
        store.store().config().chunker.label(),
        store.store().config().compression.level,
        store.store().config().compression.frame_size >> 10
    );
    Ok(())
}
