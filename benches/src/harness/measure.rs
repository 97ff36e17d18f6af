//! Runs one measured step as a child process under GNU time (`/usr/bin/time`), so wall time,
//! CPU time (user + system) and peak RSS are what the kernel reports for that process and the
//! children it waits for (tar, for example), not estimates from inside this process.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

pub const GNU_TIME: &str = "/usr/bin/time";
/// Elapsed, user, system seconds and maximum resident set size in KiB.
const FORMAT: &str = "%e %U %S %M";

/// What GNU time reported for one child.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Usage {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_rss_kib: u64,
}

/// A command to measure: program, arguments and extra environment.
#[derive(Clone, Debug)]
pub struct Step {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
    /// Standard output goes to /dev/null instead of being collected.
    pub discard_stdout: bool,
}

/// How a measured child ended: GNU time's figures (reported for a failed or killed child too),
/// its exit status and what it printed.
#[derive(Debug)]
pub struct Outcome {
    pub usage: Usage,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// The last `lines` lines of standard error.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr, lines)
    }
}

impl Step {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Step {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            discard_stdout: false,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = I>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.to_string(), value.as_ref().to_owned()));
        self
    }

    /// Sends standard output to /dev/null (for `cat`, which would otherwise fill memory here).
    pub fn discard_stdout(mut self) -> Self {
        self.discard_stdout = true;
        self
    }

    /// `program arg...` for messages.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command unmeasured; fails unless it exits 0. Returns its standard output.
    pub fn run(&self) -> Result<Vec<u8>> {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if self.discard_stdout {
            command.stdout(Stdio::null());
        }
        finish(&self.display(), command.output())
    }

    /// Runs the command under GNU time; fails unless it exits 0. `scratch` holds the time file.
    pub fn measure(&self, scratch: &Path) -> Result<(Usage, Vec<u8>)> {
        let outcome = self.measure_outcome(scratch)?;
        if !outcome.status.success() {
            bail!(
                "`{}` failed ({}):\n{}",
                self.display(),
                outcome.status,
                outcome.stderr_tail(20)
            );
        }
        Ok((outcome.usage, outcome.stdout))
    }

    /// Runs the command under GNU time and reports how it ended, success or not; fails only
    /// when it cannot be started or GNU time reports nothing.
    pub fn measure_outcome(&self, scratch: &Path) -> Result<Outcome> {
        let time_file = scratch.join(".cairn-bench-time");
        let mut command = Command::new(GNU_TIME);
        command
            .arg("-o")
            .arg(&time_file)
            .arg("-f")
            .arg(FORMAT)
            .arg(&self.program)
            .args(&self.args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if self.discard_stdout {
            command.stdout(Stdio::null());
        }
        let output = command
            .output()
            .with_context(|| format!("start `{}`", self.display()))?;
        let text = std::fs::read_to_string(&time_file)
            .with_context(|| format!("read GNU time's output {}", time_file.display()))?;
        std::fs::remove_file(&time_file).ok();
        let usage = parse_usage(&text).with_context(|| {
            format!(
                "GNU time's output for `{}` is not \"{FORMAT}\": {text:?}",
                self.display()
            )
        })?;
        Ok(Outcome {
            usage,
            status: output.status,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }
}

fn finish(what: &str, output: std::io::Result<std::process::Output>) -> Result<Vec<u8>> {
    let output = output.with_context(|| format!("start `{what}`"))?;
    if !output.status.success() {
        bail!(
            "`{what}` failed ({}):\n{}",
            output.status,
            tail(&output.stderr, 20)
        );
    }
    Ok(output.stdout)
}

/// The last `lines` lines of a child's output.
fn tail(output: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let last: Vec<&str> = text.lines().rev().take(lines).collect();
    last.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Parses the last line of GNU time's `-o` file (it may be preceded by "Command exited with
/// non-zero status" or "Command terminated by signal").
fn parse_usage(text: &str) -> Option<Usage> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 4 {
        return None;
    }
    let wall_s = fields[0].parse().ok()?;
    let user: f64 = fields[1].parse().ok()?;
    let system: f64 = fields[2].parse().ok()?;
    let max_rss_kib = fields[3].parse().ok()?;
    Some(Usage {
        wall_s,
        cpu_s: user + system,
        max_rss_kib,
    })
}

/// The cairn binary to measure: `--cairn`, else `cairn` next to this executable.
pub fn cairn_binary(cairn: Option<&Path>) -> Result<PathBuf> {
    let cairn = match cairn {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("locate cairn-bench")?
            .with_file_name("cairn"),
    };
    if !cairn.is_file() {
        bail!(
            "no cairn binary at {} (build the workspace, or pass --cairn)",
            cairn.display()
        );
    }
    Ok(cairn)
}

/// Fails with what to install when GNU time is not there.
pub fn check_gnu_time() -> Result<()> {
    let output = Command::new(GNU_TIME).arg("--version").output();
    match output {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout).contains("GNU")
                || String::from_utf8_lossy(&o.stderr).contains("GNU") =>
        {
            Ok(())
        }
        _ => bail!(
            "{GNU_TIME} is missing or is not GNU time: install the Debian package `time` \
             (bash .ci/setup does)"
        ),
    }
}

/// `program` on PATH, if it is there.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_output() {
        assert_eq!(
            parse_usage("1.50 2.25 0.25 10240\n"),
            Some(Usage {
                wall_s: 1.5,
                cpu_s: 2.5,
                max_rss_kib: 10240
            })
        );
        let failed = "Command exited with non-zero status 1\n0.01 0.00 0.00 2000\n";
        assert_eq!(parse_usage(failed).unwrap().max_rss_kib, 2000);
        assert_eq!(parse_usage("garbage"), None);
    }

    #[test]
    fn measures_a_child() {
        let tmp = tempfile::tempdir().unwrap();
        let (usage, stdout) = Step::new("sh")
            .arg("-c")
            .arg("echo hi")
            .measure(tmp.path())
            .unwrap();
        assert_eq!(stdout, b"hi\n");
        assert!(usage.max_rss_kib > 0);
        let err = Step::new("sh")
            .arg("-c")
            .arg("echo boom >&2; exit 3")
            .measure(tmp.path())
            .unwrap_err();
        assert!(format!("{err:#}").contains("boom"));
        // A failure is an outcome with GNU time's figures; stdout can go to /dev/null.
        let outcome = Step::new("sh")
            .args(["-c", "echo out; echo one >&2; echo two >&2; exit 3"])
            .discard_stdout()
            .measure_outcome(tmp.path())
            .unwrap();
        assert_eq!(outcome.status.code(), Some(3));
        assert!(outcome.stdout.is_empty());
        assert_eq!(outcome.stderr_tail(1), "two");
        assert!(outcome.usage.max_rss_kib > 0);
    }
}
