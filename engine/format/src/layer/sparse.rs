//! GNU sparse files, read back from an entry's raw header bytes (as the walker kept them): where
//! the entry's stored data goes in the file it stands for. The old GNU format (type `S`: a map
//! of up to 4 segments in the header, more in extension blocks, and the real size) is read
//! here; the PAX formats (0.0, 0.1, 1.0: `GNU.sparse.*` records, a regular entry's type) are
//! recognised, so that a reader that cannot apply them can say so rather than write the stored
//! data as if it were the file.
//!
//! Memory: the segments, at most 21 per 512 raw bytes (so bounded by the walker's bound on an
//! entry's header bytes).

use super::pax;

const BLOCK: usize = 512;

/// One run of data: `len` stored bytes written at `offset` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub len: u64,
}

/// The file an old GNU sparse entry stands for: its size and where its data goes (in stored
/// order, increasing offsets, not overlapping, inside the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseMap {
    pub real_size: u64,
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sparse {
    /// Not a GNU sparse file.
    None,
    /// Old GNU format (type `S`), its map read and checked.
    OldGnu(SparseMap),
    /// A PAX sparse format, named by its version (`0.0`, `0.1`, `1.0`, ...).
    Pax(String),
}

/// What an entry's raw header bytes (the previous entry's padding, extension entries, header
/// block, sparse extension blocks) say of sparseness; `stored` is the entry's content size,
/// which the map's segments must add up to.
pub fn sparse_of(raw: &[u8], stored: u64) -> Result<Sparse, String> {
    let mut at = raw.len() % BLOCK;
    let mut records = Vec::new();
    loop {
        let block = raw
            .get(at..at + BLOCK)
            .ok_or("raw header bytes end before the header block")?;
        let flag = block[156];
        if !matches!(flag, b'x' | b'g' | b'L' | b'K') {
            if flag == b'S' {
                let map = old_gnu_map(block, &raw[at + BLOCK..])?;
                check_map(&map, stored)?;
                return Ok(Sparse::OldGnu(map));
            }
            return Ok(pax_sparse(&records).map_or(Sparse::None, Sparse::Pax));
        }
        let size = numeric(&block[124..136]).ok_or("bad size field in an extension header")?;
        let data_at = at + BLOCK;
        let data = usize::try_from(size)
            .ok()
            .and_then(|size| raw.get(data_at..data_at.checked_add(size)?))
            .ok_or("extension entry runs past the raw header bytes")?;
        if flag == b'x' {
            pax::parse(data, &mut records)?;
        }
        at = data_at + data.len().div_ceil(BLOCK) * BLOCK;
    }
}

/// The PAX sparse format an entry's own records name, if any.
fn pax_sparse(records: &[pax::Record]) -> Option<String> {
    let get = |key: &[u8]| {
        records
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if let (Some(major), Some(minor)) = (get(b"GNU.sparse.major"), get(b"GNU.sparse.minor")) {
        return Some(format!("{major}.{minor}"));
    }
    if get(b"GNU.sparse.map").is_some() {
        return Some("0.1".into());
    }
    records
        .iter()
        .any(|(k, _)| k.starts_with(b"GNU.sparse."))
        .then(|| "0.0".into())
}

/// The map of an old GNU sparse header (`block`) and the extension blocks after it (`rest`).
fn old_gnu_map(block: &[u8], rest: &[u8]) -> Result<SparseMap, String> {
    let real_size = numeric(&block[483..495]).ok_or("bad real size in a GNU sparse header")?;
    let mut segments = Vec::new();
    let mut extended = read_segments(&block[386..482], &mut segments)? && block[482] != 0;
    let mut blocks = rest.chunks(BLOCK);
    while extended {
        let ext = blocks
            .next()
            .filter(|b| b.len() == BLOCK)
            .ok_or("GNU sparse extension block missing")?;
        extended = read_segments(&ext[..504], &mut segments)? && ext[504] != 0;
    }
    Ok(SparseMap {
        real_size,
        segments,
    })
}

/// Reads (offset, length) pairs of 12 bytes each until an empty one; false if one was empty
/// (the map ends here).
fn read_segments(fields: &[u8], out: &mut Vec<Segment>) -> Result<bool, String> {
    for pair in fields.chunks_exact(24) {
        if pair.iter().all(|&b| b == 0) {
            return Ok(false);
        }
        let bad = || "bad offset or length in a GNU sparse map".to_string();
        out.push(Segment {
            offset: numeric(&pair[..12]).ok_or_else(bad)?,
            len: numeric(&pair[12..]).ok_or_else(bad)?,
        });
    }
    Ok(true)
}

/// Segments in increasing order, not overlapping, inside the file, adding up to the stored size.
fn check_map(map: &SparseMap, stored: u64) -> Result<(), String> {
    let mut end = 0u64;
    let mut total = 0u64;
    for s in &map.segments {
        let s_end = s.offset.checked_add(s.len);
        if s.offset < end || s_end.is_none_or(|e| e > map.real_size) {
            return Err(format!(
                "GNU sparse map: segment at {} of {} bytes overlaps another or lies outside the \
                 file of {} bytes",
                s.offset, s.len, map.real_size
            ));
        }
        end = s_end.unwrap_or(end);
        total = total.saturating_add(s.len);
    }
    if total != stored {
        return Err(format!(
            "GNU sparse map places {total} bytes, the entry stores {stored}"
        ));
    }
    Ok(())
}

/// A tar numeric field: octal (leading spaces or NULs, ended by a space or NUL; empty is 0), or
/// GNU base-256 (high bit of the first byte set, positive values only).
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None;
        }
        let mut value: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    let text = field
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|&&b| b != b' ' && b != 0);
    let mut value: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn octal(field: &mut [u8], value: u64) {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    }

    /// An old GNU sparse header with `segments`, extension blocks for those past 4.
    fn old_gnu(segments: &[(u64, u64)], real_size: u64) -> Vec<u8> {
        let stored: u64 = segments.iter().map(|s| s.1).sum();
        let mut h = vec![0u8; BLOCK];
        h[..6].copy_from_slice(b"sparse");
        octal(&mut h[124..136], stored);
        h[156] = b'S';
        octal(&mut h[483..495], real_size);
        let mut blocks = Vec::new();
        let (head, tail) = segments.split_at(segments.len().min(4));
        for (i, (o, l)) in head.iter().enumerate() {
            octal(&mut h[386 + 24 * i..398 + 24 * i], *o);
            octal(&mut h[398 + 24 * i..410 + 24 * i], *l);
        }
        h[482] = u8::from(!tail.is_empty());
        let groups: Vec<&[(u64, u64)]> = tail.chunks(21).collect();
        for (g, group) in groups.iter().enumerate() {
            let mut b = vec![0u8; BLOCK];
            for (i, (o, l)) in group.iter().enumerate() {
                octal(&mut b[24 * i..24 * i + 12], *o);
                octal(&mut b[24 * i + 12..24 * i + 24], *l);
            }
            b[504] = u8::from(g + 1 < groups.len());
            blocks.extend(b);
        }
        [vec![0u8; 100], h, blocks].concat()
    }

    #[test]
    fn old_gnu_maps_are_read_across_extension_blocks_and_checked() {
        let segments: Vec<(u64, u64)> = (0..30).map(|i| (i * 10_000, 100)).collect();
        let raw = old_gnu(&segments, 400_000);
        let Sparse::OldGnu(map) = sparse_of(&raw, 3000).unwrap() else {
            panic!("not old GNU");
        };
        assert_eq!(map.real_size, 400_000);
        assert_eq!(map.segments.len(), 30);
        assert_eq!(
            map.segments[29],
            Segment {
                offset: 290_000,
                len: 100
            }
        );
        // Stored size disagrees, overlap, outside the file, missing extension block.
        assert!(sparse_of(&raw, 2999).is_err());
        assert!(sparse_of(&old_gnu(&[(0, 100), (50, 100)], 1000), 200).is_err());
        assert!(sparse_of(&old_gnu(&[(0, 100), (950, 100)], 1000), 200).is_err());
        assert!(sparse_of(&raw[..raw.len() - BLOCK], 3000).is_err());
        assert_eq!(
            sparse_of(&old_gnu(&[], 5), 0).unwrap(),
            Sparse::OldGnu(SparseMap {
                real_size: 5,
                segments: vec![],
            })
        );
    }

    #[test]
    fn pax_sparse_formats_are_named_and_plain_entries_are_not_sparse() {
        let mut h = vec![0u8; BLOCK];
        h[156] = b'0';
        assert_eq!(sparse_of(&h, 0).unwrap(), Sparse::None);
        let pax = |records: &str| {
            let mut x = vec![0u8; BLOCK];
            x[156] = b'x';
            octal(&mut x[124..136], records.len() as u64);
            let mut data = records.as_bytes().to_vec();
            data.resize(records.len().div_ceil(BLOCK) * BLOCK, 0);
            [x, data, h.clone()].concat()
        };
        let v1 = pax("22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n");
        assert_eq!(sparse_of(&v1, 0).unwrap(), Sparse::Pax("1.0".into()));
        let v01 = pax("26 GNU.sparse.map=0,1,2,3\n");
        assert_eq!(sparse_of(&v01, 0).unwrap(), Sparse::Pax("0.1".into()));
        let v00 = pax("23 GNU.sparse.offset=0\n");
        assert_eq!(sparse_of(&v00, 0).unwrap(), Sparse::Pax("0.0".into()));
        assert_eq!(sparse_of(&pax("12 path=abc\n"), 0).unwrap(), Sparse::None);
        assert!(sparse_of(&v1[..1024], 0).is_err());
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"  0000017\0"), Some(15));
        assert_eq!(numeric(b"\0\0\0\0"), Some(0));
        assert_eq!(numeric(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(b"0009"), None);
        assert_eq!(numeric(&[0xff, 0xff]), None);
    }
}
