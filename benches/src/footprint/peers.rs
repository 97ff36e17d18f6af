//! Other tools given the same input: restic, borg and casync each back up the old image's
//! layers (each unpacked by GNU tar into its own directory) as one snapshot, then the new
//! image's. Defaults throughout; only what makes them non-interactive is set, and their caches
//! and configuration live in the work directory instead of the user's home.

use crate::harness::measure::Step;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Restic,
    Borg,
    Casync,
}

pub const ALL: [Peer; 3] = [Peer::Casync, Peer::Borg, Peer::Restic];

impl Peer {
    pub fn command(self) -> &'static str {
        match self {
            Peer::Restic => "restic",
            Peer::Borg => "borg",
            Peer::Casync => "casync",
        }
    }

    /// What the defaults are, for the row's label.
    pub fn settings(self) -> &'static str {
        match self {
            Peer::Restic => "defaults: CDC ~1 MiB avg, zstd auto, AES",
            Peer::Borg => "defaults: CDC ~2 MiB avg, lz4, --encryption=none",
            Peer::Casync => "defaults: CDC 64 KiB avg, zstd",
        }
    }

    /// The tool on PATH, if any.
    pub fn find(self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(self.command()))
            .find(|p| is_executable(p))
    }

    /// Name and version, e.g. `restic 0.14.0` (the first two words of its version output).
    pub fn version(self, program: &Path) -> String {
        let arg = match self {
            Peer::Restic => "version",
            Peer::Borg | Peer::Casync => "--version",
        };
        let out = Step::new(program).arg(arg).run().unwrap_or_default();
        let words: Vec<String> = String::from_utf8_lossy(&out)
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect();
        match words.as_slice() {
            [name, version] => format!("{name} {version}"),
            _ => format!("{} (unknown version)", self.command()),
        }
    }

    fn with_env(self, step: Step, state: &Path) -> Step {
        match self {
            Peer::Restic => step
                .env("RESTIC_PASSWORD", "cairn-bench")
                .env("RESTIC_CACHE_DIR", state.join("cache")),
            Peer::Borg => step
                .env("BORG_BASE_DIR", state)
                .env("BORG_PASSPHRASE", "")
                .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
                .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes"),
            Peer::Casync => step,
        }
    }

    /// Creates the repository `repo` (not measured). `state` holds caches and configuration.
    pub fn init(self, program: &Path, repo: &Path, state: &Path) -> Option<Step> {
        let step = match self {
            Peer::Restic => Step::new(program).arg("init").arg("--repo").arg(repo),
            Peer::Borg => Step::new(program)
                .arg("init")
                .arg("--encryption=none")
                .arg(repo),
            // casync creates its store on the first `make`.
            Peer::Casync => return None,
        };
        Some(self.with_env(step, state))
    }

    /// Backs up `input` into `repo` as `name` (measured).
    pub fn backup(
        self,
        program: &Path,
        repo: &Path,
        state: &Path,
        input: &Path,
        name: &str,
    ) -> Step {
        let step = match self {
            Peer::Restic => Step::new(program)
                .arg("backup")
                .arg("--quiet")
                .arg("--repo")
                .arg(repo)
                .arg("--tag")
                .arg(name)
                .arg(input),
            Peer::Borg => Step::new(program)
                .arg("create")
                .arg(format!("{}::{name}", repo.display()))
                .arg(input),
            Peer::Casync => Step::new(program)
                .arg("make")
                .arg(format!("--store={}", repo.join("store").display()))
                .arg(repo.join(format!("{name}.caidx")))
                .arg(input),
        };
        self.with_env(step, state)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
