//! The benches' directories: a work directory made (and emptied) only for cairn-bench, scratch
//! directories, and the report files.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A file that marks a work directory as this bench's, so it may be emptied.
const WORK_MARKER: &str = ".cairn-bench-work";

/// Creates the work directory, emptying it first if an earlier run of this bench left it.
pub fn prepare_work(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("read {}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            if !dir.join(WORK_MARKER).exists() {
                bail!(
                    "work directory {} is not empty and was not made by cairn-bench; \
                     choose another with --work",
                    dir.display()
                );
            }
            std::fs::remove_dir_all(dir).with_context(|| format!("empty {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::write(dir.join(WORK_MARKER), b"").context("mark the work directory")?;
    dir.canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))
}

/// Empties `work` (or creates it) for a bench's scratch files.
pub fn fresh_dir(work: &Path) -> Result<()> {
    if work.exists() {
        std::fs::remove_dir_all(work).with_context(|| format!("empty {}", work.display()))?;
    }
    std::fs::create_dir_all(work).with_context(|| format!("create {}", work.display()))
}

/// Writes each named report into `out` (created if missing).
pub fn write_reports(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    for (name, bytes) in files {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
