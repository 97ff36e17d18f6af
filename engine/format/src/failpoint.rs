//! Fail points: `CAIRN_FAIL_AT=NAME[,NAME...]` makes the named durable write step fail with an
//! injected I/O error, so tests can stop every write path (convert, rm, gc, export, init) at
//! each of its fsync, rename and index-batch steps, deterministically, and check that the store
//! is left whole (see the write order in `ops::convert` and `ops::gc`).
//!
//! Each step calls [`check`] with its name just before it runs. The variable is read once per
//! process; when it is unset a check is one load and a branch.

use crate::error::{Error, Result};
use std::sync::OnceLock;

/// The variable that names the fail points to trigger.
pub const ENV: &str = "CAIRN_FAIL_AT";

/// The variable that makes the free-space probe (`fsutil::free_bytes`, asked by each optimize
/// round) report this many bytes instead of asking the file system: how tests give optimize a
/// nearly full disk without filling one.
pub const FREE_BYTES_ENV: &str = "CAIRN_TEST_FREE_BYTES";

/// Every fail point, in write order per command. A check with a name missing from this list
/// is an error while `CAIRN_FAIL_AT` is set, so the list cannot fall behind the call sites.
pub const ALL: &[&str] = &[
    "init.config.rename",
    "open.config.upgrade",
    "convert.blob.fsync",
    "convert.blob.rename",
    "convert.blobs.dir_fsync",
    "convert.layer_meta.fsync",
    "convert.layer_meta.write",
    "convert.layer_meta.rename",
    "convert.bootstrap.write",
    "convert.bootstrap.rename",
    "convert.index.batch",
    "rm.index.batch",
    "gc.compact.blob_fsync",
    "gc.compact.blob_rename",
    "gc.compact.layer_meta_fsync",
    "gc.compact.layer_meta_rename",
    "gc.compact.bootstrap_rename",
    "gc.index.batch",
    "gc.delete",
    "gc.dir_fsync",
    "gc.records.batch",
    "export.layout.rename",
    "export.index.rename",
    "export.archive.rename",
    "import.blob.fsync",
    "import.layer_meta.fsync",
    "import.blob.rename",
    "import.layer_meta.rename",
    "import.bootstrap.rename",
    "import.index.batch",
];

/// The names in `CAIRN_FAIL_AT`, read once.
fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var(ENV)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Fails with an injected error if `CAIRN_FAIL_AT` names `name`. Called just before a durable
/// write step (an fsync, a rename, an index batch, a deletion).
pub fn check(name: &'static str) -> Result<()> {
    let armed = armed();
    if armed.is_empty() {
        return Ok(());
    }
    check_in(armed, name)
}

fn check_in(armed: &[String], name: &'static str) -> Result<()> {
    let injected = |reason: String| Error::Io {
        action: "fail point",
        path: name.into(),
        source: std::io::Error::other(reason),
    };
    if !ALL.contains(&name) {
        return Err(injected(format!(
            "internal: fail point {name} is missing from failpoint::ALL"
        )));
    }
    if let Some(unknown) = armed.iter().find(|a| !ALL.contains(&a.as_str())) {
        return Err(injected(format!(
            "{ENV} names {unknown:?}, which is no fail point; known: {}",
            ALL.join(", ")
        )));
    }
    if armed.iter().any(|a| a == name) {
        return Err(injected(format!(
            "injected failure at fail point {name} ({ENV})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn only_the_armed_points_fail() {
        let list = armed(&["gc.delete", "rm.index.batch"]);
        assert!(check_in(&list, "gc.index.batch").is_ok());
        let err = check_in(&list, "gc.delete").unwrap_err().to_string();
        assert!(
            err.contains("injected failure at fail point gc.delete (CAIRN_FAIL_AT)"),
            "{err}"
        );
        assert!(check_in(&list, "rm.index.batch").is_err());
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = check_in(&armed(&["gc.delet"]), "gc.delete")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"gc.delet\", which is no fail point"),
            "{err}"
        );
        let err = check_in(&armed(&["gc.delete"]), "gc.nowhere")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing from failpoint::ALL"), "{err}");
    }

    #[test]
    fn names_are_unique() {
        let mut names = ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
