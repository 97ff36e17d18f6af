//! Structured tars for the tar walker: entries, PAX / global PAX / GNU long name and link
//! headers (alone or in floods of up to tens of MiB, produced as they are read), old GNU sparse
//! headers, hardlink chains, escaping names (`..`, absolute, through a symlink), zero blocks and
//! trailing bytes. `cairn_format::fuzzing::tar_walk` checks the walker's bounds, exactness and
//! unpack's path rule on each.

#![no_main]

use arbitrary::Arbitrary;
use std::io::Read;

#[derive(Arbitrary, Debug)]
enum Name {
    Plain(u8),
    Nested(u8, u8),
    DotDot(u8),
    Absolute(u8),
    ThroughSymlink(u8),
    Long(u16),
    Raw(Vec<u8>),
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Plain(n) => format!("f{n}").into_bytes(),
            Name::Nested(d, n) => format!("d{d}/f{n}").into_bytes(),
            Name::DotDot(n) => format!("../../f{n}").into_bytes(),
            Name::Absolute(n) => format!("/etc/f{n}").into_bytes(),
            Name::ThroughSymlink(n) => format!("link{n}/pwned").into_bytes(),
            Name::Long(len) => "x".repeat(*len as usize % 8192 + 1).into_bytes(),
            Name::Raw(bytes) => bytes.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Key {
    Path,
    Linkpath,
    Size,
    Mtime,
    Uid,
    Xattr(u8),
    Comment,
    SparseMajor,
    Raw(Vec<u8>),
}

impl Key {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Key::Path => b"path".to_vec(),
            Key::Linkpath => b"linkpath".to_vec(),
            Key::Size => b"size".to_vec(),
            Key::Mtime => b"mtime".to_vec(),
            Key::Uid => b"uid".to_vec(),
            Key::Xattr(n) => format!("SCHILY.xattr.user.{n}").into_bytes(),
            Key::Comment => b"comment".to_vec(),
            Key::SparseMajor => b"GNU.sparse.major".to_vec(),
            Key::Raw(k) => k.clone(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FloodKind {
    Pax,
    GlobalPax,
    LongName,
    LongLink,
}

#[derive(Arbitrary, Debug)]
enum Piece {
    File {
        name: Name,
        size: u16,
    },
    Dir {
        name: Name,
    },
    Symlink {
        name: Name,
        target: Name,
    },
    Hardlink {
        name: Name,
        target: Name,
    },
    Pax {
        records: Vec<(Key, Vec<u8>)>,
        global: bool,
    },
    LongName {
        name: Name,
        link: bool,
    },
    /// `count` extension entries of `len` data bytes each.
    Flood {
        kind: FloodKind,
        count: u16,
        len: u32,
    },
    Sparse {
        name: Name,
        segments: Vec<(u32, u16)>,
        real_size: u32,
    },
    ZeroBlocks(u8),
    Bytes(Vec<u8>),
}

/// A ustar header block (checksum filled in); `size` in octal.
fn header(name: &[u8], flag: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", size.min(0o77777777777)).as_bytes());
    h[136..147].copy_from_slice(b"00000000001");
    h[156] = flag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len += 1;
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn extension(flag: u8, data: &[u8]) -> Vec<u8> {
    let mut out = header(b"././@ext", flag, data.len() as u64, b"");
    out.extend_from_slice(data);
    pad(&mut out);
    out
}

/// The stream: pieces of bytes, some repeated; produced as read.
enum Part {
    Bytes(Vec<u8>),
    Repeat(Vec<u8>, usize),
}

struct Parts {
    parts: Vec<Part>,
    index: usize,
    pos: usize,
}

impl Read for Parts {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(part) = self.parts.get(self.index) {
            let (unit, total) = match part {
                Part::Bytes(b) => (b, b.len()),
                Part::Repeat(b, count) => (b, b.len() * count),
            };
            if self.pos >= total || unit.is_empty() {
                self.index += 1;
                self.pos = 0;
                continue;
            }
            let at = self.pos % unit.len();
            let n = buf.len().min(unit.len() - at).min(total - self.pos);
            buf[..n].copy_from_slice(&unit[at..at + n]);
            self.pos += n;
            return Ok(n);
        }
        Ok(0)
    }
}

fn sparse(name: &[u8], segments: &[(u32, u16)], real_size: u32) -> Vec<u8> {
    let stored: u64 = segments.iter().map(|s| s.1 as u64).sum();
    let mut h = header(name, b'S', stored, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    let field = |v: u64| format!("{v:011o}\0").into_bytes();
    let (head, tail) = segments.split_at(segments.len().min(4));
    for (i, (o, l)) in head.iter().enumerate() {
        h[386 + 24 * i..398 + 24 * i].copy_from_slice(&field(*o as u64));
        h[398 + 24 * i..410 + 24 * i].copy_from_slice(&field(*l as u64));
    }
    h[482] = u8::from(!tail.is_empty());
    h[483..495].copy_from_slice(&field(real_size as u64));
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let groups: Vec<&[(u32, u16)]> = tail.chunks(21).collect();
    for (g, group) in groups.iter().enumerate() {
        let mut b = vec![0u8; 512];
        for (i, (o, l)) in group.iter().enumerate() {
            b[24 * i..24 * i + 12].copy_from_slice(&field(*o as u64));
            b[24 * i + 12..24 * i + 24].copy_from_slice(&field(*l as u64));
        }
        b[504] = u8::from(g + 1 < groups.len());
        h.extend(b);
    }
    h.extend(std::iter::repeat_n(0x5a, stored as usize));
    pad(&mut h);
    h
}

fn build(pieces: &[Piece]) -> Vec<Part> {
    let mut parts = Vec::new();
    for piece in pieces {
        let bytes = match piece {
            Piece::File { name, size } => {
                let mut out = header(&name.bytes(), b'0', *size as u64, b"");
                out.extend(std::iter::repeat_n(0xa5, *size as usize));
                pad(&mut out);
                out
            }
            Piece::Dir { name } => header(&name.bytes(), b'5', 0, b""),
            Piece::Symlink { name, target } => header(&name.bytes(), b'2', 0, &target.bytes()),
            Piece::Hardlink { name, target } => header(&name.bytes(), b'1', 0, &target.bytes()),
            Piece::Pax { records, global } => {
                let data: Vec<u8> = records
                    .iter()
                    .flat_map(|(k, v)| pax_record(&k.bytes(), v))
                    .collect();
                extension(if *global { b'g' } else { b'x' }, &data)
            }
            Piece::LongName { name, link } => {
                let mut data = name.bytes();
                data.push(0);
                extension(if *link { b'K' } else { b'L' }, &data)
            }
            Piece::Flood { kind, count, len } => {
                // Up to 32 MiB per extension entry and 64 MiB per flood.
                let len = (*len as usize) % (32 << 20) + 32;
                let count = (*count as usize).min((64 << 20) / len + 1);
                let unit = match kind {
                    FloodKind::Pax | FloodKind::GlobalPax => {
                        let value = vec![b'v'; len - 16];
                        let flag = if matches!(kind, FloodKind::Pax) {
                            b'x'
                        } else {
                            b'g'
                        };
                        extension(flag, &pax_record(b"comment", &value))
                    }
                    FloodKind::LongName => extension(b'L', &vec![b'n'; len]),
                    FloodKind::LongLink => extension(b'K', &vec![b'l'; len]),
                };
                parts.push(Part::Repeat(unit, count));
                continue;
            }
            Piece::Sparse {
                name,
                segments,
                real_size,
            } => sparse(
                &name.bytes(),
                &segments[..segments.len().min(100)],
                *real_size,
            ),
            Piece::ZeroBlocks(n) => vec![0u8; 512 * (*n as usize % 8)],
            Piece::Bytes(b) => b.clone(),
        };
        parts.push(Part::Bytes(bytes));
    }
    parts
}

libfuzzer_sys::fuzz_target!(|pieces: Vec<Piece>| {
    let mut input = Parts {
        parts: build(&pieces),
        index: 0,
        pos: 0,
    };
    let _ = cairn_format::fuzzing::tar_walk(&mut input);
});
