//! The real-data datasets: images built by a script from real Debian packages and PyPI wheels,
//! once per machine, into a cache directory that later runs reuse.
//!
//! - py ([`py`]): `../shared/datasets/gen_py.py` (python3.11, numpy and pandas in two
//!   versions, and an app layer with every OCI corner case); needs the package registries, which
//!   CI reaches: [`require`]d.
//! - family ([`family`]): `benches/scripts/gen_family.py` (nine images sharing an OS base and
//!   runtimes); needs apt-get and root: root is [`optional`], the build [`require`]d.

use crate::probe::{self, repo_root};
use crate::{optional, require};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The py dataset's directory (`v1/`, `v2/`: OCI layouts with refs `v1`, `v2`), built on first
/// use into `$CAIRN_PY_DATASET` (default `~/.cache/cairn-py`); `None` (the test skipped, with a
/// note) if it cannot be built.
pub fn py() -> Option<&'static Path> {
    static DATASET: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = DATASET.get_or_init(|| {
        build(&Dataset {
            name: "py",
            env: "CAIRN_PY_DATASET",
            cache: ".cache/cairn-py",
            marker: "layers.json",
            script: "../shared/datasets/gen_py.py",
            why: "package registries unreachable?",
        })
    });
    require(
        "the py dataset test",
        built.as_deref().map_err(String::clone),
    )
}

/// The family dataset's directory (`oci/`, one layout with nine refs, and `family.json`), built
/// on first use into `$CAIRN_FAMILY_DATASET` (default `~/.cache/cairn-family`); `None` (the test
/// skipped, with a note) if it cannot be built.
pub fn family() -> Option<&'static Path> {
    static DATASET: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dataset = Dataset {
        name: "family",
        env: "CAIRN_FAMILY_DATASET",
        cache: ".cache/cairn-family",
        marker: "family.json",
        script: "benches/scripts/gen_family.py",
        why: "it needs apt-get and the Debian archive",
    };
    let cached = dataset.dir().is_ok_and(|d| dataset.is_built(&d));
    if !cached {
        optional(
            "the family dataset test (its script runs as root)",
            probe::root(),
        )?;
    }
    let built = DATASET.get_or_init(|| build(&dataset));
    require(
        "the family dataset test",
        built.as_deref().map_err(String::clone),
    )
}

/// A dataset a script builds from real packages, once, into a cache directory.
struct Dataset {
    name: &'static str,
    /// The variable naming its directory, and the default under `$HOME`.
    env: &'static str,
    cache: &'static str,
    /// The file the script writes last.
    marker: &'static str,
    /// The script, relative to the repository's root.
    script: &'static str,
    /// What usually makes the script fail, for the note.
    why: &'static str,
}

impl Dataset {
    fn dir(&self) -> Result<PathBuf, String> {
        match std::env::var_os(self.env) {
            Some(dir) => Ok(PathBuf::from(dir)),
            None => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(self.cache))
                .ok_or_else(|| format!("neither {} nor HOME is set", self.env)),
        }
    }

    fn is_built(&self, dir: &Path) -> bool {
        dir.join(self.marker).is_file()
    }
}

/// The dataset's directory, built now (`python3 SCRIPT --out DIR`) if it is not yet; else why not.
fn build(d: &Dataset) -> Result<PathBuf, String> {
    let dir = d.dir()?;
    if d.is_built(&dir) {
        return Ok(dir);
    }
    let script = repo_root().join(d.script);
    if !script.is_file() {
        return Err(format!(
            "{} not found (CI has ../shared beside the clone)",
            script.display()
        ));
    }
    eprintln!(
        "building the {} dataset into {} (minutes)",
        d.name,
        dir.display()
    );
    let built = Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(&dir)
        .status();
    if built.is_ok_and(|s| s.success()) && d.is_built(&dir) {
        Ok(dir)
    } else {
        Err(format!(
            "{} failed to build the {} dataset ({})",
            script.display(),
            d.name,
            d.why
        ))
    }
}
