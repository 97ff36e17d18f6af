//! The converts measured against the limits, each a child process (the `cairn` binary next
//! to cairn-bench, or `--cairn`; without one, `cairn-bench internal convert`, the same engine
//! call) after a `sync`, timed here: wall time from spawn to exit, CPU time from the kernel's
//! account of waited-for children.
//!
//! 1. the image into an empty store: every chunk new;
//! 2. the same image again, as a `docker save` archive of its very blobs whose layers are named
//!    `N/layer.tar` (`known_content_archive`): the archive states no layer digests, so the
//!    convert cannot take the layer objects of (1) by digest and reads every layer: decode,
//!    digests, chunking and lookups, with every chunk already stored;
//! 3. the image again as it is: its layer digests are stored, so cairn reuses the layer
//!    objects and reads no layer at all (shown for what it is, not against a limit).

use crate::harness::image;
use crate::harness::measure::Step;
use crate::harness::pipeline::clock::Span;
use crate::harness::pipeline::sys;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the converts run.
pub enum Cairn {
    Binary(PathBuf),
    /// `cairn-bench internal convert`.
    InProcess(PathBuf),
}

impl Cairn {
    /// `--cairn`, else `cairn` next to this binary, else in-process.
    pub fn find(cairn: Option<&Path>) -> Result<Cairn> {
        let this = std::env::current_exe().context("locate cairn-bench")?;
        Ok(match cairn {
            Some(path) if path.is_file() => Cairn::Binary(path.to_path_buf()),
            Some(path) => bail!("--cairn {}: no such file", path.display()),
            None if this.with_file_name("cairn").is_file() => {
                Cairn::Binary(this.with_file_name("cairn"))
            }
            None => Cairn::InProcess(this),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Cairn::Binary(path) => format!("the cairn binary {}", path.display()),
            Cairn::InProcess(_) => "in-process (`cairn-bench internal convert`): no cairn binary \
                                    next to cairn-bench; build it or pass --cairn"
                .into(),
        }
    }

    /// Converts `source` into `store` as `name` (`cairn init` first, unmeasured, if there is
    /// no store), measured.
    pub fn convert(&self, store: &Path, source: &str, name: &str) -> Result<ConvertRun> {
        let step = match self {
            Cairn::Binary(path) => {
                let cairn = || Step::new(path).arg("--store").arg(store).arg("--quiet");
                if !store.join("store.json").exists() {
                    cairn().arg("init").run()?;
                }
                cairn().arg("convert").arg(source).arg("--name").arg(name)
            }
            Cairn::InProcess(this) => Step::new(this)
                .args(["internal", "convert", "--store"])
                .arg(store)
                .arg("--source")
                .arg(source)
                .arg("--name")
                .arg(name),
        };
        // The writeback of what the stages and earlier converts wrote is not this convert's.
        Step::new("sync").run()?;
        let children = sys::children_cpu();
        let start = Instant::now();
        step.run()
            .with_context(|| format!("convert {source} as {name}"))?;
        Ok(ConvertRun {
            name: name.into(),
            source: source.into(),
            span: Span {
                cpu_s: sys::children_cpu().saturating_sub(children).as_secs_f64(),
                wall_s: start.elapsed().as_secs_f64(),
            },
        })
    }
}

/// One measured convert.
#[derive(Debug, Serialize)]
pub struct ConvertRun {
    pub name: String,
    pub source: String,
    #[serde(flatten)]
    pub span: Span,
}

impl ConvertRun {
    /// MB of tar per wall second.
    pub fn mbps(&self, tar_bytes: u64) -> f64 {
        tar_bytes as f64 / 1e6 / self.span.wall_s
    }
}

/// Writes `source` as a `docker save` archive at `out` whose layers, the source's stored
/// bytes unchanged, are named `N/layer.tar` (the pre-OCI layout of docker save), so that no
/// layer states a digest. Returns the source to convert: `docker-archive:OUT`, or `source`
/// itself when it is a bare layer (which states no digest either).
pub fn known_content_archive(source: &str, out: &Path) -> Result<String> {
    let image = image::resolve_one(source)?;
    let Some(config) = image.config else {
        return Ok(source.to_string());
    };
    let names: Vec<String> = (0..image.layers.len())
        .map(|i| format!("{i}/layer.tar"))
        .collect();
    let config_name = format!("{}.json", config.digest.to_hex());
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [],
        "Layers": names,
    }]);
    let file = File::create(out).with_context(|| format!("create {}", out.display()))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let manifest = serde_json::to_vec(&manifest)?;
    image::append(
        &mut tar,
        "manifest.json",
        manifest.len() as u64,
        &mut &manifest[..],
    )?;
    let config = &config.bytes;
    image::append(
        &mut tar,
        &config_name,
        config.len() as u64,
        &mut &config[..],
    )?;
    for (layer, name) in image::layers(source)?.iter().zip(&names) {
        image::append(&mut tar, name, layer.len, &mut layer.open_stored()?)?;
    }
    tar.into_inner()
        .context("finish the archive")?
        .flush()
        .with_context(|| format!("write {}", out.display()))?;
    Ok(format!("docker-archive:{}", out.display()))
}
