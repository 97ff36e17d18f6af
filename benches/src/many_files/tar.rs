//! A streaming writer of uncompressed tar files: ustar headers, with a PAX extended header in
//! front of an entry whose path or link target does not fit the 100-byte ustar fields (what GNU
//! tar and most image builders write). Only what `many-files` needs: regular files,
//! directories, symlinks and hardlinks, owned by root.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
        }
    }
}

/// One entry's header. `path` has no trailing slash (one is added for directories); `link` is
/// the target of a symlink or hardlink, empty otherwise.
pub struct Header<'a> {
    pub path: &'a str,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
    pub link: &'a str,
}

/// A tar file being written: entries, then [`TarWriter::finish`].
pub struct TarWriter {
    out: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
    /// Content bytes still owed to the current regular file.
    owed: u64,
    pax_count: u64,
}

impl TarWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(TarWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            bytes: 0,
            owed: 0,
            pax_count: 0,
        })
    }

    /// Writes the header of the next entry; a regular file's `size` content bytes follow with
    /// [`TarWriter::content`].
    pub fn entry(&mut self, header: &Header) -> Result<()> {
        debug_assert_eq!(self.owed, 0, "the previous file's content is incomplete");
        let path = if header.kind == Kind::Dir {
            format!("{}/", header.path)
        } else {
            header.path.to_string()
        };
        let mut records = Vec::new();
        if path.len() > NAME_FIELD {
            records.extend(pax_record("path", &path));
        }
        if header.link.len() > NAME_FIELD {
            records.extend(pax_record("linkpath", header.link));
        }
        if !records.is_empty() {
            self.pax_count += 1;
            let name = format!("PaxHeaders.{}/{}", self.pax_count, basename(&path));
            let pax = ustar(&name, b'x', records.len() as u64, 0o644, header.mtime, "");
            self.write(&pax)?;
            self.write(&records)?;
            self.pad(records.len() as u64)?;
        }
        let size = if header.kind == Kind::File {
            header.size
        } else {
            0
        };
        let block = ustar(
            &path,
            header.kind.typeflag(),
            size,
            header.mode,
            header.mtime,
            header.link,
        );
        self.write(&block)?;
        self.owed = size;
        Ok(())
    }

    /// Content of the current regular file, in any number of pieces; the padding to the next
    /// 512-byte block is written after the last one.
    pub fn content(&mut self, bytes: &[u8]) -> Result<()> {
        let len = bytes.len() as u64;
        debug_assert!(len <= self.owed, "more content than the header's size");
        self.write(bytes)?;
        self.owed -= len;
        if self.owed == 0 {
            // The file's total size decides the padding; only the total's remainder matters.
            let written_in_block = self.bytes % BLOCK as u64;
            if written_in_block != 0 {
                self.write(&[0u8; BLOCK][..BLOCK - written_in_block as usize])?;
            }
        }
        Ok(())
    }

    /// Ends the archive (two zero blocks) and returns its size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        self.write(&[0u8; 2 * BLOCK])?;
        self.out
            .flush()
            .with_context(|| format!("write {}", self.path.display()))?;
        Ok(self.bytes)
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rest = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        self.write(&[0u8; BLOCK][..rest as usize])
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_context(|| format!("write {}", self.path.display()))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    // Short enough for the ustar name field after "PaxHeaders.N/"; names here are ASCII.
    &name[..name.len().min(64)]
}

/// One PAX record: "LEN key=value\n", where LEN counts the whole record, itself included.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// A ustar header block; `name` and `link` are cut to their fields (a PAX record carries the
/// whole value when they are longer).
fn ustar(name: &str, typeflag: u8, size: u64, mode: u32, mtime: u64, link: &str) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    fn cut(s: &str) -> &[u8] {
        &s.as_bytes()[..s.len().min(NAME_FIELD)]
    }
    let name = cut(name);
    h[..name.len()].copy_from_slice(name);
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}", width = field.len() - 1);
        field[..text.len()].copy_from_slice(text.as_bytes());
    };
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    let link = cut(link);
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "a"), b"9 path=a\n");
        // Across the lengths where the count gains a digit.
        for n in 0..1100 {
            let record = pax_record("path", &"x".repeat(n));
            let text = String::from_utf8(record.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), record.len(), "{n}");
        }
    }

    #[test]
    fn writes_what_the_tar_crate_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.tar");
        let long_dir = format!("d/{}", "long-directory-name-".repeat(6));
        let long_file = format!("{long_dir}/file.txt");
        let mut tar = TarWriter::create(&path).unwrap();
        let header = |path, kind, size, link| Header {
            path,
            kind,
            size,
            mode: 0o644,
            mtime: 1_700_000_000,
            link,
        };
        tar.entry(&header("d", Kind::Dir, 0, "")).unwrap();
        tar.entry(&header(&long_dir, Kind::Dir, 0, "")).unwrap();
        tar.entry(&header(&long_file, Kind::File, 700, "")).unwrap();
        tar.content(&[b'a'; 300]).unwrap();
        tar.content(&[b'b'; 400]).unwrap();
        tar.entry(&header("d/link", Kind::Symlink, 0, "../x"))
            .unwrap();
        tar.entry(&header("d/hard", Kind::Hardlink, 0, &long_file))
            .unwrap();
        let bytes = tar.finish().unwrap();
        assert_eq!(bytes % 512, 0);
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());

        let mut archive = ::tar::Archive::new(std::fs::File::open(&path).unwrap());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            seen.push((name, link, content.len()));
        }
        assert_eq!(
            seen,
            vec![
                ("d/".to_string(), None, 0),
                (format!("{long_dir}/"), None, 0),
                (long_file.clone(), None, 700),
                ("d/link".to_string(), Some("../x".to_string()), 0),
                ("d/hard".to_string(), Some(long_file), 0),
            ]
        );
    }
}
