//! The folding rules on small layers, and the differential test: random layer stacks read
//! through `MergedView` and through `MergedTree` (layers extracted one onto the other, the
//! directories their paths go through made where missing) must give the same answers
//! everywhere.

use super::*;
use crate::format::bootstrap::SourceRecord;
use crate::layer::{Compression, EntryMeta};
use crate::view::tree::{MergedTree, TreeNode, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::view::whole_image::{EntryRecord, LayerRecord, WholeImage};
use crate::Sha256Digest;
use cairn_sample::Rng;
use std::collections::{BTreeMap, HashSet};

/// One generated tar entry: raw path, kind, link target.
#[derive(Clone, Debug)]
struct Gen {
    path: Vec<u8>,
    kind: EntryKind,
    target: Option<Vec<u8>>,
}

fn gen(path: &str, kind: EntryKind) -> Gen {
    Gen {
        path: path.as_bytes().to_vec(),
        kind,
        target: None,
    }
}

fn entry_record(g: &Gen) -> EntryRecord {
    EntryRecord {
        raw_header: Vec::new(),
        meta: EntryMeta {
            path: g.path.clone(),
            kind: g.kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: Vec::new(),
            gname: Vec::new(),
            mtime: 0,
            size: 0,
            link_target: g.target.clone(),
            xattrs: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
        },
        chunks: Vec::new(),
    }
}

/// A bootstrap with only what `MergedTree` reads: the layers' entries.
fn bootstrap(stack: &[Vec<Gen>]) -> WholeImage {
    let layers = stack
        .iter()
        .map(|entries| LayerRecord {
            digest: Sha256Digest([0; 32]),
            diff_id: Sha256Digest([0; 32]),
            media_type: String::new(),
            compression: Compression::None,
            compressed_size: 0,
            size: 0,
            meta: crate::LayerMetaId([0; 32]),
            entries: entries.iter().map(entry_record).collect(),
            trailer: Vec::new(),
        })
        .collect();
    WholeImage {
        source: SourceRecord {
            reference: String::new(),
            platform: None,
            manifest: None,
            config: None,
        },
        layers,
        blobs: Vec::new(),
        chunks: Vec::new(),
    }
}

fn indexes(b: &WholeImage) -> Vec<MemoryLayerPaths> {
    b.layers.iter().map(MemoryLayerPaths::from_layer).collect()
}

fn record(layer: &MemoryLayerPaths, parent: &str, name: &str) -> Option<PathRecord> {
    layer.lookup(parent.as_bytes(), name.as_bytes()).unwrap()
}

#[test]
fn memory_view_folds_whiteouts_markers_and_duplicates() {
    use EntryKind::*;
    let layer = MemoryLayerPaths::from_layer(
        &bootstrap(&[vec![
            gen("./a/", Directory),
            gen("a//b", File),
            gen("a/.wh.c", File),
            gen("a/d/.wh..wh..opq", File),
            gen("/x/y/z", Symlink),
            gen("e", File),
            gen("e/", Directory),
            gen("f", Directory),
            gen("f", File),
            gen("./", Directory),
        ]])
        .layers[0],
    );
    let flags = |p, n| record(&layer, p, n).map(|r| (r.entry, r.kind, r.whiteout, r.opaque));
    assert_eq!(
        flags("", "a"),
        Some((Some(0), Some(Directory), false, false))
    );
    assert_eq!(flags("a", "b"), Some((Some(1), Some(File), false, false)));
    assert_eq!(flags("a", "c"), Some((None, None, true, false)));
    assert_eq!(flags("a", ".wh.c"), None);
    assert_eq!(flags("a", "d"), Some((None, None, false, true)));
    assert_eq!(flags("a/d", ".wh..wh..opq"), None);
    assert_eq!(flags("", "x"), Some((None, None, false, false)));
    assert_eq!(flags("x", "y"), Some((None, None, false, false)));
    assert_eq!(
        flags("x/y", "z"),
        Some((Some(4), Some(Symlink), false, false))
    );
    // The file at `e` removed lower layers' entries below it before the directory replaced it.
    assert_eq!(
        flags("", "e"),
        Some((Some(6), Some(Directory), false, true))
    );
    assert_eq!(flags("", "f"), Some((Some(8), Some(File), false, false)));
    assert!(!layer.root_opaque().unwrap());
    let names: Vec<Vec<u8>> = layer
        .children(b"")
        .unwrap()
        .map(|r| r.unwrap().name)
        .collect();
    assert_eq!(names, [&b"a"[..], b"e", b"f", b"x"]);

    let root = MemoryLayerPaths::new([(0, &b"./.wh..wh..opq"[..], File)]);
    assert!(root.root_opaque().unwrap());
    assert_eq!(root.children(b"").unwrap().count(), 0);
}

#[test]
fn merged_view_applies_layers_top_down() {
    use EntryKind::*;
    let b = bootstrap(&[
        vec![
            gen("a/", Directory),
            gen("a/b", File),
            gen("a/c", File),
            gen("a/s/t", File),
            gen("h", Hardlink),
        ],
        vec![gen("a/.wh.b", File), gen("a/d", File), gen("a/s", File)],
        vec![gen("a/.wh..wh..opq", File), gen("a/e", File)],
    ]);
    let paths = indexes(&b);
    let names = |top, dir: &str| -> Vec<String> {
        let view = MergedView::new(&paths, top);
        let children = view.children(dir.as_bytes()).unwrap();
        children
            .into_iter()
            .map(|(n, found)| {
                let implicit = if found.record().is_none() { "/" } else { "" };
                format!(
                    "{}@{}{implicit}",
                    String::from_utf8_lossy(&n),
                    found.layer()
                )
            })
            .collect()
    };
    // `a/s` has no entry in layer 0 (only `a/s/t`): an implicit directory.
    assert_eq!(names(Some(0), "a"), ["b@0", "c@0", "s@0/"]);
    assert_eq!(names(Some(0), "a/s"), ["t@0"]);
    assert_eq!(names(Some(1), "a"), ["c@0", "d@1", "s@1"]);
    assert_eq!(names(None, "/a/"), ["e@2"]);
    assert_eq!(names(None, ""), ["a@0", "h@0"]);
    let view = MergedView::new(&paths, Some(1));
    assert_eq!(view.get(b"a/s/t").unwrap(), None);
    assert_eq!(
        view.get(b"./a/c").unwrap().map(|f| view_key(&f)),
        Some((0, Some(2), File))
    );
    assert!(view.is_dir(b"a").unwrap() && !view.is_dir(b"a/s").unwrap());
    let no_target = |_, _| Ok(None);
    assert_eq!(view.content_entry(b"h", no_target).unwrap(), None);
    assert!(MergedView::new(&paths, Some(0)).is_dir(b"a/s").unwrap());
    assert_eq!(names(Some(7), "a"), ["e@2"]);
}

/// A damaged index that lists a directory out of order.
struct Unordered;

impl LayerPaths for Unordered {
    fn lookup(&self, _: &[u8], _: &[u8]) -> Result<Option<PathRecord>> {
        Ok(None)
    }

    fn children(&self, dir: &[u8]) -> Result<Box<dyn Iterator<Item = Result<PathRecord>> + '_>> {
        let record = |name: &[u8]| PathRecord {
            parent: dir.to_vec(),
            name: name.to_vec(),
            entry: Some(0),
            kind: Some(EntryKind::File),
            whiteout: false,
            opaque: false,
        };
        Ok(Box::new(
            vec![Ok(record(b"b")), Ok(record(b"a"))].into_iter(),
        ))
    }

    fn root_opaque(&self) -> Result<bool> {
        Ok(false)
    }
}

#[test]
fn merged_view_refuses_an_unordered_listing() {
    let err = MergedView::new(&[Unordered], None)
        .children(b"")
        .unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
}

#[test]
fn merged_view_walks_a_deep_path_without_recursion() {
    let deep = vec!["d"; 2_000].join("/");
    let b = bootstrap(&[vec![gen(&deep, EntryKind::File)]]);
    let paths = indexes(&b);
    let mut seen = Vec::new();
    MergedView::new(&paths, None)
        .walk(|p, found| {
            seen.push((p.len(), view_key(found)));
            Ok(())
        })
        .unwrap();
    // 1,999 implicit directories, then the file.
    assert_eq!(seen.len(), 2_000);
    assert!(seen[..1_999]
        .iter()
        .enumerate()
        .all(|(i, s)| *s == (2 * i + 1, (0, None, EntryKind::Directory))));
    assert_eq!(seen[1_999], (deep.len(), (0, Some(0), EntryKind::File)));
}

// ---- Differential test against MergedTree ----

/// Few names, so that layers collide on paths; `a.x` sorts between `a` and `a/...`.
const NAMES: [&[u8]; 4] = [b"a", b"b", b"a.x", b"c"];
const MAX_DEPTH: usize = 3;

fn random_path(rng: &mut Rng) -> Vec<u8> {
    let depth = 1 + rng.below(MAX_DEPTH as u64) as usize;
    let parts: Vec<&[u8]> = (0..depth)
        .map(|_| NAMES[rng.below(NAMES.len() as u64) as usize])
        .collect();
    parts.join(&b'/')
}

/// A path of a lower layer a third of the time (so layers replace and delete each other's
/// entries), else any path.
fn pick(rng: &mut Rng, lower: &[Vec<u8>]) -> Vec<u8> {
    if !lower.is_empty() && rng.below(3) == 0 {
        lower[rng.below(lower.len() as u64) as usize].clone()
    } else {
        random_path(rng)
    }
}

/// Another spelling of a normalized path, as tars have them.
fn spell(rng: &mut Rng, path: &[u8]) -> Vec<u8> {
    match rng.below(8) {
        0 => [b"./", path].concat(),
        1 => [b"/", path].concat(),
        2 => [path, b"/"].concat(),
        3 => match path.iter().position(|&b| b == b'/') {
            Some(i) => [&path[..i], b"/./", &path[i..]].concat(),
            None => path.to_vec(),
        },
        _ => path.to_vec(),
    }
}

/// True if `path` is strictly below `dir`.
fn below(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// One layer of up to 8 entries. Within a layer, no non-directory is an ancestor of another
/// path of the layer (real tars don't have that, and a path index cannot keep the order).
fn random_layer(rng: &mut Rng, lower: &[Vec<u8>]) -> Vec<Gen> {
    let wanted = rng.below(9) as usize;
    let mut out: Vec<Gen> = Vec::new();
    let mut taken: Vec<(Vec<u8>, bool)> = Vec::new();
    for _ in 0..wanted * 4 {
        if out.len() == wanted {
            break;
        }
        let (path, kind, target) = random_entry(rng, lower, &taken);
        let non_dir = kind != EntryKind::Directory;
        let clash = taken
            .iter()
            .any(|(p, p_non_dir)| (non_dir && below(p, &path)) || (*p_non_dir && below(&path, p)));
        if clash {
            continue;
        }
        out.push(Gen {
            path: spell(rng, &path),
            kind,
            target,
        });
        taken.push((path, non_dir));
    }
    out
}

/// (normalized path, kind, link target) of one entry.
fn random_entry(
    rng: &mut Rng,
    lower: &[Vec<u8>],
    taken: &[(Vec<u8>, bool)],
) -> (Vec<u8>, EntryKind, Option<Vec<u8>>) {
    use EntryKind::*;
    match rng.below(13) {
        0..=2 => (pick(rng, lower), Directory, None),
        3..=5 => (pick(rng, lower), File, None),
        6 => (pick(rng, lower), Symlink, Some(random_path(rng))),
        7 | 8 => {
            let target = match rng.below(8) {
                0 => None,
                _ => {
                    let t = pick(rng, lower);
                    Some(spell(rng, &t))
                }
            };
            (pick(rng, lower), Hardlink, target)
        }
        9 | 10 => {
            let victim = pick(rng, lower);
            let (dir, name) = parent_and_name(&victim);
            (join(dir, &[WHITEOUT_PREFIX, name].concat()), File, None)
        }
        11 => {
            let dir = if rng.below(10) == 0 {
                Vec::new()
            } else {
                pick(rng, lower)
            };
            (join(&dir, OPAQUE_MARKER), File, None)
        }
        _ if !taken.is_empty() => {
            // The same path again in this layer, of another kind maybe: the last one counts.
            let again = taken[rng.below(taken.len() as u64) as usize].0.clone();
            let kind = [Directory, File, Symlink][rng.below(3) as usize];
            (again, kind, None)
        }
        _ => (random_path(rng), Fifo, None),
    }
}

fn random_stack(rng: &mut Rng) -> Vec<Vec<Gen>> {
    let layers = 1 + rng.below(5) as usize;
    let mut stack = Vec::new();
    let mut lower: Vec<Vec<u8>> = Vec::new();
    for _ in 0..layers {
        let layer = random_layer(rng, &lower);
        for g in &layer {
            let path = normalize(&g.path);
            let (_, name) = parent_and_name(&path);
            if !name.starts_with(WHITEOUT_PREFIX) && !path.is_empty() {
                lower.push(path);
            }
        }
        stack.push(layer);
    }
    stack
}

/// Every path the generator can make (and one deeper), a few other spellings, and whiteout
/// names, which are never entries of the view.
fn queries() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = vec![Vec::new()];
    let mut level: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..MAX_DEPTH {
        level = level
            .iter()
            .flat_map(|dir| NAMES.iter().map(move |n| join(dir, n)))
            .collect();
        all.extend(level.iter().cloned());
    }
    for extra in [
        "/",
        "./a//a/",
        "/a/a/a/a",
        "a/.wh.b",
        ".wh..wh..opq",
        "a/.wh..wh..opq",
    ] {
        all.push(extra.as_bytes().to_vec());
    }
    all
}

/// How often the interesting answers came up, so a generator change cannot silently make the
/// test trivial.
#[derive(Default, Debug)]
struct Coverage {
    found: usize,
    implicit_dirs: usize,
    listed: usize,
    through_links: usize,
    walked: usize,
}

#[test]
fn merged_view_matches_merged_tree_on_random_stacks() {
    let queries = queries();
    let mut coverage = Coverage::default();
    for seed in 0..2000 {
        let mut rng = Rng::new(seed);
        let stack = random_stack(&mut rng);
        let b = bootstrap(&stack);
        let paths = indexes(&b);
        let n = stack.len();
        for top in (0..n).map(Some).chain([None]) {
            let tree = MergedTree::new(&b, top);
            let view = MergedView::new(&paths, top);
            let context = || format!("seed {seed}, top {top:?}, stack {stack:#?}");
            for q in &queries {
                compare_path(&b, &tree, &view, q, &mut coverage, &context);
            }
            compare_walk(&tree, &view, &mut coverage, &context);
        }
    }
    eprintln!("{coverage:?}");
    let Coverage {
        found,
        implicit_dirs,
        listed,
        through_links,
        walked,
    } = coverage;
    assert!(
        found > 10_000 && listed > 10_000 && walked > 10_000,
        "{coverage:?}"
    );
    assert!(implicit_dirs > 1_000 && through_links > 300, "{coverage:?}");
}

/// The layers of a bootstrap written as layer metadata objects (under `dir`) and opened.
fn layer_objects(
    b: &WholeImage,
    dir: &std::path::Path,
) -> Vec<crate::format::layer_meta::LayerMeta> {
    use crate::format::layer_meta::{LayerEntry, LayerMeta, LayerMetaWriter, LayerSource};
    b.layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let path = dir.join(format!("layer{i}"));
            let mut writer = LayerMetaWriter::create(path.clone()).unwrap();
            for e in &layer.entries {
                writer
                    .push(LayerEntry {
                        raw_header: e.raw_header.clone(),
                        meta: e.meta.clone(),
                        chunks: Vec::new(),
                    })
                    .unwrap();
            }
            let source = LayerSource {
                diff_id: layer.diff_id,
                size: 0,
                trailer: Vec::new(),
            };
            let sealed = writer
                .finish(source, Vec::new(), "convert.bootstrap.write")
                .unwrap();
            LayerMeta::open(&sealed.tmp_path, sealed.id, &format!("layer {i}")).unwrap()
        })
        .collect()
}

/// The same differential test over the on-disk path index: each layer written as a layer
/// metadata object and read back through `LayerPaths for LayerMeta`.
#[test]
fn layer_objects_match_merged_tree_on_random_stacks() {
    let queries = queries();
    let mut coverage = Coverage::default();
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let stack = random_stack(&mut rng);
        let b = bootstrap(&stack);
        let dir = tmp.path().join(seed.to_string());
        std::fs::create_dir(&dir).unwrap();
        let objects = layer_objects(&b, &dir);
        for top in (0..stack.len()).map(Some).chain([None]) {
            let tree = MergedTree::new(&b, top);
            let view = MergedView::new(&objects, top);
            let context = || format!("seed {seed}, top {top:?}, stack {stack:#?}");
            for q in &queries {
                compare_path(&b, &tree, &view, q, &mut coverage, &context);
            }
            compare_walk(&tree, &view, &mut coverage, &context);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(
        coverage.found > 1_000 && coverage.walked > 1_000,
        "{coverage:?}"
    );
}

/// Inputs no real image has, where `MergedTree`'s answers are worth keeping anyway: a lone
/// `.wh.` (at the root it removes everything below, elsewhere nothing), entries below a
/// whiteout-named directory, a root opaque marker, a hardlink without a target or to itself.
#[test]
fn merged_view_matches_merged_tree_on_odd_inputs() {
    use EntryKind::*;
    let lower = vec![
        gen("a/b", File),
        gen("a/c/d", File),
        gen("e", Directory),
        gen("e/f", File),
    ];
    let linked = |path: &str, target: Option<&str>| Gen {
        target: target.map(|t| t.as_bytes().to_vec()),
        ..gen(path, Hardlink)
    };
    let stacks = [
        vec![lower.clone(), vec![gen(".wh.", File), gen("g", File)]],
        vec![
            lower.clone(),
            vec![gen("a/.wh.", File), gen("./e/.wh.", File)],
        ],
        vec![
            lower.clone(),
            vec![gen("a/.wh.b/x", File), gen("a/.wh.c", File)],
        ],
        vec![
            lower.clone(),
            vec![gen("/.wh..wh..opq", File), gen("e/", Directory)],
        ],
        vec![
            lower,
            vec![
                linked("h", None),
                linked("i", Some("i")),
                linked("j", Some("/e/f")),
            ],
        ],
    ];
    let mut coverage = Coverage::default();
    let mut queries = queries();
    queries.extend(
        [
            "a/b",
            "a/c",
            "a/c/d",
            "e",
            "e/f",
            "g",
            "a/.wh.b",
            "a/.wh.b/x",
            "h",
            "i",
            "j",
        ]
        .map(|q| q.as_bytes().to_vec()),
    );
    for (i, stack) in stacks.iter().enumerate() {
        let b = bootstrap(stack);
        let paths = indexes(&b);
        for top in [Some(0), None] {
            let tree = MergedTree::new(&b, top);
            let view = MergedView::new(&paths, top);
            let context = || format!("odd stack {i}, top {top:?}");
            for q in &queries {
                compare_path(&b, &tree, &view, q, &mut coverage, &context);
            }
            compare_walk(&tree, &view, &mut coverage, &context);
        }
    }
}

/// What the tree has at a path, as (layer, entry number, kind); no number for an implicit
/// directory.
type Key = (usize, Option<u64>, EntryKind);

fn tree_key(tree: &MergedTree, node: TreeNode) -> Key {
    match node {
        TreeNode::Entry(r) => (r.layer, Some(r.index as u64), tree.kind(node)),
        TreeNode::Implicit(l) => (l, None, EntryKind::Directory),
    }
}

fn view_key(found: &Found) -> Key {
    let number = found.record().map(|r| r.entry.unwrap());
    (found.layer(), number, found.kind().unwrap())
}

fn compare_path<L: LayerPaths>(
    b: &WholeImage,
    tree: &MergedTree,
    view: &MergedView<L>,
    q: &[u8],
    coverage: &mut Coverage,
    context: &dyn Fn() -> String,
) {
    let q_lossy = String::from_utf8_lossy(q);
    let expected = tree.get(q).map(|n| tree_key(tree, n));
    let got = view.get(q).unwrap();
    if let Some(Found::Entry(_, r)) = &got {
        let path = normalize(q);
        assert_eq!(parent_and_name(&path), (&r.parent[..], &r.name[..]));
    }
    let got = got.as_ref().map(view_key);
    assert_eq!(got, expected, "get {q_lossy}; {}", context());
    coverage.found += usize::from(got.is_some_and(|k| k.1.is_some()));
    coverage.implicit_dirs += usize::from(got.is_some_and(|k| k.1.is_none()));

    let is_dir = tree.is_dir(q);
    assert_eq!(
        view.is_dir(q).unwrap(),
        is_dir,
        "is_dir {q_lossy}; {}",
        context()
    );

    let expected: Vec<(Vec<u8>, Key)> = tree
        .children(q)
        .into_iter()
        .map(|(p, n)| (parent_and_name(p).1.to_vec(), tree_key(tree, n)))
        .collect();
    let got: Vec<(Vec<u8>, Key)> = view
        .children(q)
        .unwrap()
        .into_iter()
        .map(|(name, found)| (name, view_key(&found)))
        .collect();
    assert_eq!(got, expected, "children {q_lossy}; {}", context());
    coverage.listed += got.len();

    let target = |l: usize, e: u64| Ok(b.layers[l].entries[e as usize].meta.link_target.clone());
    let expected = tree.content_entry(q).map(|n| tree_key(tree, n));
    let got = view.content_entry(q, target).unwrap();
    let got = got.as_ref().map(view_key);
    assert_eq!(got, expected, "content_entry {q_lossy}; {}", context());
    let linked = tree.get(q).is_some_and(
        |n| matches!(n, TreeNode::Entry(r) if tree.entry(r).meta.kind == EntryKind::Hardlink),
    );
    coverage.through_links += usize::from(linked && got.is_some());
}

fn compare_walk<L: LayerPaths>(
    tree: &MergedTree,
    view: &MergedView<L>,
    coverage: &mut Coverage,
    context: &dyn Fn() -> String,
) {
    let mut walked: Vec<(Vec<u8>, Key)> = Vec::new();
    view.walk(|p, found| {
        walked.push((p.to_vec(), view_key(found)));
        Ok(())
    })
    .unwrap();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for (p, _) in &walked {
        let ancestors = p.iter().enumerate().filter(|&(_, &b)| b == b'/');
        for (i, _) in ancestors {
            // Every ancestor is a directory of the view, met before.
            assert!(
                seen.contains(&p[..i]),
                "walk: child before parent; {}",
                context()
            );
        }
        assert!(seen.insert(p), "walk: path twice; {}", context());
    }
    let got: BTreeMap<Vec<u8>, Key> = walked.iter().cloned().collect();
    let expected: BTreeMap<Vec<u8>, Key> = tree
        .iter()
        .map(|(p, n)| (p.to_vec(), tree_key(tree, n)))
        .collect();
    assert_eq!(got, expected, "walk; {}", context());
    coverage.walked += got.len();
}
