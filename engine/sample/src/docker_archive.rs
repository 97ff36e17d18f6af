//! A `docker save`-style archive: one uncompressed tar holding each distinct layer as
//! `<hex>/layer.tar`, the image config, `manifest.json` and `repositories`.
//!
//! Its own files are tar entries built like layer entries ([`crate::layer_tar`]); the config is
//! the one the OCI writer uses ([`crate::image_config`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tar::Builder;

use crate::demo::DEMO_MTIME_V1;
use crate::image_config::{config_json, SamplePlatform};
use crate::layer_tar::{append_entry, SampleEntry};

/// mtime of the files inside a generated docker archive.
const ARCHIVE_MTIME: u64 = DEMO_MTIME_V1;

#[derive(Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn append_archive_file<W: Write>(b: &mut Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    append_entry(
        b,
        &SampleEntry::file(name, 0o644, data.to_vec()),
        ARCHIVE_MTIME,
    )
}

/// Writes a `docker save`-style archive (an uncompressed tar) at `path`.
///
/// Contents, in this order: for each distinct layer a directory `<sha256-of-layer>/` with
/// `layer.tar` (the layer as given, uncompressed); the config `<sha256-of-config>.json` (with
/// `rootfs.diff_ids`); `manifest.json` (`[{"Config", "RepoTags": [repo_tag], "Layers"}]`) and
/// `repositories` (`{"<repo>": {"<tag>": "<last layer hex>"}}`). A `repo_tag` without a tag
/// gets `:latest`.
pub fn write_docker_archive(
    path: &Path,
    repo_tag: &str,
    platform: &SamplePlatform,
    layers: &[Vec<u8>],
) -> io::Result<()> {
    let (repo, tag) = match repo_tag.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() => (repo, tag),
        _ => (repo_tag, "latest"),
    };
    let file = fs::File::create(path)?;
    let mut b = Builder::new(io::BufWriter::new(file));

    let hexes: Vec<String> = layers
        .iter()
        .map(|l| hex::encode(Sha256::digest(l)))
        .collect();
    let mut written: Vec<&str> = Vec::new();
    for (hex, layer) in hexes.iter().zip(layers) {
        if written.contains(&hex.as_str()) {
            continue;
        }
        written.push(hex);
        append_entry(
            &mut b,
            &SampleEntry::dir(format!("{hex}/"), 0o755),
            ARCHIVE_MTIME,
        )?;
        append_archive_file(&mut b, &format!("{hex}/layer.tar"), layer)?;
    }

    let diff_ids = hexes.iter().map(|h| format!("sha256:{h}")).collect();
    let config = config_json(platform, diff_ids)?;
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    append_archive_file(&mut b, &config_name, &config)?;

    let manifest = [DockerManifestEntry {
        config: config_name,
        repo_tags: vec![format!("{repo}:{tag}")],
        layers: hexes.iter().map(|h| format!("{h}/layer.tar")).collect(),
    }];
    append_archive_file(&mut b, "manifest.json", &serde_json::to_vec(&manifest)?)?;

    let mut repositories = BTreeMap::new();
    if let Some(last) = hexes.last() {
        repositories.insert(repo, BTreeMap::from([(tag, last.as_str())]));
    }
    append_archive_file(&mut b, "repositories", &serde_json::to_vec(&repositories)?)?;

    let mut out = b.into_inner()?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer_tar::build_layer_tar;
    use crate::sha256_digest;
    use crate::testutil::{find, parse, TempDir};

    #[test]
    fn docker_archive_is_valid() {
        let tmp = TempDir::new("docker-archive");
        let path = tmp.0.join("image.tar");
        let tar_a = build_layer_tar(&[SampleEntry::file("a", 0o644, vec![1; 100])], 5).unwrap();
        let tar_b = build_layer_tar(&[SampleEntry::file("b", 0o644, vec![2; 100])], 5).unwrap();
        let layers = vec![tar_a.clone(), tar_b.clone(), tar_a.clone()];
        write_docker_archive(
            &path,
            "example.com:5000/demo",
            &SamplePlatform::linux_amd64(),
            &layers,
        )
        .unwrap();
        let bytes = fs::read(&path).unwrap();
        let entries = parse(&bytes);
        let file = |name: &str| find(&entries, name.as_bytes()).unwrap().data.clone();

        let manifest: serde_json::Value = serde_json::from_slice(&file("manifest.json")).unwrap();
        let m = &manifest[0];
        assert_eq!(
            m["RepoTags"],
            serde_json::json!(["example.com:5000/demo:latest"])
        );
        let config_name = m["Config"].as_str().unwrap();
        let config_bytes = file(config_name);
        assert_eq!(
            format!("{}.json", hex::encode(Sha256::digest(&config_bytes))),
            config_name
        );
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let layer_names = m["Layers"].as_array().unwrap();
        assert_eq!(layer_names.len(), 3);
        for ((name, diff_id), tar) in layer_names.iter().zip(diff_ids).zip(&layers) {
            let data = file(name.as_str().unwrap());
            assert_eq!(&data, tar);
            assert_eq!(sha256_digest(&data), diff_id.as_str().unwrap());
        }
        // The repeated layer is stored once.
        let layer_files = entries
            .iter()
            .filter(|e| e.path.ends_with(b"/layer.tar"))
            .count();
        assert_eq!(layer_files, 2);
        let repos: serde_json::Value = serde_json::from_slice(&file("repositories")).unwrap();
        let last = hex::encode(Sha256::digest(&tar_a));
        assert_eq!(
            repos,
            serde_json::json!({"example.com:5000/demo": {"latest": last}})
        );
    }
}
