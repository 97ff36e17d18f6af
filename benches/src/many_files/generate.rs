//! The two layers of `many-files`, written in one pass straight to disk (`tar.rs`): v1, a tree
//! of N regular files, and v2, the same tree with a small fraction changed. Everything follows
//! from one seed through a splitmix64 generator, so the same options give the same bytes.
//!
//! The tree is planned top down from a file budget: each directory keeps a few files and
//! splits the rest among children with uneven weights, down to `MAX_DEPTH` directories; some
//! directories are "wide" (a thousand to six thousand files in one place, as in kernel headers
//! or man pages). Only the path from the root to the current directory is in memory, and
//! content is generated into one reused buffer: the generator's memory does not grow with N.
//!
//! Small files are 128 B to 4 KiB (96 %) or 4 to 64 KiB (4 %); large files (`large/`) are
//! 64 KiB blocks (`content.rs`). A few files get a symlink or a hardlink next to them.
//!
//! v2 differs from v1 by a hash of each file: 1 % rewritten (new content and size, new mtime),
//! 0.2 % removed, 0.2 % with a new file beside them; and 8 bytes changed in the middle of one
//! large file.

use super::content::{large_block, mix, small_content, Rng};
use super::tar::{Header, Kind, TarWriter};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

const MAX_DEPTH: u32 = 5;
const V1_MTIME: u64 = 1_700_000_000;
const V2_MTIME: u64 = 1_710_000_000;
const LARGE_BLOCK: usize = 64 << 10;
/// Large files, as fractions of `--large-mb`.
const LARGE_SHARES: [u64; 3] = [4, 2, 1];
/// The large file that v2 changes in 8 bytes.
const PATCHED_LARGE: usize = 1;

const EXTENSIONS: [&str; 16] = [
    "txt", "json", "py", "so", "conf", "md", "h", "c", "rs", "go", "html", "css", "js", "xml",
    "dat", "bin",
];

/// What to generate.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Shape {
    /// Regular files in v1, large files included.
    pub files: u64,
    /// Size of the largest large file in MB (10^6 bytes); the others are 1/2 and 1/4 of it.
    /// 0: no large files.
    pub large_mb: u64,
    pub seed: u64,
}

/// What one layer holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerCounts {
    pub tar_bytes: u64,
    /// Regular files (hardlinks not counted).
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Content bytes of the regular files.
    pub file_bytes: u64,
}

impl LayerCounts {
    pub fn entries(&self) -> u64 {
        self.files + self.dirs + self.symlinks + self.hardlinks
    }
}

/// The two layers, how v2 differs, and the paths the read steps use.
#[derive(Clone, Debug, Serialize)]
pub struct Generated {
    pub v1: LayerCounts,
    pub v2: LayerCounts,
    pub changed: u64,
    pub removed: u64,
    pub added: u64,
    /// The first small file at the greatest depth (`cat`).
    pub cat_path: String,
    /// The directory with the most entries (`ls`), and how many it has.
    pub ls_dir: String,
    pub ls_entries: u64,
}

/// Writes v1 and v2 of `shape` to the two paths.
pub fn write_pair(shape: &Shape, v1: &Path, v2: &Path) -> Result<Generated> {
    let mut g = Generator {
        v1: Layer::new(v1)?,
        v2: Layer::new(v2)?,
        buf: Vec::with_capacity(64 << 10),
        buf2: Vec::with_capacity(64 << 10),
        changed: 0,
        removed: 0,
        added: 0,
        cat: None,
        widest: (0, String::new()),
        root_extras: 0,
    };
    let large = if shape.large_mb > 0 {
        LARGE_SHARES.len() as u64
    } else {
        0
    };
    let budget = shape.files.saturating_sub(1 + large);
    g.links_dir(shape.seed)?;
    g.root_extras += 1;
    if large > 0 {
        g.large_dir(shape)?;
        g.root_extras += 1;
    }
    g.walk("", 0, budget, false, mix(shape.seed, 0x7EE))?;
    let (cat_path, ls) = (g.cat.map(|(_, p)| p).unwrap_or_default(), g.widest);
    Ok(Generated {
        v1: g.v1.finish()?,
        v2: g.v2.finish()?,
        changed: g.changed,
        removed: g.removed,
        added: g.added,
        cat_path: format!("/{cat_path}"),
        ls_dir: format!("/{}", ls.1),
        ls_entries: ls.0,
    })
}

/// One layer being written, and what it holds so far.
struct Layer {
    tar: TarWriter,
    counts: LayerCounts,
}

impl Layer {
    fn new(path: &Path) -> Result<Self> {
        Ok(Layer {
            tar: TarWriter::create(path)?,
            counts: LayerCounts::default(),
        })
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.counts.dirs += 1;
        self.tar.entry(&Header {
            path,
            kind: Kind::Dir,
            size: 0,
            mode: 0o755,
            mtime: V1_MTIME,
            link: "",
        })
    }

    fn file(&mut self, path: &str, content: &[u8], mtime: u64) -> Result<()> {
        self.file_header(path, content.len() as u64, mtime)?;
        self.tar.content(content)
    }

    fn file_header(&mut self, path: &str, size: u64, mtime: u64) -> Result<()> {
        self.counts.files += 1;
        self.counts.file_bytes += size;
        self.tar.entry(&Header {
            path,
            kind: Kind::File,
            size,
            mode: 0o644,
            mtime,
            link: "",
        })
    }

    fn link(&mut self, path: &str, kind: Kind, target: &str) -> Result<()> {
        match kind {
            Kind::Symlink => self.counts.symlinks += 1,
            _ => self.counts.hardlinks += 1,
        }
        self.tar.entry(&Header {
            path,
            kind,
            size: 0,
            mode: if kind == Kind::Symlink { 0o777 } else { 0o644 },
            mtime: V1_MTIME,
            link: target,
        })
    }

    fn finish(self) -> Result<LayerCounts> {
        let mut counts = self.counts;
        counts.tar_bytes = self.tar.finish()?;
        Ok(counts)
    }
}

/// How a directory's budget is spent.
struct Plan {
    here: u64,
    /// (budget, wide) per child directory.
    children: Vec<(u64, bool)>,
}

fn plan(rng: &mut Rng, depth: u32, budget: u64, wide: bool) -> Plan {
    let leaf = wide
        || depth >= MAX_DEPTH
        || budget <= 24
        || (depth >= 3 && budget < 200 && rng.below(2) == 0);
    if leaf {
        return Plan {
            here: budget,
            children: Vec::new(),
        };
    }
    let mut rest = budget;
    let mut children = Vec::new();
    if depth >= 1 && budget >= 3000 && rng.below(100) < 35 {
        let files = (1000 + rng.below(5000)).min(budget / 3);
        children.push((files, true));
        rest -= files;
    }
    let here = if depth == 0 {
        0
    } else {
        rest * rng.below(6) / 100
    };
    rest -= here;
    let fan = match depth {
        0 => 5 + rng.below(6),
        1 => 4 + rng.below(12),
        _ => 2 + rng.below(20),
    }
    .min(rest / 8)
    .max(1);
    let weights: Vec<u64> = (0..fan)
        .map(|_| {
            let r = rng.below(10);
            1 + r * r
        })
        .collect();
    let total: u64 = weights.iter().sum();
    let mut left = rest;
    for (i, w) in weights.iter().enumerate() {
        let share = if i + 1 == weights.len() {
            left
        } else {
            rest * w / total
        };
        left -= share;
        children.push((share, false));
    }
    Plan { here, children }
}

fn dir_name(rng: &mut Rng, index: usize) -> String {
    match rng.below(8) {
        0 => format!("{}-{}-{}-{index}", rng.word(), rng.word(), rng.word()),
        1..=3 => format!("{}-{}-{index}", rng.word(), rng.word()),
        _ => format!("{}{index}", rng.word()),
    }
}

fn file_name(rng: &mut Rng, index: u64) -> String {
    let ext = EXTENSIONS[rng.below(EXTENSIONS.len() as u64) as usize];
    match rng.below(6) {
        0 => format!(
            "{}_{}_{}-{index:06}.{ext}",
            rng.word(),
            rng.word(),
            rng.word()
        ),
        1 | 2 => format!("{}-{index:x}.{ext}", rng.word()),
        _ => format!("{}_{}{index}.{ext}", rng.word(), rng.word()),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// What becomes of one small file in v2, from its seed.
#[derive(PartialEq, Eq)]
enum Fate {
    Same,
    Changed,
    Removed,
    /// Kept, and a new file is added beside it.
    Neighbour,
}

struct Generator {
    v1: Layer,
    v2: Layer,
    buf: Vec<u8>,
    buf2: Vec<u8>,
    changed: u64,
    removed: u64,
    added: u64,
    /// (depth, path) of the `cat` pick.
    cat: Option<(u32, String)>,
    /// (entries, path) of the `ls` pick.
    widest: (u64, String),
    /// Entries of the root besides the walk's directories (`links/`, `large/`).
    root_extras: u64,
}

impl Generator {
    /// Keeps the directory with the most entries as the `ls` pick.
    fn note_dir(&mut self, entries: u64, path: &str) {
        if entries > self.widest.0 {
            self.widest = (entries, path.to_string());
        }
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.v1.dir(path)?;
        self.v2.dir(path)
    }

    /// `links/`: one small file with a symlink and a hardlink to it, in both versions, so even
    /// the smallest tree has each kind.
    fn links_dir(&mut self, seed: u64) -> Result<()> {
        self.dir("links")?;
        small_content(mix(seed, 0x11), &mut self.buf);
        for layer in [&mut self.v1, &mut self.v2] {
            layer.file("links/target.txt", &self.buf, V1_MTIME)?;
            layer.link("links/target.lnk", Kind::Symlink, "target.txt")?;
            layer.link("links/target.hl", Kind::Hardlink, "links/target.txt")?;
        }
        self.note_dir(3, "links");
        Ok(())
    }

    /// `large/`: the large files, streamed block by block into both layers.
    fn large_dir(&mut self, shape: &Shape) -> Result<()> {
        self.dir("large")?;
        let largest = shape.large_mb * 1_000_000;
        for (i, share) in LARGE_SHARES.iter().enumerate() {
            let size = largest * share / LARGE_SHARES[0];
            let path = format!("large/big-{i}.bin");
            let patch = (i == PATCHED_LARGE).then_some(size / 2 + 4321);
            self.v1.file_header(&path, size, V1_MTIME)?;
            let v2_mtime = if patch.is_some() { V2_MTIME } else { V1_MTIME };
            self.v2.file_header(&path, size, v2_mtime)?;
            let mut rng = Rng(mix(shape.seed, 0x1a7e + i as u64));
            let mut offset = 0u64;
            let mut block = 0u64;
            while offset < size {
                let take = (size - offset).min(LARGE_BLOCK as u64) as usize;
                large_block(&mut rng, block, take, &mut self.buf);
                self.v1.tar.content(&self.buf)?;
                match patch {
                    Some(at) if (offset..offset + take as u64).contains(&at) => {
                        let start = (at - offset) as usize;
                        let end = (start + 8).min(take);
                        for byte in &mut self.buf[start..end] {
                            *byte ^= 0xFF;
                        }
                        self.v2.tar.content(&self.buf)?;
                    }
                    _ => self.v2.tar.content(&self.buf)?,
                }
                offset += take as u64;
                block += 1;
            }
            if patch.is_some() {
                self.changed += 1;
            }
        }
        self.note_dir(LARGE_SHARES.len() as u64, "large");
        Ok(())
    }

    /// The directory `path` at `depth` (the root is "" at 0) with `budget` files below it.
    fn walk(&mut self, path: &str, depth: u32, budget: u64, wide: bool, seed: u64) -> Result<()> {
        if !path.is_empty() {
            self.dir(path)?;
        }
        let mut rng = Rng(seed);
        let plan = plan(&mut rng, depth, budget, wide);
        let mut entries = plan.children.len() as u64;
        if path.is_empty() {
            entries += self.root_extras;
        }
        for i in 0..plan.here {
            entries += self.small_file(path, depth, i, mix(seed, i + 1))?;
        }
        self.note_dir(entries, path);
        for (k, &(files, wide)) in plan.children.iter().enumerate() {
            let child_seed = mix(seed, 0xd1_0000 + k as u64);
            let name = dir_name(&mut Rng(child_seed), k);
            self.walk(&join(path, &name), depth + 1, files, wide, child_seed)?;
        }
        Ok(())
    }

    /// Writes one small file (and its links) to both layers as its fate says; returns how
    /// many entries it put in v1's directory.
    fn small_file(&mut self, dir: &str, depth: u32, index: u64, seed: u64) -> Result<u64> {
        let mut rng = Rng(seed);
        let name = file_name(&mut rng, index);
        let path = join(dir, &name);
        let links = rng.next();
        let hardlink = links.is_multiple_of(4000);
        let symlink = links % 2000 == 1;
        let fate = match rng.below(10_000) {
            0..100 => Fate::Changed,
            100..120 if !hardlink => Fate::Removed,
            120..140 => Fate::Neighbour,
            _ => Fate::Same,
        };
        small_content(mix(seed, 1), &mut self.buf);
        self.v1.file(&path, &self.buf, V1_MTIME)?;
        if self.buf.len() < 4096 && self.cat.as_ref().is_none_or(|(d, _)| depth > *d) {
            self.cat = Some((depth, path.clone()));
        }
        match fate {
            Fate::Removed => self.removed += 1,
            Fate::Changed => {
                self.changed += 1;
                small_content(mix(seed, 2), &mut self.buf2);
                self.v2.file(&path, &self.buf2, V2_MTIME)?;
            }
            Fate::Same | Fate::Neighbour => self.v2.file(&path, &self.buf, V1_MTIME)?,
        }
        let mut entries = 1;
        let symlink_path = format!("{path}.lnk");
        let hardlink_path = format!("{path}.hl");
        if symlink {
            entries += 1;
            self.v1.link(&symlink_path, Kind::Symlink, &name)?;
            if fate != Fate::Removed {
                self.v2.link(&symlink_path, Kind::Symlink, &name)?;
            }
        }
        if hardlink {
            entries += 1;
            self.v1.link(&hardlink_path, Kind::Hardlink, &path)?;
            self.v2.link(&hardlink_path, Kind::Hardlink, &path)?;
        }
        if fate == Fate::Neighbour {
            self.added += 1;
            small_content(mix(seed, 3), &mut self.buf2);
            self.v2.file(&format!("{path}.new"), &self.buf2, V2_MTIME)?;
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(dir: &Path, shape: &Shape) -> Generated {
        write_pair(shape, &dir.join("v1.tar"), &dir.join("v2.tar")).unwrap()
    }

    #[test]
    fn the_pair_is_deterministic_and_v2_differs_a_little() {
        let tmp = tempfile::tempdir().unwrap();
        let shape = Shape {
            files: 5000,
            large_mb: 1,
            seed: 7,
        };
        let [a, b] = ["a", "b"].map(|name| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            generate(&dir, &shape)
        });
        for v in ["v1.tar", "v2.tar"] {
            assert_eq!(
                std::fs::read(tmp.path().join("a").join(v)).unwrap(),
                std::fs::read(tmp.path().join("b").join(v)).unwrap(),
                "{v} is not deterministic"
            );
        }
        assert_eq!(a.v1.files, 5000);
        assert_eq!(a.v2.files, 5000 - a.removed + a.added);
        assert!(a.changed > 10 && a.removed > 0 && a.added > 0, "{a:?}");
        assert!(a.v1.symlinks >= 1 && a.v1.hardlinks >= 1);
        assert_eq!(a.cat_path, b.cat_path);
        assert!(a.cat_path.matches('/').count() >= 4, "{}", a.cat_path);

        // What the tar crate reads back matches the counts.
        let mut archive =
            ::tar::Archive::new(std::fs::File::open(tmp.path().join("a/v1.tar")).unwrap());
        let (mut files, mut dirs, mut bytes) = (0, 0, 0);
        let mut ls_entries = 0;
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let parent = Path::new(path.trim_end_matches('/'))
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if format!("/{parent}") == a.ls_dir {
                ls_entries += 1;
            }
            match entry.header().entry_type() {
                ::tar::EntryType::Regular => {
                    files += 1;
                    bytes += entry.size();
                }
                ::tar::EntryType::Directory => dirs += 1,
                _ => {}
            }
        }
        assert_eq!(
            (files, dirs, bytes),
            (a.v1.files, a.v1.dirs, a.v1.file_bytes)
        );
        assert_eq!(ls_entries, a.ls_entries);
    }
}
