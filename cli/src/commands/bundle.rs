//! `cairn dict export` and `cairn bundle create|import|inspect`.

use crate::args::Cli;
use crate::bundle_args::{
    BundleArgs, BundleCommand, BundleCreateArgs, BundleImportArgs, BundleInspectArgs, DictArgs,
    DictBuildArgs, DictCommand,
};
use crate::output::{bytes, count, escape};
use crate::progress::Bar;
use cairn_engine::bundle::create;
use cairn_engine::{SharedWriter, Store};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn dict(cli: &Cli, args: &DictArgs) -> anyhow::Result<()> {
    let args = match &args.command {
        DictCommand::Export(args) => args,
        DictCommand::Build(args) => return build_dict(cli, args),
    };
    let store = Store::open(&cli.store)?;
    let dict = store.export_dict(&args.names, args.all)?;
    write_output(&args.output, |out| Ok(dict.write(out)?))?;
    eprintln!(
        "{} chunks ({}) of {} image(s) in {}",
        count(dict.len() as u64),
        bytes(dict.chunk_bytes()),
        dict.images.len(),
        describe(&args.output)
    );
    Ok(())
}

fn build_dict(cli: &Cli, args: &DictBuildArgs) -> anyhow::Result<()> {
    let store = SharedWriter::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "dict build");
    let report = store.build_dict(&args.names, args.min_images, &args.name, &bar)?;
    if args.json {
        return super::print_json(&report);
    }
    println!(
        "{}: {} chunks ({}) held by at least {} of the images; added {} in {:.2} s",
        report.name,
        count(report.chunks),
        bytes(report.bytes),
        report.min_images,
        bytes(report.added_bytes),
        report.seconds
    );
    for c in &report.coverage {
        println!(
            "  {:<30} {:>10} of {:>10} ({:.1} %) of its distinct chunk bytes",
            c.image,
            bytes(c.covered_bytes),
            bytes(c.unique_bytes),
            100.0 * c.covered_ratio
        );
    }
    Ok(())
}

pub fn bundle(cli: &Cli, args: &BundleArgs) -> anyhow::Result<()> {
    match &args.command {
        BundleCommand::Create(args) => create_bundle(cli, args),
        BundleCommand::Import(args) => import_bundle(cli, args),
        BundleCommand::Inspect(args) => inspect(args),
    }
}

fn describe(path: &Path) -> String {
    match path.as_os_str() == "-" {
        true => "stdout".into(),
        false => path.display().to_string(),
    }
}

/// Writes to `path` through a temporary name renamed at the end (nothing is left behind on an
/// error), or to stdout for `-`.
fn write_output(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        write(&mut out)?;
        out.flush()?;
        return Ok(());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".cairn-partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    let result = (|| {
        let file = std::fs::File::create(&partial)
            .map_err(|e| anyhow::anyhow!("create {}: {e}", partial.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
            .map_err(|e| anyhow::anyhow!("rename into {}: {e}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn create_bundle(cli: &Cli, args: &BundleCreateArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let mut options = create::BundleOptions::default();
    options.images = args.names.clone();
    options.have = args.have.clone();
    options.have_dicts = args.have_dict.clone();
    options.since = args.since.clone();
    let bar = Bar::new(cli.quiet, "bundle create");
    let mut report = None;
    write_output(&args.output, |out| {
        report = Some(store.create_bundle(&options, out, &bar)?);
        Ok(())
    })?;
    let report = report.expect("written");
    let to_stdout = args.output.as_os_str() == "-";
    if args.json && !to_stdout {
        return super::print_json(&report);
    }
    let m = &report.manifest;
    let text = format!(
        "bundled {} image(s) into {}\n  written    {} in {:.2} s\n  carries    {} chunks ({}) in \
         {} frames ({} copied as stored, {} split)\n  metadata   {} objects ({})\n  relies on  \
         {} chunks ({}) the receiver holds{}",
        m.images.len(),
        describe(&args.output),
        bytes(report.bytes),
        report.seconds,
        count(m.chunks),
        bytes(m.chunk_bytes),
        count(m.frames),
        count(report.frames_copied),
        count(report.frames_split),
        count(m.objects),
        bytes(m.object_bytes),
        count(m.relied_chunks),
        bytes(m.relied_bytes),
        relies_on(&m.relies_on),
    );
    match to_stdout {
        true => eprintln!("{text}"),
        false => println!("{text}"),
    }
    Ok(())
}

fn relies_on(images: &[(String, String)]) -> String {
    if images.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = images.iter().map(|(name, _)| name.as_str()).collect();
    format!(" (from {})", names.join(", "))
}

fn open_input(path: &Path) -> anyhow::Result<(Box<dyn std::io::Read>, String)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin().lock()), "bundle on stdin".into()));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("open bundle {}: {e}", path.display()))?;
    Ok((Box::new(file), format!("bundle {}", path.display())))
}

fn import_bundle(cli: &Cli, args: &BundleImportArgs) -> anyhow::Result<()> {
    let (mut input, what) = open_input(&args.file)?;
    let store = SharedWriter::open(&cli.store)?;
    let bar = Bar::new(cli.quiet, "bundle import");
    let report = store.import_bundle(&mut input, &what, args.replace, &bar)?;
    if args.json {
        return super::print_json(&report);
    }
    for image in &report.images {
        println!(
            "imported {} (image {})\n  added      {} blobs ({}), {} layer objects, {} new \
             chunks indexed",
            escape(&image.name),
            &image.image_id[..12],
            count(image.blobs_added),
            bytes(image.blob_bytes_added),
            count(image.layer_objects_added),
            count(image.chunks_indexed)
        );
    }
    for name in &report.unchanged {
        println!("{}: already imported, unchanged", escape(name));
    }
    println!(
        "read {} in {:.2} s; {} relied-on chunks found in the store",
        bytes(report.bytes),
        report.seconds,
        count(report.relied_chunks)
    );
    Ok(())
}

fn inspect(args: &BundleInspectArgs) -> anyhow::Result<()> {
    let (mut input, what) = open_input(&args.file)?;
    let info = cairn_engine::bundle::inspect(&mut input, &what)?;
    if args.json {
        return super::print_json(&info);
    }
    let m = &info.manifest;
    println!(
        "{what}: {} (checksum ok), store format {}\n  carries    {} chunks ({}) in {} frames\n  \
         metadata   {} objects ({})\n  relies on  {} chunks ({}){}",
        bytes(info.bytes),
        m.format_version,
        count(m.chunks),
        bytes(m.chunk_bytes),
        count(m.frames),
        count(m.objects),
        bytes(m.object_bytes),
        count(m.relied_chunks),
        bytes(m.relied_bytes),
        relies_on(&m.relies_on)
    );
    println!(
        "  {:<24} {:<16} {:>6} {:>9} {:>11}",
        "NAME", "PLATFORM", "LAYERS", "FILES", "LOGICAL"
    );
    for image in &m.images {
        let platform = image
            .platform
            .as_ref()
            .map_or("-".to_string(), |p| p.to_string());
        println!(
            "  {:<24} {:<16} {:>6} {:>9} {:>11}",
            escape(&image.name),
            platform,
            image.layers,
            count(image.files),
            bytes(image.logical_bytes)
        );
    }
    Ok(())
}
