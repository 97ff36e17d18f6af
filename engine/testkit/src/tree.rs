//! Unpacked trees as the unpack, mount and snapshotter tests compare them (`walk`: type, mode, mtime,
//! content, link target, link count, xattrs of every path), and GNU tar's extraction of a layer
//! stack with whiteouts applied (`gnu_tar_reference`), their reference.

// The xattrs are read with raw libc calls.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub fn p(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Every extended attribute of `path` itself (a symlink is not followed).
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: NUL-terminated path and a buffer of the length given.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).unwrap();
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: NUL-terminated strings and a buffer of the length given.
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(n >= 0, "lgetxattr {} {:?}", path.display(), cname);
        value.truncate(n as usize);
        out.insert(name.to_vec(), value);
    }
    out
}

/// One file, directory or symlink of an unpacked tree, as compared with GNU tar's.
#[derive(Debug, PartialEq)]
pub struct Node {
    kind: &'static str,
    mode: u32,
    mtime: Option<i64>,
    content: Option<blake3::Hash>,
    link_target: Option<PathBuf>,
    nlink: Option<u64>,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Node {
    pub fn content(&self) -> Option<blake3::Hash> {
        self.content
    }

    /// "dir", "file", "symlink" or "special".
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn mode(&self) -> u32 {
        self.mode
    }

    pub fn mtime(&self) -> Option<i64> {
        self.mtime
    }

    pub fn link_target(&self) -> Option<&Path> {
        self.link_target.as_deref()
    }

    pub fn nlink(&self) -> Option<u64> {
        self.nlink
    }

    pub fn xattrs(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.xattrs
    }
}

pub fn walk(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let t = meta.file_type();
            let kind = if t.is_dir() {
                stack.push(path.clone());
                "dir"
            } else if t.is_file() {
                "file"
            } else if t.is_symlink() {
                "symlink"
            } else {
                "special"
            };
            let node = Node {
                kind,
                // Linux symlinks have no mode of their own.
                mode: if t.is_symlink() {
                    0
                } else {
                    meta.mode() & 0o7777
                },
                // Directory mtimes differ by design: tar sets them as it extracts each layer,
                // and the reference's whiteouts touch them.
                mtime: (!t.is_dir()).then(|| meta.mtime()),
                content: t
                    .is_file()
                    .then(|| blake3::hash(&std::fs::read(&path).unwrap())),
                link_target: t.is_symlink().then(|| std::fs::read_link(&path).unwrap()),
                nlink: t.is_file().then(|| meta.nlink()),
                xattrs: xattrs(&path),
            };
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), node);
        }
    }
    out
}

/// `walk` with mtimes left out: a planned base takes the mtimes of one of the images it serves.
pub fn walk_without_mtimes(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut tree = walk(root);
    for node in tree.values_mut() {
        node.mtime = None;
    }
    tree
}

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// Paths of a layer tar's entries, normalized as the merged view does.
fn tar_paths(layer: &[u8]) -> Vec<Vec<u8>> {
    let mut archive = tar::Archive::new(layer);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path_bytes().into_owned();
            let parts: Vec<&[u8]> = path
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .collect();
            parts.join(&b'/')
        })
        .collect()
}

/// The layers extracted one after the other by GNU tar, with whiteouts applied in between as
/// `view::tree::MergedTree` documents: a layer's whiteouts and opaque markers act on the lower
/// layers before its entries are extracted, and the markers themselves are not kept.
pub fn gnu_tar_reference(layers: &[Vec<u8>], work: &Path) -> PathBuf {
    let reference = work.join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    for (i, layer) in layers.iter().enumerate() {
        let markers: Vec<Vec<u8>> = tar_paths(layer)
            .into_iter()
            .filter(|p| {
                let name = p.rsplit(|&b| b == b'/').next().unwrap_or_default();
                name.starts_with(b".wh.")
            })
            .collect();
        for marker in &markers {
            let (dir, name) = match marker.iter().rposition(|&b| b == b'/') {
                Some(i) => (&marker[..i], &marker[i + 1..]),
                None => (&marker[..0], &marker[..]),
            };
            let dir = reference.join(p(dir));
            if name == b".wh..wh..opq" {
                if dir.is_dir() {
                    for entry in std::fs::read_dir(&dir).unwrap() {
                        remove_any(&entry.unwrap().path());
                    }
                }
            } else {
                remove_any(&dir.join(p(&name[4..])));
            }
        }
        let tar_file = work.join(format!("layer{i}.tar"));
        std::fs::write(&tar_file, layer).unwrap();
        let status = std::process::Command::new("tar")
            .args(["-x", "-p", "--xattrs", "--xattrs-include=*", "-f"])
            .arg(&tar_file)
            .arg("-C")
            .arg(&reference)
            .status()
            .unwrap();
        assert!(status.success(), "tar -x layer {i}");
        for marker in &markers {
            remove_any(&reference.join(p(marker)));
        }
    }
    reference
}
