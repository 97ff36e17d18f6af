//! `cairn export`: an image out as an OCI image layout or a `docker load` archive.

use crate::args::{Cli, CompressionArg, ExportArgs};
use crate::output::{bytes, table};
use crate::progress::Bar;
use cairn_engine::{Compression, ExportOptions, ExportReport, ExportTarget, Store};

pub fn run(cli: &Cli, args: &ExportArgs) -> anyhow::Result<()> {
    let target = ExportTarget::parse(&args.target)?;
    if !args.force {
        refuse_to_overwrite(&target, args)?;
    }
    let mut options = ExportOptions::new(target);
    if let Some(c) = args.compression {
        options.compression = match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        };
    }
    options.level = args.level;
    options.reference = args.reference.clone();
    let store = Store::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "export");
    let report = store.export(&args.name, &options, &bar)?;
    if args.json {
        return super::print_json(&report);
    }
    print!("{}", render(&report));
    Ok(())
}

/// Stops an export that would replace an existing docker archive, or an image of an OCI
/// layout with the same ref: either takes --force. Adding a new ref to a layout is what a
/// layout is for, and needs none.
fn refuse_to_overwrite(target: &ExportTarget, args: &ExportArgs) -> anyhow::Result<()> {
    if let ExportTarget::DockerArchive { file } = target {
        if file.symlink_metadata().is_ok() {
            anyhow::bail!("{} exists; give --force to replace it", file.display());
        }
    } else if let ExportTarget::OciLayout { dir, reference } = target {
        let reference = reference
            .as_deref()
            .or(args.reference.as_deref())
            .unwrap_or(&args.name);
        let Ok(text) = std::fs::read(dir.join("index.json")) else {
            return Ok(());
        };
        // A malformed index.json is the engine's to report.
        let index: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        let taken = index["manifests"].as_array().is_some_and(|entries| {
            entries.iter().any(|entry| {
                entry["annotations"]["org.opencontainers.image.ref.name"].as_str()
                    == Some(reference)
            })
        });
        if taken {
            anyhow::bail!(
                "the OCI layout {} already holds an image tagged {reference:?}; give --force to \
                 replace it, or another ref (oci:DIR:REF or --ref)",
                dir.display()
            );
        }
    }
    Ok(())
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// The human summary of one export.
fn render(r: &ExportReport) -> String {
    let mut out = format!(
        "{} -> {}{}\n",
        r.name,
        r.target,
        r.platform
            .as_ref()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default()
    );
    out += &format!(
        "  name       {}\n",
        r.reference.as_deref().unwrap_or("(untagged)")
    );
    // A digest takes 71 columns: each goes on a line of its own, under its label.
    if let Some(m) = &r.manifest_digest {
        out += &format!("  manifest\n    {m}\n");
    }
    out += &format!(
        "  config     {}\n    {}\n",
        if r.config_synthesized {
            "made up: the image was converted from a bare layer"
        } else {
            "as converted"
        },
        r.config_digest,
    );
    let compressed: u64 = r.layers.iter().map(|l| l.compressed_size).sum();
    let present = r.layers.iter().filter(|l| l.already_present).count();
    out += &format!(
        "  layers     {}, {} of tar -> {} ({}){}, every diff_id verified\n",
        r.layers.len(),
        bytes(r.tar_bytes),
        bytes(compressed),
        r.compression,
        if present > 0 {
            format!(", {present} already in the layout")
        } else {
            String::new()
        }
    );
    out += &format!(
        "  written    {} in {:.2} s, {:.1} MB/s of tar\n",
        bytes(r.bytes_written),
        r.seconds,
        r.tar_mb_per_s
    );
    let rows: Vec<Vec<String>> = r
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            vec![
                i.to_string(),
                short(&l.diff_id).to_string(),
                short(&l.digest).to_string(),
                bytes(l.size),
                bytes(l.compressed_size),
            ]
        })
        .collect();
    for line in table(&["LAYER", "DIFF_ID", "DIGEST", "TAR", "BLOB"], &rows).lines() {
        out += "  ";
        out += line.trim_start();
        out += "\n";
    }
    out
}
