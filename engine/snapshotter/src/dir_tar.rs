//! An applied layer (a snapshot's upper directory, as containerd's overlay-aware applier left
//! it) read back as a layer tar, so that the convert takes it into the store like any layer.
//! Overlay's own marks become the OCI ones: a character device 0/0 is a whiteout
//! (`.wh.NAME`), a directory with `trusted.overlay.opaque=y` gets `.wh..wh..opq`; other
//! `trusted.overlay.*` attributes are overlay's bookkeeping and are dropped.
//!
//! The tree is walked without following a symlink (lstat, `O_NOFOLLOW`), in name order (the
//! same tree gives the same tar, so the same layer object), on a thread of its own that
//! writes into a pipe; its error comes back from the reader. A file that changes size while
//! it is read is an error, not a short entry.

use cairn_engine::source::LayerStream;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tar::{Builder, EntryType, Header};

const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
const OVERLAY_XATTRS: &[u8] = b"trusted.overlay.";

/// A directory tree to read as a layer tar.
#[derive(Debug)]
pub struct DirTar {
    root: PathBuf,
}

impl DirTar {
    /// The tree under `root` (its own attributes are not part of the layer).
    pub fn new(root: &Path) -> DirTar {
        DirTar {
            root: root.to_path_buf(),
        }
    }
}

impl LayerStream for DirTar {
    fn open(&self) -> cairn_engine::Result<Box<dyn Read + Send>> {
        let (reader, writer) =
            io::pipe().map_err(|e| cairn_engine::Error::io("pipe", &self.root, e))?;
        let root = self.root.clone();
        let walker = std::thread::spawn(move || write_tar(&root, writer));
        Ok(Box::new(PipedTar {
            reader,
            walker: Some(walker),
        }))
    }

    fn describe(&self) -> String {
        format!("applied tree {}", self.root.display())
    }
}

/// The reading end: at the end of the tar, the walker's error if it had one.
struct PipedTar {
    reader: io::PipeReader,
    walker: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl Read for PipedTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(walker) = self.walker.take() {
                walker
                    .join()
                    .map_err(|_| io::Error::other("the tree walker panicked"))??;
            }
        }
        Ok(n)
    }
}

/// Writes the tar of the tree under `root` into `out`.
pub fn write_tar(root: &Path, out: impl Write) -> io::Result<()> {
    let mut walk = Walk {
        builder: Builder::new(out),
        root: root.to_path_buf(),
        links: HashMap::new(),
    };
    walk.dir(Path::new(""))?;
    walk.builder.finish()
}

struct Walk<W: Write> {
    builder: Builder<W>,
    root: PathBuf,
    /// (device, inode) of files with several links -> the path the first was written at.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Walk<W> {
    /// The entries of directory `rel` (relative to the root), then each subdirectory's.
    fn dir(&mut self, rel: &Path) -> io::Result<()> {
        let full = self.root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&full)
            .map_err(|e| named(e, &full))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| named(e, &full))?;
        names.sort();
        for name in names {
            self.entry(&rel.join(&name), &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, name: &OsStr) -> io::Result<()> {
        let full = self.root.join(rel);
        let meta = fs::symlink_metadata(&full).map_err(|e| named(e, &full))?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            let mut whiteout = OsStr::new(".wh.").to_os_string();
            whiteout.push(name);
            let path = rel.with_file_name(whiteout);
            let mut header = header_of(&meta, EntryType::Regular);
            header.set_size(0);
            return self.builder.append_data(&mut header, path, io::empty());
        }
        let (xattrs, opaque) = xattrs(&full)?;
        self.pax(&xattrs)?;
        if kind.is_dir() {
            let mut header = header_of(&meta, EntryType::Directory);
            self.builder.append_data(&mut header, rel, io::empty())?;
            if opaque {
                let mut header = header_of(&meta, EntryType::Regular);
                header.set_size(0);
                header.set_mode(0o644);
                let path = rel.join(".wh..wh..opq");
                self.builder.append_data(&mut header, path, io::empty())?;
            }
            return self.dir(rel);
        }
        if kind.is_symlink() {
            let target = fs::read_link(&full).map_err(|e| named(e, &full))?;
            let mut header = header_of(&meta, EntryType::Symlink);
            return self.builder.append_link(&mut header, rel, target);
        }
        if kind.is_file() {
            return self.file(rel, &full, &meta);
        }
        let entry_type = if kind.is_char_device() {
            EntryType::Char
        } else if kind.is_block_device() {
            EntryType::Block
        } else if kind.is_fifo() {
            EntryType::Fifo
        } else {
            // A socket: tar has no entry for it (GNU tar skips them too).
            return Ok(());
        };
        let mut header = header_of(&meta, entry_type);
        let dev = meta.rdev();
        header.set_device_major(rustix::fs::major(dev))?;
        header.set_device_minor(rustix::fs::minor(dev))?;
        self.builder.append_data(&mut header, rel, io::empty())
    }

    fn file(&mut self, rel: &Path, full: &Path, meta: &fs::Metadata) -> io::Result<()> {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let mut header = header_of(meta, EntryType::Link);
                header.set_size(0);
                let first = first.clone();
                return self.builder.append_link(&mut header, rel, first);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(full)
            .map_err(|e| named(e, full))?;
        let opened = file.metadata().map_err(|e| named(e, full))?;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            return Err(io::Error::other(format!(
                "{}: replaced while the layer was read",
                full.display()
            )));
        }
        let mut header = header_of(meta, EntryType::Regular);
        header.set_size(meta.len());
        let exact = ExactLen {
            file,
            left: meta.len(),
            path: full,
        };
        self.builder.append_data(&mut header, rel, exact)
    }

    /// A PAX header carrying the entry's extended attributes (`SCHILY.xattr.NAME`).
    fn pax(&mut self, xattrs: &Xattrs) -> io::Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (name, value) in xattrs {
            let mut record = b"SCHILY.xattr.".to_vec();
            record.extend_from_slice(name);
            record.push(b'=');
            record.extend_from_slice(value);
            record.push(b'\n');
            data.extend_from_slice(&pax_record_len(record.len()));
            data.push(b' ');
            data.extend_from_slice(&record);
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_path("PaxHeader")?;
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data.as_slice())
    }
}

/// The decimal length prefix of a PAX record whose rest (after "LEN ") is `rest` bytes: the
/// length counts its own digits.
fn pax_record_len(rest: usize) -> Vec<u8> {
    let mut len = rest + 2;
    loop {
        let text = len.to_string();
        if text.len() + 1 + rest == len {
            return text.into_bytes();
        }
        len = text.len() + 1 + rest;
    }
}

/// A file's bytes, exactly as many as its header says.
struct ExactLen<'a> {
    file: File,
    left: u64,
    path: &'a Path,
}

impl Read for ExactLen<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{}: shrank while the layer was read",
                self.path.display()
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn header_of(meta: &fs::Metadata, entry_type: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_size(0);
    header
}

/// Extended attributes: (name, value) pairs.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The entry's extended attributes but overlay's, sorted, and whether it is opaque.
fn xattrs(path: &Path) -> io::Result<(Xattrs, bool)> {
    let names =
        read_sized(|buf| rustix::fs::llistxattr(path, buf)).map_err(|e| named(e.into(), path))?;
    let mut out = Vec::new();
    let mut opaque = false;
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let value =
            match read_sized(|buf| rustix::fs::lgetxattr(path, OsStr::from_bytes(name), buf)) {
                Ok(value) => value,
                // Removed since it was listed.
                Err(rustix::io::Errno::NODATA) => continue,
                Err(e) => return Err(named(e.into(), path)),
            };
        if name == OPAQUE_XATTR {
            opaque = value == b"y";
            continue;
        }
        if name.starts_with(OVERLAY_XATTRS) {
            continue;
        }
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok((out, opaque))
}

/// Calls `get` with a growing buffer until the value fits.
fn read_sized(get: impl Fn(&mut [u8]) -> rustix::io::Result<usize>) -> rustix::io::Result<Vec<u8>> {
    let mut size = 256;
    loop {
        let mut buf = vec![0u8; size];
        match get(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) if size < (1 << 20) => size *= 4,
            Err(e) => return Err(e),
        }
    }
}

fn named(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// (path, entry type, link target or content) of every entry of a tar.
    fn entries(tar: &[u8]) -> BTreeMap<String, (EntryType, String)> {
        let mut archive = tar::Archive::new(tar);
        let mut out = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let kind = entry.header().entry_type();
            let detail = match entry.link_name().unwrap() {
                Some(target) => target.to_string_lossy().into_owned(),
                None => {
                    let mut text = String::new();
                    entry.read_to_string(&mut text).unwrap();
                    text
                }
            };
            out.insert(path, (kind, detail));
        }
        out
    }

    #[test]
    fn files_links_and_long_names_come_out_as_a_layer_tar_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/sub")).unwrap();
        fs::write(root.join("b/file"), "content").unwrap();
        fs::hard_link(root.join("b/file"), root.join("a-link")).unwrap();
        std::os::unix::fs::symlink("../b/file", root.join("b/sub/sym")).unwrap();
        let long = "n".repeat(150);
        fs::write(root.join("b").join(&long), "long").unwrap();
        let mut tar = Vec::new();
        write_tar(root, &mut tar).unwrap();
        let got = entries(&tar);
        // The first path of the two links (in name order) holds the bytes.
        assert_eq!(got["a-link"], (EntryType::Regular, "content".into()));
        assert_eq!(got["b/file"], (EntryType::Link, "a-link".into()));
        assert_eq!(got["b/sub/sym"], (EntryType::Symlink, "../b/file".into()));
        assert_eq!(
            got[&format!("b/{long}")],
            (EntryType::Regular, "long".into())
        );
        assert_eq!(got["b"].0, EntryType::Directory);
        let mut again = Vec::new();
        write_tar(root, &mut again).unwrap();
        assert_eq!(tar, again, "the same tree gives the same tar");
    }

    #[test]
    fn overlay_whiteouts_and_opaque_directories_become_oci_markers() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("note: whiteout test skipped: mknod and trusted.* xattrs need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("opaque")).unwrap();
        fs::write(root.join("opaque/kept"), "x").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0),
            0,
        )
        .unwrap();
        let opaque = root.join("opaque");
        if rustix::fs::lsetxattr(
            &opaque,
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            eprintln!("note: opaque part skipped: this file system refuses trusted.* xattrs");
            return;
        }
        let mut tar = Vec::new();
        write_tar(root, &mut tar).unwrap();
        let got = entries(&tar);
        assert_eq!(got[".wh.gone"], (EntryType::Regular, String::new()));
        assert!(!got.contains_key("gone"));
        assert_eq!(got["opaque/.wh..wh..opq"].0, EntryType::Regular);
        assert!(got.contains_key("opaque/kept"));
        // Overlay's own attribute is not part of the layer.
        assert!(!String::from_utf8_lossy(&tar).contains("trusted.overlay"));
    }
}
