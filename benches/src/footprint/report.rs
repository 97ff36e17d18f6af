//! What the footprint bench measured, and its three renderings: a Markdown table (printed and
//! written to `report.md`), JSON (`report.json`, every byte count exact) and a grouped bar
//! chart (`footprint.svg`, hand-written SVG).

use crate::harness::machine::Machine;
use crate::harness::measure::Usage;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub old: String,
    pub new: String,
    pub old_layers: usize,
    pub new_layers: usize,
    /// Uncompressed tar bytes of all layers of each image.
    pub old_tar_bytes: u64,
    pub new_tar_bytes: u64,
    pub machine: Machine,
    /// How the cairn rows ran: the `cairn` binary's path, or in-process.
    pub cairn: String,
    /// `None` when `--peers` was not given.
    pub peers: Option<Peers>,
    pub rows: Vec<Row>,
    /// The cairn row's convert of the old image against the machine's limit for it.
    pub limits: Option<Limits>,
    /// The store after `cairn optimize` and the reads before and after (`cold.rs`).
    pub cold: Option<super::cold::Cold>,
    pub notes: Vec<String>,
}

/// `cairn-bench limits`'s figures for the old image, measured in this run.
#[derive(Debug, Serialize)]
pub struct Limits {
    /// Tar bytes / (the stages' CPU seconds alone / cores).
    pub pipeline_limit_mbps: f64,
    /// The cairn row's old step (into an empty store: new data), in MB/s of tar.
    pub convert_mbps: f64,
    pub convert_ratio: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Peers {
    /// Tool and version of each peer that ran.
    pub ran: Vec<String>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub tool: String,
    pub reason: String,
}

/// One storage scheme.
#[derive(Debug, Serialize)]
pub struct Row {
    pub id: String,
    pub label: String,
    /// `content`: file or chunk data only; `everything`: every byte on disk, metadata included.
    pub counts: String,
    pub after_old_bytes: Option<u64>,
    pub after_old_and_new_bytes: Option<u64>,
    pub new_adds_bytes: u64,
    pub new_adds_percent_of_old: Option<f64>,
    /// Sums over the row's steps (`None` when the row was not measured on its own).
    pub wall_s: Option<f64>,
    pub cpu_s: Option<f64>,
    /// Uncompressed tar bytes of the images the steps took in, per wall second, in MB/s.
    pub tar_mb_per_s: Option<f64>,
    pub max_rss_mib: Option<f64>,
    pub steps: Vec<StepReport>,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    /// `old` or `new`.
    pub image: String,
    pub tar_bytes: u64,
    /// Size of the row's directory once this step was done.
    pub bytes_after: u64,
    pub usage: Usage,
}

impl Row {
    /// A row from its measured steps: `old` then `new`, or `new` alone.
    pub fn from_steps(
        id: &str,
        label: String,
        counts: &str,
        steps: Vec<StepReport>,
        note: Option<String>,
    ) -> Row {
        let wall: f64 = steps.iter().map(|s| s.usage.wall_s).sum();
        let cpu: f64 = steps.iter().map(|s| s.usage.cpu_s).sum();
        let tar: u64 = steps.iter().map(|s| s.tar_bytes).sum();
        let rss = steps.iter().map(|s| s.usage.max_rss_kib).max().unwrap_or(0);
        let (after_old, after_both, adds) = match steps.as_slice() {
            [old, new] => (
                Some(old.bytes_after),
                Some(new.bytes_after),
                new.bytes_after.saturating_sub(old.bytes_after),
            ),
            [alone] => (None, None, alone.bytes_after),
            _ => (None, None, 0),
        };
        Row {
            id: id.into(),
            label,
            counts: counts.into(),
            after_old_bytes: after_old,
            after_old_and_new_bytes: after_both,
            new_adds_bytes: adds,
            new_adds_percent_of_old: after_old.map(|o| percent(adds, o)),
            wall_s: Some(wall),
            cpu_s: Some(cpu),
            tar_mb_per_s: (wall > 0.0).then(|| tar as f64 / 1e6 / wall),
            max_rss_mib: Some(rss as f64 / 1024.0),
            steps,
            note,
        }
    }

    /// A row of sizes only (measured as part of another row).
    pub fn sizes_only(
        id: &str,
        label: String,
        counts: &str,
        old: u64,
        both: u64,
        note: String,
    ) -> Row {
        let adds = both.saturating_sub(old);
        Row {
            id: id.into(),
            label,
            counts: counts.into(),
            after_old_bytes: Some(old),
            after_old_and_new_bytes: Some(both),
            new_adds_bytes: adds,
            new_adds_percent_of_old: Some(percent(adds, old)),
            wall_s: None,
            cpu_s: None,
            tar_mb_per_s: None,
            max_rss_mib: None,
            steps: Vec::new(),
            note: Some(note),
        }
    }
}

pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn opt<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map(show).unwrap_or_else(|| "-".into())
}

/// The table alone (Markdown).
pub fn table(report: &Report) -> String {
    let mut out = String::from(
        "| storage | counts | after old | after old+new | new adds | % of old | wall s | CPU s | MB/s of tar | peak RSS MiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &report.rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.label.replace('|', "\\|"),
            r.counts,
            opt(r.after_old_bytes, mb),
            opt(r.after_old_and_new_bytes, mb),
            mb(r.new_adds_bytes),
            opt(r.new_adds_percent_of_old, |p| format!("{p:.1} %")),
            opt(r.wall_s, |s| format!("{s:.2}")),
            opt(r.cpu_s, |s| format!("{s:.2}")),
            opt(r.tar_mb_per_s, |s| format!("{s:.1}")),
            opt(r.max_rss_mib, |s| format!("{s:.0}")),
        );
    }
    if let Some(l) = &report.limits {
        out += &format!(
            "\ncairn convert of old (new data): {:.1} MB/s of tar, {:.2} of the pipeline limit \
             {:.1} MB/s (each stage alone, `cairn-bench limits`)\n",
            l.convert_mbps, l.convert_ratio, l.pipeline_limit_mbps
        );
    }
    out
}

/// `report.md`: inputs, machine, the table, what each row is.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from("# cairn footprint\n\n");
    out += &format!(
        "- old: `{}` ({} layers, {} MB of tar)\n- new: `{}` ({} layers, {} MB of tar)\n",
        report.old,
        report.old_layers,
        mb(report.old_tar_bytes),
        report.new,
        report.new_layers,
        mb(report.new_tar_bytes)
    );
    out += &format!(
        "- machine: {} CPUs ({}), {:.1} GiB; load average {:.2} at the start, {:.2} at the end\n\
         - cairn rows ran with: {}\n",
        report.machine.cpus,
        report.machine.cpu_model,
        report.machine.memory_bytes as f64 / (1u64 << 30) as f64,
        report.machine.load_average_start,
        report.machine.load_average_end,
        report.cairn
    );
    match &report.peers {
        None => out += "- peers: not requested (`--peers`)\n",
        Some(p) => {
            out += &format!(
                "- peers that ran: {}\n",
                if p.ran.is_empty() {
                    "none".into()
                } else {
                    p.ran.join(", ")
                }
            );
            for s in &p.skipped {
                out += &format!("- skipped {}: {}\n", s.tool, s.reason);
            }
        }
    }
    out += "\nMB = 10^6 bytes. \"new adds\" is what storing new after old costs; % of old is of \
            the same row's \"after old\". Times are GNU time's for the row's child processes \
            (old step + new step); MB/s is uncompressed tar bytes taken in per wall second; \
            peak RSS is the larger of the two steps.\n\n";
    out += &table(report);
    out += "\n";
    for r in &report.rows {
        if let Some(note) = &r.note {
            out += &format!("- {}: {}\n", r.label, note);
        }
    }
    if !report.notes.is_empty() {
        out += "\n";
        for n in &report.notes {
            out += &format!("- {n}\n");
        }
    }
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `footprint.svg`: per row, a bar for "after old" and one for "new adds", on one MB scale.
pub fn svg(report: &Report) -> String {
    const WIDTH: f64 = 1100.0;
    const LABEL_W: f64 = 470.0;
    const BAR_AREA: f64 = 520.0;
    const BAR_H: f64 = 14.0;
    const ROW_H: f64 = 40.0;
    const TOP: f64 = 56.0;
    const OLD_COLOR: &str = "#4e79a7";
    const ADDS_COLOR: &str = "#f28e2b";
    let max = report
        .rows
        .iter()
        .flat_map(|r| [r.after_old_bytes.unwrap_or(0), r.new_adds_bytes])
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let height = TOP + ROW_H * report.rows.len() as f64 + 20.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n\
         <rect x=\"{LABEL_W}\" y=\"32\" width=\"12\" height=\"12\" fill=\"{OLD_COLOR}\"/>\
         <text x=\"{}\" y=\"43\">after old (MB)</text>\n\
         <rect x=\"{}\" y=\"32\" width=\"12\" height=\"12\" fill=\"{ADDS_COLOR}\"/>\
         <text x=\"{}\" y=\"43\">new adds (MB)</text>\n",
        xml_escape(&format!(
            "Storage footprint: {} then {}",
            report.old, report.new
        )),
        LABEL_W + 18.0,
        LABEL_W + 130.0,
        LABEL_W + 148.0,
    );
    for (i, r) in report.rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        out += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            LABEL_W - 8.0,
            y + BAR_H + 4.0,
            xml_escape(&r.label)
        );
        for (k, (value, color)) in [
            (r.after_old_bytes, OLD_COLOR),
            (Some(r.new_adds_bytes), ADDS_COLOR),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(value) = value else { continue };
            let by = y + k as f64 * (BAR_H + 2.0);
            let w = (value as f64 / max * BAR_AREA).max(1.0);
            out += &format!(
                "<rect x=\"{LABEL_W}\" y=\"{by}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{color}\"/>\
                 <text x=\"{:.1}\" y=\"{}\">{}</text>\n",
                LABEL_W + w + 4.0,
                by + BAR_H - 3.0,
                mb(value)
            );
        }
    }
    out += "</svg>\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(image: &str, bytes_after: u64) -> StepReport {
        StepReport {
            image: image.into(),
            tar_bytes: 10_000_000,
            bytes_after,
            usage: Usage {
                wall_s: 2.0,
                cpu_s: 3.0,
                max_rss_kib: 2048,
            },
        }
    }

    fn sample() -> Report {
        Report {
            old: "oci:a:v1".into(),
            new: "oci:a:v2".into(),
            old_layers: 3,
            new_layers: 3,
            old_tar_bytes: 10_000_000,
            new_tar_bytes: 10_000_000,
            machine: Machine {
                cpus: 2,
                cpu_model: "test".into(),
                memory_bytes: 1 << 30,
                load_average_start: 0.5,
                load_average_end: 1.5,
            },
            cairn: "in-process".into(),
            peers: None,
            rows: vec![
                Row::from_steps(
                    "a",
                    "A <&> | B".into(),
                    "content",
                    vec![step("old", 4_000_000), step("new", 5_000_000)],
                    None,
                ),
                Row::from_steps(
                    "b",
                    "alone".into(),
                    "everything",
                    vec![step("new", 3_000_000)],
                    None,
                ),
            ],
            limits: Some(Limits {
                pipeline_limit_mbps: 200.0,
                convert_mbps: 150.0,
                convert_ratio: 0.75,
            }),
            cold: None,
            notes: vec![],
        }
    }

    #[test]
    fn rows_and_renderings() {
        let report = sample();
        let a = &report.rows[0];
        assert_eq!(a.new_adds_bytes, 1_000_000);
        assert_eq!(a.new_adds_percent_of_old, Some(25.0));
        assert_eq!(a.tar_mb_per_s, Some(5.0));
        assert_eq!(a.max_rss_mib, Some(2.0));
        let b = &report.rows[1];
        assert_eq!((b.after_old_bytes, b.new_adds_bytes), (None, 3_000_000));

        let md = markdown(&report);
        assert!(md.contains(
            "| A <&> \\| B | content | 4.0 | 5.0 | 1.0 | 25.0 % | 4.00 | 6.00 | 5.0 | 2 |"
        ));
        assert!(md.contains("| alone | everything | - | - | 3.0 | - |"));
        assert!(md.contains("150.0 MB/s of tar, 0.75 of the pipeline limit 200.0 MB/s"));
        let svg = svg(&report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("A &lt;&amp;&gt; | B"));
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 3);
    }
}
