//! Helpers shared by cairn's test suites (the engine's, the CLI's and the benches'), dev-only.
//!
//! # Tests that cannot silently skip
//!
//! A test that needs something the machine may lack asks for it here, and the answer decides
//! whether it runs. There are two kinds of need:
//!
//! - [`require`]: what `.ci/setup` installs or `.ci/run` and the tests start, so that CI has it:
//!   FUSE (`/dev/fuse` and `fusermount3`, package fuse3), `docker-registry` and `skopeo` (the
//!   registry tests), GNU tar (the references of the unpack and mount tests), `setpriv`
//!   (util-linux), python3 with DuckDB (the Parquet tests), `mksquashfs` and `unsquashfs`
//!   (squashfs-tools, the bundle and footprint benches), the `cairn` binary beside
//!   `cairn-bench` (built by `cargo test --workspace`), and the py dataset (built on first use
//!   from `../shared/datasets/gen_py.py`, which needs the package registries). Where it is
//!   missing the test prints why and skips, or skips that part of it; but with
//!   `CAIRN_TEST_STRICT=1` in the environment (`.ci/run` sets it) the test fails instead, so that
//!   a missing install shows as a red CI run rather than as green tests that checked nothing.
//! - [`optional`]: what CI may legitimately lack even after its setup; never a failure. Today
//!   that is running as root (the FUSE mount tests, whose references need owners set, and the
//!   family dataset, whose script unpacks Debian packages as root). CI runs as root, so these run
//!   there too; a developer's unprivileged shell skips them with a note.
//!
//! The probes ([`probe`]) say what is missing and how to get it; a test passes their answer to
//! `require` or `optional`, naming what it would skip:
//!
//! ```no_run
//! use cairn_testkit::{probe, require};
//! let Some(skopeo) = require("the skopeo checks", probe::tool("skopeo")) else {
//!     return;
//! };
//! ```
//!
//! # Shared fixtures
//!
//! - [`registry`]: the CNCF distribution registry on loopback, fed by `skopeo copy`.
//! - [`datasets`]: the real-data datasets (py, family), built once into a cache directory.

pub mod datasets;
pub mod probe;
pub mod registry;
pub mod tree;

/// The environment variable that turns missing requirements into failures.
pub const STRICT_VAR: &str = "CAIRN_TEST_STRICT";

/// True when `CAIRN_TEST_STRICT=1`: a missing [`require`]ment fails the test.
pub fn strict() -> bool {
    std::env::var_os(STRICT_VAR).is_some_and(|v| v == "1")
}

/// The value of `probe` if it found what a test needs; else `None`, after a note on stderr that
/// `what` (the test, or the part of it that needs this) is skipped and why.
///
/// # Panics
///
/// When the probe found nothing and `CAIRN_TEST_STRICT=1` is set: CI installs and starts
/// everything tests `require`, so a miss there is a defect of the setup, not a skip.
pub fn require<T>(what: &str, probe: Result<T, String>) -> Option<T> {
    require_as(strict(), what, probe)
}

fn require_as<T>(strict: bool, what: &str, probe: Result<T, String>) -> Option<T> {
    match probe {
        Ok(found) => Some(found),
        Err(reason) if strict => panic!(
            "{}{what} cannot run: {reason} ({STRICT_VAR}=1: CI must provide it; see .ci/setup)",
            test_name()
        ),
        Err(reason) => {
            eprintln!("note: {}{what} skipped: {reason}", test_name());
            None
        }
    }
}

/// Like [`require`], for what CI may lack even after its setup (running as root): `None`, with
/// the note, whatever `CAIRN_TEST_STRICT` says.
pub fn optional<T>(what: &str, probe: Result<T, String>) -> Option<T> {
    match probe {
        Ok(found) => Some(found),
        Err(reason) => {
            eprintln!(
                "note: {}{what} skipped: {reason} (optional: never a failure)",
                test_name()
            );
            None
        }
    }
}

/// True if FUSE mounts can be tested here: as root ([`optional`]), with FUSE ([`require`]d).
/// The mount tests compare owners and modes with GNU tar's extraction as root, and some run
/// programs from the mount under overlayfs and chroot.
pub fn can_mount(what: &str) -> bool {
    optional(what, probe::root()).is_some() && require(what, probe::fuse()).is_some()
}

/// "TEST: " from the test harness's name for the current thread, or nothing outside it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{name}: "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_requirement_skips_unless_strict() {
        assert_eq!(require_as(false, "x", Ok(3)), Some(3));
        assert_eq!(require_as(true, "x", Ok(3)), Some(3));
        assert_eq!(require_as::<()>(false, "x", Err("gone".into())), None);
        assert_eq!(optional::<()>("x", Err("gone".into())), None);
    }

    #[test]
    #[should_panic(expected = "x cannot run: gone (CAIRN_TEST_STRICT=1")]
    fn a_missing_requirement_fails_when_strict() {
        require_as::<()>(true, "x", Err("gone".into()));
    }

    #[test]
    fn probes_name_what_to_install() {
        let missing = probe::tool("no-such-tool-for-cairn").unwrap_err();
        assert!(
            missing.contains("no-such-tool-for-cairn is not on PATH"),
            "{missing}"
        );
        let squashfs = ["mksquashfs"]
            .map(|t| probe::tool(t).map_or_else(|e| e.contains("squashfs-tools"), |p| p.is_file()));
        assert!(squashfs[0]);
    }
}
