//! Durable file helpers used by every write path: files are written under `STORE/tmp/`,
//! fsynced, then renamed into place, and the directory is fsynced so the rename survives a crash.

use crate::error::{Error, IoContext, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, unique path inside `tmp_dir`.
pub(crate) fn tmp_path(tmp_dir: &Path, suffix: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{}-{n}.{suffix}", std::process::id()))
}

/// Makes a directory's entries (a rename into it) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_path("fsync directory", dir)
}

/// Writes `bytes` to `tmp`, fsyncs, renames to `dest` and fsyncs `dest`'s directory. `fail_at`
/// names the fail point checked before the rename. On an error `tmp` is removed.
pub(crate) fn write_durably(
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
    fail_at: &'static str,
) -> Result<()> {
    let partial = PartialFile::new(tmp.to_path_buf());
    let mut file = File::create(tmp).with_path("create", tmp)?;
    file.write_all(bytes).with_path("write", tmp)?;
    file.sync_all().with_path("fsync", tmp)?;
    drop(file);
    rename_durably(tmp, dest, fail_at)?;
    partial.keep();
    Ok(())
}

/// Renames a file that is already fsynced into place and makes the rename durable. `fail_at`
/// names the fail point checked before the rename.
/// Renames sealed files (already fsynced) from `tmp/` to their content-addressed names in
/// `dir`, then fsyncs `dir`; a file whose name is already there holds the same bytes and is
/// dropped. `fail_at` is checked before each rename, `dir_fail_at` before the fsync. Each file
/// is (temporary path, destination, size); returns the files and bytes actually added.
pub(crate) fn publish_sealed(
    files: &[(&Path, PathBuf, u64)],
    dir: &Path,
    fail_at: &'static str,
    dir_fail_at: Option<&'static str>,
) -> Result<(u64, u64)> {
    let mut added = (0u64, 0u64);
    for (tmp, dest, size) in files {
        if dest.exists() {
            std::fs::remove_file(tmp).map_err(|e| Error::io("remove", tmp, e))?;
        } else {
            crate::failpoint::check(fail_at)?;
            std::fs::rename(tmp, dest).map_err(|e| Error::io("rename into place", dest, e))?;
            added.0 += 1;
            added.1 += size;
        }
    }
    if !files.is_empty() {
        if let Some(point) = dir_fail_at {
            crate::failpoint::check(point)?;
        }
        fsync_dir(dir)?;
    }
    Ok(added)
}

pub(crate) fn rename_durably(from: &Path, to: &Path, fail_at: &'static str) -> Result<()> {
    crate::failpoint::check(fail_at)?;
    std::fs::rename(from, to).with_path("rename into place", to)?;
    // A bare file name's parent is "", which is the current directory.
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fsync_dir(dir),
        _ => fsync_dir(Path::new(".")),
    }
}

/// A file written under a temporary name. Dropped before `keep` (an error on the way), it is
/// removed, so a failed write leaves nothing behind.
pub(crate) struct PartialFile {
    path: PathBuf,
    keep: bool,
}

impl PartialFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        PartialFile { path, keep: false }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file has been renamed into place (or is wanted as is): do not remove it.
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the file may never have been created.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Bytes an unprivileged process may still write on the file system holding `path`
/// (`statvfs(3)`: available blocks times the fragment size), or what
/// `failpoint::FREE_BYTES_ENV` says.
#[allow(unsafe_code)]
pub(crate) fn free_bytes(path: &Path) -> Result<u64> {
    if let Some(bytes) = std::env::var(crate::failpoint::FREE_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Ok(bytes);
    }
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::io("statvfs", path, std::io::Error::other("NUL in path")))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string and `stat` is writable memory of the size
    // statvfs fills; it is read only after statvfs returned success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(Error::io("statvfs", path, std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs succeeded, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    // The fields are `fsblkcnt_t` and `c_ulong`: u64 here, narrower on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(stat.f_bavail), u64::from(stat.f_frsize));
    Ok(blocks.saturating_mul(size))
}
