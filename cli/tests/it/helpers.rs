//! Running the `cairn` binary on a store, and the fixtures the CLI's tests share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn cairn(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run cairn")
}

pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "cairn failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The uncompressed tars of the first `layers` layers of image `name`, as `export-layer` gives.
pub fn export_all(store: &Path, name: &str, layers: usize) -> Vec<Vec<u8>> {
    (0..layers)
        .map(|i| {
            let out = cairn(store, &["export-layer", name, &i.to_string(), "-o", "-"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        })
        .collect()
}

/// Every file under `dir` with its bytes (directories left out).
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

/// A new store in `dir/store` holding the demo images v1 and v2 as `app:v1` and `app:v2`
/// (each converted against every stored chunk).
pub fn store_with_demo_pair(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("images")).unwrap();
    ok(cairn(&store, &["init"]));
    for (layout, name) in [(&v1, "app:v1"), (&v2, "app:v2")] {
        let source = format!("oci:{}", layout.display());
        ok(cairn(&store, &["convert", &source, "--name", name]));
    }
    store
}

/// A new store in `dir/store` holding the demo image v1 as `app:v1`.
pub fn store_with_demo_v1(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("store");
    let (v1, _) = cairn_sample::write_demo_layouts(&dir.join("images")).unwrap();
    ok(cairn(&store, &["init"]));
    let source = format!("oci:{}", v1.display());
    ok(cairn(&store, &["convert", &source, "--name", "app:v1"]));
    store
}
