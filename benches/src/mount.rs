//! `cairn-bench mount`: running images from a FUSE mount of the store against the unpacked
//! tree a node keeps today. Converts the images (each with the one before as dictionary) into
//! an empty store and, per image: `cairn unpack` onto the work directory's file system (ext4
//! here), then reads every file of that tree and of the mount (`tar -cf - -C DIR . | wc -c`),
//! each with the page cache dropped first (cold) and again (warm); times `cairn mount` (a
//! foreground child) to the first `stat` of its root answered by the mount, and `find DIR | wc
//! -l`; takes the mount process's peak RSS (VmHWM) after the reads. Then the disk a node needs
//! for all the images: the store, against a containerd-style directory (gzip blobs plus one
//! unpacked snapshot per layer chain), both `du -sb`. With `--start CMD`, the start of a
//! program from each image, cold and warm, from ext4 and from the mount (`start.rs`).

mod start;

use crate::harness::measure::{cairn_binary, Step};
use crate::harness::sizes::du_sb;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The goal: reading through the mount (cold frame cache) at this share of ext4's speed.
const READ_GOAL: f64 = 0.6;

#[derive(Debug, Serialize)]
pub struct ImageRow {
    pub image: String,
    pub files_listed: u64,
    pub tar_bytes: u64,
    pub mount_to_first_stat_s: f64,
    pub find_s: f64,
    /// Reading every file: the unpacked tree and the mount, page cache dropped first, then warm.
    pub ext4_cold_s: f64,
    pub ext4_warm_s: f64,
    pub mount_cold_s: f64,
    pub mount_warm_s: f64,
    pub mount_peak_rss_kib: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub images: Vec<ImageRow>,
    pub store_bytes: u64,
    pub containerd_bytes: u64,
    /// False if the page cache could not be dropped (not root): "cold" rows are then warm.
    pub cold_is_cold: bool,
    /// With `--start`: the program's start from each image.
    pub starts: Vec<start::StartRow>,
}

/// `--start`: a program started in each image, and how many rounds.
#[derive(clap::Args, Debug)]
pub struct StartOptions {
    /// A command to start in each image, cold and warm, from the unpacked tree and from the
    /// mount (chrooted into an overlayfs), e.g. `python3 -c "import pandas"` (split at blanks
    /// outside quotes; no shell runs it).
    #[arg(long = "start", value_name = "CMD")]
    pub command: Option<String>,
    /// Rounds of `--start` (the median is shown).
    #[arg(long = "start-rounds", value_name = "N", default_value_t = 3)]
    pub rounds: usize,
}

pub fn run(
    images: &[String],
    work: &Path,
    cairn: Option<&Path>,
    json: Option<&Path>,
    start: &StartOptions,
) -> Result<()> {
    let cairn = cairn_binary(cairn)?;
    crate::harness::work::fresh_dir(work)?;
    let store = work.join("store");
    let cairn_step = || Step::new(&cairn).arg("--store").arg(&store).arg("--quiet");
    cairn_step().arg("init").run()?;
    let mut report = Report {
        images: Vec::new(),
        store_bytes: 0,
        containerd_bytes: 0,
        cold_is_cold: drop_caches(),
        starts: Vec::new(),
    };
    let names: Vec<String> = (0..images.len()).map(|i| format!("image:{i}")).collect();
    for (i, source) in images.iter().enumerate() {
        eprintln!("mount bench: converting {source}");
        let mut step = cairn_step()
            .arg("convert")
            .arg(source)
            .args(["--name", &names[i]]);
        if i > 0 {
            step = step.args(["--dict", &names[i - 1]]);
        }
        step.run()?;
        crate::harness::node::containerd(&work.join("containerd"), source)?;
    }
    report.store_bytes = du_sb(&store)?;
    report.containerd_bytes = du_sb(&work.join("containerd"))?;
    for (source, name) in images.iter().zip(&names) {
        eprintln!("mount bench: reading {source}");
        let (row, started) = measure_image(&cairn, &store, source, name, work, start)?;
        report.images.push(row);
        report.starts.extend(started);
    }
    print_report(&report);
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn measure_image(
    cairn: &Path,
    store: &Path,
    source: &str,
    name: &str,
    work: &Path,
    start: &StartOptions,
) -> Result<(ImageRow, Option<start::StartRow>)> {
    let tree = work.join("unpacked");
    let mount_dir = work.join("mnt");
    std::fs::create_dir_all(&mount_dir)?;
    Step::new(cairn)
        .arg("--store")
        .arg(store)
        .args(["--quiet", "unpack", name])
        .arg(&tree)
        .run()?;
    drop_caches();
    let (ext4_cold_s, tar_bytes) = read_all(&tree)?;
    let (ext4_warm_s, _) = read_all(&tree)?;
    let start_row = match &start.command {
        Some(command) => Some(
            start::StartBench {
                cairn,
                store,
                name,
                tree: &tree,
                mount_dir: &mount_dir,
                work,
                command,
                rounds: start.rounds.max(1),
            }
            .run(source)?,
        ),
        None => None,
    };
    std::fs::remove_dir_all(&tree)?;

    drop_caches();
    let started = Instant::now();
    let mount = Mount::start(cairn, store, name, &mount_dir)?;
    let mount_to_first_stat_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let listed = shell(&format!("find {} | wc -l", quoted(&mount_dir)))?;
    let find_s = started.elapsed().as_secs_f64();
    let (mount_cold_s, mount_bytes) = read_all(&mount_dir)?;
    if mount_bytes != tar_bytes {
        bail!("{source}: the mount's tar has {mount_bytes} bytes, the unpacked tree's {tar_bytes}");
    }
    let mount_peak_rss_kib = mount.peak_rss_kib()?;
    mount.stop()?;
    // Again with the store's blobs in the page cache but a new mount (cold frame cache).
    let mount = Mount::start(cairn, store, name, &mount_dir)?;
    let (mount_warm_s, _) = read_all(&mount_dir)?;
    mount.stop()?;
    let row = ImageRow {
        image: source.to_string(),
        files_listed: listed.trim().parse().unwrap_or(0),
        tar_bytes,
        mount_to_first_stat_s,
        find_s,
        ext4_cold_s,
        ext4_warm_s,
        mount_cold_s,
        mount_warm_s,
        mount_peak_rss_kib,
    };
    Ok((row, start_row))
}

/// `tar -cf - -C dir . | wc -c`: seconds and bytes.
fn read_all(dir: &Path) -> Result<(f64, u64)> {
    let started = Instant::now();
    let out = shell(&format!("tar -cf - -C {} . | wc -c", quoted(dir)))?;
    let bytes = out.trim().parse().context("wc -c output")?;
    Ok((started.elapsed().as_secs_f64(), bytes))
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

fn shell(command: &str) -> Result<String> {
    let out = Command::new("sh").args(["-c", command]).output()?;
    if !out.status.success() {
        bail!(
            "`{command}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes back and drops the page cache; false if not allowed.
fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// A `cairn mount --foreground` child.
struct Mount {
    child: Child,
    dir: PathBuf,
}

impl Mount {
    /// Starts the mount and returns once a `stat` of its root is answered by it.
    fn start(cairn: &Path, store: &Path, name: &str, dir: &Path) -> Result<Mount> {
        let below = std::fs::metadata(dir)?.dev();
        let child = Command::new(cairn)
            .arg("--store")
            .arg(store)
            .args(["mount", name])
            .arg(dir)
            .arg("--foreground")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start cairn mount")?;
        let mut mount = Mount {
            child,
            dir: dir.to_path_buf(),
        };
        let started = Instant::now();
        while std::fs::metadata(dir)?.dev() == below {
            if let Some(status) = mount.child.try_wait()? {
                bail!("cairn mount exited: {status}");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("cairn mount: not mounted after 60 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(mount)
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"));
        let kib = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
        kib.context("VmHWM of the mount process")
    }

    /// SIGTERM: the mount unmounts and exits.
    fn stop(mut self) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("cairn mount at {} ended with {status}", self.dir.display());
        }
        Ok(())
    }
}

fn print_report(report: &Report) {
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!("| image | files | tar MB | mount to first stat s | find s | ext4 cold s | mount cold s | ratio cold | ext4 warm s | mount (warm blobs) s | ratio warm | mount peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &report.images {
        println!(
            "| {} | {} | {:.1} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.image,
            r.files_listed,
            mb(r.tar_bytes),
            r.mount_to_first_stat_s,
            r.find_s,
            r.ext4_cold_s,
            r.mount_cold_s,
            r.ext4_cold_s / r.mount_cold_s.max(1e-9),
            r.ext4_warm_s,
            r.mount_warm_s,
            r.ext4_warm_s / r.mount_warm_s.max(1e-9),
            r.mount_peak_rss_kib / 1024
        );
    }
    println!(
        "read speed through the mount / ext4 (goal {READ_GOAL}); page cache dropped for cold: {}",
        report.cold_is_cold
    );
    println!(
        "disk for all images: store {:.1} MB, containerd-style (blobs + snapshots) {:.1} MB ({:.2}x)",
        mb(report.store_bytes),
        mb(report.containerd_bytes),
        report.containerd_bytes as f64 / report.store_bytes.max(1) as f64
    );
    print_starts(&report.starts);
}

fn print_starts(rows: &[start::StartRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("| image | rounds | ext4 cold s | mount cold s | mount/ext4 cold | ext4 warm s | mount warm s | mount/ext4 warm | mount peak RSS MiB | pages left cached |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.image,
            r.rounds,
            r.ext4_cold_s,
            r.mount_cold_s,
            r.mount_cold_s / r.ext4_cold_s.max(1e-9),
            r.ext4_warm_s,
            r.mount_warm_s,
            r.mount_warm_s / r.ext4_warm_s.max(1e-9),
            r.mount_peak_rss_kib / 1024,
            r.pages_left_cached
        );
    }
    println!(
        "program start (--start), chrooted into an overlayfs over the unpacked tree or the \
         mount, median of the rounds, ext4 and mount alternating; cold: `sync`, every file of \
         the tree or of the store evicted from the page cache (posix_fadvise DONTNEED; pages \
         left cached counted with mincore), and a new mount process; warm: the same command \
         again at once"
    );
}
