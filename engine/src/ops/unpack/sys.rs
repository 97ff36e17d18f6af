//! Thin wrappers over the `*at` system calls `unpack` is built on (Linux). Every call names
//! its file by a directory fd plus one component, never by a path, and none follows a symlink
//! at that component: `open_dir_at` and `create_file_at` use `O_NOFOLLOW`, metadata calls use
//! `AT_SYMLINK_NOFOLLOW` or work on an fd the caller opened.
//!
//! The one module that needs `unsafe`: raw `*at` calls through libc.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cvt(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cvt_fd(ret: libc::c_int) -> io::Result<OwnedFd> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(ret) })
    }
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Opens the directory the caller named (following symlinks: it is the user's choice).
pub(super) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    cvt_fd(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })
}

/// Opens directory `name` of `dir`; fails (ELOOP or ENOTDIR) if it is a symlink or not a directory.
pub(super) fn open_dir_at(dir: BorrowedFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt_fd(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
}

pub(super) fn mkdir_at(dir: BorrowedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })
}

/// Creates a new regular file, owner-writable only until the caller sets its mode. Fails if
/// anything (a symlink included) is already there.
pub(super) fn create_file_at(dir: BorrowedFd, name: &CStr) -> io::Result<File> {
    // SAFETY: valid fd and NUL-terminated name.
    let fd = cvt_fd(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    })?;
    Ok(File::from(fd))
}

pub(super) fn symlink_at(target: &CStr, dir: BorrowedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated strings.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// A hard link `to_dir/to_name` of `from_dir/from_name`; a symlink there is linked itself, not
/// followed (no `AT_SYMLINK_FOLLOW`).
pub(super) fn link_at(
    from_dir: BorrowedFd,
    from_name: &CStr,
    to_dir: BorrowedFd,
    to_name: &CStr,
) -> io::Result<()> {
    // SAFETY: valid fds and NUL-terminated names.
    cvt(unsafe {
        libc::linkat(
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
            0,
        )
    })
}

/// The special file kinds `mknod_at` makes.
#[derive(Clone, Copy)]
pub(super) enum Special {
    Char,
    Block,
    Fifo,
}

pub(super) fn mknod_at(
    dir: BorrowedFd,
    name: &CStr,
    kind: Special,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let (format, dev) = match kind {
        Special::Char => (libc::S_IFCHR, libc::makedev(major, minor)),
        Special::Block => (libc::S_IFBLK, libc::makedev(major, minor)),
        Special::Fifo => (libc::S_IFIFO, 0),
    };
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), format | 0o600, dev) })
}

/// What is at `dir/name`, not following a symlink: `None` if nothing is.
pub(super) fn file_type_at(dir: BorrowedFd, name: &CStr) -> io::Result<Option<libc::mode_t>> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid fd, NUL-terminated name, and `st` is large enough for a stat.
    let ret = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match cvt(ret) {
        // SAFETY: fstatat succeeded, so it filled `st`.
        Ok(()) => Ok(Some(unsafe { st.assume_init() }.st_mode & libc::S_IFMT)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// An object of the unpacked tree whose metadata is being set: an open file or directory, or
/// (for symlinks, devices and fifos, which are not opened) a name in an open directory.
#[derive(Clone, Copy)]
pub(super) enum Node<'a> {
    Open(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a CStr),
}

impl Node<'_> {
    pub(super) fn chown(self, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY: valid fds and NUL-terminated names.
        cvt(unsafe {
            match self {
                Node::Open(fd) => libc::fchown(fd.as_raw_fd(), uid, gid),
                Node::At(dir, name) => libc::fchownat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                ),
            }
        })
    }

    /// Not for symlinks: Linux has no symlink modes, and `fchmodat` would follow one. A `Node::At`
    /// here is a device or fifo this run just created in a directory nobody else writes to.
    pub(super) fn chmod(self, mode: u32) -> io::Result<()> {
        let mode = (mode & 0o7777) as libc::mode_t;
        // SAFETY: valid fds and NUL-terminated names.
        cvt(unsafe {
            match self {
                Node::Open(fd) => libc::fchmod(fd.as_raw_fd(), mode),
                Node::At(dir, name) => libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0),
            }
        })
    }

    /// Sets the modification time (seconds); the access time is left as it is.
    pub(super) fn set_mtime(self, mtime: i64) -> io::Result<()> {
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: mtime as libc::time_t,
                tv_nsec: 0,
            },
        ];
        // SAFETY: valid fds, NUL-terminated names, and two timespecs as both calls expect.
        cvt(unsafe {
            match self {
                Node::Open(fd) => libc::futimens(fd.as_raw_fd(), times.as_ptr()),
                Node::At(dir, name) => libc::utimensat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                ),
            }
        })
    }

    /// Sets one extended attribute. A named node is reached as `/proc/self/fd/DIR/NAME` with
    /// `lsetxattr`: the directory is the fd already checked, and the last component is not
    /// followed (Linux before 6.13 has no `setxattrat`).
    pub(super) fn set_xattr(self, name: &CStr, value: &[u8]) -> io::Result<()> {
        match self {
            // SAFETY: valid fd, NUL-terminated name, and `value` for its length.
            Node::Open(fd) => cvt(unsafe {
                libc::fsetxattr(
                    fd.as_raw_fd(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            }),
            Node::At(dir, file) => {
                let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                path.extend_from_slice(file.to_bytes());
                let path = CString::new(path)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                // SAFETY: NUL-terminated strings, and `value` for its length.
                cvt(unsafe {
                    libc::lsetxattr(
                        path.as_ptr(),
                        name.as_ptr(),
                        value.as_ptr().cast(),
                        value.len(),
                        0,
                    )
                })
            }
        }
    }
}
