//! Running `cairn-bench` on the generated demo pair, and the `cairn` binary beside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The demo pair written under `dir`: (`oci:DIR/v1:v1`, `oci:DIR/v2:v2`).
pub fn demo_sources(dir: &Path) -> (String, String) {
    let (v1, v2) = cairn_sample::write_demo_layouts(dir).expect("demo layouts");
    (
        format!("oci:{}:v1", v1.display()),
        format!("oci:{}:v2", v2.display()),
    )
}

pub fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn-bench"))
        .args(args)
        .output()
        .expect("run cairn-bench")
}

pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "cairn-bench failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The `cairn` binary next to cairn-bench, which the workspace build makes; `what` needs it
/// (`cairn_testkit::require`: a note where it is missing, a failure with `CAIRN_TEST_STRICT=1`).
pub fn sibling_cairn(what: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_cairn-bench")).with_file_name("cairn");
    let found = if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built (`cargo test --workspace` builds it)",
            path.display()
        ))
    };
    cairn_testkit::require(what, found)
}
