//! Layer tars built from a list of entries, and the compressions a layer blob can get.
//!
//! [`build_layer_tar`] writes ustar headers by hand through the `tar` crate so that the bytes are
//! fixed: root-owned, one mtime for all entries, PAX records (named as Go's archive/tar names
//! them) for long paths, long link targets and xattrs. The OCI layout and docker archive writers
//! ([`crate::oci_layout`], [`crate::docker_archive`]) use it for their own files too.

use std::io::{self, Write};

use tar::{Builder, EntryType, Header};

use crate::invalid;

/// Length of the ustar `name` and `linkname` fields.
const USTAR_NAME_LEN: usize = 100;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// Uncompressed tar (`application/vnd.oci.image.layer.v1.tar`).
    None,
    /// gzip, level 6, header mtime 0 (`...tar+gzip`).
    Gzip,
    /// zstd, level 3 (`...tar+zstd`).
    Zstd,
}

impl LayerCompression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Compresses `tar` deterministically.
    pub fn compress(self, tar: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            LayerCompression::None => Ok(tar.to_vec()),
            LayerCompression::Gzip => {
                let mut enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(Vec::new(), flate2::Compression::new(6));
                enc.write_all(tar)?;
                enc.finish()
            }
            LayerCompression::Zstd => zstd::encode_all(tar, 3),
        }
    }
}

/// A tar entry to put in a generated layer.
///
/// Paths and link targets are raw bytes, written exactly as given (no `/` is added to
/// directories; by convention callers end directory paths with `/`). They must be non-empty
/// and must not contain NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEntry {
    /// A directory.
    Dir {
        /// Path inside the layer, e.g. `b"etc/"`.
        path: Vec<u8>,
        /// Permission bits, e.g. `0o755`.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Path inside the layer.
        path: Vec<u8>,
        /// Permission bits, e.g. `0o644`.
        mode: u32,
        /// File content.
        data: Vec<u8>,
        /// Extended attributes, written in order as PAX `SCHILY.xattr.<name>` records.
        /// Names must not contain `=`, NUL or newline.
        xattrs: Vec<(String, Vec<u8>)>,
    },
    /// A symbolic link (mode `0o777`).
    Symlink {
        /// Path inside the layer.
        path: Vec<u8>,
        /// Link target, stored verbatim.
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry of the same layer (mode `0o644`, size 0).
    Hardlink {
        /// Path inside the layer.
        path: Vec<u8>,
        /// Path of the earlier entry it links to.
        target: Vec<u8>,
    },
}

impl SampleEntry {
    /// A directory entry.
    pub fn dir(path: impl Into<Vec<u8>>, mode: u32) -> Self {
        SampleEntry::Dir {
            path: path.into(),
            mode,
        }
    }

    /// A regular file without xattrs.
    pub fn file(path: impl Into<Vec<u8>>, mode: u32, data: Vec<u8>) -> Self {
        SampleEntry::File {
            path: path.into(),
            mode,
            data,
            xattrs: Vec::new(),
        }
    }

    /// A symbolic link.
    pub fn symlink(path: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        SampleEntry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }

    /// A hard link.
    pub fn hardlink(path: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        SampleEntry::Hardlink {
            path: path.into(),
            target: target.into(),
        }
    }
}

/// A ustar header with the fields every generated entry shares (root-owned, fixed mtime).
fn base_header(kind: EntryType, mode: u32, size: u64, mtime: u64) -> io::Result<Header> {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h.set_username("root")?;
    h.set_groupname("root")?;
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    Ok(h)
}

/// Copies up to 100 bytes of `value` into a ustar name-like field (the rest stays NUL).
fn set_name_field(field: &mut [u8; USTAR_NAME_LEN], value: &[u8]) {
    *field = [0; USTAR_NAME_LEN];
    let n = value.len().min(USTAR_NAME_LEN);
    field[..n].copy_from_slice(&value[..n]);
}

fn check_name(what: &str, value: &[u8]) -> io::Result<()> {
    if value.is_empty() {
        return Err(invalid(format!("sample tar: empty {what}")));
    }
    if value.contains(&0) {
        return Err(invalid(format!("sample tar: {what} contains a NUL byte")));
    }
    Ok(())
}

/// Appends one PAX record (`"<len> <key>=<value>\n"`) to `out`.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1; // ' ' key '=' value '\n'
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Name of the PAX extended header for `path`: `<dir>/PaxHeaders.0/<base>` (as Go's
/// archive/tar writes it), cut to 100 bytes.
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&trimmed[..0], trimmed),
    };
    let mut name = Vec::with_capacity(path.len() + 13);
    name.extend_from_slice(dir);
    name.extend_from_slice(b"PaxHeaders.0/");
    name.extend_from_slice(base);
    name.truncate(USTAR_NAME_LEN);
    name
}

/// Appends `entry` to `b`: its PAX extended header first if it needs one, then its header and
/// data.
pub(crate) fn append_entry<W: Write>(
    b: &mut Builder<W>,
    entry: &SampleEntry,
    mtime: u64,
) -> io::Result<()> {
    let no_xattrs: &[(String, Vec<u8>)] = &[];
    let (kind, path, mode, data, link, xattrs): (_, &[u8], u32, &[u8], Option<&[u8]>, _) =
        match entry {
            SampleEntry::Dir { path, mode } => {
                (EntryType::Directory, path, *mode, &[], None, no_xattrs)
            }
            SampleEntry::File {
                path,
                mode,
                data,
                xattrs,
            } => (
                EntryType::Regular,
                path,
                *mode,
                data,
                None,
                xattrs.as_slice(),
            ),
            SampleEntry::Symlink { path, target } => (
                EntryType::Symlink,
                path,
                0o777,
                &[],
                Some(target),
                no_xattrs,
            ),
            SampleEntry::Hardlink { path, target } => {
                (EntryType::Link, path, 0o644, &[], Some(target), no_xattrs)
            }
        };
    check_name("path", path)?;
    if let Some(link) = link {
        check_name("link target", link)?;
    }

    let mut pax = Vec::new();
    if path.len() > USTAR_NAME_LEN {
        pax_record(&mut pax, "path", path);
    }
    if let Some(link) = link.filter(|l| l.len() > USTAR_NAME_LEN) {
        pax_record(&mut pax, "linkpath", link);
    }
    for (name, value) in xattrs {
        if name.is_empty() || name.contains(['=', '\0', '\n']) {
            return Err(invalid(format!("sample tar: bad xattr name {name:?}")));
        }
        pax_record(&mut pax, &format!("SCHILY.xattr.{name}"), value);
    }
    if !pax.is_empty() {
        let mut h = base_header(EntryType::XHeader, 0o644, pax.len() as u64, mtime)?;
        let ustar = h
            .as_ustar_mut()
            .ok_or_else(|| io::Error::other("ustar header expected"))?;
        set_name_field(&mut ustar.name, &pax_header_name(path));
        h.set_cksum();
        b.append(&h, pax.as_slice())?;
    }

    let mut h = base_header(kind, mode, data.len() as u64, mtime)?;
    let ustar = h
        .as_ustar_mut()
        .ok_or_else(|| io::Error::other("ustar header expected"))?;
    set_name_field(&mut ustar.name, path);
    if let Some(link) = link {
        set_name_field(&mut ustar.linkname, link);
    }
    h.set_cksum();
    b.append(&h, data)
}

/// Builds an uncompressed layer tar from `entries`, in the given order.
///
/// Every entry gets `mtime`, uid/gid 0 and uname/gname `root`. Headers are ustar; a path or
/// link target longer than 100 bytes is carried by a PAX `path` / `linkpath` record (the ustar
/// field then holds its first 100 bytes), and xattrs by PAX `SCHILY.xattr.<name>` records.
/// Non-UTF-8 bytes are written verbatim. The archive ends with the usual two zero blocks.
pub fn build_layer_tar(entries: &[SampleEntry], mtime: u64) -> io::Result<Vec<u8>> {
    let mut b = Builder::new(Vec::new());
    for entry in entries {
        append_entry(&mut b, entry, mtime)?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::parse;

    #[test]
    fn tar_round_trips_paths_links_and_xattrs() {
        let long: Vec<u8> = format!("{}/file.txt", "d".repeat(120)).into_bytes();
        let long_target: Vec<u8> = format!("../{}", "t".repeat(150)).into_bytes();
        let odd = b"dir/\xff\xfe-not-utf8".to_vec();
        let entries = vec![
            SampleEntry::dir("dir/", 0o755),
            SampleEntry::File {
                path: b"dir/a.txt".to_vec(),
                mode: 0o640,
                data: b"hello".to_vec(),
                xattrs: vec![
                    ("user.comment".into(), b"hi there".to_vec()),
                    ("security.capability".into(), vec![1, 0, 0xff, 2]),
                ],
            },
            SampleEntry::file(long.clone(), 0o644, vec![7; 1000]),
            SampleEntry::file(odd.clone(), 0o600, b"x".to_vec()),
            SampleEntry::symlink("dir/short-link", "a.txt"),
            SampleEntry::symlink("dir/long-link", long_target.clone()),
            SampleEntry::hardlink("dir/hard", long.clone()),
        ];
        let tar = build_layer_tar(&entries, 1234).unwrap();
        assert_eq!(tar.len() % 512, 0);
        assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));

        let parsed = parse(&tar);
        let paths: Vec<&[u8]> = parsed.iter().map(|e| e.path.as_slice()).collect();
        let expected: Vec<&[u8]> = vec![
            b"dir/",
            b"dir/a.txt",
            &long,
            &odd,
            b"dir/short-link",
            b"dir/long-link",
            b"dir/hard",
        ];
        assert_eq!(paths, expected);
        assert!(parsed.iter().all(|e| e.mtime == 1234));
        assert_eq!(parsed[0].kind, EntryType::Directory);
        assert_eq!(parsed[0].mode, 0o755);
        assert_eq!(parsed[1].data, b"hello");
        assert_eq!(parsed[1].mode, 0o640);
        assert_eq!(
            parsed[1].xattrs,
            vec![
                ("user.comment".to_string(), b"hi there".to_vec()),
                ("security.capability".to_string(), vec![1, 0, 0xff, 2]),
            ]
        );
        assert_eq!(parsed[2].data, vec![7; 1000]);
        assert!(parsed[2].xattrs.is_empty());
        assert_eq!(parsed[3].data, b"x");
        assert_eq!(parsed[4].kind, EntryType::Symlink);
        assert_eq!(parsed[4].link.as_deref(), Some(&b"a.txt"[..]));
        assert_eq!(parsed[5].link.as_deref(), Some(long_target.as_slice()));
        assert_eq!(parsed[6].kind, EntryType::Link);
        assert_eq!(parsed[6].link.as_deref(), Some(long.as_slice()));
        assert!(parsed[6].data.is_empty());
    }

    #[test]
    fn tar_rejects_bad_input() {
        assert!(build_layer_tar(&[SampleEntry::file("", 0o644, vec![])], 0).is_err());
        assert!(build_layer_tar(&[SampleEntry::file(b"a\0b".to_vec(), 0o644, vec![])], 0).is_err());
        let bad_xattr = SampleEntry::File {
            path: b"f".to_vec(),
            mode: 0o644,
            data: vec![],
            xattrs: vec![("a=b".into(), vec![])],
        };
        assert!(build_layer_tar(&[bad_xattr], 0).is_err());
    }

    #[test]
    fn pax_record_lengths_are_self_consistent() {
        for n in [0usize, 1, 5, 6, 7, 90, 91, 92, 93, 994, 995, 996, 997] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; n]);
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value length {n}");
        }
    }
}
