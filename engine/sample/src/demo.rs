//! The demo image pair: two versions of a small application image, built to show what
//! chunk-level dedup finds and layer-level dedup misses (`cairn demo`, tests, benches).
//!
//! The entries are listed here; their contents come from [`crate::content`], the tars from
//! [`crate::layer_tar`] and the layouts from [`crate::oci_layout`]. Any change here changes the
//! numbers `cairn demo` prints and the benchmarks' inputs.

use std::io;
use std::path::{Path, PathBuf};

use crate::content::{content, random_bytes, text_bytes};
use crate::image_config::SamplePlatform;
use crate::invalid;
use crate::layer_tar::{build_layer_tar, LayerCompression, SampleEntry};
use crate::oci_layout::OciLayoutWriter;
use crate::rng::Rng;

/// mtime of every entry in the demo's version 1 layers (2023-11-14T22:13:20Z).
pub const DEMO_MTIME_V1: u64 = 1_700_000_000;
/// mtime of every entry in the demo's version 2 layers (30 days after [`DEMO_MTIME_V1`]).
pub const DEMO_MTIME_V2: u64 = DEMO_MTIME_V1 + 30 * 86_400;
/// Size of the demo's `app/model.bin` in version 1 (3 MiB).
pub const DEMO_MODEL_LEN: usize = 3 << 20;
/// Offset in `app/model.bin` where version 2 inserts [`DEMO_MODEL_INSERT_LEN`] new bytes.
pub const DEMO_MODEL_INSERT_AT: usize = (1 << 20) + 12_345;
/// Number of bytes version 2 inserts into `app/model.bin`.
pub const DEMO_MODEL_INSERT_LEN: usize = 100;

/// Layer 0, "base": identical entries in both versions (only the tar mtime differs).
fn demo_base_entries() -> Vec<SampleEntry> {
    let mut entries: Vec<SampleEntry> = [
        "bin/",
        "etc/",
        "usr/",
        "usr/bin/",
        "usr/lib/",
        "usr/share/",
        "usr/share/doc/",
        "var/",
        "var/lib/",
    ]
    .into_iter()
    .map(|d| SampleEntry::dir(d, 0o755))
    .collect();
    entries.push(SampleEntry::file(
        "bin/busybox",
        0o755,
        random_bytes("base/bin/busybox", 300_000),
    ));
    entries.push(SampleEntry::symlink("bin/sh", "busybox"));
    entries.push(SampleEntry::file(
        "etc/motd",
        0o644,
        b"Welcome to the cairn demo image.\nThis file is deleted by the app layer.\n".to_vec(),
    ));
    entries.push(SampleEntry::file(
        "etc/os-release",
        0o644,
        b"NAME=\"Cairn Demo Linux\"\nID=cairn-demo\nVERSION_ID=1\n".to_vec(),
    ));
    let mut rng = Rng::from_label("base/sizes");
    for i in 0..57 {
        let (path, text, mode) = match i % 5 {
            0 => (format!("usr/bin/tool-{i:02}"), false, 0o755),
            1 => (format!("usr/lib/libbase-{i:02}.so"), false, 0o644),
            2 => (format!("usr/share/doc/guide-{i:02}.txt"), true, 0o644),
            3 => (format!("etc/conf-{i:02}.conf"), true, 0o644),
            _ => (format!("var/lib/data-{i:02}.db"), i % 2 == 0, 0o644),
        };
        // 2 KiB .. 256 KiB
        let len = rng.size(2 << 10, 7);
        let data = content(&format!("base/{path}"), text, len);
        entries.push(SampleEntry::file(path, mode, data));
    }
    entries
}

/// Library names of the "lib" layer; v2 drops the last one and adds `libfresh`.
const LIB_NAMES: [&str; 17] = [
    "libalpha",
    "libbeta",
    "libgamma",
    "libdelta",
    "libepsilon",
    "libzeta",
    "libeta",
    "libtheta",
    "libiota",
    "libkappa",
    "liblambda",
    "libmu",
    "libnu",
    "libxi",
    "libomicron",
    "libpi",
    "libdeprecated",
];
/// Libraries v2 edits in place (a few bytes each).
const LIB_CHANGED: [&str; 3] = ["libbeta", "libtheta", "libmu"];

/// Content of `lib/<name>.so.1`, the same in every version before edits.
fn lib_content(name: &str) -> Vec<u8> {
    let seed = blake3::hash(name.as_bytes()).as_bytes()[0];
    let mut rng = Rng::from_label(&format!("lib/{name}/size"));
    // 8 KiB .. 256 KiB; one library in three is text-like (think: a big symbol table).
    let len = rng.size(8 << 10, 5);
    content(&format!("lib/{name}"), seed.is_multiple_of(3), len)
}

/// Layer 1, "lib": ~20 libraries; v2 edits 3, removes 1, adds 1.
fn demo_lib_entries(version: u8) -> Vec<SampleEntry> {
    let mut entries = vec![
        SampleEntry::dir("lib/", 0o755),
        SampleEntry::dir("lib/plugins/", 0o755),
    ];
    let mut names: Vec<&str> = LIB_NAMES.to_vec();
    if version == 2 {
        names.retain(|n| *n != "libdeprecated");
        names.push("libfresh");
    }
    for name in names {
        let mut data = lib_content(name);
        if version == 2 && LIB_CHANGED.contains(&name) {
            // "a few bytes edited": 4 bytes at each quarter point, flipped.
            let len = data.len();
            for pos in [len / 4, len / 2, 3 * len / 4] {
                for byte in &mut data[pos..(pos + 4).min(len)] {
                    *byte ^= 0xa5;
                }
            }
        }
        entries.push(SampleEntry::file(format!("lib/{name}.so.1"), 0o755, data));
    }
    for plugin in ["auth", "metrics", "storage"] {
        let path = format!("lib/plugins/{plugin}.so");
        let data = random_bytes(&path, 24_000 + 1_000 * plugin.len());
        entries.push(SampleEntry::file(path, 0o755, data));
    }
    entries
}

/// Directory of the demo's long path (the file in it makes a path over 100 bytes).
const LONG_DIR: &str =
    "app/data/a-directory-with-a-name-long-enough-that-its-files-need-pax-path-records/";

/// Layer 2, "app": the model file (v2 inserts bytes), whiteouts, links, xattrs, odd names.
fn demo_app_entries(version: u8) -> Vec<SampleEntry> {
    let mut entries = vec![
        SampleEntry::dir("app/", 0o755),
        SampleEntry::dir("app/bin/", 0o755),
        SampleEntry::dir("app/data/", 0o755),
        SampleEntry::dir(LONG_DIR, 0o755),
        SampleEntry::dir("etc/", 0o755),
    ];
    let mut model = random_bytes("app/model.bin", DEMO_MODEL_LEN);
    if version == 2 {
        let insert = random_bytes("app/model.bin/insert", DEMO_MODEL_INSERT_LEN);
        model.splice(DEMO_MODEL_INSERT_AT..DEMO_MODEL_INSERT_AT, insert);
    }
    entries.push(SampleEntry::file("app/model.bin", 0o644, model));
    entries.push(SampleEntry::file(
        "app/bin/demo-server",
        0o755,
        random_bytes("app/bin/demo-server", 200_000),
    ));
    entries.push(SampleEntry::hardlink("app/bin/demo", "app/bin/demo-server"));
    entries.push(SampleEntry::File {
        path: b"app/config.toml".to_vec(),
        mode: 0o644,
        data: text_bytes("app/config.toml", 4_000),
        xattrs: vec![("user.comment".to_string(), b"demo configuration".to_vec())],
    });
    entries.push(SampleEntry::file(
        format!("{LONG_DIR}notes-with-a-long-file-name.txt"),
        0o644,
        text_bytes("app/data/long", 3_000),
    ));
    // Latin-1 "café": not valid UTF-8.
    entries.push(SampleEntry::file(
        b"app/data/caf\xe9-latin1.txt".to_vec(),
        0o644,
        b"caf\xe9 au lait\n".to_vec(),
    ));
    // Deletes base's etc/motd.
    entries.push(SampleEntry::file("etc/.wh.motd", 0o644, Vec::new()));
    if version == 2 {
        entries.push(SampleEntry::dir("lib/", 0o755));
        entries.push(SampleEntry::dir("lib/plugins/", 0o755));
        // Hides lib/plugins/* of the lib layer; only the replacement below remains.
        entries.push(SampleEntry::file(
            "lib/plugins/.wh..wh..opq",
            0o644,
            Vec::new(),
        ));
        entries.push(SampleEntry::file(
            "lib/plugins/replacement.so",
            0o755,
            random_bytes("lib/plugins/replacement.so", 20_000),
        ));
    }
    entries
}

/// The demo image pair: two versions of a small application image (about 8 MB of
/// uncompressed content each), built to show what chunk-level dedup finds.
///
/// Returns the uncompressed layer tars of version 1 or 2 (any other version is an
/// `InvalidInput` error). All entries of version 1 have mtime [`DEMO_MTIME_V1`], those of
/// version 2 [`DEMO_MTIME_V2`].
///
/// - layer 0 "base": 60 files (`etc/motd` and `etc/os-release` are tiny, the others 2 KiB to
///   300 KB, text-like or random), 9 directories and the symlink `bin/sh -> busybox`. v2 has
///   the very same entries and contents; only the mtimes differ (new layer digest, same
///   content).
/// - layer 1 "lib": `lib/` with 17 libraries `lib/<name>.so.1` and 3 in `lib/plugins/`. v2
///   edits a few bytes of `libbeta`, `libtheta` and `libmu`, removes `libdeprecated` and adds
///   `libfresh`.
/// - layer 2 "app": `app/model.bin` (3 MiB random; v2 inserts [`DEMO_MODEL_INSERT_LEN`] bytes at
///   [`DEMO_MODEL_INSERT_AT`]), `app/bin/demo-server` and its hardlink `app/bin/demo`,
///   `app/config.toml` with xattr `user.comment`, a file whose path is over 100 bytes (PAX),
///   a file with a non-UTF-8 name (`app/data/caf\xe9-latin1.txt`), the whiteout `etc/.wh.motd`;
///   v2 only: `lib/plugins/.wh..wh..opq` plus `lib/plugins/replacement.so`.
pub fn demo_layers(version: u8) -> io::Result<Vec<Vec<u8>>> {
    let mtime = match version {
        1 => DEMO_MTIME_V1,
        2 => DEMO_MTIME_V2,
        _ => {
            return Err(invalid(format!(
                "demo image version {version}: expected 1 or 2"
            )))
        }
    };
    Ok(vec![
        build_layer_tar(&demo_base_entries(), mtime)?,
        build_layer_tar(&demo_lib_entries(version), mtime)?,
        build_layer_tar(&demo_app_entries(version), mtime)?,
    ])
}

/// Writes the demo pair as two OCI layouts `dir/v1` and `dir/v2` (refs `v1` and `v2`,
/// platform linux/amd64, gzip layers), creating directories as needed, and returns their
/// paths.
pub fn write_demo_layouts(dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let write = |version: u8| -> io::Result<PathBuf> {
        let name = format!("v{version}");
        let path = dir.join(&name);
        let mut writer = OciLayoutWriter::create(&path)?;
        let layers: Vec<_> = demo_layers(version)?
            .into_iter()
            .map(|tar| (tar, LayerCompression::Gzip))
            .collect();
        writer.add_image(Some(&name), &SamplePlatform::linux_amd64(), &layers)?;
        writer.finish()?;
        Ok(path)
    };
    // gzip dominates the run time: build the two layouts side by side.
    std::thread::scope(|scope| {
        let v2 = scope.spawn(|| write(2));
        let v1 = write(1);
        let v2 = v2
            .join()
            .map_err(|_| io::Error::other("demo layout writer thread panicked"))?;
        Ok((v1?, v2?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_layout::{ANNOTATION_REF_NAME, MT_INDEX};
    use crate::testutil::{check_manifest, find, parse, read_json, Parsed, TempDir};
    use tar::EntryType;

    #[test]
    fn demo_is_deterministic_and_sized() {
        for version in [1, 2] {
            let a = demo_layers(version).unwrap();
            let b = demo_layers(version).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.len(), 3);
            let total: usize = a.iter().map(Vec::len).sum();
            assert!((6_000_000..=12_000_000).contains(&total), "{total}");
        }
        assert!(demo_layers(0).is_err());
        assert!(demo_layers(3).is_err());
    }

    #[test]
    fn demo_versions_differ_as_specified() {
        let v1 = demo_layers(1).unwrap();
        let v2 = demo_layers(2).unwrap();
        let (p1, p2): (Vec<_>, Vec<_>) = (
            v1.iter().map(|t| parse(t)).collect(),
            v2.iter().map(|t| parse(t)).collect(),
        );
        assert!(p1.iter().flatten().all(|e| e.mtime == DEMO_MTIME_V1));
        assert!(p2.iter().flatten().all(|e| e.mtime == DEMO_MTIME_V2));

        // base: same entries and contents, different tar bytes.
        assert_ne!(v1[0], v2[0]);
        let strip = |es: &[Parsed]| {
            es.iter()
                .map(|e| Parsed {
                    mtime: 0,
                    ..e.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&p1[0]), strip(&p2[0]));
        let files = p1[0]
            .iter()
            .filter(|e| e.kind == EntryType::Regular)
            .count();
        assert_eq!(files, 60);
        assert!(p1[0].iter().any(|e| e.kind == EntryType::Symlink));
        assert!(find(&p1[0], b"etc/motd").is_some());
        let sizes: Vec<usize> = p1[0].iter().map(|e| e.data.len()).collect();
        assert!(sizes.iter().any(|&s| s > 100_000));

        // lib: 3 changed slightly, 1 removed, 1 added, rest unchanged.
        let (mut same, mut changed, mut removed) = (0, 0, 0);
        for e in p1[1].iter().filter(|e| e.kind == EntryType::Regular) {
            match find(&p2[1], &e.path) {
                None => removed += 1,
                Some(n) if n.data == e.data => same += 1,
                Some(n) => {
                    assert_eq!(n.data.len(), e.data.len());
                    let diff = n.data.iter().zip(&e.data).filter(|(a, b)| a != b).count();
                    assert!((1..=16).contains(&diff), "{diff}");
                    changed += 1;
                }
            }
        }
        let added = p2[1]
            .iter()
            .filter(|e| find(&p1[1], &e.path).is_none())
            .count();
        assert_eq!((same, changed, removed, added), (16, 3, 1, 1));
        assert!(find(&p2[1], b"lib/libfresh.so.1").is_some());

        // app: model.bin insertion, whiteouts, hardlink, xattrs, odd names.
        let m1 = &find(&p1[2], b"app/model.bin").unwrap().data;
        let m2 = &find(&p2[2], b"app/model.bin").unwrap().data;
        assert_eq!(m1.len(), DEMO_MODEL_LEN);
        assert_eq!(m2.len(), DEMO_MODEL_LEN + DEMO_MODEL_INSERT_LEN);
        assert_eq!(m1[..DEMO_MODEL_INSERT_AT], m2[..DEMO_MODEL_INSERT_AT]);
        assert_eq!(
            m1[DEMO_MODEL_INSERT_AT..],
            m2[DEMO_MODEL_INSERT_AT + DEMO_MODEL_INSERT_LEN..]
        );
        for p in [&p1[2], &p2[2]] {
            assert!(find(p, b"etc/.wh.motd").unwrap().data.is_empty());
            let link = find(p, b"app/bin/demo").unwrap();
            assert_eq!(link.kind, EntryType::Link);
            assert_eq!(link.link.as_deref(), Some(&b"app/bin/demo-server"[..]));
            let config = find(p, b"app/config.toml").unwrap();
            assert_eq!(
                config.xattrs,
                vec![("user.comment".to_string(), b"demo configuration".to_vec())]
            );
            assert!(p.iter().any(|e| e.path.len() > 100));
            assert!(p.iter().any(|e| std::str::from_utf8(&e.path).is_err()));
        }
        assert!(find(&p1[2], b"lib/plugins/.wh..wh..opq").is_none());
        assert!(find(&p2[2], b"lib/plugins/.wh..wh..opq").is_some());
    }

    #[test]
    fn demo_layouts_are_valid() {
        let tmp = TempDir::new("demo-layouts");
        let (v1, v2) = write_demo_layouts(&tmp.0).unwrap();
        assert_eq!(
            (v1.clone(), v2.clone()),
            (tmp.0.join("v1"), tmp.0.join("v2"))
        );
        for (layout, version) in [(v1, 1), (v2, 2)] {
            assert_eq!(
                read_json(&layout.join("oci-layout")),
                serde_json::json!({"imageLayoutVersion": "1.0.0"})
            );
            let index = read_json(&layout.join("index.json"));
            assert_eq!(index["schemaVersion"], 2);
            assert_eq!(index["mediaType"], MT_INDEX);
            let manifests = index["manifests"].as_array().unwrap();
            assert_eq!(manifests.len(), 1);
            let desc = &manifests[0];
            assert_eq!(
                desc["annotations"][ANNOTATION_REF_NAME],
                format!("v{version}")
            );
            assert_eq!(
                desc["platform"],
                serde_json::json!({"architecture": "amd64", "os": "linux"})
            );
            let layers = check_manifest(&layout, desc);
            assert_eq!(layers, demo_layers(version).unwrap());
        }
    }
}
