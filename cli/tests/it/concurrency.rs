//! Readers work while a writer runs: `export-layer`, `cat`, `diff` and `stats` on a committed
//! image give the same bytes as before while a `convert` (of a large generated layer) and then a
//! `gc` (with many files to delete) run in another process; a second convert meanwhile
//! succeeds, and a gc is refused at once, with the running convert named.
//!
//! Only the readers' results are asserted; the overlap is best effort, except that some reader
//! must have run start to end while the convert was running (it runs for about a second).

use crate::helpers::{cairn, ok, store_with_demo_v1};
use cairn_sample::{build_layer_tar, Rng, SampleEntry};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Files and size of the generated layer (random bytes: nothing shared with the demo images).
/// Big enough that the convert outlives a refused gc (about 0.2 s since locks are retried) and a
/// second convert: 256 MiB of random data, about 2.5 s here.
const BIG_FILES: u64 = 64;
const BIG_FILE_LEN: usize = 4 << 20;
/// Files planted in `blobs/` for gc to delete.
const ORPHANS: u64 = 20_000;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    Rng::xorshift64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).bytes(len)
}

/// Writes a bare layer tar of `files` random files without holding it all in memory: each
/// file's own tar, less its end-of-archive blocks, then one end-of-archive.
pub(super) fn write_random_layer(path: &Path, files: u64, seed: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..files {
        let entry = SampleEntry::file(
            format!("data/blob-{seed}-{i:04}.bin"),
            0o644,
            random_bytes(BIG_FILE_LEN, seed * 1000 + i),
        );
        let tar = build_layer_tar(&[entry], 1_700_000_000).unwrap();
        let body = tar.len() - 1024;
        assert!(
            tar[body..].iter().all(|&b| b == 0),
            "tar ends in two zero blocks"
        );
        out.write_all(&tar[..body]).unwrap();
    }
    out.write_all(&[0u8; 1024]).unwrap();
    out.flush().unwrap();
}

fn spawn(store: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(store)
        .arg("--quiet")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cairn")
}

/// The running writers, as the `LIVE` files of their directories under `tmp/` name them.
pub(super) fn live_writers(store: &Path) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(store.join("tmp")) else {
        return Vec::new();
    };
    dirs.flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("LIVE")).ok())
        .collect()
}

fn running(child: &mut Child) -> bool {
    child.try_wait().expect("wait").is_none()
}

/// Waits for a child and asserts it succeeded.
fn finish(mut child: Child, what: &str) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{what} failed: {stderr}");
}

/// What the readers give for the committed images.
#[derive(Debug, PartialEq)]
struct Reads {
    layers: Vec<Vec<u8>>,
    cat: Vec<u8>,
    diff: String,
    /// `stats --json` of app:v1 and app:v2: their per-image figures, and the image count.
    stats_per_image: serde_json::Value,
    stats_images: u64,
}

fn read_all(store: &Path) -> Reads {
    let layers = (0..3)
        .map(|i| {
            let out = cairn(
                store,
                &["export-layer", "app:v1", &i.to_string(), "-o", "-"],
            );
            assert!(
                out.status.success(),
                "export-layer {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        })
        .collect();
    let cat = cairn(store, &["cat", "app:v1", "app/model.bin"]);
    assert!(
        cat.status.success(),
        "cat: {}",
        String::from_utf8_lossy(&cat.stderr)
    );
    let diff = ok(cairn(store, &["diff", "app:v1", "app:v2", "--json"]));
    let stats: serde_json::Value =
        serde_json::from_str(&ok(cairn(store, &["stats", "app:v1", "app:v2", "--json"]))).unwrap();
    Reads {
        layers,
        cat: cat.stdout,
        diff,
        stats_per_image: stats["per_image"].clone(),
        stats_images: stats["images"].as_u64().unwrap(),
    }
}

/// Runs the readers again and again while `writer` runs; each result must equal `expected`
/// but for the image count, which may be any of `images`. Returns (rounds, rounds that ran
/// wholly while the writer was running).
fn read_while_running(
    store: &Path,
    writer: &mut Child,
    expected: &Reads,
    images: &[u64],
    mut between: impl FnMut(&mut Child),
) -> (u32, u32) {
    let (mut rounds, mut overlapped) = (0, 0);
    loop {
        let before = running(writer);
        let reads = read_all(store);
        let after = running(writer);
        rounds += 1;
        assert!(
            images.contains(&reads.stats_images),
            "stats counted {} images, expected one of {images:?}",
            reads.stats_images
        );
        let reads = Reads {
            stats_images: expected.stats_images,
            ..reads
        };
        assert!(
            reads == *expected,
            "a reader gave other results while the writer ran (round {rounds})"
        );
        if before && after {
            overlapped += 1;
        }
        if !after {
            return (rounds, overlapped);
        }
        between(writer);
    }
}

#[test]
fn readers_work_while_a_writer_runs() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let v2 = tmp.path().join("images/v2");
    ok(cairn(
        &store,
        &[
            "convert",
            &format!("oci:{}", v2.display()),
            "--name",
            "app:v2",
        ],
    ));
    let big = tmp.path().join("big.tar");
    write_random_layer(&big, BIG_FILES, 1);
    let small = tmp.path().join("small.tar");
    write_random_layer(&small, 1, 2);
    let blobs = || std::fs::read_dir(store.join("blobs")).unwrap().count();
    let blobs_before = blobs();
    let expected = read_all(&store);
    assert_eq!(expected.stats_images, 2);
    let setup = started.elapsed();

    // 1. A convert runs; a second convert meanwhile succeeds, and gc is refused at once,
    // naming the first.
    let convert_started = Instant::now();
    let mut convert = spawn(&store, &["convert", big.to_str().unwrap(), "--name", "big"]);
    let holder = format!("pid {} (", convert.id());
    let mut refused = false;
    let (rounds, overlapped) =
        read_while_running(&store, &mut convert, &expected, &[2, 3, 4], |writer| {
            if refused {
                return;
            }
            // The convert runs once its directory under tmp/ names it.
            if !live_writers(&store).iter().any(|w| w.starts_with(&holder)) {
                return;
            }
            let asked = Instant::now();
            let gc = cairn(&store, &["gc"]);
            let waited = asked.elapsed();
            let second = cairn(
                &store,
                &["convert", small.to_str().unwrap(), "--name", "second"],
            );
            assert!(
                second.status.success(),
                "a second convert failed: {}",
                String::from_utf8_lossy(&second.stderr)
            );
            if !running(writer) {
                // The first writer may have finished meanwhile: nothing can be concluded.
                return;
            }
            let stderr = String::from_utf8_lossy(&gc.stderr);
            assert!(!gc.status.success(), "gc ran while a convert did");
            assert!(
                stderr.contains("in use by another writer") && stderr.contains(&holder),
                "{stderr}"
            );
            assert!(
                waited < Duration::from_secs(5),
                "refused only after {waited:?}"
            );
            refused = true;
        });
    finish(convert, "convert");
    let convert_time = convert_started.elapsed();
    eprintln!("convert: {convert_time:?}, {rounds} reader rounds, {overlapped} wholly during it");
    assert!(refused, "no gc tried while the convert ran");
    assert!(
        overlapped > 0,
        "no reader ran while the convert did ({convert_time:?}); make the layer bigger"
    );
    let after_convert = read_all(&store);
    assert_eq!(after_convert.stats_images, 4);
    assert_eq!(
        Reads {
            stats_images: 2,
            ..after_convert
        },
        expected
    );

    // 2. gc runs with work to do: the big image's blob and bootstrap, and many orphan files
    // (what crashed converts leave).
    ok(cairn(&store, &["rm", "big", "second"]));
    for i in 0..ORPHANS {
        std::fs::write(store.join("blobs").join(format!("{i:064x}")), b"orphan").unwrap();
    }
    let gc_started = Instant::now();
    let mut gc = spawn(&store, &["gc"]);
    let (rounds, overlapped) = read_while_running(&store, &mut gc, &expected, &[2], |_| {});
    finish(gc, "gc");
    eprintln!(
        "gc: {:?}, {rounds} reader rounds, {overlapped} wholly during it",
        gc_started.elapsed()
    );
    assert_eq!(read_all(&store), expected);
    assert_eq!(blobs(), blobs_before);
    assert!(ok(cairn(&store, &["verify", "--full"])).contains("no problems found"));
    eprintln!("setup {setup:?}, total {:?}", started.elapsed());
}
