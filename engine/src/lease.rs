//! Store layer, beside `layout` (gc and `mount` both use it).
//!
//! Leases: how a running mount keeps gc away from the images it shows. A mount writes
//! `leases/<pid>-<n>.lease` naming its images and holds an exclusive flock on it while it runs;
//! gc keeps every image a held lease names (even one `rm` has unnamed) and never compacts the
//! blobs they use, since the mount reads them where it found them. A lease whose lock nobody
//! holds belongs to a mount that crashed: gc removes it, so a crashed mount's lease expires
//! by itself.
//!
//! Ordering: gc holds `leases/GUARD` exclusively from its marking to its deletions; a mount
//! holds it shared from opening the index (to resolve its names) until its lease is written.
//! So either gc sees the lease, or the mount resolves its names after gc's index batch.

use crate::error::{Error, IoContext, Result};
use crate::layout::StoreLayout;
use crate::ImageId;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const LEASE_SUFFIX: &str = ".lease";

/// The guard between gc and mounts taking leases (`leases/GUARD`), held until dropped.
pub(crate) struct LeaseGuard {
    _file: File,
}

impl LeaseGuard {
    /// gc's hold: waits for mounts taking their leases.
    pub(crate) fn exclusive(layout: &StoreLayout) -> Result<LeaseGuard> {
        let file = open_guard(layout)?;
        file.lock().with_path("lock", &layout.lease_guard())?;
        Ok(LeaseGuard { _file: file })
    }

    /// A mount's hold while it takes its lease: waits for a running gc.
    pub(crate) fn shared(layout: &StoreLayout) -> Result<LeaseGuard> {
        let file = open_guard(layout)?;
        file.lock_shared()
            .with_path("lock", &layout.lease_guard())?;
        Ok(LeaseGuard { _file: file })
    }
}

fn open_guard(layout: &StoreLayout) -> Result<File> {
    let dir = layout.leases_dir();
    std::fs::create_dir_all(&dir).with_path("create", &dir)?;
    let path = layout.lease_guard();
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_path("open", &path)
}

/// What a lease file holds.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    pid: u32,
    /// Where the images are mounted.
    target: String,
    images: Vec<ImageId>,
}

/// A running mount's lease: the file is locked until dropped, then removed.
#[derive(Debug)]
pub(crate) struct Lease {
    file: Option<File>,
    path: PathBuf,
}

impl Lease {
    /// Writes and locks a lease on `images` for a mount at `target`. Call it holding a shared
    /// `LeaseGuard`.
    pub(crate) fn take(layout: &StoreLayout, images: &[ImageId], target: &Path) -> Result<Lease> {
        let dir = layout.leases_dir();
        std::fs::create_dir_all(&dir).with_path("create", &dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("{}-{nanos}{LEASE_SUFFIX}", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_path("create lease", &path)?;
        file.lock().with_path("lock lease", &path)?;
        let record = LeaseRecord {
            pid: std::process::id(),
            target: target.display().to_string(),
            images: images.to_vec(),
        };
        let json = serde_json::to_vec(&record)
            .map_err(|e| Error::corrupt(path.display().to_string(), e.to_string()))?;
        file.write_all(&json).with_path("write lease", &path)?;
        file.sync_all().with_path("sync lease", &path)?;
        Ok(Lease {
            file: Some(file),
            path,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Removed while still locked, so gc never reads a half-removed lease as stale.
        let _ = std::fs::remove_file(&self.path);
        self.file.take();
    }
}

/// The images named by held leases; leases nobody holds (crashed mounts) are removed. Call it
/// holding the exclusive `LeaseGuard`. An unreadable held lease stops gc: its images are
/// unknown.
pub(crate) fn leased_images(layout: &StoreLayout) -> Result<Vec<ImageId>> {
    let dir = layout.leases_dir();
    let listing = match std::fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let mut images = Vec::new();
    for item in listing {
        let path = item.with_path("list", &dir)?.path();
        if !path.to_string_lossy().ends_with(LEASE_SUFFIX) {
            continue;
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            // Its mount ended between the listing and here.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("open lease", &path, e)),
        };
        match file.try_lock() {
            Ok(()) => {
                // Nobody holds it: the mount is gone.
                std::fs::remove_file(&path).with_path("remove stale lease", &path)?;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let bytes = std::fs::read(&path).with_path("read lease", &path)?;
                let record: LeaseRecord = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::corrupt(path.display().to_string(), format!("lease: {e}"))
                })?;
                images.extend(record.images);
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock lease", &path, e)),
        }
    }
    images.sort();
    images.dedup();
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_leases_name_their_images_and_dropped_ones_expire() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StoreLayout::new(dir.path());
        let a = ImageId([1; 32]);
        let b = ImageId([2; 32]);
        let guard = LeaseGuard::shared(&layout).unwrap();
        let lease = Lease::take(&layout, &[a, b], Path::new("/mnt/x")).unwrap();
        drop(guard);
        let _guard = LeaseGuard::exclusive(&layout).unwrap();
        assert_eq!(leased_images(&layout).unwrap(), vec![a, b]);
        let path = lease.path().to_path_buf();
        drop(lease);
        assert!(!path.exists());
        assert!(leased_images(&layout).unwrap().is_empty());
        // A crashed mount leaves its file, unlocked: gc removes it.
        std::fs::write(&path, b"{}").unwrap();
        assert!(leased_images(&layout).unwrap().is_empty());
        assert!(!path.exists());
    }
}
