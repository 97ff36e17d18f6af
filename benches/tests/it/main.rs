//! End-to-end tests of the `cairn-bench` binary on the generated demo pair, so the benchmarks
//! cannot rot. They check what is reported, never how fast.

mod bundle;
mod footprint;
mod limits;
mod many_files;
mod sweep;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The demo pair written under `dir`: (`oci:DIR/v1:v1`, `oci:DIR/v2:v2`).
fn demo_sources(dir: &Path) -> (String, String) {
    let (v1, v2) = cairn_sample::write_demo_layouts(dir).expect("demo layouts");
    (
        format!("oci:{}:v1", v1.display()),
        format!("oci:{}:v2", v2.display()),
    )
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn-bench"))
        .args(args)
        .output()
        .expect("run cairn-bench")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "cairn-bench failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The `cairn` binary next to cairn-bench, when the workspace build made it.
fn sibling_cairn() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_cairn-bench")).with_file_name("cairn");
    path.is_file().then_some(path)
}
