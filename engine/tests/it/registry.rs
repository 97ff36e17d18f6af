//! Pulling from registries: a real one on loopback (the CNCF distribution registry, Debian's
//! `docker-registry`, fed by `skopeo copy`: `cairn_testkit::registry`), and a small fake one in
//! this file that breaks transfers on purpose.

use crate::helpers::*;
use cairn_engine::remote::{
    remote_inventory, Credentials, PushOptions, PushedAs, RegistrySpec, Tags,
};
use cairn_engine::{ConvertOptions, Progress, SourceSpec, StoreWriter};
use cairn_testkit::registry::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A pull of `reference` (`REGISTRY/REPO:TAG`, over plain HTTP, no credentials given) as `name`.
pub fn pull_options(reference: &str, name: &str, dict: &[&str]) -> ConvertOptions {
    let mut options = options("oci:unused", name, dict);
    options.source = SourceSpec::Registry(RegistrySpec {
        reference: reference.to_string(),
        insecure: true,
        credentials: None,
        timeouts: Default::default(),
    });
    options
}

#[test]
fn pulled_images_equal_their_layouts_and_known_layers_are_not_downloaded() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    registry.push(&v1, "v1", "demo:v1");
    registry.push(&v2, "v2", "demo:v2");
    let pulled = new_store(&tmp.path().join("pulled"));
    let at = |tag: &str| format!("{}/demo:{tag}", registry.address);
    pulled
        .convert(
            &pull_options(&at("v1"), "v1", &[]),
            &cairn_engine::NoProgress,
        )
        .unwrap();
    let report = pulled
        .convert(
            &pull_options(&at("v2"), "v2", &["v1"]),
            &cairn_engine::NoProgress,
        )
        .unwrap();
    assert!(report.images[0].reference.starts_with("docker://"));
    let local = new_store(&tmp.path().join("local"));
    convert(&local, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
    convert(&local, &format!("oci:{}:v2", v2.display()), "v2", &["v1"]).unwrap();
    for name in ["v1", "v2"] {
        assert_eq!(
            export_all(pulled.store(), name),
            export_all(local.store(), name),
            "{name}"
        );
        assert_eq!(
            pulled.store().bootstrap(name).unwrap().source.manifest,
            local.store().bootstrap(name).unwrap().source.manifest,
            "{name}: the same manifest bytes"
        );
    }
    // Pulled again: every layer is one the store has, so none is downloaded.
    let again = pulled
        .convert(
            &pull_options(&at("v2"), "again", &[]),
            &cairn_engine::NoProgress,
        )
        .unwrap();
    assert!(again.images[0].layers.iter().all(|l| l.reused_metadata));
    // Pushed back as an ordinary image (skopeo reads it), pulled into a fresh store: the same
    // layers. The registry holds the original blobs (in `demo`, which the image was pulled
    // from): they are mounted and the original manifest goes, nothing uploaded. Pushed again:
    // every blob is already there.
    let target = RegistrySpec {
        reference: format!("{}/pushed:v2", registry.address),
        insecure: true,
        credentials: None,
        timeouts: Default::default(),
    };
    let plain = PushOptions::default();
    let first = pulled
        .store()
        .push("v2", &target, &plain, &cairn_engine::NoProgress)
        .unwrap();
    let t = &first.transferred;
    assert!(
        first.pushed_as == PushedAs::Original
            && (t.blobs_uploaded, t.blobs_present, t.blobs_mounted) == (0, 0, 4),
        "{first:?}"
    );
    assert_eq!(
        Some(&first.manifest_digest),
        first.original_manifest_digest.as_ref()
    );
    let original = pulled
        .store()
        .bootstrap("v2")
        .unwrap()
        .source
        .manifest
        .unwrap();
    assert_eq!(first.manifest_digest, original.digest.to_string());
    let again = pulled
        .store()
        .push("v2", &target, &plain, &cairn_engine::NoProgress)
        .unwrap();
    assert_eq!(
        (
            again.transferred.blobs_uploaded,
            again.manifest_digest.clone()
        ),
        (0, first.manifest_digest)
    );
    assert_skopeo_reads(&target.reference);
    let fresh = new_store(&tmp.path().join("fresh"));
    fresh
        .convert(
            &pull_options(&target.reference, "v2", &[]),
            &cairn_engine::NoProgress,
        )
        .unwrap();
    assert_eq!(
        export_all(fresh.store(), "v2"),
        export_all(local.store(), "v2")
    );

    let missing = pulled.convert(
        &pull_options(&at("nope"), "x", &[]),
        &cairn_engine::NoProgress,
    );
    let message = missing.unwrap_err().to_string();
    assert!(message.contains(&registry.address), "{message}");
}

#[test]
fn remote_inventory_reads_every_tag_and_platform_without_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    registry.push(&v1, "v1", "demo:v1");
    let multi = tmp.path().join("multi");
    let mut writer = cairn_sample::OciLayoutWriter::create(&multi).unwrap();
    let layers: cairn_sample::SampleLayers = tricky_layers()
        .into_iter()
        .map(|l| (l, cairn_sample::LayerCompression::Gzip))
        .collect();
    let index = writer
        .add_multi_arch(
            Some("multi"),
            &[(amd64(), layers.clone()), (arm64(), layers)],
        )
        .unwrap();
    writer.finish().unwrap();
    registry.push(&multi, "multi", "demo:multi");

    let spec = RegistrySpec {
        reference: format!("{}/demo", registry.address),
        insecure: true,
        credentials: None,
        timeouts: Default::default(),
    };
    let rows = remote_inventory(&spec, &Tags::All, &cairn_engine::NoProgress).unwrap();
    let per = |name: &str, arch: &str| {
        rows.iter()
            .filter(|r| r.name == name && r.architecture == arch)
            .count()
    };
    assert_eq!(per("demo:v1", "amd64"), 3, "{rows:?}");
    assert_eq!(
        (per("demo:multi", "amd64"), per("demo:multi", "arm64")),
        (2, 2),
        "{rows:?}"
    );
    // The repository's two tags and nothing else; the index's platforms each with the rows
    // of its own manifest.
    assert_eq!(rows.len(), 3 + 4, "{rows:?}");
    let manifests: std::collections::BTreeSet<_> = rows
        .iter()
        .filter(|r| r.name == "demo:multi")
        .map(|r| r.manifest_digest.as_str())
        .collect();
    assert!(
        manifests.len() == 2 && !manifests.contains(index.as_str()),
        "{manifests:?}"
    );
    // The same rows as the local inventory of the pulled image, where both have the column.
    let store = new_store(&tmp.path().join("s"));
    let pulled = format!("{}/demo:v1", registry.address);
    store
        .convert(
            &pull_options(&pulled, "demo:v1", &[]),
            &cairn_engine::NoProgress,
        )
        .unwrap();
    let local = store.store().inventory().unwrap();
    let remote: Vec<_> = rows.iter().filter(|r| r.name == "demo:v1").collect();
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(
            (
                &l.manifest_digest,
                &l.layer_digest,
                l.layer_size,
                &l.diff_id
            ),
            (
                &r.manifest_digest,
                &r.layer_digest,
                r.layer_size,
                &r.diff_id
            )
        );
    }
    let only = remote_inventory(
        &spec,
        &Tags::Matching("mu*".into()),
        &cairn_engine::NoProgress,
    )
    .unwrap();
    assert!(only.iter().all(|r| r.name == "demo:multi") && only.len() == 4);
}

/// Kills the registry once the pull has read `after` bytes of its layers.
struct KillAfter<'a> {
    registry: &'a LocalRegistry,
    after: u64,
    read: AtomicU64,
}

impl Progress for KillAfter<'_> {
    fn inc(&self, delta: u64) {
        let before = self.read.fetch_add(delta, Ordering::SeqCst);
        if before < self.after && before + delta >= self.after {
            self.registry.kill();
        }
    }
}

/// Takes ~8 s: the pull tries the dead registry 5 times, pausing 0.5, 1, 2 and 4 s.
#[test]
fn a_registry_killed_mid_pull_leaves_the_store_unchanged_and_a_later_pull_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    // One uncompressed layer of 48 MiB: when the registry dies after the first MiB was read,
    // far more is still to come than loopback's socket buffers (a few MiB) can hold.
    let size = 48 << 20;
    let tar =
        cairn_sample::build_layer_tar(&[file("big.bin", pseudo_random(size, 7))], 1_700_000_000)
            .unwrap();
    let layout = tmp.path().join("big");
    write_layout(
        &layout,
        "v1",
        std::slice::from_ref(&tar),
        cairn_sample::LayerCompression::None,
    );
    registry.push(&layout, "v1", "big:v1");
    let reference = format!("{}/big:v1", registry.address);
    let store = new_store(&tmp.path().join("s"));
    let (files, snap) = (store_files(store.store()), snapshot(store.store()));

    let killer = KillAfter {
        registry: &registry,
        after: 1 << 20,
        read: AtomicU64::new(0),
    };
    let err = store
        .convert(&pull_options(&reference, "big", &[]), &killer)
        .unwrap_err()
        .to_string();
    let read = killer.read.load(Ordering::SeqCst);
    assert!(read >= 1 << 20 && read < size as u64, "{read} bytes read");
    assert!(
        err.contains(&format!("http://{}/v2/big blob sha256:", registry.address))
            && err.contains("the registry is unreachable")
            && err.contains("gave up after 5 tries"),
        "{err}"
    );
    assert_eq!(
        (store_files(store.store()), snapshot(store.store())),
        (files, snap)
    );
    assert!(store.store().images().unwrap().is_empty());

    // The registry back on the same port and storage: the same pull succeeds.
    registry.restart();
    store
        .convert(
            &pull_options(&reference, "big", &[]),
            &cairn_engine::NoProgress,
        )
        .unwrap();
    assert_eq!(export_all(store.store(), "big"), vec![tar]);
}

/// What the fake registry does with a layer's first download.
#[derive(Clone, Copy, PartialEq)]
enum Breakage {
    /// Sends half the body, then closes; answers range requests properly.
    CutOnce,
    /// Cuts every download.
    CutAlways,
}

/// A registry serving one image (`demo:v1`) from an OCI layout, breaking layer downloads as
/// told, and asking for basic auth `user`/`secret`.
struct FakeRegistry {
    address: String,
    downloads: Arc<AtomicUsize>,
}

impl FakeRegistry {
    fn start(layout: &Path, breakage: Breakage) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let manifest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let blobs = layout.join("blobs/sha256");
        let downloads = Arc::new(AtomicUsize::new(0));
        let counter = downloads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (blobs, manifest, counter) = (blobs.clone(), manifest.clone(), counter.clone());
                std::thread::spawn(move || serve(stream, &blobs, &manifest, breakage, &counter));
            }
        });
        FakeRegistry { address, downloads }
    }
}

/// Answers requests on one connection until it closes or a transfer is cut.
fn serve(stream: TcpStream, blobs: &Path, manifest: &str, breakage: Breakage, cuts: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let Some((k, v)) = header.trim_end().split_once(": ") else {
                break;
            };
            headers.insert(k.to_ascii_lowercase(), v.to_string());
        }
        // Basic auth user:secret (base64 "dXNlcjpzZWNyZXQ=").
        if headers.get("authorization").map(String::as_str) != Some("Basic dXNlcjpzZWNyZXQ=") {
            let body = b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}";
            let head = format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"fake\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
            out.write_all(head.as_bytes()).unwrap();
            out.write_all(body).unwrap();
            continue;
        }
        let digest = path.rsplit('/').next().unwrap_or("").to_string();
        let (kind, file) = if path == "/v2/" {
            ("none", None)
        } else if path.contains("/manifests/") {
            let wanted = if digest.starts_with("sha256:") {
                digest.clone()
            } else {
                manifest.to_string()
            };
            ("manifest", Some(wanted))
        } else {
            ("blob", Some(digest.clone()))
        };
        let body = file.map_or_else(Vec::new, |d| {
            std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap_or_default()
        });
        let from: usize = headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse().ok())
            .unwrap_or(0);
        let mut head = if from > 0 {
            "HTTP/1.1 206 Partial Content\r\n".to_string()
        } else {
            "HTTP/1.1 200 OK\r\n".to_string()
        };
        if kind == "manifest" {
            head += &format!("Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {manifest}\r\n");
        }
        let part = &body[from.min(body.len())..];
        head += &format!("Content-Length: {}\r\n\r\n", part.len());
        out.write_all(head.as_bytes()).unwrap();
        let is_layer = kind == "blob" && body.len() > 4096;
        let cut = is_layer && from == 0 && {
            let n = cuts.fetch_add(1, Ordering::SeqCst);
            breakage == Breakage::CutAlways || n < 16
        };
        let cut = cut || (is_layer && breakage == Breakage::CutAlways);
        if cut {
            let _ = out.write_all(&part[..part.len() / 2]);
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        }
        out.write_all(part).unwrap();
    }
}

fn fake_pull(
    writer: &StoreWriter,
    registry: &FakeRegistry,
    password: &str,
) -> cairn_engine::Result<()> {
    let mut options = pull_options(&format!("{}/demo:v1", registry.address), "v1", &[]);
    if let SourceSpec::Registry(spec) = &mut options.source {
        spec.credentials = Some(Credentials::parse(&format!("user:{password}")).unwrap());
    }
    writer
        .convert(&options, &cairn_engine::NoProgress)
        .map(drop)
}

#[test]
fn a_cut_transfer_resumes_and_a_registry_that_keeps_cutting_leaves_the_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let local = new_store(&tmp.path().join("local"));
    convert(&local, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();

    // Every layer's first download is cut halfway: the pull resumes each and succeeds.
    let resumes = FakeRegistry::start(&v1, Breakage::CutOnce);
    let store = new_store(&tmp.path().join("a"));
    fake_pull(&store, &resumes, "secret").unwrap();
    assert!(
        resumes.downloads.load(Ordering::SeqCst) >= 2,
        "layers were cut"
    );
    assert_eq!(
        export_all(store.store(), "v1"),
        export_all(local.store(), "v1")
    );

    // A wrong password: a clear error, nothing written.
    let store = new_store(&tmp.path().join("b"));
    let before = snapshot(store.store());
    let err = fake_pull(&store, &resumes, "wrong")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&resumes.address) && err.to_lowercase().contains("auth"),
        "{err}"
    );
    assert_eq!(snapshot(store.store()), before);

    // Every download cut: the pull fails after its tries, naming the blob; the store is as before.
    let breaks = FakeRegistry::start(&v1, Breakage::CutAlways);
    let err = fake_pull(&store, &breaks, "secret")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gave up after") && err.contains("sha256:"),
        "{err}"
    );
    assert_eq!(snapshot(store.store()), before);
    assert!(store.store().images().unwrap().is_empty());
}
