//! What the bundle bench measured: the rows (what each scheme ships for OLD alone and for NEW
//! to a receiver holding OLD), what NEW adds to a cairn store, issue 16's three goals checked
//! against the figures, and the table (at most 100 columns; sizes in MB, exact bytes in JSON).

use crate::harness::machine::Machine;
use crate::harness::measure::Usage;
use serde::Serialize;

/// The goal: v2's incremental bundle at most this many times what v2 adds to a cairn store.
pub const ADDS_RATIO_GOAL: f64 = 1.1;
/// The goal: creating the incremental bundle at least this many times faster than squashfs.
pub const SQUASHFS_SPEED_GOAL: f64 = 5.0;
/// GNU time's resolution: a wall time below it is taken as it in ratios.
const TIME_RESOLUTION_S: f64 = 0.01;

#[derive(Debug, Serialize)]
pub struct Report {
    pub old: String,
    pub new: String,
    pub machine: Machine,
    /// The `cairn` binary that ran the cairn row.
    pub cairn: String,
    /// Versions of the other tools (GNU tar, mksquashfs).
    pub tools: Vec<String>,
    pub rows: Vec<Row>,
    pub cairn_store: CairnStore,
    pub goals: Vec<Goal>,
    /// Rows not run, and why.
    pub skipped: Vec<String>,
}

/// One scheme: what it ships for OLD alone, and for NEW to a receiver that holds OLD.
#[derive(Debug, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub label: &'static str,
    /// How the row is produced and what its import does.
    pub how: String,
    pub full: Shipment,
    pub incremental: Shipment,
    /// Measured steps the sender runs before creating (converting, unpacking), not counted
    /// in the create times.
    pub prepare: Vec<Prepared>,
}

#[derive(Debug, Serialize)]
pub struct Prepared {
    pub step: String,
    pub usage: Usage,
}

/// One file shipped: its size, the measured step that made it and the one that took it in.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Shipment {
    pub bytes: u64,
    pub create: Usage,
    pub import: Usage,
}

/// What each step added to the sender's and the receiver's cairn stores: `du -sb` of their
/// `blobs`, `layers` and `bootstraps` after the step minus before it.
#[derive(Debug, Serialize)]
pub struct CairnStore {
    /// Converting OLD into the empty sender store.
    pub sender_old_adds_bytes: u64,
    /// Converting NEW (`--dict old`) after it: the figure the incremental bundle is held to.
    pub sender_new_adds_bytes: u64,
    /// Importing the full bundle into an empty store, then the incremental one.
    pub receiver_full_adds_bytes: u64,
    pub receiver_incremental_adds_bytes: u64,
}

/// One of issue 16's goals: what was measured, and whether it is met (`None`: not measured).
#[derive(Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: Option<bool>,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn row<'a>(report: &'a Report, id: &str) -> Option<&'a Row> {
    report.rows.iter().find(|r| r.id == id)
}

/// Checks the three goals against the rows; the cairn row must be there.
pub fn goals(rows: &[Row], store: &CairnStore) -> Vec<Goal> {
    let Some(cairn) = rows.iter().find(|r| r.id == super::CAIRN) else {
        return Vec::new();
    };
    let incremental = cairn.incremental;
    let ratio = incremental.bytes as f64 / store.sender_new_adds_bytes.max(1) as f64;
    let mut goals = vec![Goal {
        goal: format!("incr bundle / what NEW adds to a cairn store <= {ADDS_RATIO_GOAL}"),
        measured: format!(
            "{} B / {} B = {ratio:.3}",
            incremental.bytes, store.sender_new_adds_bytes
        ),
        met: Some(ratio <= ADDS_RATIO_GOAL),
    }];
    let others: Vec<&Row> = rows.iter().filter(|r| r.id != super::CAIRN).collect();
    let smallest = others.iter().min_by_key(|r| r.incremental.bytes);
    goals.push(Goal {
        goal: "incr bundle the smallest incr".into(),
        measured: match smallest {
            Some(r) => format!(
                "{} B vs {} B ({})",
                incremental.bytes, r.incremental.bytes, r.id
            ),
            None => "no other row ran".into(),
        },
        met: smallest.map(|r| incremental.bytes < r.incremental.bytes),
    });
    let squashfs = others.iter().find(|r| r.id == super::SQUASHFS);
    let cairn_s = incremental.create.wall_s.max(TIME_RESOLUTION_S);
    goals.push(Goal {
        goal: format!("squashfs incr create s / bundle's >= {SQUASHFS_SPEED_GOAL}"),
        measured: match squashfs {
            Some(r) => format!(
                "{:.2} / {:.2} = {:.1}",
                r.incremental.create.wall_s,
                incremental.create.wall_s,
                r.incremental.create.wall_s / cairn_s
            ),
            None => "not measured (no squashfs row)".into(),
        },
        met: squashfs.map(|r| r.incremental.create.wall_s / cairn_s >= SQUASHFS_SPEED_GOAL),
    });
    goals
}

/// The table, the store line, the goals and the notes, for the terminal and `report.md`.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 7]| {
        out.push_str(&format!(
            "| {:<22} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        ));
    };
    line(
        &mut out,
        [
            "scheme", "full MB", "create s", "import s", "incr MB", "create s", "import s",
        ],
    );
    out.push_str(&format!(
        "|{:-<24}|{:->9}:|{:->9}:|{:->9}:|{:->9}:|{:->9}:|{:->9}:|\n",
        "", "", "", "", "", "", ""
    ));
    for r in &report.rows {
        let cell = |s: &Shipment| {
            [
                format!("{:.1}", mb(s.bytes)),
                format!("{:.2}", s.create.wall_s),
                format!("{:.2}", s.import.wall_s),
            ]
        };
        let [a, b, c] = cell(&r.full);
        let [d, e, f] = cell(&r.incremental);
        line(&mut out, [r.label, &a, &b, &c, &d, &e, &f]);
    }
    out.push_str(
        "\nfull: OLD to an empty receiver; incr: NEW to a receiver holding OLD; wall seconds.\n",
    );
    let store = &report.cairn_store;
    out.push_str(&format!(
        "\ncairn stores (blobs, layers, bootstraps; du -sb): OLD adds {:.1} MB to the sender, \
         NEW {:.1} MB;\nimporting the bundles adds {:.1} MB, then {:.1} MB to the receiver.\n",
        mb(store.sender_old_adds_bytes),
        mb(store.sender_new_adds_bytes),
        mb(store.receiver_full_adds_bytes),
        mb(store.receiver_incremental_adds_bytes),
    ));
    out.push_str("\nGoals (issue 16):\n");
    for g in &report.goals {
        let met = match g.met {
            Some(true) => ": yes",
            Some(false) => ": NO",
            None => "",
        };
        out.push_str(&format!("- {}: {}{met}\n", g.goal, g.measured));
    }
    for skipped in &report.skipped {
        out.push_str(&format!("\nskipped: {skipped}\n"));
    }
    if row(report, super::CAIRN).is_none() {
        out.push_str("\n(no cairn row)\n");
    }
    out
}

/// `report.md`: the inputs, the machine, the table, how each row was made and the steps the
/// senders ran before creating.
pub fn markdown(report: &Report) -> String {
    let m = &report.machine;
    let mut out = format!(
        "# Offline bundles\n\nOLD `{}`, NEW `{}`; {} CPUs ({}), {:.1} GiB, load average {:.2} \
         at the start, {:.2} at the end; {}.\n\n",
        report.old,
        report.new,
        m.cpus,
        m.cpu_model,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        m.load_average_start,
        m.load_average_end,
        report.tools.join(", "),
    );
    out.push_str(&table(report));
    out.push_str("\nHow each row is made:\n");
    for r in &report.rows {
        out.push_str(&format!("- {}: {}\n", r.label, r.how));
        for p in &r.prepare {
            out.push_str(&format!(
                "  - before creating (not counted): {}, {:.2} s\n",
                p.step, p.usage.wall_s
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipment(bytes: u64, create: f64) -> Shipment {
        let usage = |wall_s| Usage {
            wall_s,
            cpu_s: wall_s,
            max_rss_kib: 1,
        };
        Shipment {
            bytes,
            create: usage(create),
            import: usage(0.5),
        }
    }

    /// A report of made-up figures, every size times `scale`.
    fn sample(squashfs_create: f64, scale: u64) -> Report {
        let row = |id, label, full, incremental| Row {
            id,
            label,
            how: String::new(),
            full,
            incremental,
            prepare: Vec::new(),
        };
        let mut rows = vec![
            row(
                super::super::CAIRN,
                "cairn bundle",
                shipment(70_000_000, 1.0),
                shipment(16_500_000, 0.2),
            ),
            row(
                "docker-save",
                "docker save (gzip)",
                shipment(71_000_000, 0.3),
                shipment(72_000_000, 0.3),
            ),
            row(
                super::super::SQUASHFS,
                "squashfs zstd-15",
                shipment(99_999_999, 123.45),
                shipment(99_000_000, squashfs_create),
            ),
        ];
        for r in &mut rows {
            r.full.bytes *= scale;
            r.incremental.bytes *= scale;
        }
        let cairn_store = CairnStore {
            sender_old_adds_bytes: 69_900_000 * scale,
            sender_new_adds_bytes: 16_400_000 * scale,
            receiver_full_adds_bytes: 69_900_000 * scale,
            receiver_incremental_adds_bytes: 16_400_000 * scale,
        };
        Report {
            old: "oci:a:v1".into(),
            new: "oci:a:v2".into(),
            machine: crate::harness::machine::machine(0.0),
            cairn: "cairn".into(),
            tools: Vec::new(),
            goals: goals(&rows, &cairn_store),
            rows,
            cairn_store,
            skipped: vec!["squashfs: mksquashfs not found".into()],
        }
    }

    #[test]
    fn goals_follow_the_figures() {
        let met: Vec<_> = sample(1.5, 1).goals.iter().map(|g| g.met).collect();
        assert_eq!(met, [Some(true), Some(true), Some(true)]);
        // 0.9 s is 4.5 times 0.2 s: short of 5.
        assert_eq!(sample(0.9, 1).goals[2].met, Some(false));
        let mut report = sample(1.0, 1);
        report.rows.retain(|r| r.id != super::super::SQUASHFS);
        let goals = goals(&report.rows, &report.cairn_store);
        assert_eq!(goals[2].met, None);
        assert_eq!(goals[1].met, Some(true));
    }

    #[test]
    fn the_table_fits_100_columns() {
        let text = table(&sample(1.5, 1));
        assert!(text.contains("| cairn bundle "), "{text}");
        assert!(text.contains("16.5"), "{text}");
        // Sizes of 100 GB and more still fit.
        for scale in [1, 1000] {
            let text = table(&sample(1.5, scale));
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 100,
                    "{} columns: {line}",
                    line.len()
                );
            }
        }
    }
}
