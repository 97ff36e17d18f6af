//! PAX extended-header records (`LEN KEY=VALUE\n`, values may be binary) as the tar walker
//! applies them: one entry's own records (a later record of a key wins), the global records in
//! force (a later global header replaces a key's value), and the lookups that give an entry its
//! metadata.
//!
//! Memory and time are bounded whatever the headers say: an entry's own records are at most
//! `MAX_RECORDS` (their bytes are bounded by the walker's bound on an entry's header bytes), the
//! global records in force at most `MAX_GLOBAL_BYTES` of keys and values (they are applied to
//! every later entry, so a larger set would multiply into every entry's metadata), and every
//! operation is linear or `n log n` in the records it touches, never quadratic.

use std::collections::{BTreeMap, HashSet};

/// One PAX record: key and value.
pub type Record = (Vec<u8>, Vec<u8>);

/// Bound on the PAX records of one entry (all its `x` headers together).
pub const MAX_RECORDS: usize = 1 << 16;
/// Bound on the keys and values of the global records in force.
pub const MAX_GLOBAL_BYTES: usize = 64 << 10;

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Parses the records of one extension entry's data onto `out`, refusing to take `out` past
/// `MAX_RECORDS`.
pub fn parse(mut data: &[u8], out: &mut Vec<Record>) -> Result<(), String> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        if out.len() >= MAX_RECORDS {
            return Err(format!("more than {MAX_RECORDS} PAX records for one entry"));
        }
        let space = data
            .iter()
            .take(24)
            .position(|&b| b == b' ')
            .ok_or("PAX record without a length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(format!("PAX record of length {len} is malformed"));
        }
        let record = &data[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(())
}

/// The global records in force: each key with the value its latest global header gave it and
/// when that was (for the order of the entries' xattrs).
#[derive(Default)]
pub struct Globals {
    records: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    next: u64,
    bytes: usize,
}

impl Globals {
    /// Applies one global header's records, in order.
    pub fn apply(&mut self, records: Vec<Record>) -> Result<(), String> {
        for (key, value) in records {
            let len = key.len() + value.len();
            if let Some((_, old)) = self.records.get(&key) {
                self.bytes -= key.len() + old.len();
            }
            self.bytes += len;
            self.records.insert(key, (self.next, value));
            self.next += 1;
            if self.bytes > MAX_GLOBAL_BYTES {
                return Err(format!(
                    "global PAX records in force exceed {MAX_GLOBAL_BYTES} bytes"
                ));
            }
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.records.get(key).map(|(_, v)| v.as_slice())
    }

    /// The records whose key starts with `prefix`, in the order they were last set.
    fn with_prefix<'a>(&'a self, prefix: &[u8]) -> Vec<(&'a [u8], &'a [u8])> {
        let mut found: Vec<(u64, &[u8], &[u8])> = self
            .records
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (seq, v))| (*seq, k.as_slice(), v.as_slice()))
            .collect();
        found.sort_unstable_by_key(|(seq, _, _)| *seq);
        found.into_iter().map(|(_, k, v)| (k, v)).collect()
    }
}

/// What one entry sees: its own records over the global ones.
pub struct EntryPax<'a> {
    pub local: &'a [Record],
    pub globals: &'a Globals,
}

impl EntryPax<'_> {
    /// The value of `key`: the entry's last record of it, else the global one.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let key = key.as_bytes();
        self.local
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .or_else(|| self.globals.get(key))
    }

    /// Extended attributes from `SCHILY.xattr.NAME` records: one per name (the entry's own
    /// record over a global one, a later record over an earlier one), in the order the
    /// winning records were set (global records first).
    pub fn xattrs(&self) -> Vec<Record> {
        let all: Vec<(&[u8], &[u8])> = self
            .globals
            .with_prefix(XATTR_PREFIX)
            .into_iter()
            .chain(
                self.local
                    .iter()
                    .filter(|(k, _)| k.starts_with(XATTR_PREFIX))
                    .map(|(k, v)| (k.as_slice(), v.as_slice())),
            )
            .collect();
        let mut seen = HashSet::new();
        let mut out: Vec<Record> = all
            .into_iter()
            .rev()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| (k[XATTR_PREFIX.len()..].to_vec(), v.to_vec()))
            .collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in text {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while len.to_string().len() + body.len() != len {
                len += 1;
            }
            out.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        out
    }

    #[test]
    fn local_records_win_over_globals_and_later_over_earlier() {
        let mut globals = Globals::default();
        let mut g = Vec::new();
        parse(
            &records(&[
                ("SCHILY.xattr.user.a", "g1"),
                ("SCHILY.xattr.user.b", "g2"),
                ("uname", "root"),
            ]),
            &mut g,
        )
        .unwrap();
        globals.apply(g).unwrap();
        let mut g = Vec::new();
        parse(&records(&[("SCHILY.xattr.user.a", "g3")]), &mut g).unwrap();
        globals.apply(g).unwrap();
        let mut local = Vec::new();
        parse(
            &records(&[
                ("SCHILY.xattr.user.b", "l1"),
                ("path", "p1"),
                ("SCHILY.xattr.user.c", "l2"),
                ("path", "p2"),
            ]),
            &mut local,
        )
        .unwrap();
        let pax = EntryPax {
            local: &local,
            globals: &globals,
        };
        assert_eq!(pax.get("path"), Some(&b"p2"[..]));
        assert_eq!(pax.get("uname"), Some(&b"root"[..]));
        assert_eq!(pax.get("gname"), None);
        let names: Vec<(String, String)> = pax
            .xattrs()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let expect = [("user.a", "g3"), ("user.b", "l1"), ("user.c", "l2")];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(names, expect);
    }

    #[test]
    fn record_counts_and_global_bytes_are_bounded() {
        let many = b"6 a=b\n".repeat(MAX_RECORDS + 1);
        let err = parse(&many, &mut Vec::new()).unwrap_err();
        assert!(err.contains("PAX records"), "{err}");
        let mut globals = Globals::default();
        // The same key again and again replaces its value: no growth.
        for _ in 0..1000 {
            globals
                .apply(vec![(b"comment".to_vec(), vec![b'x'; 1000])])
                .unwrap();
        }
        let big: Vec<Record> = (0..100)
            .map(|i| (format!("k{i}").into_bytes(), vec![b'x'; 1000]))
            .collect();
        let err = globals.apply(big).unwrap_err();
        assert!(err.contains("global PAX"), "{err}");
    }
}
