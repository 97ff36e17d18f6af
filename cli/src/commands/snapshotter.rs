//! `cairn snapshotter` (serve containerd's snapshots API) and `cairn snapshots` (what
//! containerd keeps in the store).

use crate::args::{Cli, JsonArg};
use crate::snapshotter_args::SnapshotterArgs;
use anyhow::Context;
use cairn_snapshotter::records::{Kind, RecordFiles};
use cairn_snapshotter::Layout;
use std::io::Write;

pub fn run(cli: &Cli, args: &SnapshotterArgs) -> anyhow::Result<()> {
    // Opening the store checks it is one, and names `cairn init` when it is not.
    drop(cairn_engine::Store::open(&cli.store)?);
    let store = std::fs::canonicalize(&cli.store)
        .with_context(|| format!("{}: no such directory", cli.store.display()))?;
    let root = match &args.root {
        Some(root) => root.clone(),
        None => store.join("snapshotter"),
    };
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    let root = std::fs::canonicalize(&root)?;
    let log = match &args.log {
        Some(log) if log.as_os_str() == "-" => None,
        Some(log) => Some(log.clone()),
        None => {
            let dir = store.join("logs");
            std::fs::create_dir_all(&dir)?;
            Some(dir.join("snapshotter.log"))
        }
    };
    if let Some(log) = &log {
        cairn_snapshotter::log_to(log).with_context(|| format!("open log {}", log.display()))?;
        eprintln!(
            "cairn snapshotter: serving on {}; log: {}",
            args.socket.display(),
            log.display()
        );
    }
    let exe = std::env::current_exe().context("find the cairn executable")?;
    let layout = Layout {
        store: store.clone(),
        root,
        mount_command: vec![exe.into(), "--store".into(), store.into()],
    };
    cairn_snapshotter::serve(layout, &args.socket)?;
    Ok(())
}

pub fn list(cli: &Cli, args: &JsonArg) -> anyhow::Result<()> {
    drop(cairn_engine::Store::open(&cli.store)?);
    let records = RecordFiles::open(&cli.store.join("snapshotter").join("records"))?.load()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
        return Ok(());
    }
    if records.is_empty() {
        writeln!(
            out,
            "no snapshots (start `cairn snapshotter` and pull with containerd)"
        )?;
        return Ok(());
    }
    for record in &records {
        let bytes = match (&record.kind, &record.image) {
            (Kind::Committed, Some(chain)) => crate::output::bytes(chain.layer_bytes),
            _ => "-".to_string(),
        };
        writeln!(out, "{} {}", record.kind.name(), shown(&record.key, 70))?;
        if !record.parent.is_empty() {
            writeln!(out, "  parent {}", shown(&record.parent, 69))?;
        }
        if let Some(chain) = &record.image {
            let image = format!("{} layer {}", chain.name, chain.top);
            writeln!(out, "  image {}  layer tar {bytes}", shown(&image, 40))?;
        }
    }
    Ok(())
}

/// `text` escaped for the terminal and shortened to `max` characters.
fn shown(text: &str, max: usize) -> String {
    crate::output::shorten(&crate::output::escape(text), max)
}
