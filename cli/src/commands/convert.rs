//! `cairn convert`: an image into the store.

use crate::args::{Cli, ConvertArgs, IntoStoreArgs};
use crate::output::{bytes, count, field, percent, table};
use crate::progress::Bar;
use cairn_engine::{
    ConvertOptions, ImageReport, Platform, PlatformChoice, SharedWriter, SourceSpec, TmpReclaimed,
};

pub fn run(cli: &Cli, args: &ConvertArgs) -> anyhow::Result<()> {
    into_store(cli, super::convert_source::parse(&args.source)?, &args.into)
}

/// Converts `source` into the store as `args` say, and prints the report.
pub fn into_store(cli: &Cli, source: SourceSpec, args: &IntoStoreArgs) -> anyhow::Result<()> {
    let platform = match (&args.platform, args.all_platforms) {
        (_, true) => PlatformChoice::All,
        (Some(p), false) => PlatformChoice::Exact(Platform::parse(p).map_err(anyhow::Error::msg)?),
        (None, false) => PlatformChoice::Default,
    };
    let mut options = ConvertOptions::new(source, &args.name);
    options.dict = args.dict.clone();
    options.platform = platform;
    options.replace = args.replace;
    options.delta = args.delta.map(|d| d.mode());
    options.layers_in_flight = args.layers_in_flight.map(|n| n as usize);
    options.optimize = args.optimize;
    // Other converts may run into the store meanwhile; gc, rm and the index repair may not.
    let store = SharedWriter::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "convert");
    let report = store.convert(&options, &bar)?;
    if args.json {
        return super::print_json(&report);
    }
    if let Some(line) = reclaimed(&report.tmp_reclaimed) {
        println!("{line}");
    }
    for image in &report.images {
        println!("{}", render(image));
    }
    Ok(())
}

/// What dead writers had left under `tmp/` and a starting writer removed, if anything.
pub fn reclaimed(r: &TmpReclaimed) -> Option<String> {
    (r.writers + r.files > 0).then(|| {
        format!(
            "removed {} left in tmp/ by {} interrupted writer(s)",
            bytes(r.bytes),
            count(r.writers + r.files)
        )
    })
}

/// The human summary of one converted image.
pub fn render(r: &ImageReport) -> String {
    let t = &r.totals;
    let mut out = format!(
        "{} <- {}{}\n",
        crate::output::escape(&r.name),
        crate::output::escape(&r.reference),
        r.platform
            .as_ref()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default()
    );
    out += &field("image", &r.image_id[..16]);
    out += &field(
        "content",
        &format!(
            "{} layers, {} files, {} of tar ({} compressed)",
            r.layers.len(),
            count(t.files),
            bytes(t.tar_bytes),
            bytes(t.compressed_bytes)
        ),
    );
    out += &field(
        "chunks",
        &format!(
            "{} ({}): new {} ({}), from dictionary [{}] {} ({}), repeated {} ({})",
            count(t.chunks.chunks),
            bytes(t.chunks.bytes),
            count(t.new.chunks),
            bytes(t.new.bytes),
            r.dictionary.join(", "),
            count(t.from_dictionary.chunks),
            bytes(t.from_dictionary.bytes),
            count(t.repeated.chunks),
            bytes(t.repeated.bytes),
        ),
    );
    out += &field(
        "reused",
        &format!(
            "{} of the file bytes were already stored",
            percent(t.from_dictionary.bytes + t.repeated.bytes, t.chunks.bytes)
        ),
    );
    out += &field(
        "written",
        &format!(
            "{} in {} blob(s) + {} metadata ({} new layer object(s) and the bootstrap) \
             = {} added",
            bytes(t.stored_bytes),
            r.blobs_written,
            bytes(r.layer_object_bytes + r.bootstrap_bytes),
            r.layer_objects_written,
            bytes(r.added_bytes)
        ),
    );
    if r.duplicate.chunks > 0 {
        out += &field(
            "duplicate",
            &format!(
                "{} new chunk(s) ({}) another writer stored meanwhile: the image uses the \
                 stored copy; {} of copies here until gc compacts them",
                count(r.duplicate.chunks),
                bytes(r.duplicate.bytes),
                bytes(r.duplicate_stored_bytes)
            ),
        );
    }
    if t.delta.chunks > 0 {
        out += &field(
            "delta",
            &format!(
                "{} new chunk(s) ({}) stored as differences to old versions: {} instead of {} \
                 ({} by path, {} by similarity, {} from earlier layers)",
                count(t.delta.chunks),
                bytes(t.delta.bytes),
                bytes(t.delta.stored_bytes),
                bytes(t.delta.plain_stored_bytes),
                count(t.delta.by_path),
                count(t.delta.by_sketch),
                count(t.delta.by_earlier_layer)
            ),
        );
    }
    let reused = r.layers.iter().filter(|l| l.reused_metadata).count();
    if reused > 0 {
        out += &field(
            "layers",
            &format!(
                "{reused} of {} already stored (same digest or diff_id): not read again",
                r.layers.len()
            ),
        );
    }
    out += &field(
        "time",
        &format!(
            "{:.2} s, {:.1} MB/s of tar{}",
            r.seconds,
            r.tar_mb_per_s,
            match r.commit_wait_seconds >= 0.01 {
                true => format!(
                    ", {:.2} s of it waiting for other writers' commits",
                    r.commit_wait_seconds
                ),
                false => String::new(),
            }
        ),
    );
    out + &layer_table(r)
}

/// One row per layer: what it held, found and wrote.
fn layer_table(r: &ImageReport) -> String {
    let rows: Vec<Vec<String>> = r
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            vec![
                format!("{i} {}", &l.digest.trim_start_matches("sha256:")[..12]),
                bytes(l.tar_bytes),
                count(l.files),
                bytes(l.new.bytes),
                bytes(l.from_dictionary.bytes),
                bytes(l.stored_bytes),
            ]
        })
        .collect();
    let layer_table = table(
        &["  LAYER", "TAR", "FILES", "NEW", "FROM DICT", "WRITTEN"],
        &rows,
    );
    let mut out = String::new();
    for line in layer_table.lines() {
        out += "  ";
        out += line.trim_start();
        out += "\n";
    }
    out
}
