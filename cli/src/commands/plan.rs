//! `cairn plan NAME...`: proposed shared bases, what they hold and what they save; human
//! output within 80 columns, or the whole plan as JSON.

use crate::args::Cli;
use crate::output::{bytes, count, shorten, table};
use crate::plan_args::PlanArgs;
use crate::progress::Bar;
use cairn_engine::{EmitRequest, EmitWhat, PlanOptions, PlanReport, Store};

const WIDTH: usize = 80;
/// Stands for a space `wrap` must not break at.
const KEEP: &str = "\u{1}";

pub fn run(cli: &Cli, args: &PlanArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let mut emit = Vec::new();
    for pair in args.emit_base.chunks(2) {
        let n: usize = pair[0].parse().map_err(|_| {
            anyhow::anyhow!("--emit-base {}: give a base number from the plan", pair[0])
        })?;
        emit.push(EmitRequest {
            what: EmitWhat::Base(n),
            target: pair[1].clone(),
        });
    }
    for pair in args.emit_image.chunks(2) {
        emit.push(EmitRequest {
            what: EmitWhat::Image(pair[0].clone()),
            target: pair[1].clone(),
        });
    }
    if args.min_saving_mb.is_nan() || args.min_saving_mb < 0.0 {
        anyhow::bail!("--min-saving-mb {}: give 0 or more", args.min_saving_mb);
    }
    let mut options = PlanOptions::new(args.names.clone());
    options.min_images = args.min_images;
    options.min_saving = (args.min_saving_mb * 1e6) as u64;
    options.emit = emit;
    let bar = Bar::new(cli.quiet, "plan");
    let report = store.plan(&options, &bar);
    cairn_engine::Progress::finish(&bar);
    let report = report?;
    if args.json {
        return super::print_json(&report);
    }
    print!("{}", render(&report));
    Ok(())
}

pub fn render(r: &PlanReport) -> String {
    let t = &r.totals;
    let mut out = format!(
        "{} images; {} proposed (each serving at least {} images)\n\n",
        r.images.len(),
        match r.bases.len() {
            0 => "no base".to_string(),
            1 => "1 base".to_string(),
            n => format!("{n} bases"),
        },
        r.min_images
    );
    if !r.bases.is_empty() {
        out += &bases_table(r);
        out += "\n\n";
        for base in &r.bases {
            out += &base_details(base);
        }
        out += "\n";
    }
    let rows: Vec<Vec<String>> = r
        .images
        .iter()
        .map(|i| {
            vec![
                shorten(&i.name, 24),
                if i.bases.is_empty() {
                    "-".into()
                } else {
                    i.bases
                        .iter()
                        .map(|b| b.to_string())
                        .collect::<Vec<_>>()
                        .join(">")
                },
                bytes(i.image_bytes),
                bytes(i.release_bytes_before),
                bytes(i.release_bytes_after),
            ]
        })
        .collect();
    out += "A release of each image ships (tar bytes, at layer granularity):\n";
    out += &table(&["image", "bases", "image", "today", "rebuilt"], &rows);
    out += "\n\n";
    out += &wrap(
        &format!(
            "The whole set ships {} in {} distinct layers today, {} in {} layers rebuilt on \
             the bases: {} saved ({:.1}%).",
            bytes(t.bytes_before),
            count(t.layers_before as u64),
            bytes(t.bytes_after),
            count(t.layers_after as u64),
            signed_bytes(t.saved_bytes),
            t.saved_ratio * 100.0
        ),
        "",
    );
    for e in &r.emitted {
        let size: u64 = e.layers.iter().map(|l| l.compressed_size).sum();
        out += &wrap(
            &format!(
                "Wrote {} to oci:{}:{} ({} layers, {} gzip).",
                e.what,
                e.layout,
                e.reference,
                e.layers.len(),
                bytes(size)
            ),
            "",
        );
    }
    out
}

fn bases_table(r: &PlanReport) -> String {
    let depth = |mut n: usize| {
        let mut d = 0;
        while let Some(p) = r.bases[n - 1].parent {
            d += 1;
            n = p;
        }
        d
    };
    let rows: Vec<Vec<String>> = r
        .bases
        .iter()
        .map(|b| {
            vec![
                format!("{}{}", "  ".repeat(depth(b.number)), b.number),
                b.parent.map_or("-".into(), |p| p.to_string()),
                b.images.len().to_string(),
                count(b.entries),
                bytes(b.layer_bytes),
                bytes(b.saves_bytes),
            ]
        })
        .collect();
    table(
        &["base", "from", "images", "entries", "layer", "saves"],
        &rows,
    )
}

fn base_details(b: &cairn_engine::PlanBase) -> String {
    let mut out = wrap(&format!("Base {}: {}", b.number, b.images.join(", ")), "  ");
    let prefixes: Vec<String> = b
        .prefixes
        .iter()
        .take(6)
        .map(|p| format!("{}{KEEP}{}", p.prefix, bytes(p.bytes).replace(' ', KEEP)))
        .collect();
    out += &wrap(&format!("  holds {}", prefixes.join(", ")), "    ");
    if !b.packages.is_empty() {
        const LISTED: usize = 12;
        let mut listed = b.packages[..b.packages.len().min(LISTED)].join(", ");
        if b.packages.len() > LISTED {
            listed += &format!(", and {} more", b.packages.len() - LISTED);
        }
        out += &wrap(
            &format!("  {} packages: {listed}", b.packages.len()),
            "    ",
        );
    }
    out
}

fn signed_bytes(n: i64) -> String {
    if n < 0 {
        format!("-{}", bytes(n.unsigned_abs()))
    } else {
        bytes(n as u64)
    }
}

/// Wraps `text` at word boundaries to `WIDTH` columns; the first line keeps `text`'s leading
/// spaces, continuation lines start with `indent`.
fn wrap(text: &str, indent: &str) -> String {
    let body = text.trim_start_matches(' ');
    let mut out = String::new();
    let mut line = text[..text.len() - body.len()].to_string();
    let mut empty = true;
    for word in body.split(' ').filter(|w| !w.is_empty()) {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out += &line;
            out.push('\n');
            line = indent.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out += &line;
    out.push('\n');
    out.replace(KEEP, " ")
}

#[cfg(test)]
mod tests {
    use super::{wrap, KEEP};

    #[test]
    fn wraps_within_the_width() {
        let text = format!("{}a{KEEP}b", "word ".repeat(40));
        let wrapped = wrap(&text, "  ");
        assert!(wrapped.lines().count() > 2);
        assert!(wrapped.lines().all(|l| l.chars().count() <= super::WIDTH));
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("  ")));
        assert!(wrapped.lines().any(|l| l.ends_with(" a b")));
    }
}
