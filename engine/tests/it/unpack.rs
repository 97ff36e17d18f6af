//! `unpack`: the merged root filesystem written into a directory, checked against the layers'
//! content and against GNU tar, and never written outside its directory.

use crate::helpers::*;
use crate::tree::{gnu_tar_reference, p, walk, xattrs};
use cairn_engine::{NoProgress, Store, UnpackOptions, UnpackReport};
use cairn_sample::{build_layer_tar, LayerCompression, SampleEntry};
use cairn_testkit::probe::{self, is_root};
use cairn_testkit::require;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Converts `layers` (uncompressed) into `store` as image `name`.
fn add_image(store: &cairn_engine::StoreWriter, work: &Path, name: &str, layers: &[Vec<u8>]) {
    let layout = work.join(format!("layout-{name}"));
    write_layout(&layout, "t", layers, LayerCompression::None);
    convert(store, &format!("oci:{}", layout.display()), name, &[]).unwrap();
}

fn unpack(store: &Store, name: &str, dir: &Path) -> cairn_engine::Result<UnpackReport> {
    store.unpack(name, dir, &UnpackOptions::default(), &NoProgress)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn tricky_layers_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    add_image(&store, tmp.path(), "t", &tricky_layers());
    let out = tmp.path().join("out");
    let report = unpack(store.store(), "t", &out).unwrap();

    let files: Vec<(&[u8], Vec<u8>, u32)> = vec![
        (b"etc/issue", b"cairn test\n".to_vec(), 0o644),
        (b"lib/plugins/new.so", pseudo_random(5_000, 4), 0o644),
        (b"empty", Vec::new(), 0o644),
        (b"big.bin", pseudo_random(3 * 1024 * 1024 + 17, 2), 0o644),
        (b"dup-a.bin", pseudo_random(200_000, 3), 0o644),
        (b"dup-b.bin", pseudo_random(200_000, 3), 0o644),
        (b"caf\xe9-latin1.txt", b"non-utf8 name".to_vec(), 0o600),
        (b"zeros/z.bin", vec![0u8; 2 * 1024 * 1024], 0o644),
        (b"app/main.py", b"print('hi')\n".to_vec(), 0o755),
    ];
    let long = format!("deep/{}/name.txt", "d".repeat(120));
    for (path, content, want_mode) in
        files
            .iter()
            .chain([&(long.as_bytes(), b"long path".to_vec(), 0o644)])
    {
        let file = out.join(p(path));
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file(), "{}", file.display());
        assert_eq!(
            &std::fs::read(&file).unwrap(),
            content,
            "{}",
            file.display()
        );
        assert_eq!(meta.mode() & 0o7777, *want_mode, "{}", file.display());
    }
    assert_eq!(
        std::fs::symlink_metadata(out.join("app/main.py"))
            .unwrap()
            .mtime(),
        1_700_000_100
    );

    // Whiteout and opaque directory.
    assert!(!out.join("etc/motd").exists());
    assert!(!out.join("lib/plugins/old.so").exists());
    assert!(std::fs::symlink_metadata(out.join("lib/plugins/.wh..wh..opq")).is_err());
    assert!(std::fs::symlink_metadata(out.join("etc/.wh.motd")).is_err());

    // Directories keep their mode and mtime although children were written after them.
    for (dir, mtime) in [("etc", 1_700_000_000), ("lib/plugins", 1_700_000_100)] {
        let meta = std::fs::symlink_metadata(out.join(dir)).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o755, "{dir}");
        assert_eq!(meta.mtime(), mtime, "{dir}");
    }

    // Symlink written verbatim, with its own mtime.
    let link = out.join("app/current");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("main.py"));
    assert_eq!(meta.mtime(), 1_700_000_100);

    // Hardlink shares the inode.
    let main = std::fs::metadata(out.join("app/main.py")).unwrap();
    let hard = std::fs::symlink_metadata(out.join("app/main-link.py")).unwrap();
    assert_eq!(main.ino(), hard.ino());
    assert_eq!(main.nlink(), 2);

    // xattrs: user.* always; security.capability is privileged (and the kernel may refuse this
    // value), so it is either set or reported.
    let attrs = xattrs(&out.join("app/main.py"));
    assert_eq!(attrs.get(&b"user.comment"[..]), Some(&b"hello".to_vec()));
    let capability = vec![1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0];
    let cap_reported = report
        .xattr_failures
        .iter()
        .any(|f| f.path == "app/main.py" && f.name == "security.capability");
    if is_root() {
        assert!(
            attrs.get(&b"security.capability"[..]) == Some(&capability) || cap_reported,
            "{report:?}"
        );
    } else {
        assert!(cap_reported, "{report:?}");
    }
    assert!(report
        .xattr_failures
        .iter()
        .all(|f| f.name == "security.capability"));

    assert_eq!((report.hardlinks, report.symlinks), (1, 1));
    assert_eq!(report.files, 10);
    assert_eq!(
        report.bytes,
        files.iter().map(|f| f.1.len() as u64).sum::<u64>() + 9
    );
    assert!(report.skipped.is_empty());

    // With --xattrs=strict a failure stops the unpack and names the entry.
    if cap_reported {
        let mut strict = UnpackOptions::default();
        strict.strict_xattrs = true;
        let err = store
            .store()
            .unpack("t", &tmp.path().join("strict"), &strict, &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 1 entry \"app/main.py\"") && err.contains("security.capability"),
            "{err}"
        );
    }
}

#[test]
fn demo_images_match_gnu_tar() {
    if require("the comparison with tar -x", probe::gnu_tar()).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let store = new_store(tmp.path());
    for (version, layout) in [(1u8, v1), (2, v2)] {
        let name = format!("v{version}");
        convert(&store, &format!("oci:{}", layout.display()), &name, &[]).unwrap();
        let out = tmp.path().join(format!("out{version}"));
        let report = unpack(store.store(), &name, &out).unwrap();
        assert!(report.xattr_failures.is_empty() && report.skipped.is_empty());

        let work = tmp.path().join(format!("tar{version}"));
        let reference = gnu_tar_reference(&cairn_sample::demo_layers(version).unwrap(), &work);
        let ours = walk(&out);
        let theirs = walk(&reference);
        let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
        let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "v{version}: only in unpack: {only_ours:?}; only in tar -x: {only_theirs:?}"
        );
        for (path, node) in &ours {
            assert_eq!(node, &theirs[path], "v{version}: {}", path.display());
        }
        assert!(ours.values().any(|n| !n.xattrs().is_empty()));
        assert!(ours.values().any(|n| n.nlink() == Some(2)));
    }
}

/// A ustar header block, written by hand for entries `build_layer_tar` cannot make.
fn ustar_header(name: &[u8], typeflag: u8, mode: u32, size: u64, link: &[u8]) -> Vec<u8> {
    ustar_device(name, typeflag, mode, size, link, 0, 0)
}

fn ustar_device(
    name: &[u8],
    typeflag: u8,
    mode: u32,
    size: u64,
    link: &[u8],
    major: u32,
    minor: u32,
) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    let octal = |h: &mut [u8], at: usize, len: usize, value: u64| {
        let s = format!("{value:0w$o}", w = len - 1);
        h[at..at + len - 1].copy_from_slice(s.as_bytes());
    };
    h[..name.len()].copy_from_slice(name);
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h, 329, 8, u64::from(major));
    octal(&mut h, 337, 8, u64::from(minor));
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// A layer made of hand-written entries and the end marker.
fn raw_layer(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut tar = entries.concat();
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// A header followed by its content, padded to whole blocks.
fn with_content(header: Vec<u8>, content: &[u8]) -> Vec<u8> {
    let mut entry = header;
    entry.extend_from_slice(content);
    entry.resize(entry.len().next_multiple_of(512), 0);
    entry
}

/// One PAX extended-header record, `"<len> <key>=<value>\n"`.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
}

/// Lists every path under `root`, so that "nothing outside DIR changed" can be checked.
fn tree_listing(root: &Path, skip: &[&Path]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn paths_outside_the_root_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    // Unpacks go to tmp/a/dirN, so `../../outside` from there is tmp/outside.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"keep").unwrap();
    std::fs::create_dir_all(tmp.path().join("a")).unwrap();
    let outside_abs = outside.as_os_str().as_bytes().to_vec();
    let abs_file = [&outside_abs[..], b"/abs-file"].concat();
    let file = |path: &[u8]| SampleEntry::file(path.to_vec(), 0o644, b"pwned".to_vec());
    let layer = |entries: &[SampleEntry]| build_layer_tar(entries, 1_700_000_000).unwrap();
    let symlink = |target: &[u8]| SampleEntry::symlink(b"evil".to_vec(), target.to_vec());

    // (layers, the layer and entry the error must name)
    let cases: Vec<(Vec<Vec<u8>>, String)> = vec![
        (
            vec![layer(&[file(b"../x")])],
            r#"layer 0 entry "../x""#.into(),
        ),
        (
            vec![layer(&[dir("ok/"), file(&abs_file)])],
            format!("layer 0 entry {:?}", String::from_utf8_lossy(&abs_file)),
        ),
        (
            vec![layer(&[dir("a/"), file(b"a/../../x")])],
            r#"layer 0 entry "a/../../x""#.into(),
        ),
        (
            vec![layer(&[symlink(&outside_abs), file(b"evil/pwned")])],
            r#"layer 0 entry "evil/pwned""#.into(),
        ),
        (
            vec![layer(&[SampleEntry::hardlink(
                b"h".to_vec(),
                b"../../etc/passwd".to_vec(),
            )])],
            r#"layer 0 entry "h""#.into(),
        ),
        (
            vec![layer(&[SampleEntry::hardlink(
                b"h".to_vec(),
                b"/etc/passwd".to_vec(),
            )])],
            r#"layer 0 entry "h""#.into(),
        ),
        (
            // A hardlink through a symlink of the image: its target is not an image file.
            vec![layer(&[
                symlink(&outside_abs),
                SampleEntry::hardlink(b"h".to_vec(), b"evil/secret".to_vec()),
            ])],
            r#"layer 0 entry "h""#.into(),
        ),
        (
            // Hand-written: a hardlink header whose target climbs out, after a directory.
            vec![raw_layer(&[
                ustar_header(b"d/", b'5', 0o755, 0, b""),
                ustar_header(b"d/h", b'1', 0o644, 0, b"d/../../../outside/secret"),
            ])],
            r#"layer 0 entry "d/h""#.into(),
        ),
    ];
    for (i, (layers, named)) in cases.iter().enumerate() {
        let name = format!("evil{i}");
        add_image(&store, tmp.path(), &name, layers);
        let skip = [
            store.store().root().to_path_buf(),
            tmp.path().join(format!("layout-{name}")),
        ];
        let skip: Vec<&Path> = skip.iter().map(PathBuf::as_path).collect();
        let before = tree_listing(tmp.path(), &skip);
        let dir = tmp.path().join("a").join(format!("dir{i}"));
        let err = match unpack(store.store(), &name, &dir) {
            Ok(report) => panic!("case {i} was unpacked: {report:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("image \"{name}\" {named}")),
            "case {i}: {err}"
        );
        let mut after = tree_listing(tmp.path(), &skip);
        after.retain(|path| !path.starts_with(&dir));
        assert_eq!(
            after, before,
            "case {i} changed something outside its directory"
        );
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"keep");
        assert_eq!(
            std::fs::metadata(outside.join("secret")).unwrap().nlink(),
            1
        );
        assert!(!Path::new(OsStr::from_bytes(&abs_file)).exists());
    }
    let after = tree_listing(&outside, &[]);
    assert_eq!(after, vec![outside.join("secret")]);

    // An upper layer may replace the symlink with a real directory: that is fine, whether the
    // layer declares the directory or only implies it by a file's path (an upper layer's
    // directory, declared or not, replaces a lower layer's symlink in the merged view).
    let uppers = [
        layer(&[dir("evil/"), file(b"evil/pwned")]),
        layer(&[file(b"evil/pwned")]),
        layer(&[dir("ok/"), file(b"evil/pwned")]),
    ];
    for (i, upper) in uppers.into_iter().enumerate() {
        for target in [&outside_abs[..], b"../../outside"] {
            let name = format!("fixed{i}-{}", target.len());
            add_image(
                &store,
                tmp.path(),
                &name,
                &[layer(&[symlink(target)]), upper.clone()],
            );
            let dir = tmp.path().join("a").join(&name);
            unpack(store.store(), &name, &dir).unwrap();
            let evil = std::fs::symlink_metadata(dir.join("evil")).unwrap();
            assert!(evil.is_dir(), "{name}");
            assert_eq!(std::fs::read(dir.join("evil/pwned")).unwrap(), b"pwned");
            assert_eq!(tree_listing(&outside, &[]), vec![outside.join("secret")]);
        }
    }
}

#[test]
fn layer_option_and_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    add_image(&store, tmp.path(), "t", &tricky_layers());

    let base = tmp.path().join("base");
    let mut options = UnpackOptions::default();
    options.top_layer = Some(0);
    let report = store
        .store()
        .unpack("t", &base, &options, &NoProgress)
        .unwrap();
    assert_eq!(std::fs::read(base.join("etc/motd")).unwrap(), b"welcome\n");
    assert_eq!(
        std::fs::read(base.join("lib/plugins/old.so")).unwrap(),
        pseudo_random(10_000, 1)
    );
    assert!(!base.join("app").exists() && !base.join("lib/plugins/new.so").exists());
    assert_eq!((report.hardlinks, report.symlinks), (0, 0));

    let mut top = UnpackOptions::default();
    top.top_layer = Some(1);
    let all = tmp.path().join("all");
    store.store().unpack("t", &all, &top, &NoProgress).unwrap();
    assert!(!all.join("etc/motd").exists() && all.join("app/main.py").is_file());

    let mut beyond = UnpackOptions::default();
    beyond.top_layer = Some(2);
    let err = store
        .store()
        .unpack("t", &tmp.path().join("beyond"), &beyond, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no layer 2"), "{err}");
    assert!(!tmp.path().join("beyond").exists());

    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("mine.txt"), b"do not touch").unwrap();
    let err = unpack(store.store(), "t", &busy).unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        tree_listing(&busy, &[]),
        vec![busy.join("mine.txt")],
        "nothing written into a non-empty directory"
    );
    let not_dir = busy.join("mine.txt");
    let err = unpack(store.store(), "t", &not_dir)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");

    let err = unpack(store.store(), "nope", &tmp.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no image named \"nope\""), "{err}");
}

#[test]
fn hardlink_to_a_replaced_file_gets_the_original_content() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let base = build_layer_tar(
        &[
            file("a", b"original".to_vec()),
            SampleEntry::hardlink(b"b".to_vec(), b"a".to_vec()),
            SampleEntry::hardlink(b"c".to_vec(), b"b".to_vec()),
            file("keep", b"kept".to_vec()),
            SampleEntry::hardlink(b"keep-link".to_vec(), b"keep".to_vec()),
        ],
        1_700_000_000,
    )
    .unwrap();
    let replaced = build_layer_tar(&[file("a", b"replaced".to_vec())], 1_700_000_100).unwrap();
    let removed = build_layer_tar(&[file(".wh.a", Vec::new())], 1_700_000_100).unwrap();
    add_image(&store, tmp.path(), "replaced", &[base.clone(), replaced]);
    add_image(&store, tmp.path(), "removed", &[base, removed]);

    for (name, a) in [("replaced", Some(&b"replaced"[..])), ("removed", None)] {
        let out = tmp.path().join(name);
        let report = unpack(store.store(), name, &out).unwrap();
        assert_eq!(report.hardlinks, 3, "{name}");
        let ino = |f: &str| std::fs::symlink_metadata(out.join(f)).unwrap().ino();
        match a {
            Some(content) => {
                assert_eq!(std::fs::read(out.join("a")).unwrap(), content);
                assert_ne!(ino("a"), ino("b"));
            }
            None => assert!(std::fs::symlink_metadata(out.join("a")).is_err()),
        }
        assert_eq!(std::fs::read(out.join("b")).unwrap(), b"original");
        assert_eq!(std::fs::read(out.join("c")).unwrap(), b"original");
        assert_eq!(
            ino("b"),
            ino("c"),
            "{name}: the copy is shared by both links"
        );
        assert_eq!(mode(&out.join("b")), 0o644);
        assert_eq!(ino("keep"), ino("keep-link"));
        assert_eq!(report.bytes, 8 + 4 + a.map_or(0, |c| c.len() as u64));
    }

    // A link to nothing is refused, naming the link.
    add_image(
        &store,
        tmp.path(),
        "dangling",
        &[build_layer_tar(
            &[SampleEntry::hardlink(b"lost".to_vec(), b"missing".to_vec())],
            1_700_000_000,
        )
        .unwrap()],
    );
    let err = unpack(store.store(), "dangling", &tmp.path().join("dangling"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"layer 0 entry "lost""#) && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn special_files_and_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let content = b"#!/bin/sh\n".to_vec();
    let pax = pax_record("SCHILY.xattr.trusted.cairn", b"on a symlink");
    let special = raw_layer(&[
        ustar_header(b"dev/", b'5', 0o755, 0, b""),
        ustar_device(b"dev/null", b'3', 0o666, 0, b"", 1, 3),
        ustar_device(b"dev/loop0", b'4', 0o660, 0, b"", 7, 0),
        ustar_header(b"run/", b'5', 0o755, 0, b""),
        ustar_header(b"run/fifo", b'6', 0o600, 0, b""),
        ustar_header(b"label", b'V', 0o644, 0, b""),
        with_content(
            ustar_header(b"run/setuid", b'0', 0o4755, content.len() as u64, b""),
            &content,
        ),
        with_content(
            ustar_header(b"run/PaxHeaders/link", b'x', 0o644, pax.len() as u64, b""),
            &pax,
        ),
        ustar_header(b"run/link", b'2', 0o777, 0, b"setuid"),
    ]);
    let modes = build_layer_tar(
        &[
            SampleEntry::dir(b"ro/".to_vec(), 0o555),
            SampleEntry::file(b"ro/inside".to_vec(), 0o444, b"x".to_vec()),
            SampleEntry::dir(b"sticky/".to_vec(), 0o1777),
        ],
        1_700_000_000,
    )
    .unwrap();
    add_image(&store, tmp.path(), "special", &[special, modes]);
    let out = tmp.path().join("out");
    let report = unpack(store.store(), "special", &out).unwrap();

    let fifo = std::fs::symlink_metadata(out.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o600);
    assert_eq!(report.fifos, 1);
    if is_root() {
        let null = std::fs::symlink_metadata(out.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o666);
        let block = std::fs::symlink_metadata(out.join("dev/loop0")).unwrap();
        assert!(block.file_type().is_block_device());
        assert_eq!(report.devices, 2);
    } else {
        assert!(std::fs::symlink_metadata(out.join("dev/null")).is_err());
        assert_eq!(report.devices, 0);
        assert!(report.skipped.iter().any(|s| s.path == "dev/null"));
    }
    assert!(report
        .skipped
        .iter()
        .any(|s| s.path == "label" && s.reason.contains("'V'")));
    assert!(std::fs::symlink_metadata(out.join("label")).is_err());

    // trusted.* xattrs need root; a symlink's are set without following it.
    let link = out.join("run/link");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("setuid"));
    let trusted = b"trusted.cairn".to_vec();
    if is_root() {
        assert_eq!(xattrs(&link).get(&trusted), Some(&b"on a symlink".to_vec()));
        assert!(!xattrs(&out.join("run/setuid")).contains_key(&trusted));
    } else {
        assert!(report
            .xattr_failures
            .iter()
            .any(|f| f.path == "run/link" && f.name == "trusted.cairn"));
    }
    assert_eq!(mode(&out.join("run/setuid")), 0o4755);
    assert_eq!(std::fs::read(out.join("run/setuid")).unwrap(), content);
    assert_eq!(mode(&out.join("ro")), 0o555);
    assert_eq!(mode(&out.join("ro/inside")), 0o444);
    assert_eq!(mode(&out.join("sticky")), 0o1777);
    assert_eq!(
        std::fs::symlink_metadata(out.join("ro")).unwrap().mtime(),
        1_700_000_000
    );
    // Let the temporary directory be removed without root.
    std::fs::set_permissions(out.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
}
