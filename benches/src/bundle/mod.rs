//! `cairn-bench bundle`: what shipping OLD, then NEW to a site that holds OLD, costs offline in
//! each scheme (issue 16): bytes shipped, create and import time, side by side in one run.
//!
//! - cairn bundle: the `cairn` binary (`--cairn`, else the one next to cairn-bench) converts
//!   OLD, then NEW `--dict old`, into a sender store; `bundle create old` is the full bundle,
//!   `bundle create new --have old` the incremental one; both are imported in turn into a fresh
//!   receiving store.
//! - docker save: the image's layer blobs as stored (gzip), config and manifest in one tar
//!   (`tars.rs`); NEW is shipped whole again.
//! - layer digests (image-transmit's tar mode): the same archive for OLD; for NEW only the
//!   layers whose digest OLD lacks.
//! - squashfs (image-transmit's squashfs mode): each image's layers unpacked into
//!   `layers/<digest>/`, `mksquashfs` with zstd; the incremental image holds both versions;
//!   import is `unsquashfs`. Skipped when squashfs-tools is missing.
//!
//! Every create and import is a child process under GNU time (`footprint/measure.rs`), run
//! after a `sync`; the steps this binary does itself run as `cairn-bench internal
//! image-tar|tar-import|unpack-layers`. `report.rs` checks the goals and renders the table.

pub mod report;
pub mod tars;

use crate::harness::machine::{load_average, machine};
use crate::harness::measure::{cairn_binary, check_gnu_time, find_on_path, Step, Usage};
use crate::harness::sizes::du_sb;
use crate::harness::work::{prepare_work, write_reports};
use anyhow::{bail, Context, Result};
use report::{CairnStore, Prepared, Report, Row, Shipment};
use std::path::{Path, PathBuf};

pub const CAIRN: &str = "cairn-bundle";
pub const SQUASHFS: &str = "squashfs";

/// What the `bundle` command was asked.
pub struct Options {
    pub old: String,
    pub new: String,
    /// Where `report.md` and `report.json` go; the scratch directory is `OUT/work`.
    pub out: PathBuf,
    pub keep_work: bool,
    pub cairn: Option<PathBuf>,
}

struct Bench {
    this: PathBuf,
    cairn: PathBuf,
    work: PathBuf,
    old: String,
    new: String,
}

impl Bench {
    /// Measures `step` after `sync`, so that it does not pay for the writeback of the files
    /// the steps before it wrote.
    fn measure(&self, what: &str, step: Step) -> Result<Usage> {
        eprintln!("bundle: {what}");
        Step::new("sync").run()?;
        let (usage, _) = step.measure(&self.work).with_context(|| what.to_string())?;
        Ok(usage)
    }

    fn cairn(&self, store: &Path) -> Step {
        Step::new(&self.cairn)
            .arg("--store")
            .arg(store)
            .arg("--quiet")
    }

    fn internal(&self, what: &str) -> Step {
        Step::new(&self.this).arg("internal").arg(what)
    }

    fn file_bytes(&self, name: &str) -> Result<u64> {
        let path = self.work.join(name);
        Ok(std::fs::metadata(&path)
            .with_context(|| format!("stat {}", path.display()))?
            .len())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.work.join(name);
        std::fs::remove_dir_all(&path).with_context(|| format!("remove {}", path.display()))
    }
}

pub fn run(options: &Options) -> Result<Report> {
    let load_average_start = load_average();
    check_gnu_time()?;
    let tar_version = first_line(Step::new("tar").arg("--version"));
    if !tar_version.contains("GNU tar") {
        bail!("`tar` is not GNU tar; the tar and squashfs rows need it");
    }
    let cairn = cairn_binary(options.cairn.as_deref())?;
    // Read every layer once, so the first row does not pay for a cold page cache.
    for source in [&options.old, &options.new] {
        for layer in crate::harness::image::layers(source)? {
            std::io::copy(&mut layer.open_stored()?, &mut std::io::sink())?;
        }
    }
    let work = prepare_work(&options.out.join("work"))?;
    let bench = Bench {
        this: std::env::current_exe().context("locate cairn-bench")?,
        cairn: cairn.clone(),
        work: work.clone(),
        old: options.old.clone(),
        new: options.new.clone(),
    };
    let mut tools = vec![first_line(Step::new(&cairn).arg("--version")), tar_version];
    let mut skipped = Vec::new();
    let (cairn_row, cairn_store) = cairn_row(&bench)?;
    let mut rows = vec![cairn_row];
    rows.extend(tar_rows(&bench)?);
    match (find_on_path("mksquashfs"), find_on_path("unsquashfs")) {
        (Some(mksquashfs), Some(unsquashfs)) => {
            tools.push(first_line(Step::new(&mksquashfs).arg("-version")));
            rows.push(squashfs_row(&bench, &mksquashfs, &unsquashfs)?);
        }
        _ => skipped.push(
            "squashfs: mksquashfs or unsquashfs not on PATH (squashfs-tools; .ci/setup \
             installs it)"
                .to_string(),
        ),
    }
    let report = Report {
        old: options.old.clone(),
        new: options.new.clone(),
        machine: machine(load_average_start),
        cairn: cairn.display().to_string(),
        tools,
        goals: report::goals(&rows, &cairn_store),
        rows,
        cairn_store,
        skipped,
    };
    write_reports(
        &options.out,
        &[
            ("report.md", report::markdown(&report).into_bytes()),
            ("report.json", serde_json::to_vec_pretty(&report)?),
        ],
    )?;
    if options.keep_work {
        eprintln!("bundle: work directory kept: {}", work.display());
    } else {
        std::fs::remove_dir_all(&work).with_context(|| format!("remove {}", work.display()))?;
    }
    Ok(report)
}

/// The first line a tool prints (its version), or "" when it cannot run.
fn first_line(step: Step) -> String {
    let out = step.run().unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    text.lines().next().unwrap_or("").trim().to_string()
}

/// `du -sb` of a cairn store's content: its blobs, layer objects and bootstraps.
fn store_content(store: &Path) -> Result<u64> {
    let mut total = 0;
    for dir in ["blobs", "layers", "bootstraps"] {
        let path = store.join(dir);
        if path.exists() {
            total += du_sb(&path)?;
        }
    }
    Ok(total)
}

/// Runs `step` and returns what it added to the content of `store`.
fn adds(store: &Path, step: impl FnOnce() -> Result<Usage>) -> Result<(Usage, u64)> {
    let before = store_content(store)?;
    let usage = step()?;
    Ok((usage, store_content(store)?.saturating_sub(before)))
}

fn cairn_row(bench: &Bench) -> Result<(Row, CairnStore)> {
    let (sender, receiver) = (bench.work.join("sender"), bench.work.join("receiver"));
    bench.cairn(&sender).arg("init").run()?;
    let (convert_old, sender_old_adds_bytes) = adds(&sender, || {
        let step = bench.cairn(&sender).arg("convert").arg(&bench.old);
        bench.measure("cairn convert OLD", step.args(["--name", "old"]))
    })?;
    let (convert_new, sender_new_adds_bytes) = adds(&sender, || {
        let step = bench.cairn(&sender).arg("convert").arg(&bench.new);
        let step = step.args(["--name", "new", "--dict", "old"]);
        bench.measure("cairn convert NEW --dict old", step)
    })?;
    let create = |what: &str, args: &[&str], file: &str| {
        let step = bench.cairn(&sender).arg("bundle").arg("create").args(args);
        bench.measure(what, step.arg("-o").arg(bench.work.join(file)))
    };
    let full_create = create("cairn bundle create old", &["old"], "old.cairn")?;
    let incremental_create = create(
        "cairn bundle create new --have old",
        &["new", "--have", "old"],
        "new-have-old.cairn",
    )?;
    bench.cairn(&receiver).arg("init").run()?;
    let import = |what: &str, file: &str| {
        adds(&receiver, || {
            let step = bench.cairn(&receiver).arg("bundle").arg("import");
            bench.measure(what, step.arg(bench.work.join(file)))
        })
    };
    let (full_import, receiver_full_adds_bytes) = import("cairn bundle import old", "old.cairn")?;
    let (incremental_import, receiver_incremental_adds_bytes) =
        import("cairn bundle import new", "new-have-old.cairn")?;
    let row = Row {
        id: CAIRN,
        label: "cairn bundle",
        how: "the cairn binary: convert OLD, then NEW --dict old, into a sender store; full: \
              `bundle create old`; incremental: `bundle create new --have old`; import: `bundle \
              import` of each in turn into a fresh store"
            .into(),
        full: Shipment {
            bytes: bench.file_bytes("old.cairn")?,
            create: full_create,
            import: full_import,
        },
        incremental: Shipment {
            bytes: bench.file_bytes("new-have-old.cairn")?,
            create: incremental_create,
            import: incremental_import,
        },
        prepare: vec![
            prepared("cairn convert OLD", convert_old),
            prepared("cairn convert NEW --dict old", convert_new),
        ],
    };
    for dir in ["sender", "receiver"] {
        bench.remove(dir)?;
    }
    let store = CairnStore {
        sender_old_adds_bytes,
        sender_new_adds_bytes,
        receiver_full_adds_bytes,
        receiver_incremental_adds_bytes,
    };
    Ok((row, store))
}

fn prepared(step: &str, usage: Usage) -> Prepared {
    Prepared {
        step: step.into(),
        usage,
    }
}

/// The docker save and the layer-digest rows: one archive of OLD serves both as the full
/// shipment.
fn tar_rows(bench: &Bench) -> Result<[Row; 2]> {
    let image_tar = |what: &str, source: &str, file: &str, receiver_has: Option<&str>| {
        let step = bench.internal("image-tar").args(["--source", source]);
        let step = step.arg("--out").arg(bench.work.join(file));
        let step = match receiver_has {
            Some(old) => step.args(["--receiver-has", old]),
            None => step,
        };
        bench.measure(what, step)
    };
    let import = |what: &str, file: &str, dir: &str| {
        let step = bench.internal("tar-import").arg("--archive");
        let step = step.arg(bench.work.join(file)).arg("--dir");
        bench.measure(what, step.arg(bench.work.join(dir)))
    };
    let old_create = image_tar("docker save OLD", &bench.old, "old.tar", None)?;
    let new_create = image_tar("docker save NEW", &bench.new, "new.tar", None)?;
    let layers_create = image_tar(
        "NEW's layers that OLD lacks",
        &bench.new,
        "new-layers.tar",
        Some(&bench.old),
    )?;
    let full = Shipment {
        bytes: bench.file_bytes("old.tar")?,
        create: old_create,
        import: import("docker load OLD", "old.tar", "tar-receiver")?,
    };
    let new_import = import("docker load NEW", "new.tar", "tar-receiver")?;
    bench.remove("tar-receiver")?;
    // The layer-digest row's receiver: OLD imported as above (not measured again).
    tars::tar_import(
        &bench.work.join("old.tar"),
        &bench.work.join("tar-receiver"),
    )?;
    let layers_import = import("load NEW's new layers", "new-layers.tar", "tar-receiver")?;
    bench.remove("tar-receiver")?;
    let layer_count = tars::layer_digests(&bench.new)?.len();
    let left_out = layer_count - count_layers(&bench.work.join("new-layers.tar"))?;
    Ok([
        Row {
            id: "docker-save",
            label: "docker save (gzip)",
            how: "a tar of the image's layer blobs as stored (gzip), config, manifest, \
                  index.json and Docker's manifest.json (`cairn-bench internal image-tar`); \
                  incremental: NEW whole again; import: read the tar through, gunzip and GNU \
                  tar -x each layer the receiver lacks into layers/<digest>/"
                .into(),
            full,
            incremental: Shipment {
                bytes: bench.file_bytes("new.tar")?,
                create: new_create,
                import: new_import,
            },
            prepare: Vec::new(),
        },
        Row {
            id: "layer-digest",
            label: "layer-digest tar",
            how: format!(
                "full: the docker save row's archive of OLD (same figures); incremental: the \
                 same archive of NEW without the layers whose digest OLD has ({left_out} of \
                 {layer_count} left out); import as the docker save row"
            ),
            full,
            incremental: Shipment {
                bytes: bench.file_bytes("new-layers.tar")?,
                create: layers_create,
                import: layers_import,
            },
            prepare: Vec::new(),
        },
    ])
}

/// The layer blobs an archive of `image_tar` holds (every blob but the manifest and config).
fn count_layers(archive: &Path) -> Result<usize> {
    let file = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(file);
    let mut blobs = 0;
    for entry in tar.entries()? {
        blobs += usize::from(entry?.path_bytes().starts_with(b"blobs/"));
    }
    Ok(blobs.saturating_sub(2))
}

fn squashfs_row(bench: &Bench, mksquashfs: &Path, unsquashfs: &Path) -> Result<Row> {
    let tree = bench.work.join("squashfs-tree");
    let unpack = |what: &str, source: &str| {
        let step = bench.internal("unpack-layers").args(["--source", source]);
        bench.measure(what, step.arg("--dir").arg(&tree))
    };
    let mksquashfs = |what: &str, file: &str| {
        let step = Step::new(mksquashfs).arg(&tree).arg(bench.work.join(file));
        let step = step.args(["-comp", "zstd", "-noappend", "-no-progress"]);
        bench.measure(what, step.discard_stdout())
    };
    let unsquashfs = |what: &str, file: &str, dir: &str| {
        let step = Step::new(unsquashfs).args(["-no-progress", "-d"]);
        let step = step.arg(bench.work.join(dir)).arg(bench.work.join(file));
        let usage = bench.measure(what, step.discard_stdout())?;
        bench.remove(dir)?;
        Ok::<_, anyhow::Error>(usage)
    };
    let unpack_old = unpack("unpack OLD's layers", &bench.old)?;
    let old_create = mksquashfs("mksquashfs OLD", "old.sqfs")?;
    let unpack_new = unpack("unpack NEW's layers beside them", &bench.new)?;
    let both_create = mksquashfs("mksquashfs OLD and NEW", "old-and-new.sqfs")?;
    bench.remove("squashfs-tree")?;
    Ok(Row {
        id: SQUASHFS,
        label: "squashfs (zstd-15)",
        how: "each layer unpacked by GNU tar into layers/<digest>/ (whiteouts stay files; \
              `cairn-bench internal unpack-layers`, in `prepare`), then `mksquashfs TREE FILE \
              -comp zstd -noappend` (zstd level 15 and 128 KiB blocks by default, every CPU); \
              incremental: one image of both versions' layers; import: `unsquashfs -d DIR` into \
              an empty directory"
            .into(),
        full: Shipment {
            bytes: bench.file_bytes("old.sqfs")?,
            create: old_create,
            import: unsquashfs("unsquashfs OLD", "old.sqfs", "unsquashed")?,
        },
        incremental: Shipment {
            bytes: bench.file_bytes("old-and-new.sqfs")?,
            create: both_create,
            import: unsquashfs("unsquashfs OLD and NEW", "old-and-new.sqfs", "unsquashed")?,
        },
        prepare: vec![
            prepared("unpack OLD's layers", unpack_old),
            prepared("unpack NEW's layers", unpack_new),
        ],
    })
}
