//! `cairn inventory`: images, platforms and layers as CSV (RFC 4180), JSON or a table.

use crate::args::{Cli, InventoryArgs, InventoryFormat, InventoryLevel};
use crate::output::{bytes, count, table, wrap};
use crate::progress::Bar;
use cairn_engine::remote::{remote_inventory, RemoteRow, RowKind, Tags};
use cairn_engine::{top_layers, InventoryRow, Store};

pub fn run(cli: &Cli, args: &InventoryArgs) -> anyhow::Result<()> {
    if let Some(repository) = &args.repository {
        return remote(cli, repository, args);
    }
    let store = Store::open(&cli.store)?;
    if args.format == InventoryFormat::Parquet {
        return parquet(&store, args);
    }
    if args.level.is_some_and(|l| l != InventoryLevel::Layer) || args.output.is_some() {
        anyhow::bail!("--level and -o go with --format parquet (csv and json are layer rows)");
    }
    let rows = store.inventory()?;
    if let Some(n) = args.top_layers {
        let top = top_layers(&rows, n);
        return match args.format {
            InventoryFormat::Json => super::print_json(&top),
            InventoryFormat::Csv | InventoryFormat::Parquet => write_csv(&top),
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
        InventoryFormat::Csv | InventoryFormat::Parquet => write_csv(&rows),
        InventoryFormat::Table => {
            println!("{}", render_table(&rows));
            Ok(())
        }
    }
}

fn parquet(store: &Store, args: &InventoryArgs) -> anyhow::Result<()> {
    let Some(output) = &args.output else {
        anyhow::bail!("--format parquet writes files: give -o FILE.parquet or -o DIR/");
    };
    if args.top_layers.is_some() {
        anyhow::bail!("--top-layers is a csv, json or table report");
    }
    let level = args.level.unwrap_or(InventoryLevel::Layer);
    let written = super::inventory_parquet::write(store, level, output, &[], args.force)?;
    for (path, rows) in written {
        println!("{} ({} rows)", path.display(), count(rows));
    }
    Ok(())
}

/// The rows of a registry's repository.
fn remote(cli: &Cli, repository: &str, args: &InventoryArgs) -> anyhow::Result<()> {
    let Some(reference) = repository.strip_prefix("docker://") else {
        anyhow::bail!("{repository}: a repository is given as docker://REGISTRY/REPO[:TAG]");
    };
    let spec = args.registry.spec(reference)?;
    let tags = match (&args.tags, args.all_tags) {
        (_, true) => Tags::All,
        (Some(pattern), false) => Tags::Matching(pattern.clone()),
        (None, false) => Tags::Given,
    };
    if args.format == InventoryFormat::Parquet {
        anyhow::bail!("a registry's inventory is csv, json or a table; parquet is for the store");
    }
    let bar = Bar::new(cli.quiet, "reading manifests");
    let rows = remote_inventory(&spec, &tags, &bar)?;
    match args.format {
        InventoryFormat::Json => super::print_json(&rows)?,
        InventoryFormat::Csv | InventoryFormat::Parquet => write_csv(&rows)?,
        InventoryFormat::Table => println!("{}", remote_table(&rows)),
    }
    let failed: Vec<&RemoteRow> = rows.iter().filter(|r| r.kind == RowKind::Error).collect();
    if failed.is_empty() {
        return Ok(());
    }
    for row in &failed {
        // The reason names digests (71 columns each): it goes under the tag, indented.
        match row.manifest_digest.as_str() {
            "" => eprintln!("{}:", row.name),
            digest => eprintln!("{} (manifest {}):", row.name, short(digest)),
        }
        eprintln!("{}", wrap("  ", &row.error));
    }
    Err(super::Incomplete(format!(
        "{} of the {} rows could not be read (kind error)",
        count(failed.len() as u64),
        count(rows.len() as u64)
    ))
    .into())
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// The remote rows as a table: a store-format artifact's row has no platform or layer, an
/// error row only its tag (the errors follow on stderr).
fn remote_table(rows: &[RemoteRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let platform = match (r.kind, r.variant.as_str()) {
                (RowKind::Image, "") => format!("{}/{}", r.os, r.architecture),
                (RowKind::Image, v) => format!("{}/{}/{v}", r.os, r.architecture),
                _ => "-".to_string(),
            };
            let kind = match r.kind {
                RowKind::CairnStore => "store",
                kind => kind.as_str(),
            };
            let or_dash = |text: String| if text.is_empty() { "-".into() } else { text };
            vec![
                r.name.clone(),
                kind.to_string(),
                platform,
                or_dash(short(&r.manifest_digest)),
                r.layer_index.map_or("-".into(), |i| i.to_string()),
                or_dash(short(&r.layer_digest)),
                match r.kind {
                    RowKind::Error => "-".into(),
                    _ => bytes(r.layer_size),
                },
            ]
        })
        .collect();
    let head = [
        "IMAGE", "KIND", "PLATFORM", "MANIFEST", "#", "LAYER", "SIZE",
    ];
    table(&head, &cells)
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
