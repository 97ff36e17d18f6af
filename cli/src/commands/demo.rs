//! `cairn demo`: the built-in example. Generates two versions of a small image, converts v1,
//! then v2 with v1 as its dictionary, re-creates every layer to check it, and prints what each
//! stored next to what plain layer storage would have stored.

use super::convert::render;
use crate::args::{Cli, DemoArgs};
use crate::output::{bytes, percent, table};
use crate::progress::Bar;
use anyhow::Context;
use cairn_engine::{ConvertOptions, InitOptions, SourceSpec, StoreWriter};
use std::path::Path;

pub fn run(cli: &Cli, args: &DemoArgs) -> anyhow::Result<()> {
    let tmp;
    let dir: &Path = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            dir
        }
        None => {
            tmp = tempfile::tempdir().context("create a temporary directory")?;
            tmp.path()
        }
    };
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("images"))
        .context("generate the demo images")?;
    let store = StoreWriter::init(&dir.join("store"), &InitOptions::default())?;
    let bar = Bar::new(cli.quiet, "demo");
    let convert = |layout: &Path, name: &str, dict: Vec<String>| {
        let source = SourceSpec::parse(&format!("oci:{}", layout.display()))?;
        let mut options = ConvertOptions::new(source, name);
        options.dict = dict;
        store.convert(&options, &bar)
    };
    let r1 = convert(&v1, "demo:v1", vec![])?.images.remove(0);
    let r2 = convert(&v2, "demo:v2", vec!["demo:v1".into()])?
        .images
        .remove(0);

    // Every layer must come back byte for byte (export_layer checks each diff_id).
    let mut layers_checked = 0;
    for (name, report) in [("demo:v1", &r1), ("demo:v2", &r2)] {
        for i in 0..report.layers.len() {
            store
                .store()
                .export_layer(name, i, &mut std::io::sink(), &cairn_engine::NoProgress)?;
            layers_checked += 1;
        }
    }
    // What plain OCI storage adds for v2: every layer whose digest v1 does not have.
    let v1_digests: Vec<&str> = r1.layers.iter().map(|l| l.digest.as_str()).collect();
    let layer_dedup_v2: u64 = r2
        .layers
        .iter()
        .filter(|l| !v1_digests.contains(&l.digest.as_str()))
        .map(|l| l.compressed_bytes)
        .sum();
    let v1_gzip = r1.totals.compressed_bytes;

    if args.json {
        return super::print_json(&serde_json::json!({
            "v1": r1, "v2": r2,
            "layers_verified": layers_checked,
            "oci_layer_dedup": { "after_v1": v1_gzip, "v2_adds": layer_dedup_v2 },
        }));
    }
    println!(
        "cairn demo: two versions of a generated image in {}\n",
        dir.display()
    );
    println!("{}", render(&r1));
    println!("{}", render(&r2));
    let t2 = &r2.totals;
    println!("what v1 already had of v2");
    println!(
        "  {} of v2's file bytes ({} of {} chunks) were found in v1",
        percent(
            t2.from_dictionary.bytes + t2.repeated.bytes,
            t2.chunks.bytes
        ),
        t2.from_dictionary.chunks + t2.repeated.chunks,
        t2.chunks.chunks
    );
    let rows = [
        (
            "plain OCI layers (gzip, by digest)",
            v1_gzip,
            layer_dedup_v2,
        ),
        ("cairn (chunks + metadata)", r1.added_bytes, r2.added_bytes),
    ]
    .map(|(what, v1, v2)| vec![what.into(), bytes(v1), bytes(v2), percent(v2, v1)]);
    println!(
        "\n{}",
        table(&["STORAGE, V1 THEN V2", "V1", "V2 ADDS", "OF V1"], &rows)
    );
    println!("\nall {layers_checked} layers re-created byte for byte (diff_ids verified)");
    if args.keep.is_some() {
        println!("images and store kept in {}; try:", dir.display());
        println!("  cairn --store {} images", dir.join("store").display());
    }
    Ok(())
}
