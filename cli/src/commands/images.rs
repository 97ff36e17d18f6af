//! `cairn images`: list the store's images.

use crate::args::{Cli, JsonArg};
use crate::output::{bytes, count, table};
use cairn_engine::Store;

pub fn run(cli: &Cli, args: &JsonArg) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let images = store.images()?;
    if args.json {
        return super::print_json(&images);
    }
    if images.is_empty() {
        println!("no images in {}", store.root().display());
        return Ok(());
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            let r = &i.record;
            vec![
                i.name.clone(),
                match r.manifest_digest.as_deref() {
                    Some(d) => d.trim_start_matches("sha256:")[..12].to_string(),
                    None if is_dictionary(&r.reference) => "(dictionary)".into(),
                    None => "-".into(),
                },
                r.platform.as_ref().map_or("-".into(), |p| p.to_string()),
                r.layers.to_string(),
                count(r.files),
                bytes(r.logical_bytes),
                bytes(r.added_stored_bytes + r.bootstrap_size),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["NAME", "MANIFEST", "PLATFORM", "LAYERS", "FILES", "LOGICAL", "ADDED"],
            &rows
        )
    );
    Ok(())
}

/// Whether an image is a chunk dictionary `cairn dict build` made: the engine converts it from
/// a `*.dict.tar` it writes under the store's `tmp/`, and records that path as its source.
fn is_dictionary(reference: &str) -> bool {
    let path = std::path::Path::new(reference);
    reference.ends_with(".dict.tar")
        && path
            .ancestors()
            .nth(2)
            .is_some_and(|tmp| tmp.file_name().is_some_and(|n| n == "tmp"))
}
