//! Directories a layer's tar never declares (`a/b/f` without `a/` or `a/b/`, which the OCI
//! spec allows): the merged view (`ls`, `cat`) and `unpack` against GNU tar extracting the
//! layers one onto the other, over generated layer stacks with and without directory entries,
//! whiteouts and opaque markers; and `export` still giving back the exact tars.

use crate::helpers::*;
use crate::tree::{walk, Node};
use cairn_engine::{Follow, NoProgress, Store, UnpackOptions};
use cairn_sample::{build_layer_tar, LayerCompression, Rng, SampleEntry};
use cairn_testkit::{probe, require};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Few names, so that layers collide on paths.
const NAMES: [&str; 3] = ["a", "b", "c"];
const MAX_DEPTH: u64 = 4;
/// The mtime of every entry the generator writes; an implicit directory shows 0.
const MTIME: u64 = 1_700_000_000;

fn random_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(MAX_DEPTH);
    let parts: Vec<&str> = (0..depth)
        .map(|_| NAMES[rng.below(NAMES.len() as u64) as usize])
        .collect();
    parts.join("/")
}

/// A path of a lower layer (or one of its directories) half of the time, else any path.
fn pick(rng: &mut Rng, lower: &[String]) -> String {
    if lower.is_empty() || rng.below(2) == 0 {
        return random_path(rng);
    }
    let path = &lower[rng.below(lower.len() as u64) as usize];
    let cut = path.match_indices('/').map(|(i, _)| i).collect::<Vec<_>>();
    match rng.below(3) {
        0 if !cut.is_empty() => path[..cut[rng.below(cut.len() as u64) as usize]].to_string(),
        _ => path.clone(),
    }
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// True if `path` is strictly below `dir`.
fn below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// One generated entry: its path (normalized), whether it is a directory-like path (a
/// directory, or a marker, which needs its parent only), and the tar entry.
struct Gen {
    path: String,
    non_dir: bool,
    entry: SampleEntry,
}

/// One layer: files, directories (declared or left implicit), symlinks, whiteouts of lower
/// paths, opaque markers, in random order. No path twice, and no non-directory above another
/// path of the layer (GNU tar cannot extract that, and real layers never have it).
fn random_layer(rng: &mut Rng, lower: &[String]) -> Vec<SampleEntry> {
    let wanted = 1 + rng.below(8) as usize;
    let mut out: Vec<Gen> = Vec::new();
    for _ in 0..wanted * 4 {
        if out.len() == wanted {
            break;
        }
        let g = match rng.below(10) {
            0..=2 => {
                let path = pick(rng, lower);
                let mode = [0o644, 0o600, 0o755][rng.below(3) as usize];
                let data = pseudo_random(rng.below(40) as usize, rng.next_u64());
                let entry = SampleEntry::file(path.clone(), mode, data);
                Gen {
                    path,
                    non_dir: true,
                    entry,
                }
            }
            3 | 4 => {
                // A directory of a path of this layer (declared after its children maybe), or any.
                let path = match out.iter().filter(|g| g.path.contains('/')).count() {
                    0 => pick(rng, lower),
                    n => {
                        let k = rng.below(n as u64) as usize;
                        let g = out.iter().filter(|g| g.path.contains('/')).nth(k).unwrap();
                        parent(&g.path).to_string()
                    }
                };
                let mode = [0o755, 0o700, 0o750][rng.below(3) as usize];
                let entry = SampleEntry::dir(format!("{path}/"), mode);
                Gen {
                    path,
                    non_dir: false,
                    entry,
                }
            }
            5 => {
                let path = pick(rng, lower);
                let entry = SampleEntry::symlink(path.clone(), "../x/y");
                Gen {
                    path,
                    non_dir: true,
                    entry,
                }
            }
            6 | 7 if !lower.is_empty() => {
                let victim = pick(rng, lower);
                let (dir, name) = match victim.rfind('/') {
                    Some(i) => (&victim[..i], &victim[i + 1..]),
                    None => ("", victim.as_str()),
                };
                let path = join(dir, &format!(".wh.{name}"));
                let entry = SampleEntry::file(path.clone(), 0o644, Vec::new());
                Gen {
                    path,
                    non_dir: true,
                    entry,
                }
            }
            _ => {
                let dir = pick(rng, lower);
                let path = join(&dir, ".wh..wh..opq");
                let entry = SampleEntry::file(path.clone(), 0o644, Vec::new());
                Gen {
                    path,
                    non_dir: true,
                    entry,
                }
            }
        };
        let clash = out.iter().any(|o| {
            o.path == g.path
                || (o.non_dir && below(&g.path, &o.path))
                || (g.non_dir && below(&o.path, &g.path))
        });
        if !clash {
            out.push(g);
        }
    }
    out.into_iter().map(|g| g.entry).collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn entry_path(entry: &SampleEntry) -> String {
    let path = match entry {
        SampleEntry::Dir { path, .. }
        | SampleEntry::File { path, .. }
        | SampleEntry::Symlink { path, .. }
        | SampleEntry::Hardlink { path, .. } => path,
    };
    String::from_utf8_lossy(path)
        .trim_end_matches('/')
        .to_string()
}

/// A stack of 1 to 4 layers; later layers reuse lower paths (replace, delete, or put files
/// under directories that lower layers only implied, and the other way round).
pub(crate) fn random_stack(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let layers = 1 + rng.below(4);
    let mut lower: Vec<String> = Vec::new();
    let mut stack = Vec::new();
    for _ in 0..layers {
        let entries = random_layer(&mut rng, &lower);
        for e in &entries {
            let path = entry_path(e);
            if !path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .starts_with(".wh.")
            {
                lower.push(path);
            }
        }
        stack.push(build_layer_tar(&entries, MTIME).unwrap());
    }
    stack
}

fn p(path: &str) -> &Path {
    Path::new(OsStr::from_bytes(path.as_bytes()))
}

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// The layers extracted one onto the other by GNU tar (umask 022), with overlay semantics
/// where tar alone would refuse or differ, as `unpack` and the mount apply them: first the
/// layer's whiteouts (`D/.wh.X` deletes `D/X`) and opaque markers (`D/.wh..wh..opq` empties
/// `D`) act on the lower layers; a non-directory of a lower layer where this layer needs a
/// directory (its entries' parents, declared or not) is removed, as is a lower directory where
/// this layer puts a non-directory (tar refuses both); then `tar -x`, and the markers it
/// extracted are removed (the directories it made for them stay, as containerd's applier
/// makes them too).
pub(crate) fn overlay_reference(layers: &[Vec<u8>], work: &Path) -> PathBuf {
    let root = work.join("reference");
    std::fs::create_dir_all(&root).unwrap();
    for (i, layer) in layers.iter().enumerate() {
        let entries: Vec<(String, bool)> = tar::Archive::new(&layer[..])
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let is_dir = e.header().entry_type().is_dir();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                (path.trim_end_matches('/').to_string(), is_dir)
            })
            .collect();
        let is_marker = |path: &str| path.rsplit('/').next().unwrap().starts_with(".wh.");
        for (path, _) in entries.iter().filter(|(path, _)| is_marker(path)) {
            let (dir, name) = (parent(path), path.rsplit('/').next().unwrap());
            if name == ".wh..wh..opq" {
                if root.join(p(dir)).is_dir() {
                    for entry in std::fs::read_dir(root.join(p(dir))).unwrap() {
                        remove_any(&entry.unwrap().path());
                    }
                }
            } else {
                remove_any(&root.join(p(&join(dir, &name[4..]))));
            }
        }
        for (path, is_dir) in &entries {
            let mut dir = String::new();
            for part in parent(path).split('/').filter(|s| !s.is_empty()) {
                dir = join(&dir, part);
                let there = std::fs::symlink_metadata(root.join(p(&dir)));
                if there.is_ok_and(|m| !m.is_dir()) {
                    remove_any(&root.join(p(&dir)));
                }
            }
            let there = std::fs::symlink_metadata(root.join(p(path)));
            if !is_dir && there.is_ok_and(|m| m.is_dir()) {
                remove_any(&root.join(p(path)));
            }
        }
        let tar_file = work.join(format!("layer{i}.tar"));
        std::fs::write(&tar_file, layer).unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022; exec tar -x -p --xattrs '--xattrs-include=*' -f \"$0\" -C \"$1\"")
            .arg(&tar_file)
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success(), "tar -x layer {i}");
        for (path, _) in entries.iter().filter(|(path, _)| is_marker(path)) {
            remove_any(&root.join(p(path)));
        }
    }
    root
}

/// One node of the view as `ls -l` and `cat` give it.
#[derive(Debug, PartialEq)]
struct Seen {
    kind: String,
    mode: u32,
    /// Non-directories only (directory mtimes differ by design, see `unpack::walk`).
    mtime: Option<i64>,
    content: Option<blake3::Hash>,
    link_target: Option<String>,
}

/// The whole merged view read through `ls` (recursively, symlinks not followed) and `cat`;
/// and the implicit directories it showed (mode 0755, owned by root, mtime 0).
fn view_tree(store: &Store, name: &str) -> (BTreeMap<PathBuf, Seen>, BTreeSet<PathBuf>) {
    let mut out = BTreeMap::new();
    let mut implicit = BTreeSet::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        for row in store.ls(name, &format!("/{dir}"), Follow::No).unwrap() {
            let is_dir = row.kind == "directory";
            if is_dir {
                dirs.push(row.path.clone());
                if row.mtime == 0 {
                    assert_eq!((row.mode, row.uid, row.gid), (0o755, 0, 0), "{}", row.path);
                    implicit.insert(PathBuf::from(&row.path));
                }
            }
            let content = (row.kind == "file").then(|| {
                let mut data = Vec::new();
                store.cat(name, &row.path, Follow::No, &mut data).unwrap();
                blake3::hash(&data)
            });
            let seen = Seen {
                kind: row.kind.to_string(),
                mode: if row.kind == "symlink" {
                    0
                } else {
                    row.mode & 0o7777
                },
                mtime: (!is_dir).then_some(row.mtime),
                content,
                link_target: row.link_target.clone(),
            };
            out.insert(PathBuf::from(&row.path), seen);
        }
    }
    (out, implicit)
}

/// `unpack::walk`'s nodes as `view_tree` sees them.
fn as_seen(tree: &BTreeMap<PathBuf, Node>) -> BTreeMap<PathBuf, Seen> {
    tree.iter()
        .map(|(path, node)| {
            let seen = Seen {
                kind: match node.kind() {
                    "dir" => "directory",
                    "file" => "file",
                    "symlink" => "symlink",
                    other => other,
                }
                .to_string(),
                mode: node.mode(),
                mtime: node.mtime(),
                content: node.content(),
                link_target: node.link_target().map(|t| t.to_string_lossy().into_owned()),
            };
            (path.clone(), seen)
        })
        .collect()
}

#[test]
fn merged_view_and_unpack_match_gnu_tar_with_and_without_directory_entries() {
    if require("the comparison with tar -x", probe::gnu_tar()).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let (mut implicit_dirs, mut files_under_implicit, mut stacks) = (0, 0, 0);
    for seed in 0..60 {
        let layers = random_stack(seed);
        let work = tmp.path().join(format!("w{seed}"));
        let layout = work.join("layout");
        write_layout(&layout, "t", &layers, LayerCompression::None);
        let name = format!("s{seed}");
        convert(&store, &format!("oci:{}", layout.display()), &name, &[]).unwrap();
        let reference = walk(&overlay_reference(&layers, &work));

        let out = work.join("unpacked");
        let options = UnpackOptions::default();
        store
            .store()
            .unpack(&name, &out, &options, &NoProgress)
            .unwrap();
        let unpacked = walk(&out);
        let context = || format!("seed {seed}");
        assert_eq!(
            unpacked.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>(),
            "unpack: the same paths; {}",
            context()
        );
        for (path, node) in &unpacked {
            assert_eq!(
                node,
                &reference[path],
                "unpack {}; {}",
                path.display(),
                context()
            );
        }

        let (seen, implicit) = view_tree(store.store(), &name);
        let expected = as_seen(&reference);
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "ls: the same paths; {}",
            context()
        );
        for (path, node) in &seen {
            assert_eq!(
                node,
                &expected[path],
                "ls/cat {}; {}",
                path.display(),
                context()
            );
        }
        implicit_dirs += implicit.len();
        files_under_implicit += seen
            .iter()
            .filter(|(path, s)| {
                s.kind == "file" && path.parent().is_some_and(|d| implicit.contains(d))
            })
            .count();
        stacks += usize::from(!implicit.is_empty());

        assert_eq!(
            export_all(store.store(), &name),
            layers,
            "export is exact; {}",
            context()
        );
        std::fs::remove_dir_all(&work).unwrap();
    }
    eprintln!(
        "implicit dirs {implicit_dirs}, in {stacks} stacks; files in dirs {files_under_implicit}"
    );
    assert!(implicit_dirs > 100 && stacks > 30 && files_under_implicit > 25);
}

/// The defect's own example: `a/b/f.txt` and `top.txt` without `a/` or `a/b/`.
#[test]
fn files_under_undeclared_directories_are_listed_and_read() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let layer = build_layer_tar(
        &[
            SampleEntry::file("a/b/f.txt", 0o644, b"deep".to_vec()),
            SampleEntry::file("top.txt", 0o644, b"top".to_vec()),
        ],
        MTIME,
    )
    .unwrap();
    let layout = tmp.path().join("layout");
    write_layout(&layout, "t", &[layer], LayerCompression::Gzip);
    convert(&store, &format!("oci:{}", layout.display()), "img", &[]).unwrap();
    let names = |dir: &str| -> Vec<(String, &'static str)> {
        let rows = store
            .store()
            .ls_names("img", dir, Follow::Symlinks)
            .unwrap();
        rows.into_iter().map(|r| (r.path, r.kind)).collect()
    };
    assert_eq!(
        names("/"),
        [("a".into(), "directory"), ("top.txt".into(), "file")]
    );
    assert_eq!(names("a"), [("a/b".into(), "directory")]);
    assert_eq!(names("a/b"), [("a/b/f.txt".into(), "file")]);
    let rows = store.store().ls("img", "a", Follow::Symlinks).unwrap();
    assert_eq!((rows[0].mode, rows[0].uid, rows[0].mtime), (0o755, 0, 0));
    let mut data = Vec::new();
    store
        .store()
        .cat("img", "a/b/f.txt", Follow::Symlinks, &mut data)
        .unwrap();
    assert_eq!(data, b"deep");
    let mut data = Vec::new();
    store
        .store()
        .cat("img", "/a/./b/../b/f.txt", Follow::Symlinks, &mut data)
        .unwrap();
    assert_eq!(data, b"deep");
    let err = store
        .store()
        .cat("img", "a/b", Follow::Symlinks, &mut Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
}
