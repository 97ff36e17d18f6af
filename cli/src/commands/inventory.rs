//! `cairn inventory`: images, platforms and layers as CSV (RFC 4180), JSON or a table.

use crate::args::{Cli, InventoryArgs, InventoryFormat};
use crate::output::{bytes, table};
use cairn_engine::{top_layers, InventoryRow, Store};

pub fn run(cli: &Cli, args: &InventoryArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let rows = store.inventory()?;
    if let Some(n) = args.top_layers {
        let top = top_layers(&rows, n);
        return match args.format {
            InventoryFormat::Json => super::print_json(&top),
            InventoryFormat::Csv => write_csv(&top),
            InventoryFormat::Table => {
                let cells: Vec<Vec<String>> = top
                    .iter()
                    .map(|t| vec![t.platform.clone(), t.name.clone(), t.layers.to_string()])
                    .collect();
                println!("{}", table(&["PLATFORM", "IMAGE", "LAYERS"], &cells));
                Ok(())
            }
        };
    }
    match args.format {
        InventoryFormat::Json => super::print_json(&rows),
        InventoryFormat::Csv => write_csv(&rows),
        InventoryFormat::Table => {
            println!("{}", render_table(&rows));
            Ok(())
        }
    }
}

fn write_csv<T: serde::Serialize>(rows: &[T]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}

fn render_table(rows: &[InventoryRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let platform = if r.variant.is_empty() {
                format!("{}/{}", r.os, r.architecture)
            } else {
                format!("{}/{}/{}", r.os, r.architecture, r.variant)
            };
            vec![
                r.name.clone(),
                platform,
                r.layer_index.to_string(),
                r.layer_digest.trim_start_matches("sha256:")[..12].to_string(),
                bytes(r.layer_size),
                bytes(r.uncompressed_size),
                r.files.to_string(),
                bytes(r.unique_stored_bytes),
            ]
        })
        .collect();
    table(
        &[
            "IMAGE", "PLATFORM", "#", "LAYER", "SIZE", "TAR", "FILES", "UNIQUE",
        ],
        &cells,
    )
}
