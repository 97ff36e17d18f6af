//! The start of a program from an image (`--start`, e.g. `python3 -c "import pandas"`), as a
//! container starts: chrooted into an overlayfs whose lower directory is the unpacked tree on
//! the work directory's file system (ext4 here) or a `cairn mount` of the store. Cold, then
//! warm (the same command again at once), alternating ext4 and mount each round.
//!
//! "Cold" without `/proc/sys/vm/drop_caches` (not writable here): every file of the unpacked
//! tree, or of the store, is evicted from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`
//! after a `sync`: dirty pages would stay), and the mount is a new process (empty FUSE kernel
//! caches, empty frame cache). The bench counts the pages still cached after evicting
//! (`mincore`) and says so if any are.

use super::{shell, Mount};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Figures of one image, the median over the rounds.
#[derive(Debug, Serialize)]
pub struct StartRow {
    pub image: String,
    pub rounds: usize,
    pub ext4_cold_s: f64,
    pub ext4_warm_s: f64,
    pub mount_cold_s: f64,
    pub mount_warm_s: f64,
    /// The mount process's peak RSS (VmHWM) after its cold and warm start, largest round.
    pub mount_peak_rss_kib: u64,
    /// Pages left in the page cache after evicting, largest round (0: cold was cold).
    pub pages_left_cached: u64,
}

pub struct StartBench<'a> {
    pub cairn: &'a Path,
    pub store: &'a Path,
    pub name: &'a str,
    pub tree: &'a Path,
    pub mount_dir: &'a Path,
    pub work: &'a Path,
    pub command: &'a str,
    pub rounds: usize,
}

impl StartBench<'_> {
    pub fn run(&self, image: &str) -> Result<StartRow> {
        let mut times: [Vec<f64>; 4] = Default::default();
        let (mut rss, mut left) = (0, 0);
        for round in 0..self.rounds {
            eprintln!("mount bench: start {image}, round {}", round + 1);
            left = left.max(evict(self.tree)?);
            let (cold, warm) = self.cold_and_warm(self.tree)?;
            times[0].push(cold);
            times[1].push(warm);
            left = left.max(evict(self.store)?);
            let mount = Mount::start(self.cairn, self.store, self.name, self.mount_dir)?;
            let (cold, warm) = self.cold_and_warm(self.mount_dir)?;
            rss = rss.max(mount.peak_rss_kib()?);
            mount.stop()?;
            times[2].push(cold);
            times[3].push(warm);
        }
        let [ext4_cold_s, ext4_warm_s, mount_cold_s, mount_warm_s] = times.map(median);
        Ok(StartRow {
            image: image.to_string(),
            rounds: self.rounds,
            ext4_cold_s,
            ext4_warm_s,
            mount_cold_s,
            mount_warm_s,
            mount_peak_rss_kib: rss,
            pages_left_cached: left,
        })
    }

    /// The command chrooted into an overlayfs over `lower`, twice: seconds of each.
    fn cold_and_warm(&self, lower: &Path) -> Result<(f64, f64)> {
        let dirs = ["upper", "scratch", "root"].map(|d| self.work.join(format!("overlay-{d}")));
        for dir in &dirs {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)?;
        }
        let [upper, scratch, root] = &dirs;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            scratch.display()
        );
        let mounted = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(root)
            .status()?;
        if !mounted.success() {
            bail!("mount -t overlay over {}: {mounted}", lower.display());
        }
        let times = (|| Ok((self.timed(root)?, self.timed(root)?)))();
        let unmounted = Command::new("umount").arg(root).status();
        for dir in &dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        if !unmounted?.success() {
            bail!("umount {}", root.display());
        }
        times
    }

    fn timed(&self, root: &Path) -> Result<f64> {
        let started = Instant::now();
        let out = Command::new("chroot")
            .arg(root)
            .args(words(self.command))
            .output()
            .context("chroot")?;
        let seconds = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "`{}` in the image: {}",
                self.command,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(seconds)
    }
}

/// `command` split into words at blanks outside quotes (an image may have no shell).
fn words(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => (quote, any) = (Some(c), true),
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Evicts every regular file under `dir` from the page cache; returns the pages still cached.
fn evict(dir: &Path) -> Result<u64> {
    shell("sync")?;
    let mut left = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                left += evict_file(&entry.path())?;
            }
        }
    }
    Ok(left)
}

/// `POSIX_FADV_DONTNEED` on the whole file, then its pages still cached (`mincore` of a map).
#[allow(unsafe_code)]
fn evict_file(path: &Path) -> Result<u64> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let fd = file.as_raw_fd();
    // SAFETY: plain system calls on an open descriptor; the map is read-only, private, and
    // unmapped before return; `mincore` writes one byte per page into a vector that long.
    unsafe {
        libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
        let len = file.metadata()?.len() as usize;
        if len == 0 {
            return Ok(0);
        }
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        );
        if map == libc::MAP_FAILED {
            return Ok(0);
        }
        let pages = len.div_ceil(4096);
        let mut resident = vec![0u8; pages];
        let ok = libc::mincore(map, len, resident.as_mut_ptr()) == 0;
        libc::munmap(map, len);
        Ok(if ok {
            resident.iter().filter(|&&r| r & 1 == 1).count() as u64
        } else {
            0
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_command_splits_into_words_at_blanks_outside_quotes() {
        assert_eq!(
            super::words(r#"python3 -c "import pandas; print(1)"  ''"#),
            ["python3", "-c", "import pandas; print(1)", ""]
        );
    }
}
