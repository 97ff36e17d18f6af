//! Which directories are cairn mounts, from `/proc/self/mountinfo` (for `cairn umount` and
//! the snapshotter, which finds its views still mounted after a restart).

use crate::error::{IoContext, Result};
use std::path::Path;

/// True if `dir` is the mount point of a cairn FUSE mount.
pub fn is_cairn_mount(dir: &Path) -> Result<bool> {
    let path = Path::new("/proc/self/mountinfo");
    let mountinfo = std::fs::read_to_string(path).with_path("read", path)?;
    let wanted = dir.to_string_lossy();
    Ok(mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let mount_point = fields.get(4).map(|p| unescape(p));
        // After the "-": the file system type, then the source (`cairn:NAME`).
        let tail = fields
            .iter()
            .position(|f| *f == "-")
            .map(|i| &fields[i + 1..]);
        let is_cairn = tail.is_some_and(|t| {
            t.first().is_some_and(|ty| ty.starts_with("fuse"))
                && t.get(1).is_some_and(|source| source.starts_with("cairn:"))
        });
        mount_point.as_deref() == Some(&*wanted) && is_cairn
    }))
}

/// A mountinfo field with its octal escapes (`\040` for a space) decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
