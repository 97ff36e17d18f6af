//! Where a background mount writes its log: `STORE/logs/mount-NAME-PID.log`, the last
//! `KEPT_LOGS` of them kept (older ones removed when a new one is made), so that mounting
//! again and again neither litters `/tmp` nor fills the store.

use crate::error::{Error, Result};
use crate::layout::StoreLayout;
use std::path::{Path, PathBuf};

/// Mount logs kept in a store.
pub const KEPT_LOGS: usize = 20;

/// Creates the log file of a mount of `what` (an image name, or `all`) by process `pid` in
/// the store at `store_root`, removing the oldest mount logs beyond `KEPT_LOGS - 1`; returns
/// its path and the file, open for writing. Refuses a directory that is not a store.
pub fn log_file(store_root: &Path, what: &str, pid: u32) -> Result<(PathBuf, std::fs::File)> {
    let layout = StoreLayout::new(store_root);
    // Not a store (a mistyped --store): say so, and make no directory there.
    crate::store::Store::read_config(&layout)?;
    let dir = layout.logs_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    remove_old_logs(&dir, KEPT_LOGS - 1)?;
    let name: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("mount-{name}-{pid}.log"));
    let file = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
    Ok((path, file))
}

/// Removes the oldest `mount-*.log` files of `dir` until at most `keep` are left.
fn remove_old_logs(dir: &Path, keep: usize) -> Result<()> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("mount-") && name.ends_with(".log")) {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified());
        logs.push((modified.unwrap_or(std::time::UNIX_EPOCH), entry.path()));
    }
    if logs.len() <= keep {
        return Ok(());
    }
    logs.sort();
    for (_, path) in &logs[..logs.len() - keep] {
        // A log another process removed meanwhile is gone as wanted.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", path, e))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_logs_go_under_the_store_and_the_last_ones_are_kept() {
        let store = tempfile::tempdir().unwrap();
        assert!(
            super::log_file(store.path(), "x", 1).is_err(),
            "not a store yet"
        );
        assert!(!store.path().join("logs").exists());
        crate::store::StoreWriter::init(store.path(), &Default::default()).unwrap();
        let dir = store.path().join("logs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), b"not a mount log").unwrap();
        let mut made = Vec::new();
        for pid in 0..super::KEPT_LOGS as u32 + 5 {
            let (path, _) = super::log_file(store.path(), "library/py:v2", pid).unwrap();
            // Distinct times, oldest first, whatever the file system's time resolution.
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000 + pid as u64);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
            made.push(path);
        }
        assert_eq!(made[0], dir.join("mount-library_py_v2-0.log"));
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut expected: Vec<_> = made[made.len() - super::KEPT_LOGS..].to_vec();
        expected.push(dir.join("notes.txt"));
        expected.sort();
        assert_eq!(left, expected);
    }
}
