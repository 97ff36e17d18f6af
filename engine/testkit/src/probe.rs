//! What the machine has: each probe returns what it found, or why it is missing and where it
//! comes from, for [`crate::require`] or [`crate::optional`].

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

/// The programs `.ci/setup` installs, with their Debian package where it is not their name.
const PACKAGES: &[(&str, &str)] = &[
    ("fusermount3", "fuse3"),
    ("mksquashfs", "squashfs-tools"),
    ("unsquashfs", "squashfs-tools"),
    ("setpriv", "util-linux"),
    ("tar", "tar"),
];

/// `program` found on `PATH`.
pub fn tool(program: &str) -> Result<PathBuf, String> {
    on_path(program).ok_or_else(|| {
        let package = PACKAGES
            .iter()
            .find(|(p, _)| *p == program)
            .map_or(program, |(_, package)| package);
        format!("{program} is not on PATH (.ci/setup installs {package})")
    })
}

/// `program` found on `PATH`, if it is; no note, for code that only chooses what to expect.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// GNU tar as `tar` (the references of the unpack and mount tests use its `-p --xattrs`).
pub fn gnu_tar() -> Result<(), String> {
    let version = Command::new("tar").arg("--version").output();
    if version.is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"tar (GNU tar)")) {
        Ok(())
    } else {
        Err("GNU tar is not `tar` on PATH (.ci/setup installs tar)".into())
    }
}

/// True if the process runs as root (its effective user, the owner of `/proc/self`).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Running as root: CI does; a developer's shell may not.
pub fn root() -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err("not running as root".into())
    }
}

/// FUSE: `/dev/fuse` opens for reading and writing, and `fusermount3` is there (unmounts).
pub fn fuse() -> Result<(), String> {
    let device = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse");
    if let Err(e) = device {
        return Err(format!(
            "/dev/fuse cannot be opened ({e}; .ci/setup loads the fuse module)"
        ));
    }
    tool("fusermount3").map(|_| ())
}

/// `python3` that can `import module`.
pub fn python_module(module: &str) -> Result<(), String> {
    let import = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    if import.is_ok_and(|o| o.status.success()) {
        Ok(())
    } else {
        Err(format!(
            "python3 cannot import {module} (.ci/setup installs it with pip)"
        ))
    }
}

/// The repository's root (this crate is `engine/testkit`).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|engine| engine.parent())
        .expect("engine/testkit sits two levels below the repository root")
        .to_path_buf()
}
