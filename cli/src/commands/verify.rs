//! `cairn verify`: report damage per object; exit status 1 if there is any. With
//! `--repair-index`, first rebuild the index (without opening it: it may be missing or broken).

use crate::args::{Cli, VerifyArgs};
use crate::output::{bytes, count, escape};
use crate::progress::Bar;
use cairn_engine::{OldIndex, RepairReport, Store, StoreWriter};

pub fn run(cli: &Cli, args: &VerifyArgs) -> anyhow::Result<()> {
    let repair = if args.repair_index {
        let report = StoreWriter::repair_index(&cli.store, &Bar::new(cli.quiet, "repair index"))?;
        if !args.json {
            print_repair(&report);
        }
        Some(report)
    } else {
        None
    };
    let store = Store::open(&cli.store)?;
    let report = store.verify(args.full, &Bar::new(cli.quiet, "verify"))?;
    if args.json {
        match &repair {
            Some(repair) => super::print_json(&serde_json::json!({
                "repair": repair,
                "verify": report,
            }))?,
            None => super::print_json(&report)?,
        }
    } else {
        let checked = format!(
            "{} blobs ({}), {} layer objects, {} bootstraps, {} images, {} index chunk \
             entries{}",
            count(report.blobs),
            bytes(report.blob_bytes),
            count(report.layer_objects),
            count(report.bootstraps),
            count(report.images),
            count(report.index_chunks),
            if report.full {
                format!(", {} chunks decoded", count(report.chunks_decoded))
            } else {
                String::new()
            }
        );
        println!("{}", crate::output::wrap("checked ", &checked));
        for p in &report.problems {
            println!("DAMAGED  {}: {}", escape(&p.object), escape(&p.detail));
        }
        if report.is_clean() {
            println!("no problems found");
        }
    }
    anyhow::ensure!(
        report.is_clean(),
        "{} problem(s) found in {}",
        report.problems.len(),
        store.root().display()
    );
    Ok(())
}

fn print_repair(r: &RepairReport) {
    let old = match r.old_index {
        OldIndex::Intact => "the old index was readable",
        OldIndex::Damaged => "the old index was partly readable",
        OldIndex::Unreadable => "the old index could not be opened, so no name survived",
        OldIndex::Missing => "there was no index, so no name survived",
    };
    println!("rebuilt the index ({old}):");
    for p in &r.old_index_problems {
        println!("  old index: {p}");
    }
    println!(
        "  {} chunks from {} blobs ({}); {} entries fixed, {} dropped",
        count(r.chunks),
        count(r.blobs),
        bytes(r.blob_bytes),
        count(r.chunks_fixed),
        count(r.chunks_dropped)
    );
    println!(
        "  {} images ({} records kept, {} derived from their bootstraps)",
        count(r.images),
        count(r.records_kept),
        count(r.images - r.records_kept)
    );
    println!(
        "  {} names kept, {} dropped, {} recovered",
        count(r.refs_kept.len() as u64),
        count(r.refs_dropped.len() as u64),
        count(r.recovered.len() as u64)
    );
    for n in &r.refs_dropped {
        println!(
            "  DROPPED    {} (image {} is missing or damaged)",
            escape(&n.name),
            n.image_id
        );
    }
    for n in &r.recovered {
        println!(
            "  RECOVERED  {} <- {}",
            escape(&n.name),
            escape(&n.reference)
        );
    }
    if !r.recovered.is_empty() {
        println!("  (images removed with `cairn rm` but not yet collected by `cairn gc` come");
        println!("   back as recovered names too; `cairn rm` those again)");
    }
    for p in &r.incomplete_images {
        println!("  INCOMPLETE {}: {}", escape(&p.object), escape(&p.detail));
    }
    for p in &r.damaged {
        println!("  SKIPPED    {}: {}", escape(&p.object), escape(&p.detail));
    }
}
