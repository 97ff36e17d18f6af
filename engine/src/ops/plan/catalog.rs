//! What `plan` learns from one pass over the images: every distinct entry (by identity key,
//! `visible`) with the set of images that show it, and the bytes it takes in a tar; summed by
//! image set into **groups** (the entries exactly those images share), each with its bytes per
//! directory prefix and the packages it touches. The plan is made from the groups alone.
//!
//! Memory: one record per distinct entry of the whole set (its 32-byte key, its image set's
//! number, its tar bytes, its prefix and package numbers), not per image: a set of images is
//! interned once.

use super::visible::{for_each_visible, Key};
use crate::error::{Error, Result};
use crate::format::bootstrap::Bootstrap;
use crate::progress::{Progress, Unit};
use crate::store::Store;
use std::collections::HashMap;

/// One image of the plan.
pub(super) struct CatalogImage {
    pub name: String,
    pub bootstrap: Bootstrap,
    /// Visible entries.
    pub entries: u64,
}

/// One distinct entry.
#[derive(Clone, Copy)]
pub(super) struct KeyInfo {
    pub set: u32,
    pub tar_bytes: u64,
    prefix: u32,
    package: u32,
}

/// The entries exactly one set of images shares.
#[derive(Default, Clone)]
pub(super) struct Group {
    pub entries: u64,
    pub bytes: u64,
    /// Prefix number -> (entries, bytes).
    pub prefixes: HashMap<u32, (u64, u64)>,
    /// Package numbers.
    pub packages: Vec<u32>,
}

pub(super) struct Catalog {
    pub images: Vec<CatalogImage>,
    pub keys: HashMap<Key, KeyInfo>,
    /// Set number -> its images (positions in `images`, ascending).
    pub sets: Vec<Vec<u16>>,
    /// Set number -> its group.
    pub groups: Vec<Group>,
    /// Prefix and package names by number (0 is "none" for packages).
    pub names: Vec<String>,
}

/// Interns image sets: a set grows by one image at a time, as images are read in order.
struct SetTable {
    sets: Vec<Vec<u16>>,
    ids: HashMap<Vec<u16>, u32>,
    grown: HashMap<(u32, u16), u32>,
}

impl SetTable {
    const EMPTY: u32 = 0;

    fn new() -> Self {
        SetTable {
            sets: vec![Vec::new()],
            ids: HashMap::from([(Vec::new(), Self::EMPTY)]),
            grown: HashMap::new(),
        }
    }

    fn with(&mut self, set: u32, image: u16) -> u32 {
        if let Some(&id) = self.grown.get(&(set, image)) {
            return id;
        }
        let mut members = self.sets[set as usize].clone();
        members.push(image);
        let next = self.sets.len() as u32;
        let id = *self.ids.entry(members.clone()).or_insert(next);
        if id == next {
            self.sets.push(members);
        }
        self.grown.insert((set, image), id);
        id
    }
}

/// Interns prefix and package names.
#[derive(Default)]
struct Names {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

impl Catalog {
    pub(super) fn read(
        store: &Store,
        names: &[String],
        progress: &dyn Progress,
    ) -> Result<Catalog> {
        if names.len() > u16::MAX as usize {
            return Err(Error::Usage(format!(
                "{} images: plan takes at most {}",
                names.len(),
                u16::MAX
            )));
        }
        progress.set_length(names.len() as u64, Unit::Items);
        let mut sets = SetTable::new();
        let mut strings = Names::default();
        strings.id(""); // package 0: none
        let mut keys: HashMap<Key, KeyInfo> = HashMap::new();
        let mut images = Vec::new();
        for (i, name) in names.iter().enumerate() {
            progress.set_message(&format!("reading {name}"));
            if names[..i].contains(name) {
                return Err(Error::Usage(format!("image {name} is named twice")));
            }
            let (bootstrap, layers) = store.image_layers(name)?;
            let mut entries = 0;
            for_each_visible(&layers, i as u16, |v| {
                entries += 1;
                let info = keys.entry(v.key).or_insert_with(|| KeyInfo {
                    set: SetTable::EMPTY,
                    tar_bytes: v.tar_bytes,
                    prefix: strings.id(&prefix_of(v.path, v.entry.meta.kind)),
                    package: package_of(v.path, v.entry.meta.kind).map_or(0, |p| strings.id(&p)),
                });
                info.set = sets.with(info.set, i as u16);
                Ok(())
            })?;
            images.push(CatalogImage {
                name: name.clone(),
                bootstrap,
                entries,
            });
            progress.inc(1);
        }
        let mut groups = vec![Group::default(); sets.sets.len()];
        for info in keys.values() {
            let group = &mut groups[info.set as usize];
            group.entries += 1;
            group.bytes += info.tar_bytes;
            let p = group.prefixes.entry(info.prefix).or_default();
            p.0 += 1;
            p.1 += info.tar_bytes;
            if info.package != 0 && !group.packages.contains(&info.package) {
                group.packages.push(info.package);
            }
        }
        Ok(Catalog {
            images,
            keys,
            sets: sets.sets,
            groups,
            names: strings.names,
        })
    }
}

/// Directory names under which each child is one package: a prefix goes one deeper there.
const PACKAGE_ROOTS: [&[u8]; 6] = [
    b"dist-packages",
    b"site-packages",
    b"node_modules",
    b"jvm",
    b"gems",
    b"doc",
];

/// The directory prefix an entry is summarised under: its directory's first three components,
/// or down to the package below a package root (`usr/lib/jvm/java-17-openjdk-amd64`).
fn prefix_of(path: &[u8], kind: crate::layer::EntryKind) -> String {
    let dir = if kind == crate::layer::EntryKind::Directory {
        path
    } else {
        path.iter()
            .rposition(|&b| b == b'/')
            .map_or(&b""[..], |slash| &path[..slash])
    };
    let parts: Vec<&[u8]> = dir
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let depth = parts
        .iter()
        .take(5)
        .position(|p| PACKAGE_ROOTS.contains(p))
        .map_or(3, |i| (i + 2).max(3));
    let kept = &parts[..depth.min(parts.len())];
    if kept.is_empty() {
        return "/".to_string();
    }
    String::from_utf8_lossy(&kept.join(&b'/')).into_owned()
}

/// A package-like name for paths that say which package they belong to: Debian's
/// `usr/share/doc/<package>/`, Python's `<name>-<version>.dist-info/`.
fn package_of(path: &[u8], kind: crate::layer::EntryKind) -> Option<String> {
    let text = String::from_utf8_lossy(path);
    if let Some(rest) = text.strip_prefix("usr/share/doc/") {
        let name = match rest.split_once('/') {
            Some((name, _)) => name,
            None if kind == crate::layer::EntryKind::Directory => rest,
            None => return None,
        };
        return (!name.is_empty()).then(|| name.to_string());
    }
    let dist = text.split('/').find(|p| p.ends_with(".dist-info"))?;
    let stem = dist.strip_suffix(".dist-info")?;
    Some(format!("pypi:{}", stem.split('-').next().unwrap_or(stem)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::EntryKind;

    #[test]
    fn prefixes_and_packages() {
        let file = EntryKind::File;
        assert_eq!(prefix_of(b"usr/bin/python3", file), "usr/bin");
        assert_eq!(
            prefix_of(b"usr/lib/jvm/java-17/lib/modules", file),
            "usr/lib/jvm/java-17"
        );
        assert_eq!(
            prefix_of(b"usr/lib/python3/dist-packages/yaml/a.py", file),
            "usr/lib/python3/dist-packages/yaml"
        );
        assert_eq!(prefix_of(b"etc", EntryKind::Directory), "etc");
        assert_eq!(prefix_of(b"a.txt", file), "/");
        assert_eq!(
            package_of(b"usr/share/doc/libc6/copyright", file).as_deref(),
            Some("libc6")
        );
        assert_eq!(
            package_of(b"usr/share/doc/bash", EntryKind::Directory).as_deref(),
            Some("bash")
        );
        assert_eq!(package_of(b"usr/share/doc/notes.txt", file), None);
        assert_eq!(
            package_of(
                b"usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
                file
            )
            .as_deref(),
            Some("pypi:PyYAML")
        );
        assert_eq!(package_of(b"usr/bin/ls", file), None);
    }
}
