//! Reaching directories of the unpacked tree safely: every directory is opened one component
//! at a time from the output directory's fd, never through a symlink (rule 2 of `unpack`'s
//! module doc), and created when missing.

use super::{lossy, sys};
use crate::error::{Error, IoContext, Result};
use crate::view::tree::parent_and_name;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Creates `dir` if missing; refuses one that exists and is not empty.
pub(super) fn prepare_dir(dir: &Path) -> Result<OwnedFd> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::Usage(format!(
                "{} exists and is not a directory",
                dir.display()
            )))
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).with_path("read", dir)?;
            if entries.next().is_some() {
                return Err(Error::Usage(format!(
                    "{} is not empty; unpack into a new or empty directory",
                    dir.display()
                )));
            }
        }
        Err(_) => std::fs::create_dir_all(dir).with_path("create", dir)?,
    }
    sys::open_root(dir).with_path("open", dir)
}

/// Why a directory of the unpacked tree could not be reached.
pub(super) enum WalkError {
    /// The component at this path is a symlink.
    Symlink(Vec<u8>),
    /// The component at this path exists and is not a directory.
    NotDir(Vec<u8>),
    /// A component contains a NUL byte.
    BadName,
    Io(&'static str, Vec<u8>, std::io::Error),
}

impl WalkError {
    pub(super) fn into_error(self, object: String, out: &Path) -> Error {
        match self {
            WalkError::Symlink(p) => Error::bad_input(
                object,
                format!(
                    "{:?} is a symlink in the unpacked tree; refusing to write through it",
                    lossy(&p)
                ),
            ),
            WalkError::NotDir(p) => Error::bad_input(
                object,
                format!("{:?} is not a directory in the unpacked tree", lossy(&p)),
            ),
            WalkError::BadName => Error::bad_input(object, "path contains a NUL byte"),
            WalkError::Io(action, p, e) => Error::io(action, &out_path(out, &p), e),
        }
    }
}

pub(super) fn out_path(out: &Path, path: &[u8]) -> PathBuf {
    out.join(OsStr::from_bytes(path))
}

fn c_name(name: &[u8]) -> Result<CString, WalkError> {
    CString::new(name).map_err(|_| WalkError::BadName)
}

/// Rule (2) of the module doc: reaches directories of the unpacked tree one component at a
/// time from the root fd, never following a symlink, creating missing ones (`mkdir -p`). The
/// fds of the last directory reached and its ancestors stay open, so siblings cost nothing.
pub(super) struct DirWalker {
    root: OwnedFd,
    /// Component names and fds of the directory last reached, outermost first.
    open: Vec<(Vec<u8>, OwnedFd)>,
}

impl DirWalker {
    pub(super) fn new(root: OwnedFd) -> Self {
        DirWalker {
            root,
            open: Vec::new(),
        }
    }

    /// The directory at normalized path `dir` ("" for the root).
    pub(super) fn dir(&mut self, dir: &[u8]) -> Result<BorrowedFd<'_>, WalkError> {
        let comps: Vec<&[u8]> = dir
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let keep = self
            .open
            .iter()
            .zip(&comps)
            .take_while(|((name, _), comp)| name.as_slice() == **comp)
            .count();
        self.open.truncate(keep);
        for (i, comp) in comps.iter().enumerate().skip(keep) {
            let parent = self
                .open
                .last()
                .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd());
            let fd = open_or_create_dir(parent, comp, || comps[..=i].join(&b'/'))?;
            self.open.push((comp.to_vec(), fd));
        }
        Ok(self
            .open
            .last()
            .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd()))
    }

    /// The directory holding normalized path `path`, and the last component's name.
    pub(super) fn parent(&mut self, path: &[u8]) -> Result<(BorrowedFd<'_>, CString), WalkError> {
        let (dir, name) = parent_and_name(path);
        let name = c_name(name)?;
        Ok((self.dir(dir)?, name))
    }
}

fn open_or_create_dir(
    parent: BorrowedFd,
    comp: &[u8],
    path: impl Fn() -> Vec<u8>,
) -> Result<OwnedFd, WalkError> {
    let name = c_name(comp)?;
    let open_err = match sys::open_dir_at(parent, &name) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    match sys::file_type_at(parent, &name) {
        Ok(None) => {}
        Ok(Some(libc::S_IFLNK)) => return Err(WalkError::Symlink(path())),
        Ok(Some(libc::S_IFDIR)) => return Err(WalkError::Io("open directory", path(), open_err)),
        Ok(Some(_)) => return Err(WalkError::NotDir(path())),
        Err(e) => return Err(WalkError::Io("inspect", path(), e)),
    }
    sys::mkdir_at(parent, &name, 0o700)
        .map_err(|e| WalkError::Io("create directory", path(), e))?;
    let fd =
        sys::open_dir_at(parent, &name).map_err(|e| WalkError::Io("open directory", path(), e))?;
    // Whatever the umask, a directory this unpack makes must let it write children; a
    // directory with an entry of its own gets that entry's mode at the end.
    sys::Node::Open(fd.as_fd())
        .chmod(0o755)
        .map_err(|e| WalkError::Io("chmod", path(), e))?;
    Ok(fd)
}
