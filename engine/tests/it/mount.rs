//! `mount`: the FUSE view of an image against GNU tar applying its layers, a damaged blob,
//! gc while mounted, and (on the py dataset) a program run from the image through overlayfs.
//! Skipped, with a note, where FUSE cannot be mounted (not root); with `CAIRN_TEST_STRICT=1`,
//! failed where /dev/fuse or fusermount3 is missing.

use crate::helpers::*;
use crate::tree::{gnu_tar_reference, walk};
use cairn_engine::mount::{MountImages, MountOptions, Unmounter};
use cairn_engine::{GcOptions, NoProgress, Store};
use cairn_testkit::{probe, require};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// False, with a note, where FUSE mounts cannot be tested (`cairn_testkit::can_mount`).
fn skip(test: &str) -> bool {
    !cairn_testkit::can_mount(test)
}

fn gnu_tar(test: &str) -> bool {
    require(test, probe::gnu_tar()).is_some()
}

/// A mount served on a thread; unmounted when dropped.
struct Mounted {
    dir: PathBuf,
    unmounter: Unmounter,
    thread: Option<std::thread::JoinHandle<cairn_engine::Result<()>>>,
}

impl Mounted {
    fn new(store: &Path, dir: PathBuf, images: MountImages) -> Mounted {
        let mut options = MountOptions::default();
        options.images = images;
        options.cache_bytes = 4 << 20;
        Mounted::with_options(store, dir, &options)
    }

    fn with_options(store: &Path, dir: PathBuf, options: &MountOptions) -> Mounted {
        std::fs::create_dir_all(&dir).unwrap();
        let store = std::sync::Arc::new(cairn_engine::Store::open(store).unwrap());
        let mut session = store.mount(&dir, options).unwrap();
        let unmounter = session.unmounter();
        let thread = Some(std::thread::spawn(move || session.run()));
        Mounted {
            dir,
            unmounter,
            thread,
        }
    }

    fn image(store: &Path, dir: PathBuf, name: &str, layer: Option<usize>) -> Mounted {
        let images = MountImages::One {
            name: name.into(),
            layer,
        };
        Mounted::new(store, dir, images)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.unmounter.unmount().unwrap();
        let served = self.thread.take().unwrap().join().unwrap();
        served.unwrap();
    }
}

fn layer_tars(store: &Store, name: &str) -> Vec<Vec<u8>> {
    let count = store.bootstrap(name).unwrap().layers.len();
    (0..count)
        .map(|i| {
            let mut tar = Vec::new();
            store.export_layer(name, i, &mut tar, &NoProgress).unwrap();
            tar
        })
        .collect()
}

/// The tree under `mounted` equals GNU tar's extraction of `layers` (paths, types, modes,
/// contents, link targets, link counts, xattrs, mtimes).
fn assert_same_as_tar(mounted: &Path, layers: &[Vec<u8>], work: &Path, what: &str) {
    let reference = gnu_tar_reference(layers, work);
    let ours = walk(mounted);
    let theirs = walk(&reference);
    let ours_keys: Vec<_> = ours.keys().collect();
    let theirs_keys: Vec<_> = theirs.keys().collect();
    assert_eq!(ours_keys, theirs_keys, "{what}: the same paths");
    for (path, node) in &ours {
        assert_eq!(node, &theirs[path], "{what}: {}", path.display());
    }
    std::fs::remove_dir_all(work).unwrap();
}

fn demo_store(dir: &Path) -> cairn_engine::StoreWriter {
    let (v1, v2) = demo_layouts(dir);
    let store = new_store(dir);
    convert(&store, &format!("oci:{}", v1.display()), "v1", &[]).unwrap();
    convert(&store, &format!("oci:{}", v2.display()), "v2", &["v1"]).unwrap();
    store
}

fn demo_layouts(dir: &Path) -> (PathBuf, PathBuf) {
    let images = dir.join("images");
    if images.join("v1").exists() {
        return (images.join("v1"), images.join("v2"));
    }
    cairn_sample::write_demo_layouts(&images).unwrap()
}

/// `stat -f` of a mounted directory: (blocks, inodes).
fn statfs(dir: &Path) -> (u64, u64) {
    let out = Command::new("stat")
        .args(["-f", "-c", "%b %c"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut numbers = text.split_whitespace().map(|n| n.parse().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

#[test]
fn demo_images_through_the_mount_match_gnu_tar_whole_and_by_layer() {
    if skip("mount test") || !gnu_tar("mount test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let root = store.store().root().to_path_buf();
    for name in ["v1", "v2"] {
        let layers = layer_tars(store.store(), name);
        let mounted = Mounted::image(&root, tmp.path().join(format!("m-{name}")), name, None);
        // A hardlink and its target are one inode with two names.
        let link = std::fs::metadata(mounted.dir.join("app/bin/demo")).unwrap();
        let target = std::fs::metadata(mounted.dir.join("app/bin/demo-server")).unwrap();
        assert_eq!((link.ino(), link.nlink()), (target.ino(), 2), "{name}");
        let (blocks, inodes) = statfs(&mounted.dir);
        assert!(blocks > 0 && inodes > 0, "{name}: statfs {blocks} {inodes}");
        let work = tmp.path().join(format!("tar-{name}"));
        assert_same_as_tar(&mounted.dir, &layers, &work, name);
        drop(mounted);
        // As of the first layer only.
        let mounted = Mounted::image(&root, tmp.path().join(format!("m0-{name}")), name, Some(0));
        assert_same_as_tar(
            &mounted.dir,
            &layers[..1],
            &work,
            &format!("{name} layer 0"),
        );
    }
    // Every image under its name.
    let all = Mounted::new(&root, tmp.path().join("all"), MountImages::All);
    let names: Vec<_> = std::fs::read_dir(&all.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let layers = layer_tars(store.store(), "v2");
    assert_same_as_tar(
        &all.dir.join("v2"),
        &layers,
        &tmp.path().join("tar-all"),
        "all/v2",
    );
}

#[test]
fn a_damaged_blob_is_an_io_error_for_the_files_using_it_and_only_them() {
    if skip("mount test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let root = store.store().root().to_path_buf();
    let before = {
        let mounted = Mounted::image(&root, tmp.path().join("m"), "v1", None);
        walk(&mounted.dir)
    };
    // One byte in the middle of the largest blob.
    let largest = std::fs::read_dir(root.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&largest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&largest, &bytes).unwrap();

    let mounted = Mounted::image(&root, tmp.path().join("m"), "v1", None);
    let (mut failed, mut read) = (0, 0);
    for (path, node) in &before {
        if std::fs::symlink_metadata(mounted.dir.join(path))
            .unwrap()
            .is_file()
        {
            match std::fs::read(mounted.dir.join(path)) {
                Ok(data) => {
                    assert_eq!(Some(blake3::hash(&data)), node.content(), "{path:?}");
                    read += 1;
                }
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{path:?}: {e}");
                    failed += 1;
                }
            }
        }
    }
    assert!(failed > 0, "some file uses the damaged frame");
    assert!(read > 0, "files elsewhere still read");
}

#[test]
fn gc_keeps_what_a_mounted_image_uses_until_it_is_unmounted() {
    if skip("mount test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let root = store.store().root().to_path_buf();
    let mounted = Mounted::image(&root, tmp.path().join("m"), "v2", None);
    let before = walk(&mounted.dir);
    // The store takes new images while mounted.
    let (v1, _) = demo_layouts(tmp.path());
    convert(&store, &format!("oci:{}", v1.display()), "v3", &[]).unwrap();
    store.remove(&["v2".to_string()]).unwrap();
    let report = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(report.mounted_images, 1);
    assert_eq!(report.dead_blobs + report.dead_bootstraps, 0, "{report:?}");
    // Every file still reads, after gc, as before it.
    let after = walk(&mounted.dir);
    assert!(before == after, "the mounted tree changed under gc");
    drop(mounted);
    let report = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(report.mounted_images, 0);
    assert!(
        report.dead_bootstraps == 1 && report.dead_bytes > 0,
        "{report:?}"
    );
    assert!(std::fs::read_dir(root.join("leases")).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".lease")));
}

#[test]
fn py_through_the_mount_matches_gnu_tar_and_runs_python_under_overlayfs() {
    if skip("py mount test") || !gnu_tar("py mount test") {
        return;
    }
    let Some(data) = cairn_testkit::datasets::py() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    for v in ["v1", "v2"] {
        let layout = data.join(v);
        convert(&store, &format!("oci:{}:{v}", layout.display()), v, &[]).unwrap();
    }
    let root = store.store().root().to_path_buf();
    for v in ["v1", "v2"] {
        let mounted = Mounted::image(&root, tmp.path().join(format!("m-{v}")), v, None);
        let layers = layer_tars(store.store(), v);
        assert_same_as_tar(
            &mounted.dir,
            &layers,
            &tmp.path().join(format!("tar-{v}")),
            v,
        );
        let expected = if v == "v1" { "2.1.4" } else { "2.2.0" };
        assert_eq!(
            run_python_in_overlay(&mounted.dir, tmp.path()),
            expected,
            "{v}"
        );
    }
}

/// Runs `python3 -c "import numpy, pandas; print(pandas.__version__)"` chrooted into an
/// overlayfs whose lower directory is `lower`; its output, trimmed.
fn run_python_in_overlay(lower: &Path, work: &Path) -> String {
    let dirs = ["upper", "work", "root"].map(|d| work.join(format!("overlay-{d}")));
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let [upper, scratch, merged] = &dirs;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        scratch.display()
    );
    let mount = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(merged)
        .output()
        .unwrap();
    assert!(
        mount.status.success(),
        "mount -t overlay: {}",
        String::from_utf8_lossy(&mount.stderr)
    );
    let run = Command::new("chroot")
        .arg(merged)
        .args([
            "/usr/bin/python3",
            "-c",
            "import numpy, pandas; print(pandas.__version__)",
        ])
        .output()
        .unwrap();
    let unmounted = Command::new("umount").arg(merged).status().unwrap();
    assert!(unmounted.success());
    for dir in &dirs {
        std::fs::remove_dir_all(dir).unwrap();
    }
    assert!(
        run.status.success(),
        "python3 in the overlay: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).trim().to_string()
}

/// Converts uncompressed `layers` into `store` as image `name`.
fn add_image(store: &cairn_engine::StoreWriter, work: &Path, name: &str, layers: &[Vec<u8>]) {
    let layout = work.join(format!("layout-{name}"));
    write_layout(&layout, "t", layers, cairn_sample::LayerCompression::None);
    convert(store, &format!("oci:{}", layout.display()), name, &[]).unwrap();
}

/// The options field of `dir`'s line in /proc/mounts.
fn mount_options(dir: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let wanted = dir.to_string_lossy();
    mounts
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&&*wanted))
        .map(|f| f[3].to_string())
        .unwrap_or_else(|| panic!("{wanted} is not in /proc/mounts"))
}

#[test]
fn an_image_setuid_program_does_not_elevate_and_the_mount_is_nosuid_nodev() {
    if skip("setuid test") {
        return;
    }
    let Some(setpriv) = require("setuid test", probe::tool("setpriv")) else {
        return;
    };
    // Another user must reach the mount point: not under a 0700 temporary directory.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let id = std::fs::read("/usr/bin/id").unwrap();
    let layer = cairn_sample::build_layer_tar(
        &[
            cairn_sample::SampleEntry::dir("bin/", 0o755),
            cairn_sample::SampleEntry::file("bin/id", 0o4755, id),
        ],
        1_700_000_000,
    )
    .unwrap();
    let store = new_store(tmp.path());
    add_image(&store, tmp.path(), "suid", &[layer]);
    let root = store.store().root().to_path_buf();
    let mut options = MountOptions::default();
    options.images = MountImages::One {
        name: "suid".into(),
        layer: None,
    };
    options.allow_other = true;
    let mounted = Mounted::with_options(&root, tmp.path().join("m"), &options);
    let mounted_options = mount_options(&mounted.dir);
    let listed: Vec<&str> = mounted_options.split(',').collect();
    assert!(
        listed.contains(&"nosuid") && listed.contains(&"nodev") && listed.contains(&"ro"),
        "{mounted_options}"
    );
    let program = mounted.dir.join("bin/id");
    let meta = std::fs::metadata(&program).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o4755, 0));
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&program)
        .arg("-u")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534");
    drop(mounted);

    // Asked for, and only for the mounting user: setuid bits and devices are honoured.
    let mut trusted = options.clone();
    trusted.suid_dev = true;
    trusted.allow_other = false;
    let mounted = Mounted::with_options(&root, tmp.path().join("t"), &trusted);
    let mounted_options = mount_options(&mounted.dir);
    assert!(
        !mounted_options
            .split(',')
            .any(|o| o == "nosuid" || o == "nodev"),
        "{mounted_options}"
    );
    drop(mounted);
    let mut shared = trusted;
    shared.allow_other = true;
    std::fs::create_dir_all(tmp.path().join("s")).unwrap();
    let store = std::sync::Arc::new(cairn_engine::Store::open(&root).unwrap());
    let refused = store.mount(&tmp.path().join("s"), &shared);
    assert!(refused.is_err_and(|e| e.to_string().contains("--allow-other")));
}

#[test]
fn undeclared_directories_through_the_mount_match_gnu_tar() {
    if skip("mount test") || !gnu_tar("mount test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let root = store.store().root().to_path_buf();
    for seed in 0..12 {
        let layers = crate::implicit_dirs::random_stack(seed);
        let name = format!("s{seed}");
        add_image(&store, tmp.path(), &name, &layers);
        let mounted = Mounted::image(&root, tmp.path().join(format!("m{seed}")), &name, None);
        let work = tmp.path().join(format!("w{seed}"));
        let reference = walk(&crate::implicit_dirs::overlay_reference(&layers, &work));
        let ours = walk(&mounted.dir);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>(),
            "seed {seed}: the same paths"
        );
        for (path, node) in &ours {
            assert_eq!(node, &reference[path], "seed {seed}: {}", path.display());
        }
    }
}

#[test]
fn find_counts_every_file_of_a_very_deep_tree() {
    if skip("mount test") {
        return;
    }
    const DEPTH: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    let mut path = String::new();
    for level in 0..DEPTH {
        path = if path.is_empty() {
            "d".to_string()
        } else {
            format!("{path}/d")
        };
        // Directories declared at even levels only; a file at every hundredth.
        if level % 2 == 0 {
            entries.push(cairn_sample::SampleEntry::dir(format!("{path}/"), 0o755));
        }
        if level % 100 == 99 {
            entries.push(cairn_sample::SampleEntry::file(
                format!("{path}/f"),
                0o644,
                vec![1],
            ));
        }
    }
    let layer = cairn_sample::build_layer_tar(&entries, 1_700_000_000).unwrap();
    let store = new_store(tmp.path());
    add_image(&store, tmp.path(), "deep", &[layer]);
    let root = store.store().root().to_path_buf();
    let mounted = Mounted::image(&root, tmp.path().join("m"), "deep", None);
    let out = Command::new("find")
        .arg(&mounted.dir)
        .args(["-type", "f"])
        .output()
        .unwrap();
    let found = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        found,
        DEPTH / 100,
        "find: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("find")
        .arg(&mounted.dir)
        .args(["-type", "d"])
        .output()
        .unwrap();
    let dirs = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        dirs,
        DEPTH + 1,
        "find: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
