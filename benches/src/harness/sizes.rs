//! How big a directory is, two ways: the bytes of its regular files (what a "content only"
//! figure counts), and what `du -sb` says (apparent sizes of every file, directory and symlink,
//! hard links once: what a directory really costs, metadata included).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Bytes of every regular file under `dir` (recursively; symlinks are not followed). A missing
/// directory is 0 bytes.
pub fn files_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => total += files_bytes(&entry.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

/// `du -sb PATH`: apparent size in bytes, directories and symlinks included, hard links once.
pub fn du_sb(path: &Path) -> Result<u64> {
    let output = Command::new("du")
        .arg("-sb")
        .arg(path)
        .output()
        .context("run du -sb (GNU coreutils)")?;
    if !output.status.success() {
        bail!(
            "du -sb {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("du -sb {}: unexpected output {text:?}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_du() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("a/one"), [0u8; 1000]).unwrap();
        std::fs::write(tmp.path().join("a/b/two"), [0u8; 234]).unwrap();
        std::os::unix::fs::symlink("one", tmp.path().join("a/link")).unwrap();
        assert_eq!(files_bytes(tmp.path()), 1234);
        assert_eq!(files_bytes(&tmp.path().join("missing")), 0);
        // du adds the directories' and the symlink's own sizes.
        assert!(du_sb(tmp.path()).unwrap() > 1234);
    }
}
