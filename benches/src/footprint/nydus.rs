//! The Nydus row, when `nydus-image` is on PATH: each image converted as nydusify converts one,
//! one `nydus-image create` per layer (RAFS v6 and its other defaults: 1 MiB chunks, zstd; a
//! gzip layer read as it is stored, `--type targz-rafs`, anything else as its tar) then
//! `nydus-image merge` of the layers' bootstraps into the image's; the new image's layers are
//! built and merged with `--chunk-dict bootstrap=<the old image's bootstrap>`, as cairn's new
//! image uses the old one as its dictionary. The whole conversion of an image is one measured shell
//! script, so wall time, CPU and peak memory cover every step. Footprint: the blob directory
//! and the two images' merged bootstraps (the layers' own bootstraps are intermediate).

use super::report::{Peers, Row, Skipped};
use super::row_log::Rows;
use super::{Bench, IMAGES};
use crate::harness::image::{self, Layer};
use crate::harness::measure::Step;
use crate::harness::sizes::du_sb;
use anyhow::{Context, Result};
use cairn_engine::Compression;
use std::path::{Path, PathBuf};

const PROGRAM: &str = "nydus-image";
/// The row's id in the report.
pub(super) const ROW_ID: &str = "nydus";

/// Adds the Nydus row, or says why there is none.
pub fn run(bench: &Bench, rows: &mut Rows, peers: &mut Peers) -> Result<()> {
    let Some(program) = find() else {
        peers.skipped.push(Skipped {
            tool: PROGRAM.into(),
            reason: "not found on PATH".into(),
        });
        return Ok(());
    };
    let version = version(&program);
    match row(bench, &program, &version) {
        Ok(row) => {
            peers.ran.push(version);
            rows.push(row)?;
        }
        Err(e) => {
            eprintln!("footprint: {PROGRAM} failed: {e:#}");
            peers.skipped.push(Skipped {
                tool: PROGRAM.into(),
                reason: format!("failed: {e:#}"),
            });
        }
    }
    Ok(())
}

fn row(bench: &Bench, program: &Path, version: &str) -> Result<Row> {
    let root = bench.work.join("peer-nydus");
    let blobs = root.join("blobs");
    let images = root.join("images");
    let scratch = root.join("layers");
    for dir in [&blobs, &images, &scratch] {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut inputs = Vec::new();
    for (i, source) in bench.sources.iter().enumerate() {
        inputs.push(layer_inputs(&image::layers(source)?, &scratch, IMAGES[i])?);
    }
    let bootstrap = |i: usize| images.join(format!("{}.boot", IMAGES[i]));
    let steps = bench.two_steps(
        PROGRAM,
        |i| {
            let dict = (i == 1).then(|| bootstrap(0));
            let script = script(
                program,
                &inputs[i],
                &blobs,
                &scratch.join(IMAGES[i]),
                &bootstrap(i),
                dict.as_deref(),
            );
            Ok(Step::new("sh").arg("-ec").arg(script).discard_stdout())
        },
        || Ok(du_sb(&blobs)? + du_sb(&images)?),
    )?;
    Ok(Row::from_steps(
        ROW_ID,
        format!("{version} (RAFS v6, 1 MiB chunks, zstd; --chunk-dict of the old image)"),
        "everything",
        steps,
        Some(
            "the blob directory and the images' merged bootstraps, `du -sb` (per-layer \
             bootstraps left out)"
                .into(),
        ),
    ))
}

/// One layer as `nydus-image create` takes it.
struct LayerInput {
    path: PathBuf,
    kind: &'static str,
}

/// Gzip layers stored whole in their own file go in as they are; others are written out as
/// tars first (not measured).
fn layer_inputs(layers: &[Layer], scratch: &Path, image: &str) -> Result<Vec<LayerInput>> {
    let mut out = Vec::new();
    for (n, layer) in layers.iter().enumerate() {
        let whole =
            std::fs::metadata(&layer.path).is_ok_and(|m| layer.offset == 0 && m.len() == layer.len);
        if whole && layer.compression == Some(Compression::Gzip) {
            out.push(LayerInput {
                path: layer.path.clone(),
                kind: "targz-rafs",
            });
            continue;
        }
        let path = scratch.join(format!("{image}-layer{n}.tar"));
        let mut file =
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        std::io::copy(&mut layer.open_tar()?, &mut file)
            .with_context(|| format!("write {}", path.display()))?;
        out.push(LayerInput {
            path,
            kind: "tar-rafs",
        });
    }
    Ok(out)
}

/// The shell script converting one image (`sh -e`: the first failing step stops it).
fn script(
    program: &Path,
    layers: &[LayerInput],
    blobs: &Path,
    scratch: &Path,
    bootstrap: &Path,
    dict: Option<&Path>,
) -> String {
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let mut lines = vec![format!("mkdir -p {}", q(scratch))];
    let mut boots = Vec::new();
    // `merge` needs the dictionary too: it tells a layer's own blob from the dictionary's.
    let dict = dict.map_or(String::new(), |d| {
        format!(
            " --chunk-dict {}",
            q(Path::new(&format!("bootstrap={}", d.display())))
        )
    });
    for (n, layer) in layers.iter().enumerate() {
        let boot = scratch.join(format!("layer{n}.boot"));
        lines.push(format!(
            "{} create --log-level warn --type {} --bootstrap {} --blob-dir {}{dict} {}",
            q(program),
            layer.kind,
            q(&boot),
            q(blobs),
            q(&layer.path)
        ));
        boots.push(q(&boot));
    }
    lines.push(format!(
        "{} merge --log-level warn --bootstrap {}{dict} {}",
        q(program),
        q(bootstrap),
        boots.join(" ")
    ));
    lines.join("\n")
}

fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(PROGRAM))
        .find(|p| p.is_file())
}

/// `nydus-image 2.4.4` from its `--version` output.
fn version(program: &Path) -> String {
    let out = Step::new(program)
        .arg("--version")
        .run()
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .map(|v| v.trim().to_string());
    match version {
        Some(v) if v != "unknown" => format!("{PROGRAM} {v}"),
        Some(_) => format!("{PROGRAM} (built without a version)"),
        None => format!("{PROGRAM} (unknown version)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_creates_each_layer_then_merges() {
        let layers = [
            LayerInput {
                path: "/l/a".into(),
                kind: "targz-rafs",
            },
            LayerInput {
                path: "/l/b c".into(),
                kind: "tar-rafs",
            },
        ];
        let text = script(
            Path::new("/bin/nydus-image"),
            &layers,
            Path::new("/w/blobs"),
            Path::new("/w/new"),
            Path::new("/w/new.boot"),
            Some(Path::new("/w/old.boot")),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("--type targz-rafs"));
        assert!(lines[1].contains("--chunk-dict 'bootstrap=/w/old.boot'"));
        assert!(lines[2].ends_with("'/l/b c'"));
        assert!(lines[3].contains("merge"));
        assert!(lines[3].contains("--chunk-dict 'bootstrap=/w/old.boot'"));
        assert!(lines[3].ends_with("'/w/new/layer0.boot' '/w/new/layer1.boot'"));
    }
}
