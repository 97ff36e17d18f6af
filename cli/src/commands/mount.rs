//! `cairn mount` and `cairn umount`. In the foreground, the mount serves until unmounted, and
//! SIGINT/SIGTERM/SIGHUP unmount it. By default the command starts itself again with
//! `--foreground` in a new process group, its log in a file, waits until that process says
//! the filesystem is mounted (or failed), and returns.

use crate::args::Cli;
use crate::mount_args::{MountArgs, UmountArgs};
use anyhow::{bail, Context};
use cairn_engine::mount::{log_file, MountImages, MountOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The first line a foreground mount prints once the filesystem is up.
const READY: &str = "mounted";

pub fn run(cli: &Cli, args: &MountArgs) -> anyhow::Result<()> {
    let (images, dir) = match (args.all, args.operands.as_slice()) {
        (true, [dir]) => (MountImages::All, dir),
        (false, [name, dir]) => (
            MountImages::One {
                name: name.clone(),
                layer: args.layer,
            },
            dir,
        ),
        (true, _) => bail!("with --all, give only the directory: cairn mount --all DIR"),
        (false, _) => bail!("give the image and the directory: cairn mount NAME DIR"),
    };
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        bail!("{}: not a directory; create it first", dir.display());
    }
    if !args.foreground {
        return start_in_background(cli, args, &dir);
    }
    let mut options = MountOptions::default();
    options.images = images;
    options.allow_other = args.allow_other;
    options.suid_dev = args.suid_dev;
    options.cache_bytes = args.cache_mb << 20;
    options.readahead_bytes = args.readahead_mb << 20;
    options.threads = args.threads;
    let store = std::sync::Arc::new(cairn_engine::Store::open(&cli.store)?);
    let mut session = store.mount(&dir, &options)?;
    let mut unmounter = session.unmounter();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    let shown = match &options.images {
        MountImages::One { name, .. } => format!("image {name:?}"),
        MountImages::All => "every image".to_string(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{READY} {shown} at {} (pid {}); unmount with `cairn umount {}`",
        dir.display(),
        std::process::id(),
        dir.display()
    )?;
    out.flush()?;
    drop(out);
    let watched = dir.clone();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            match unmounter.unmount() {
                Ok(()) => break,
                Err(e) => eprintln!(
                    "cairn mount: signal {signal}: cannot unmount {} yet: {e}",
                    watched.display()
                ),
            }
        }
    });
    session.run()?;
    Ok(())
}

/// Runs this command again in the foreground, detached, and waits for it to be mounted.
fn start_in_background(cli: &Cli, args: &MountArgs, dir: &Path) -> anyhow::Result<()> {
    let (log, log_file) = match &args.log {
        Some(log) => {
            let file = std::fs::File::create(log)
                .with_context(|| format!("create log {}", log.display()))?;
            (log.clone(), file)
        }
        None => {
            let what = match args.operands.as_slice() {
                [name, _] if !args.all => name.as_str(),
                _ => "all",
            };
            log_file(&cli.store, what, std::process::id())?
        }
    };
    let exe = std::env::current_exe().context("find the cairn executable")?;
    let mut command = Command::new(exe);
    command
        .arg("--store")
        .arg(&cli.store)
        .arg("mount")
        .args(&args.operands)
        .arg("--foreground")
        .args(["--cache-mb", &args.cache_mb.to_string()])
        .args(["--readahead-mb", &args.readahead_mb.to_string()])
        .args(["--threads", &args.threads.to_string()]);
    if args.all {
        command.arg("--all");
    }
    if let Some(layer) = args.layer {
        command.args(["--layer", &layer.to_string()]);
    }
    if args.allow_other {
        command.arg("--allow-other");
    }
    if args.suid_dev {
        command.arg("--suid-dev");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        // Not in the terminal's process group: ^C there does not reach it.
        .process_group(0)
        .spawn()
        .context("start the mount process")?;
    let stdout = child.stdout.take().context("the mount process's output")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.starts_with(READY) {
        print!("{line}");
        println!("log: {}", log.display());
        return Ok(());
    }
    let status = child.wait()?;
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let reason = logged.trim();
    bail!(
        "mounting at {} failed ({status}){}{reason}",
        dir.display(),
        if reason.is_empty() { "" } else { ": " }
    )
}

/// Unmounts a cairn mount: `fusermount3 -u` (or `fusermount -u`) where installed, else
/// `umount`; `--lazy` detaches at once.
pub fn umount(args: &UmountArgs) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("{}: no such directory", args.dir.display()))?;
    if !cairn_engine::mount::is_cairn_mount(&dir)? {
        bail!(
            "{}: not a cairn mount (see /proc/self/mountinfo)",
            dir.display()
        );
    }
    let fusermount = ["fusermount3", "fusermount"]
        .into_iter()
        .find(|tool| which(tool).is_some());
    let mut command = match fusermount {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.arg(if args.lazy { "-uz" } else { "-u" });
            c
        }
        None => {
            let mut c = Command::new("umount");
            if args.lazy {
                c.arg("-l");
            }
            c
        }
    };
    let output = command.arg(&dir).output().context("run the unmount tool")?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        bail!(
            "cannot unmount {}: {}{}",
            dir.display(),
            said.trim(),
            if said.contains("busy") {
                " (an overlay or a process still uses it; stop those, or use --lazy)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|path| path.is_file())
}
