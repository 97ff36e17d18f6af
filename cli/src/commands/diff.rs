//! `cairn diff OLD NEW`: what NEW shares with OLD.

use crate::args::{Cli, DiffArgs, DiffBy};
use crate::output::{bytes, count, escape, percent, shorten_path, table};
use cairn_engine::{DiffReport, Store};

pub fn run(cli: &Cli, args: &DiffArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let report = store.diff(&args.old, &args.new, args.top)?;
    if args.json {
        return super::print_json(&report);
    }
    print!("{}", render(&report, args.by));
    Ok(())
}

fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

pub fn render(r: &DiffReport, by: DiffBy) -> String {
    let (old, new) = (escape(&r.old), escape(&r.new));
    let mut out = format!("{old} -> {new}\n");
    out += &format!(
        "  content  {} in {} chunk refs ({} distinct, {})\n",
        bytes(r.new_logical_bytes),
        count(r.new_logical_chunks),
        count(r.new_unique_chunks),
        bytes(r.new_unique_bytes)
    );
    out += &format!(
        "  shared   {} of bytes, {} of chunks ({} in {} chunks)\n",
        pct(r.shared_ratio_bytes),
        pct(r.shared_ratio_chunks),
        bytes(r.shared_bytes),
        count(r.shared_chunks)
    );
    out += &format!(
        "  new      {} in {} chunks, {} compressed\n",
        bytes(r.new_bytes),
        count(r.new_chunks),
        bytes(r.added_stored_bytes)
    );
    out += &format!(
        "  files    {} added, {} changed, {} removed, {} unchanged\n\n",
        count(r.files_added),
        count(r.files_changed),
        count(r.files_removed),
        count(r.files_unchanged)
    );
    let whole = r.new_logical_bytes.max(1);
    let rows = vec![
        vec![
            "layer (OCI, by digest)".to_string(),
            bytes(r.layer_dedup_added_bytes),
            percent(r.layer_dedup_added_bytes, whole),
            format!("{} gzip", bytes(r.layer_dedup_added_compressed_bytes)),
        ],
        vec![
            "file (whole-file)".to_string(),
            bytes(r.file_dedup_added_bytes),
            percent(r.file_dedup_added_bytes, whole),
            String::new(),
        ],
        vec![
            "chunk (cairn)".to_string(),
            bytes(r.chunk_dedup_added_bytes),
            percent(r.chunk_dedup_added_bytes, whole),
            format!("{} zstd", bytes(r.added_stored_bytes)),
        ],
    ];
    out += &format!("  what {new} adds on top of {old}, by dedup granularity\n");
    out += &indent(&table(&["GRANULARITY", "ADDS", "OF NEW", "STORED"], &rows));
    out += "\n";
    match by {
        DiffBy::Layer => {
            let rows: Vec<Vec<String>> = r
                .layers
                .iter()
                .map(|l| {
                    vec![
                        format!(
                            "{} {}",
                            l.index,
                            &l.digest.trim_start_matches("sha256:")[..12]
                        ),
                        bytes(l.tar_bytes),
                        bytes(l.unique_bytes),
                        pct(l.shared_ratio_bytes),
                        l.same_digest_as.map_or("-".into(), |i| i.to_string()),
                        l.position_match_ratio.map_or("-".into(), pct),
                        l.best_match
                            .map_or("-".into(), |i| format!("{i} ({})", pct(l.best_match_ratio))),
                    ]
                })
                .collect();
            out += &format!("  layers of {new}, against {old}\n");
            out += "  (SHARED: with the whole image; =DIGEST: the layer with the same digest;\n";
            out += "   AT POS: share with the layer at the same index; BEST: the layer sharing most)\n";
            out += &indent(&table(
                &[
                    "LAYER",
                    "TAR",
                    "UNIQUE",
                    "SHARED",
                    "SAME DIGEST",
                    "SAME POSITION",
                    "BEST MATCH",
                ],
                &rows,
            ));
        }
        DiffBy::File => {
            let rows: Vec<Vec<String>> = r
                .top_files
                .iter()
                .map(|f| {
                    vec![
                        shorten_path(&f.path, 44),
                        f.status.to_string(),
                        bytes(f.size),
                        bytes(f.new_bytes),
                    ]
                })
                .collect();
            out += &format!("  top {} files by bytes {old} lacks\n", rows.len());
            out += &indent(&table(&["PATH", "STATUS", "SIZE", "NEW"], &rows));
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
