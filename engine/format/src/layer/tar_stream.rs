//! A tar reader that keeps every byte. File content is handed to the caller as a stream (to be
//! chunked); everything else (header blocks, PAX and GNU long-name extension entries, GNU sparse
//! extension blocks, padding, the end-of-archive blocks and whatever follows them) is returned
//! raw, so that `raw prefix + content` for every entry, then the trailer, re-creates the layer's
//! exact bytes. The `tar` crate parses the fields of each 512-byte header.
//!
//! Memory is bounded whatever the header sequence: the bytes before one entry's content (the
//! previous entry's padding, any number of PAX, global PAX and GNU long name/link entries, the
//! header block, GNU sparse extension blocks) by `MAX_HEADER_BYTES` in total, the PAX records
//! an entry sees by `pax::MAX_RECORDS` and `pax::MAX_GLOBAL_BYTES`, the trailer by
//! `MAX_TRAILER_LEN`; file content is never held.

use super::pax::{self, EntryPax, Globals, Record};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

const BLOCK: usize = 512;
/// Bound on the raw bytes before one entry's content, extension entries included.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;
/// Bound on the bytes after the end-of-archive marker that are kept raw.
const MAX_TRAILER_LEN: u64 = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    File,
    Hardlink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// Any other type flag (GNU sparse 'S', volume labels, ...): kept exactly, content as given.
    Other(u8),
}

impl EntryKind {
    fn from_flag(flag: u8) -> EntryKind {
        match flag {
            b'0' | b'\0' | b'7' => EntryKind::File,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            other => EntryKind::Other(other),
        }
    }
}

/// An entry's metadata as a tar reader applying PAX and GNU extensions sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    #[serde(with = "crate::bytes_serde")]
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    #[serde(with = "crate::bytes_serde")]
    pub uname: Vec<u8>,
    #[serde(with = "crate::bytes_serde")]
    pub gname: Vec<u8>,
    pub mtime: i64,
    /// Content bytes that follow the header in the tar.
    pub size: u64,
    /// Symlink target or hardlink target.
    pub link_target: Option<Vec<u8>>,
    /// From PAX `SCHILY.xattr.NAME` records, in record order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub dev_major: u32,
    pub dev_minor: u32,
}

impl EntryMeta {
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// One entry as read: the raw bytes before its content, and its parsed metadata.
#[derive(Debug)]
pub struct TarEntryHeader {
    pub raw: Vec<u8>,
    pub meta: EntryMeta,
}

pub struct TarStream<R> {
    reader: R,
    label: String,
    offset: u64,
    padding_due: u64,
    content_left: u64,
    current_path: String,
    globals: Globals,
    trailer: Option<Vec<u8>>,
}

/// The extension entries read before one entry's header.
#[derive(Default)]
struct Extensions {
    pax: Vec<Record>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    /// Any extension entry at all (then the stream must not end before the header).
    any: bool,
}

impl<R: Read> TarStream<R> {
    /// `label` names the layer in errors (e.g. `layer 2 sha256:...`).
    pub fn new(reader: R, label: impl Into<String>) -> Self {
        TarStream {
            reader,
            label: label.into(),
            offset: 0,
            padding_due: 0,
            content_left: 0,
            current_path: String::new(),
            globals: Globals::default(),
            trailer: None,
        }
    }

    fn err(&self, offset: u64, reason: impl std::fmt::Display) -> Error {
        Error::bad_input(
            self.label.clone(),
            format!("tar at offset {offset}: {reason}"),
        )
    }

    fn read_io_err(&self, e: io::Error) -> Error {
        // Decoder and digest errors arrive here as io errors; keep their text.
        Error::bad_input(
            self.label.clone(),
            format!("reading at offset {}: {e}", self.offset),
        )
    }

    /// Reads up to `buf.len()` bytes; returns how many (less only at end of stream).
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_io_err(e)),
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    /// Appends `len` more bytes to `raw`, the bytes before an entry's content, refusing to take
    /// it past `MAX_HEADER_BYTES` (`entry_at` names the first of them in that error).
    fn read_exact_into(
        &mut self,
        raw: &mut Vec<u8>,
        len: u64,
        what: &str,
        entry_at: u64,
    ) -> Result<()> {
        if raw.len() as u64 + len > MAX_HEADER_BYTES {
            return Err(self.err(
                entry_at,
                format!(
                    "{what} of {len} bytes would take the extension entries and headers before \
                     one entry's content past {MAX_HEADER_BYTES} bytes"
                ),
            ));
        }
        let start = raw.len();
        raw.resize(start + len as usize, 0);
        let at = self.offset;
        let got = self.read_full(&mut raw[start..])?;
        if got as u64 != len {
            return Err(self.err(
                at,
                format!("truncated: {what} needs {len} bytes, got {got}"),
            ));
        }
        Ok(())
    }

    /// The next entry, or `None` at the end of the archive (then see `trailer`). The previous
    /// entry's content must have been read completely through `content`.
    pub fn next_entry(&mut self) -> Result<Option<TarEntryHeader>> {
        if self.content_left != 0 {
            return Err(self.err(
                self.offset,
                format!("internal: {} content bytes left unread", self.content_left),
            ));
        }
        if self.trailer.is_some() {
            return Ok(None);
        }
        let mut raw = Vec::with_capacity(BLOCK + self.padding_due as usize);
        if self.padding_due > 0 {
            let pad = self.padding_due;
            self.padding_due = 0;
            // A stream that ends inside the final padding is kept as it is (exact bytes).
            raw.resize(pad as usize, 0);
            let got = self.read_full(&mut raw)?;
            if (got as u64) < pad {
                raw.truncate(got);
                self.trailer = Some(raw);
                return Ok(None);
            }
        }
        let mut ext = Extensions::default();
        let entry_at = self.offset;
        loop {
            let header_offset = self.offset;
            let block_start = raw.len();
            if block_start as u64 + BLOCK as u64 > MAX_HEADER_BYTES {
                return Err(self.err(
                    entry_at,
                    format!(
                        "extension entries before one entry's header exceed {MAX_HEADER_BYTES} \
                         bytes"
                    ),
                ));
            }
            raw.resize(block_start + BLOCK, 0);
            let got = self.read_full(&mut raw[block_start..])?;
            if got == 0 && !ext.any {
                // End of stream without an end-of-archive marker: keep what was read.
                raw.truncate(block_start);
                self.trailer = Some(raw);
                return Ok(None);
            }
            if got < BLOCK {
                return Err(self.err(
                    header_offset,
                    format!("truncated: header block has {got} of {BLOCK} bytes"),
                ));
            }
            let block: [u8; BLOCK] = raw[block_start..].try_into().expect("one block");
            if block.iter().all(|&b| b == 0) {
                self.read_trailer(raw)?;
                return Ok(None);
            }
            let header = tar::Header::from_byte_slice(&block);
            check_checksum(&block).map_err(|r| self.err(header_offset, r))?;
            let flag = header.entry_type().as_byte();
            match flag {
                b'x' | b'g' | b'L' | b'K' => {
                    ext.any = true;
                    let size = header
                        .entry_size()
                        .map_err(|e| self.err(header_offset, format!("extension size: {e}")))?;
                    let data_start = raw.len();
                    let what = "extension entry data";
                    self.read_exact_into(&mut raw, size, what, entry_at)?;
                    let data_end = raw.len();
                    let pad = padding(size);
                    self.read_exact_into(&mut raw, pad, "extension entry padding", entry_at)?;
                    self.apply_extension(flag, &raw[data_start..data_end], &mut ext)
                        .map_err(|r| self.err(header_offset, r))?;
                }
                _ => {
                    if flag == b'S' {
                        self.read_sparse_extensions(&mut raw, &block, entry_at)?;
                    }
                    let meta = self.entry_meta(header, ext, header_offset)?;
                    self.content_left = meta.size;
                    self.padding_due = padding(meta.size);
                    self.current_path = meta.path_lossy();
                    return Ok(Some(TarEntryHeader { raw, meta }));
                }
            }
        }
    }

    /// Applies one extension entry's data (PAX records, global PAX records, a GNU long name or
    /// link) to what the next entry will see.
    fn apply_extension(
        &mut self,
        flag: u8,
        data: &[u8],
        ext: &mut Extensions,
    ) -> std::result::Result<(), String> {
        match flag {
            b'x' => pax::parse(data, &mut ext.pax),
            b'g' => {
                let mut records = Vec::new();
                pax::parse(data, &mut records)?;
                self.globals.apply(records)
            }
            b'L' => {
                ext.long_name = Some(trim_nuls(data));
                Ok(())
            }
            _ => {
                ext.long_link = Some(trim_nuls(data));
                Ok(())
            }
        }
    }

    /// Old GNU sparse headers may be followed by extension blocks (flag byte 504 of each), as
    /// many as `MAX_HEADER_BYTES` allows.
    fn read_sparse_extensions(
        &mut self,
        raw: &mut Vec<u8>,
        block: &[u8; BLOCK],
        entry_at: u64,
    ) -> Result<()> {
        let mut extended = block[482] != 0;
        while extended {
            let start = raw.len();
            let what = "GNU sparse extension block";
            self.read_exact_into(raw, BLOCK as u64, what, entry_at)?;
            extended = raw[start + 504] != 0;
        }
        Ok(())
    }

    fn read_trailer(&mut self, mut raw: Vec<u8>) -> Result<()> {
        let at = self.offset;
        let mut rest = Vec::new();
        (&mut self.reader)
            .take(MAX_TRAILER_LEN + 1)
            .read_to_end(&mut rest)
            .map_err(|e| self.read_io_err(e))?;
        if rest.len() as u64 > MAX_TRAILER_LEN {
            return Err(self.err(
                at,
                format!("more than {MAX_TRAILER_LEN} bytes after the end-of-archive marker"),
            ));
        }
        self.offset += rest.len() as u64;
        raw.extend_from_slice(&rest);
        self.trailer = Some(raw);
        Ok(())
    }

    fn entry_meta(&self, header: &tar::Header, ext: Extensions, at: u64) -> Result<EntryMeta> {
        let field_err = |field: &str, e: io::Error| self.err(at, format!("bad {field} field: {e}"));
        // An empty numeric field reads as 0, as GNU tar and Python's tarfile read it.
        let block = header.as_bytes();
        let numeric = |field: &str, range: std::ops::Range<usize>, value: io::Result<u64>| {
            value.or_else(|e| {
                if block[range].iter().all(|&b| b == 0 || b == b' ') {
                    Ok(0)
                } else {
                    Err(field_err(field, e))
                }
            })
        };
        let pax = EntryPax {
            local: &ext.pax,
            globals: &self.globals,
        };
        let pax_get = |key: &str| pax.get(key).map(|v| v.to_vec());
        let pax_num = |key: &str| -> Result<Option<u64>> {
            match pax_get(key) {
                None => Ok(None),
                Some(v) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Some)
                    .ok_or_else(|| self.err(at, format!("PAX {key} is not a number"))),
            }
        };
        let path = pax_get("path")
            .or(ext.long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let kind = EntryKind::from_flag(header.entry_type().as_byte());
        let link_target = match kind {
            EntryKind::Hardlink | EntryKind::Symlink => Some(
                pax_get("linkpath")
                    .or(ext.long_link)
                    .or_else(|| header.link_name_bytes().map(|l| l.into_owned()))
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let size = match pax_num("size")? {
            Some(size) => size,
            None => header.entry_size().map_err(|e| field_err("size", e))?,
        };
        let mtime = match pax_get("mtime") {
            Some(v) => parse_pax_time(&v).ok_or_else(|| self.err(at, "PAX mtime is not a time"))?,
            None => numeric("mtime", 136..148, header.mtime())? as i64,
        };
        let (dev_major, dev_minor) = match kind {
            EntryKind::CharDevice | EntryKind::BlockDevice => (
                header
                    .device_major()
                    .map_err(|e| field_err("devmajor", e))?
                    .unwrap_or(0),
                header
                    .device_minor()
                    .map_err(|e| field_err("devminor", e))?
                    .unwrap_or(0),
            ),
            _ => (0, 0),
        };
        let xattrs = pax.xattrs();
        Ok(EntryMeta {
            path,
            kind,
            mode: numeric("mode", 100..108, header.mode().map(u64::from))? as u32,
            uid: match pax_num("uid")? {
                Some(v) => v,
                None => numeric("uid", 108..116, header.uid())?,
            },
            gid: match pax_num("gid")? {
                Some(v) => v,
                None => numeric("gid", 116..124, header.gid())?,
            },
            uname: pax_get("uname")
                .or_else(|| header.username_bytes().map(|u| u.to_vec()))
                .unwrap_or_default(),
            gname: pax_get("gname")
                .or_else(|| header.groupname_bytes().map(|g| g.to_vec()))
                .unwrap_or_default(),
            mtime,
            size,
            link_target,
            xattrs,
            dev_major,
            dev_minor,
        })
    }

    /// The current entry's content. Read it to its end before calling `next_entry` again.
    pub fn content(&mut self) -> ContentReader<'_, R> {
        ContentReader { stream: self }
    }

    /// The raw bytes from the end-of-archive marker on, once `next_entry` returned `None`.
    pub fn take_trailer(&mut self) -> Vec<u8> {
        self.trailer.take().unwrap_or_default()
    }

    /// Bytes of the uncompressed tar read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Reads exactly one entry's content; a stream that ends early is an error naming the entry.
pub struct ContentReader<'a, R> {
    stream: &'a mut TarStream<R>,
}

impl<R: Read> Read for ContentReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &mut *self.stream;
        if s.content_left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(s.content_left.min(usize::MAX as u64) as usize);
        let n = s.reader.read(&mut buf[..want]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: reading entry {:?} at offset {}: {e}",
                    s.label, s.current_path, s.offset
                ),
            )
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: truncated tar: entry {:?} ends at offset {} with {} content bytes missing",
                    s.label, s.current_path, s.offset, s.content_left
                ),
            ));
        }
        s.offset += n as u64;
        s.content_left -= n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nuls(data: &[u8]) -> Vec<u8> {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    data[..end].to_vec()
}

fn check_checksum(block: &[u8; BLOCK]) -> std::result::Result<(), String> {
    let field = &block[148..156];
    let text: String = field.iter().map(|&b| b as char).collect();
    let digits = text
        .trim_matches(|c: char| c == '\0' || c == ' ')
        .split(['\0', ' '])
        .next()
        .unwrap_or("");
    let stored = u32::from_str_radix(digits, 8).map_err(|_| {
        format!(
            "header checksum field {:?} is not octal: not a tar header",
            String::from_utf8_lossy(field)
        )
    })?;
    let mut unsigned: u32 = 0;
    let mut signed: i32 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u32;
        signed += b as i8 as i32;
    }
    if stored == unsigned || stored as i32 == signed {
        Ok(())
    } else {
        Err(format!(
            "header checksum mismatch: stored {stored}, computed {unsigned}"
        ))
    }
}

fn parse_pax_time(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let whole = text.split('.').next()?;
    whole.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a whole tar, returning (entries, reassembled bytes).
    fn reassemble(data: &[u8]) -> Result<(Vec<EntryMeta>, Vec<u8>)> {
        let mut stream = TarStream::new(data, "test");
        let mut out = Vec::new();
        let mut metas = Vec::new();
        while let Some(entry) = stream.next_entry()? {
            out.extend_from_slice(&entry.raw);
            std::io::copy(&mut stream.content(), &mut out)
                .map_err(|e| Error::bad_input("x", e.to_string()))?;
            metas.push(entry.meta);
        }
        out.extend(stream.take_trailer());
        Ok((metas, out))
    }

    fn sample_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("dir/{}/file.txt", "x".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o640);
        h.set_mtime(1234);
        builder.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder.append_link(&mut h, "link", "dir/target").unwrap();
        builder
            .append_pax_extensions([("SCHILY.xattr.user.a", &b"\x00\x01bin"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1000);
        h.set_mode(0o755);
        builder
            .append_data(&mut h, "big.bin", &vec![7u8; 1000][..])
            .unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn reassembles_exact_bytes_and_parses_metadata() {
        let data = sample_tar();
        let (metas, out) = reassemble(&data).unwrap();
        assert_eq!(out, data);
        assert_eq!(metas.len(), 3);
        assert!(metas[0].path.ends_with(b"/file.txt") && metas[0].path.len() > 150);
        assert_eq!(metas[0].mode, 0o640);
        assert_eq!(metas[0].mtime, 1234);
        assert_eq!(metas[1].kind, EntryKind::Symlink);
        assert_eq!(metas[1].link_target.as_deref(), Some(&b"dir/target"[..]));
        assert_eq!(
            metas[2].xattrs,
            vec![(b"user.a".to_vec(), b"\x00\x01bin".to_vec())]
        );
        assert_eq!(metas[2].size, 1000);
    }

    #[test]
    fn keeps_trailing_bytes_and_missing_end_marker() {
        let mut data = sample_tar();
        data.extend_from_slice(&[0u8; 8192]);
        assert_eq!(reassemble(&data).unwrap().1, data);
        let without_end = &sample_tar()[..sample_tar().len() - 1024];
        assert_eq!(reassemble(without_end).unwrap().1, without_end);
    }

    /// A header block for an extension entry of type `flag` with `size` bytes of data.
    fn ext_header(flag: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path("PaxHeaders/x").unwrap();
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_size(size);
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    /// An extension entry (header, data, padding) whose data is one PAX record of `len` bytes.
    fn pax_entry(flag: u8, key: &str, len: usize) -> Vec<u8> {
        let digits = len.to_string().len();
        let value = "v".repeat(len - digits - key.len() - 3);
        let record = format!("{len} {key}={value}\n");
        assert_eq!(record.len(), len);
        let mut out = ext_header(flag, len as u64);
        out.extend_from_slice(record.as_bytes());
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    /// `count` copies of `unit` then `tail`, produced as they are read (never all in memory).
    struct Flood<'a> {
        unit: &'a [u8],
        count: usize,
        pos: usize,
        tail: &'a [u8],
    }

    impl Read for Flood<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let unit_total = self.unit.len() * self.count;
            if self.pos < unit_total {
                let at = self.pos % self.unit.len();
                let n = buf.len().min(self.unit.len() - at);
                buf[..n].copy_from_slice(&self.unit[at..at + n]);
                self.pos += n;
                return Ok(n);
            }
            let at = self.pos - unit_total;
            let n = buf.len().min(self.tail.len() - at);
            buf[..n].copy_from_slice(&self.tail[at..at + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Walks a flood to its first entry; the error, and how far the walker read.
    fn walk_flood(unit: &[u8], count: usize) -> (Result<Option<EntryMeta>>, u64) {
        let tail = sample_tar();
        let mut stream = TarStream::new(
            Flood {
                unit,
                count,
                pos: 0,
                tail: &tail,
            },
            "flood",
        );
        let first = stream.next_entry().map(|e| e.map(|e| e.meta));
        (first, stream.offset())
    }

    #[test]
    fn header_floods_are_refused_within_the_bound() {
        // One 16 MiB PAX entry, many 1 MiB ones, many GNU long names: each flood is refused
        // once the bytes before one entry's content would pass the bound, having read no more
        // than the bound.
        let floods = [
            (pax_entry(b'x', "comment", (16 << 20) - 100), 32),
            (pax_entry(b'x', "comment", 1 << 20), 64),
            (pax_entry(b'g', "comment", 1 << 20), 64),
            (pax_entry(b'L', "x", 4096), 10_000),
            (pax_entry(b'K', "x", 100_000), 1000),
        ];
        for (unit, count) in &floods {
            let (first, read) = walk_flood(unit, *count);
            let err = first.unwrap_err().to_string();
            assert!(err.contains("extension") || err.contains("PAX"), "{err}");
            assert!(read <= MAX_HEADER_BYTES + BLOCK as u64, "read {read}");
        }
        // Many small PAX headers that stay within the bound are fine; their records are
        // bounded in number too.
        let small = pax_entry(b'x', "comment", 100);
        let (first, _) = walk_flood(&small, 1000);
        assert!(first.unwrap().is_some());
        let tiny = [ext_header(b'x', 6 * 1000), b"6 a=b\n".repeat(1000)].concat();
        let tiny = [tiny.as_slice(), &vec![0; padding(6000) as usize]].concat();
        let (first, _) = walk_flood(&tiny, 100);
        let err = first.unwrap_err().to_string();
        assert!(err.contains("PAX records"), "{err}");
        // Global headers that keep setting new keys pass the bound on global records.
        let mut globals = Vec::new();
        for i in 0..200 {
            globals.extend(pax_entry(b'g', &format!("k{i}"), 1000));
        }
        let (first, _) = walk_flood(&globals, 1);
        let err = first.unwrap_err().to_string();
        assert!(err.contains("global PAX"), "{err}");
        // While the same global key set again and again does not grow.
        let same = pax_entry(b'g', "comment", 1000);
        let (first, _) = walk_flood(&same, 10_000);
        assert!(first.unwrap().is_some());
    }

    #[test]
    fn truncation_and_bad_checksum_are_errors() {
        let data = sample_tar();
        // Cut inside big.bin's content.
        let cut = data.len() - 1024 - 512 - 200;
        assert!(reassemble(&data[..cut]).is_err());
        // Cut inside a header block.
        assert!(reassemble(&data[..100]).is_err());
        let mut bad = data.clone();
        bad[10] ^= 0x55;
        let err = reassemble(&bad).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
