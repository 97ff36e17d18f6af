//! The merged views of committed chains: one read-only FUSE mount per chain (store image and
//! top layer), shared by every snapshot made on that chain, at `ROOT/views/<image id>-<top>`.
//! Each is a `cairn mount` process of its own (started with the command the snapshotter was
//! given), so views outlive a restart of the snapshotter and the containers on them keep
//! running; a restarted snapshotter finds them mounted and uses them. The mount holds a lease,
//! so gc never frees what a view reads.

use crate::error::{SnapError, SnapResult};
use crate::records::ChainImage;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Mounts and unmounts views.
pub struct Views {
    dir: PathBuf,
    command: Vec<OsString>,
}

impl Views {
    /// Views under `dir`; `command` is the `cairn` program and its store arguments (e.g.
    /// `[/usr/bin/cairn, --store, /var/lib/cairn]`): `mount` and `umount` are appended.
    pub fn new(dir: &Path, command: Vec<OsString>) -> SnapResult<Views> {
        std::fs::create_dir_all(dir).map_err(|e| SnapError::io("create", dir, e))?;
        if command.is_empty() {
            return Err(SnapError::InvalidArgument(
                "no command to mount views with".into(),
            ));
        }
        Ok(Views {
            dir: dir.to_path_buf(),
            command,
        })
    }

    /// Where the view of `chain` is mounted.
    pub fn dir_of(&self, chain: &ChainImage) -> PathBuf {
        self.dir.join(format!("{}-{}", chain.image_id, chain.top))
    }

    /// The view of `chain`, mounted now unless it is already.
    pub fn ensure(&self, chain: &ChainImage) -> SnapResult<PathBuf> {
        let dir = self.dir_of(chain);
        if is_mounted(&dir)? {
            return Ok(dir);
        }
        // A view whose process died leaves a dead mount point: detach it first.
        if std::fs::metadata(&dir).is_err() && dir.symlink_metadata().is_ok() {
            let _ = self.run(&["umount".into(), "--lazy".into(), dir.clone().into()]);
        }
        std::fs::create_dir_all(&dir).map_err(|e| SnapError::io("create", &dir, e))?;
        let mut args: Vec<OsString> = vec!["mount".into(), chain.name.clone().into()];
        args.push(dir.clone().into());
        args.extend(["--layer".into(), chain.top.to_string().into()]);
        self.run(&args)?;
        if !is_mounted(&dir)? {
            return Err(SnapError::Internal(format!(
                "view of image {:?} (layer {}) at {}: the mount command succeeded but nothing \
                 is mounted there",
                chain.name,
                chain.top,
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// Unmounts the view of `chain` (lazily: a process still in it keeps it until it leaves)
    /// and removes its directory.
    pub fn release(&self, chain: &ChainImage) -> SnapResult<()> {
        let dir = self.dir_of(chain);
        if is_mounted(&dir)? {
            self.run(&["umount".into(), "--lazy".into(), dir.clone().into()])?;
        }
        match std::fs::remove_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SnapError::io("remove", &dir, e)),
        }
    }

    /// The views mounted now (directory names), for cleanup.
    pub fn mounted(&self) -> SnapResult<Vec<PathBuf>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => return Err(SnapError::io("list", &self.dir, e)),
        };
        for entry in entries.flatten() {
            out.push(entry.path());
        }
        Ok(out)
    }

    /// Unmounts whatever is at `dir` (a view no snapshot uses) and removes it.
    pub fn release_dir(&self, dir: &Path) -> SnapResult<()> {
        if is_mounted(dir)? {
            self.run(&["umount".into(), "--lazy".into(), dir.to_path_buf().into()])?;
        }
        let _ = std::fs::remove_dir(dir);
        Ok(())
    }

    fn run(&self, args: &[OsString]) -> SnapResult<()> {
        let output = Command::new(&self.command[0])
            .args(&self.command[1..])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| SnapError::io("run", Path::new(&self.command[0]), e))?;
        if output.status.success() {
            return Ok(());
        }
        let shown: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        Err(SnapError::Internal(format!(
            "cairn {} failed ({}): {}",
            shown.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn is_mounted(dir: &Path) -> SnapResult<bool> {
    cairn_engine::mount::is_cairn_mount(dir).map_err(SnapError::from)
}
