//! `cairn stats`: the store's footprint and sharing.

use crate::args::{Cli, StatsArgs};
use crate::output::{bytes, count, table, wrap};
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &StatsArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let r = store.stats(&args.names, args.matrix)?;
    if args.json {
        return super::print_json(&r);
    }
    println!(
        "store {}: {} images",
        store.root().display(),
        count(r.images)
    );
    println!("  logical (layer tars)   {}", bytes(r.logical_bytes));
    println!(
        "  unique chunk bytes     {} in {} chunks",
        bytes(r.unique_chunk_bytes),
        count(r.unique_chunks)
    );
    println!("  stored (blobs)         {}", bytes(r.stored_bytes));
    println!(
        "  metadata               {} (bootstraps + layer objects + index)",
        bytes(r.metadata_bytes)
    );
    println!(
        "  dedup ratio            {:.2}x (logical / stored + metadata)",
        r.dedup_ratio
    );
    // Reading one chunk decodes its whole frame: what a random read (cat, a mount) costs.
    let random_read = format!(
        "{:.2} bytes decoded per byte read: reading one chunk alone decodes its whole \
         frame (init --frame-size; smaller frames, cheaper random reads)",
        r.random_read_amplification
    );
    println!("{}", wrap("  random read            ", &random_read));
    if r.delta.chunks > 0 {
        let text = format!(
            "{} chunks ({}) stored in {} instead of {}: {} saved; reading one alone decodes \
             {:.2} bytes per byte (its bases too)",
            count(r.delta.chunks),
            bytes(r.delta.bytes),
            bytes(r.delta.stored_bytes),
            bytes(r.delta.plain_stored_bytes),
            bytes(r.delta.saved_bytes),
            r.delta.read_amplification
        );
        println!("{}", wrap("  delta frames           ", &text));
    }
    if !r.per_image.is_empty() {
        let rows: Vec<Vec<String>> = r
            .per_image
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    bytes(i.logical_bytes),
                    bytes(i.unique_bytes),
                    bytes(i.owned_bytes),
                    bytes(i.owned_stored_bytes),
                    bytes(i.shared_bytes),
                ]
            })
            .collect();
        println!();
        println!(
            "{}",
            table(
                &[
                    "IMAGE",
                    "LOGICAL",
                    "UNIQUE",
                    "OWNS ALONE",
                    "OWNS STORED",
                    "SHARED"
                ],
                &rows
            )
        );
    }
    if let Some(m) = &r.matrix {
        println!("\nshare of the row image's bytes that the column image also has");
        let header: Vec<String> = std::iter::once(String::new())
            .chain((0..m.names.len()).map(|j| format!("[{j}]")))
            .collect();
        let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = m
            .names
            .iter()
            .zip(&m.share)
            .enumerate()
            .map(|(i, (name, row))| {
                std::iter::once(format!("[{i}] {name}"))
                    .chain(row.iter().map(|v| format!("{:.0}%", v * 100.0)))
                    .collect()
            })
            .collect();
        println!("{}", table(&header_refs, &rows));
    }
    Ok(())
}
