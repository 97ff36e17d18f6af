//! Converting generated images and reading them back.

use crate::helpers::*;
use cairn_engine::{EntryKind, NoProgress, Platform, PlatformChoice};
use cairn_sample::{LayerCompression, OciLayoutWriter};

#[test]
fn every_layer_comes_back_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = tricky_layers();
    for (i, compression) in [
        LayerCompression::Gzip,
        LayerCompression::Zstd,
        LayerCompression::None,
    ]
    .into_iter()
    .enumerate()
    {
        let layout = tmp.path().join(format!("img{i}"));
        write_layout(&layout, "t", &layers, compression);
        let store = cairn_engine::StoreWriter::init(
            &tmp.path().join(format!("store{i}")),
            &Default::default(),
        )
        .unwrap();
        let report = convert(&store, &format!("oci:{}:t", layout.display()), "t", &[]).unwrap();
        assert_eq!(report.images[0].layers.len(), 2);
        for (n, original) in layers.iter().enumerate() {
            let mut out = Vec::new();
            let diff_id = store
                .store()
                .export_layer("t", n, &mut out, &NoProgress)
                .unwrap();
            assert_eq!(&out, original, "layer {n} differs");
            assert_eq!(diff_id.to_string(), sha256_hex(original));
        }
    }
}

#[test]
fn metadata_and_merged_view() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    let store = new_store(tmp.path());
    convert(&store, &format!("oci:{}", layout.display()), "t", &[]).unwrap();
    let bootstrap = store.store().whole_image("t").unwrap();
    let upper = &bootstrap.layers[1];
    let main = upper
        .entries
        .iter()
        .find(|e| e.meta.path == b"app/main.py")
        .unwrap();
    assert_eq!(main.meta.mode, 0o755);
    assert!(main
        .meta
        .xattrs
        .contains(&(b"user.comment".to_vec(), b"hello".to_vec())));
    assert!(main
        .meta
        .xattrs
        .iter()
        .any(|(k, _)| k == b"security.capability"));
    let link = upper
        .entries
        .iter()
        .find(|e| e.meta.path == b"app/main-link.py")
        .unwrap();
    assert_eq!(link.meta.kind, EntryKind::Hardlink);
    assert_eq!(link.meta.link_target.as_deref(), Some(&b"app/main.py"[..]));
    let sym = upper
        .entries
        .iter()
        .find(|e| e.meta.path == b"app/current")
        .unwrap();
    assert_eq!(sym.meta.kind, EntryKind::Symlink);
    let base = &bootstrap.layers[0];
    assert!(base
        .entries
        .iter()
        .any(|e| e.meta.path == b"caf\xe9-latin1.txt"));
    assert!(base.entries.iter().any(|e| e.meta.path.len() > 130));

    let cat = |path: &str| {
        let mut out = Vec::new();
        store
            .store()
            .cat("t", path, cairn_engine::Follow::Symlinks, &mut out)
            .map(|_| out)
    };
    assert_eq!(cat("/etc/issue").unwrap(), b"cairn test\n");
    assert!(cat("etc/motd").is_err(), "whiteout must hide etc/motd");
    assert!(
        cat("lib/plugins/old.so").is_err(),
        "opaque dir must hide old.so"
    );
    assert_eq!(cat("lib/plugins/new.so").unwrap(), pseudo_random(5_000, 4));
    assert_eq!(
        cat("big.bin").unwrap(),
        pseudo_random(3 * 1024 * 1024 + 17, 2)
    );
    assert_eq!(cat("app/main-link.py").unwrap(), b"print('hi')\n");
    assert_eq!(cat("empty").unwrap(), b"");
}

#[test]
fn identical_content_is_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    let store = new_store(tmp.path());
    let source = format!("oci:{}", layout.display());
    let first = convert(&store, &source, "a", &[]).unwrap().images.remove(0);
    // dup-a.bin and dup-b.bin are the same bytes: the second is a repeat, not new.
    assert!(first.totals.repeated.bytes >= 200_000);
    let second = convert(&store, &source, "b", &[]).unwrap().images.remove(0);
    assert_eq!(second.totals.new.chunks, 0);
    assert_eq!(second.totals.stored_bytes, 0);
    assert_eq!(second.blobs_written, 0);
    // Every layer is already stored: its metadata is reused, the layer is not read again.
    assert!(
        second.layers.iter().all(|l| l.reused_metadata),
        "{second:?}"
    );
    assert_eq!(second.layer_objects_written, 0);
    assert_eq!(second.totals.chunks, first.totals.chunks);
    let images = store.store().images().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].record.new_chunks, first.totals.new.chunks);
}

#[test]
fn v2_against_v1_stores_only_what_v1_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("demo")).unwrap();
    let store = new_store(tmp.path());
    let r1 = convert(&store, &format!("oci:{}", v1.display()), "v1", &[])
        .unwrap()
        .images
        .remove(0);
    let r2 = convert(&store, &format!("oci:{}", v2.display()), "v2", &["v1"])
        .unwrap()
        .images
        .remove(0);
    assert_eq!(r1.dictionary, vec!["store".to_string()]);
    assert_eq!(r2.dictionary, vec!["v1".to_string()]);
    // The re-tarred base layer and the model with 100 inserted bytes dedup almost entirely.
    assert!(
        r2.totals.new.bytes * 5 < r2.totals.chunks.bytes,
        "v2 new {} of {}",
        r2.totals.new.bytes,
        r2.totals.chunks.bytes
    );
    assert!(r2.added_bytes * 3 < r1.added_bytes);
    // `images` says what each convert said it added: one definition of "added".
    let images = store.store().images().unwrap();
    for (name, report) in [("v1", &r1), ("v2", &r2)] {
        let listed = images.iter().find(|i| i.name == name).unwrap();
        let record = &listed.record;
        assert_eq!(
            record.added_stored_bytes + record.bootstrap_size,
            report.added_bytes,
            "{name}"
        );
    }
    for (name, report) in [("v1", &r1), ("v2", &r2)] {
        for i in 0..report.layers.len() {
            store
                .store()
                .export_layer(name, i, &mut std::io::sink(), &NoProgress)
                .unwrap();
        }
    }
    // A dictionary narrowed to an image that shares nothing stores v2 anew.
    let other = tmp.path().join("other");
    write_layout(
        &other,
        "o",
        &[cairn_sample::build_layer_tar(&[file("x", b"x".to_vec())], 1).unwrap()],
        LayerCompression::Gzip,
    );
    convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    let r3 = convert(&store, &format!("oci:{}", v2.display()), "v2-alone", &["o"])
        .unwrap()
        .images
        .remove(0);
    assert_eq!(r3.totals.from_dictionary.chunks, 0);
    assert_eq!(
        r3.totals.new.bytes + r3.totals.repeated.bytes,
        r3.totals.chunks.bytes
    );
}

#[test]
fn multi_arch_index_and_platform_choice() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("multi");
    let mut writer = OciLayoutWriter::create(&layout).unwrap();
    let amd = vec![(
        cairn_sample::build_layer_tar(&[file("arch", b"amd64".to_vec())], 1).unwrap(),
        LayerCompression::Gzip,
    )];
    let arm = vec![(
        cairn_sample::build_layer_tar(&[file("arch", b"arm64".to_vec())], 1).unwrap(),
        LayerCompression::Zstd,
    )];
    writer
        .add_multi_arch(Some("multi"), &[(amd64(), amd), (arm64(), arm)])
        .unwrap();
    writer.finish().unwrap();
    let store = new_store(tmp.path());
    let source = format!("oci:{}:multi", layout.display());

    let mut opts = options(&source, "m", &[]);
    opts.platform = PlatformChoice::Exact(Platform::parse("linux/arm64").unwrap());
    let report = store.convert(&opts, &NoProgress).unwrap();
    assert_eq!(report.images[0].platform.as_deref(), Some("linux/arm64/v8"));
    let mut out = Vec::new();
    store
        .store()
        .cat("m", "arch", cairn_engine::Follow::Symlinks, &mut out)
        .unwrap();
    assert_eq!(out, b"arm64");

    let mut opts = options(&source, "all", &[]);
    opts.platform = PlatformChoice::All;
    let report = store.convert(&opts, &NoProgress).unwrap();
    let names: Vec<&str> = report.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["all@linux/amd64", "all@linux/arm64/v8"]);

    let mut opts = options(&source, "none", &[]);
    opts.platform = PlatformChoice::Exact(Platform::parse("linux/s390x").unwrap());
    let err = store.convert(&opts, &NoProgress).unwrap_err().to_string();
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn docker_archive_and_bare_layer_files() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = tricky_layers();
    let archive = tmp.path().join("image.tar");
    cairn_sample::write_docker_archive(&archive, "app:1", &amd64(), &layers).unwrap();
    let store = new_store(tmp.path());
    let report = convert(
        &store,
        &format!("docker-archive:{}", archive.display()),
        "d",
        &[],
    )
    .unwrap();
    assert_eq!(report.images[0].layers.len(), 2);
    let mut out = Vec::new();
    store
        .store()
        .export_layer("d", 1, &mut out, &NoProgress)
        .unwrap();
    assert_eq!(out, layers[1]);

    // A bare layer, zstd-compressed, recognised by its magic.
    let bare = tmp.path().join("layer.tar.zst");
    std::fs::write(&bare, zstd::encode_all(&layers[0][..], 3).unwrap()).unwrap();
    let report = convert(&store, bare.to_str().unwrap(), "bare", &[]).unwrap();
    assert_eq!(report.images[0].layers[0].compression, "zstd");
    assert_eq!(report.images[0].layers[0].diff_id, sha256_hex(&layers[0]));
    // Its content was stored by the docker-archive convert already.
    assert_eq!(report.images[0].totals.new.chunks, 0);
}

#[test]
fn names_are_not_overwritten_without_replace() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    let store = new_store(tmp.path());
    let source = format!("oci:{}", layout.display());
    convert(&store, &source, "t", &[]).unwrap();
    let err = convert(&store, &source, "t", &[]).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    let mut opts = options(&source, "t", &[]);
    opts.replace = true;
    store.convert(&opts, &NoProgress).unwrap();
}

#[test]
fn a_stored_layer_is_not_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    let store = new_store(tmp.path());
    let source = format!("oci:{}", layout.display());
    let first = convert(&store, &source, "a", &[]).unwrap().images.remove(0);
    assert!(first.layers.iter().all(|l| !l.reused_metadata));
    let before = export_all(store.store(), "a");
    // Damage every layer blob of the source: were a layer read, its digest check would fail.
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            std::fs::write(&path, vec![0u8; bytes.len()]).unwrap();
        }
    }
    let second = convert(&store, &source, "b", &[]).unwrap().images.remove(0);
    assert!(
        second.layers.iter().all(|l| l.reused_metadata),
        "{second:?}"
    );
    assert_eq!((second.layer_objects_written, second.blobs_written), (0, 0));
    assert_eq!(export_all(store.store(), "b"), before);
    // A dictionary image holding the layers lends them too; one that does not, does not: the
    // layers are read (and fail their digest).
    let third = convert(&store, &source, "c", &["a"])
        .unwrap()
        .images
        .remove(0);
    assert!(third.layers.iter().all(|l| l.reused_metadata), "{third:?}");
    let other = tmp.path().join("other");
    write_layout(
        &other,
        "o",
        &[cairn_sample::build_layer_tar(&[file("x", b"x".to_vec())], 1).unwrap()],
        LayerCompression::Gzip,
    );
    convert(&store, &format!("oci:{}", other.display()), "o", &[]).unwrap();
    let err = convert(&store, &source, "d", &["o"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest") || err.contains("gzip"), "{err}");
}

#[test]
fn cat_and_ls_follow_symlinks_inside_the_image_only() {
    use cairn_engine::Follow;
    use cairn_sample::SampleEntry;
    let link = |path: &str, target: &str| SampleEntry::Symlink {
        path: path.as_bytes().to_vec(),
        target: target.as_bytes().to_vec(),
    };
    let layer = cairn_sample::build_layer_tar(
        &[
            dir("usr"),
            dir("usr/lib"),
            file("usr/lib/os-release", b"NAME=test\n".to_vec()),
            dir("etc"),
            link("etc/os-release", "../usr/lib/os-release"),
            link("lib", "usr/lib"),
            link("abs", "/usr/lib/os-release"),
            link("escape", "../../../../usr/lib/os-release"),
            link("loop-a", "loop-b"),
            link("loop-b", "loop-a"),
            link("dangling", "nowhere"),
        ],
        1_700_000_000,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &[layer], LayerCompression::Gzip);
    let store = new_store(tmp.path());
    convert(&store, &format!("oci:{}", layout.display()), "t", &[]).unwrap();
    let cat = |path: &str, follow: Follow| {
        let mut out = Vec::new();
        store.store().cat("t", path, follow, &mut out).map(|_| out)
    };
    for path in [
        "/etc/os-release",
        "/lib/os-release",
        "abs",
        "escape",
        "/lib/../lib/./os-release",
        "/../../etc/os-release",
    ] {
        assert_eq!(
            cat(path, Follow::Symlinks).unwrap(),
            b"NAME=test\n",
            "{path}"
        );
    }
    // Without following, a symlink is not a file (as before).
    assert!(cat("/etc/os-release", Follow::No).is_err());
    let err = cat("loop-a", Follow::Symlinks).unwrap_err().to_string();
    assert!(err.contains("symlinks"), "{err}");
    assert!(cat("dangling", Follow::Symlinks).is_err());
    assert!(cat("etc/os-release/x", Follow::Symlinks).is_err());
    // ls through a symlinked directory lists the target; without following, the link itself.
    let names = |path: &str, follow: Follow| -> Vec<String> {
        store
            .store()
            .ls_names("t", path, follow)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect()
    };
    assert_eq!(names("/lib", Follow::Symlinks), vec!["usr/lib/os-release"]);
    assert_eq!(names("/lib", Follow::No), vec!["lib"]);
    let long = store.store().ls("t", "/lib", Follow::No).unwrap();
    assert_eq!(long[0].kind, "symlink");
    assert_eq!(long[0].link_target.as_deref(), Some("usr/lib"));
}
