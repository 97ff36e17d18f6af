//! The tar headers of the layers `plan` emits, written anew from an entry's metadata (the
//! source's raw header bytes belong to its own tar). A ustar header, preceded by a PAX extended
//! header when a field does not fit ustar: a path or link target over 100 bytes, xattrs
//! (`SCHILY.xattr.NAME`), ids, sizes or times out of the octal fields' range, long user or
//! group names. The same bytes are what `plan` counts for a layer's size, so its estimate of
//! a layer and the layer it writes agree to the byte.

use crate::layer::{EntryKind, EntryMeta};

pub(super) const BLOCK: u64 = 512;
/// Two zero blocks end a tar.
pub(super) const END_OF_ARCHIVE: u64 = 2 * BLOCK;

/// Largest values the octal fields hold: 7 digits (ids), 11 digits (size, mtime).
const MAX_ID: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// The bytes of a tar entry's content once padded to whole blocks.
pub(super) fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

/// The header bytes (PAX header with its records if needed, then the ustar header) of `meta`
/// at normalized path `path`; directories get a trailing `/`.
pub(super) fn header(meta: &EntryMeta, path: &[u8]) -> Vec<u8> {
    let mut name = path.to_vec();
    if meta.kind == EntryKind::Directory {
        name.push(b'/');
    }
    let link = meta.link_target.as_deref().unwrap_or_default();
    let size = content_size(meta);
    let mut records = Vec::new();
    if name.len() > 100 {
        pax_record(&mut records, b"path", &name);
    }
    if link.len() > 100 {
        pax_record(&mut records, b"linkpath", link);
    }
    for (key, value) in [(b"uid".as_slice(), meta.uid), (b"gid", meta.gid)] {
        if value > MAX_ID {
            pax_record(&mut records, key, value.to_string().as_bytes());
        }
    }
    if size > MAX_OCTAL_11 {
        pax_record(&mut records, b"size", size.to_string().as_bytes());
    }
    if meta.mtime < 0 || meta.mtime as u64 > MAX_OCTAL_11 {
        pax_record(&mut records, b"mtime", meta.mtime.to_string().as_bytes());
    }
    for (key, value) in [(b"uname".as_slice(), &meta.uname), (b"gname", &meta.gname)] {
        if value.len() > 32 {
            pax_record(&mut records, key, value);
        }
    }
    for (key, value) in &meta.xattrs {
        let mut full = b"SCHILY.xattr.".to_vec();
        full.extend_from_slice(key);
        pax_record(&mut records, &full, value);
    }
    let mut out = Vec::new();
    if !records.is_empty() {
        let mut pax = ustar(b"PaxHeaders/entry", tar::EntryType::XHeader, 0o644);
        pax.set_size(records.len() as u64);
        pax.set_cksum();
        out.extend_from_slice(pax.as_bytes());
        out.extend_from_slice(&records);
        out.resize(BLOCK as usize + padded(records.len() as u64) as usize, 0);
    }
    let mut h = ustar(&name, entry_type(meta.kind), meta.mode);
    h.set_uid(meta.uid.min(MAX_ID));
    h.set_gid(meta.gid.min(MAX_ID));
    h.set_size(if size > MAX_OCTAL_11 { 0 } else { size });
    h.set_mtime(meta.mtime.clamp(0, MAX_OCTAL_11 as i64) as u64);
    if let Some(ustar) = h.as_ustar_mut() {
        copy_truncated(&mut ustar.linkname, link);
        copy_truncated(&mut ustar.uname, &meta.uname);
        copy_truncated(&mut ustar.gname, &meta.gname);
    }
    if matches!(meta.kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        let _ = h.set_device_major(meta.dev_major);
        let _ = h.set_device_minor(meta.dev_minor);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out
}

/// The content bytes that follow the header: a regular file's (or an unknown kind's) only.
pub(super) fn content_size(meta: &EntryMeta) -> u64 {
    match meta.kind {
        EntryKind::File | EntryKind::Other(_) => meta.size,
        _ => 0,
    }
}

/// Bytes the entry takes in a tar: header and padded content.
pub(super) fn entry_bytes(meta: &EntryMeta, path: &[u8]) -> u64 {
    header(meta, path).len() as u64 + padded(content_size(meta))
}

fn ustar(name: &[u8], kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    if let Some(ustar) = h.as_ustar_mut() {
        copy_truncated(&mut ustar.name, name);
    }
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h
}

fn entry_type(kind: EntryKind) -> tar::EntryType {
    match kind {
        EntryKind::File => tar::EntryType::Regular,
        EntryKind::Hardlink => tar::EntryType::Link,
        EntryKind::Symlink => tar::EntryType::Symlink,
        EntryKind::CharDevice => tar::EntryType::Char,
        EntryKind::BlockDevice => tar::EntryType::Block,
        EntryKind::Directory => tar::EntryType::Directory,
        EntryKind::Fifo => tar::EntryType::Fifo,
        EntryKind::Other(flag) => tar::EntryType::new(flag),
    }
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, whose length counts its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar_stream::TarStream;

    fn meta(path: &[u8], kind: EntryKind, size: u64) -> EntryMeta {
        EntryMeta {
            path: path.to_vec(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            mtime: 1_700_000_000,
            size,
            link_target: None,
            xattrs: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
        }
    }

    #[test]
    fn headers_read_back_as_written() {
        let long = vec![b'a'; 150];
        let mut file = meta(&long, EntryKind::File, 3);
        file.xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
        file.uid = 5_000_000;
        let mut link = meta(b"usr/lib/x", EntryKind::Symlink, 0);
        link.link_target = Some(vec![b'b'; 120]);
        let mut tar = Vec::new();
        tar.extend(header(&file, &long));
        tar.extend(b"abc");
        tar.resize(tar.len() + padded(3) as usize - 3, 0);
        tar.extend(header(&link, b"usr/lib/x"));
        assert_eq!(
            tar.len() as u64,
            entry_bytes(&file, &long) + entry_bytes(&link, b"usr/lib/x")
        );
        tar.resize(tar.len() + END_OF_ARCHIVE as usize, 0);
        let mut stream = TarStream::new(tar.as_slice(), "test");
        let first = stream.next_entry().unwrap().unwrap().meta;
        assert_eq!(first.path, long);
        assert_eq!(first.uid, 5_000_000);
        assert_eq!(first.xattrs, file.xattrs);
        assert_eq!(first.size, 3);
        std::io::copy(&mut stream.content(), &mut std::io::sink()).unwrap();
        let second = stream.next_entry().unwrap().unwrap().meta;
        assert_eq!(second.link_target, link.link_target);
        assert!(stream.next_entry().unwrap().is_none());
    }
}
