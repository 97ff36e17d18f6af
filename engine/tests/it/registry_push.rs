//! Pushing to registries: cross-repository mounts against a real one on loopback (see
//! `cairn_testkit::registry`), and the parallel upload against a small fake one in this file
//! that takes uploads, counts them, and fails some on purpose.

use crate::helpers::*;
use crate::registry::pull_options;
use cairn_engine::remote::{PushOptions, PushReport, RegistrySpec};
use cairn_engine::{ItemProgress, NoProgress, Progress, Store, StoreWriter, Unit};
use cairn_sample::{LayerCompression, OciLayoutWriter};
use cairn_testkit::registry::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn spec(address: &str, repo: &str) -> RegistrySpec {
    RegistrySpec {
        reference: format!("{address}/{repo}"),
        insecure: true,
        credentials: None,
        timeouts: Default::default(),
    }
}

fn push_to(store: &Store, address: &str, repo: &str, mount_from: &[&str]) -> PushReport {
    let mut options = PushOptions::default();
    options.mount_from = mount_from.iter().map(|r| r.to_string()).collect();
    store
        .push("v1", &spec(address, repo), &options, &NoProgress)
        .unwrap()
}

#[test]
fn a_push_mounts_the_blobs_another_repository_has_and_uploads_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start(tmp.path()) else {
        return;
    };
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let store = new_store(&tmp.path().join("s"));
    convert(&store, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
    let blobs = store.store().bootstrap("v1").unwrap().layers.len() as u64 + 1;
    let first = push_to(store.store(), &registry.address, "a:v1", &[]);
    assert_eq!(first.transferred.blobs_uploaded, blobs, "{first:?}");

    // Every blob is in `a`: all mounted, none sent; the registry serves the image.
    let mounted = push_to(store.store(), &registry.address, "b:v1", &["nowhere", "a"]);
    let t = &mounted.transferred;
    assert_eq!(
        (t.blobs_uploaded, t.blobs_present, t.blobs_mounted),
        (0, 0, blobs),
        "{mounted:?}"
    );
    assert_eq!(t.bytes_mounted, first.transferred.bytes_uploaded);
    assert_eq!(mounted.manifest_digest, first.manifest_digest);
    assert_skopeo_reads(&format!("{}/b:v1", registry.address));
    let fresh = new_store(&tmp.path().join("fresh"));
    let pulled = pull_options(&format!("{}/b:v1", registry.address), "v1", &[]);
    fresh.convert(&pulled, &NoProgress).unwrap();
    assert_eq!(
        export_all(fresh.store(), "v1"),
        export_all(store.store(), "v1")
    );

    // A repository without them: every blob is uploaded.
    let uploaded = push_to(store.store(), &registry.address, "c:v1", &["nowhere"]);
    let t = &uploaded.transferred;
    assert_eq!(
        (t.blobs_uploaded, t.blobs_mounted),
        (blobs, 0),
        "{uploaded:?}"
    );

    // Not a repository path.
    let mut options = PushOptions::default();
    options.mount_from = vec!["a:v1".into()];
    let err = store
        .store()
        .push(
            "v1",
            &spec(&registry.address, "d:v1"),
            &options,
            &NoProgress,
        )
        .unwrap_err();
    assert!(err.to_string().contains("a:v1"), "{err}");
}

/// A store holding `v1`: 12 small layers and one of 9 MiB (three upload pieces), each made of
/// random bytes so that gzip keeps their size.
fn many_layers_store(dir: &Path) -> StoreWriter {
    let layout = dir.join("many");
    let mut writer = OciLayoutWriter::create(&layout).unwrap();
    let layers: Vec<_> = (0..13u64)
        .map(|i| {
            let len = if i == 0 {
                9 << 20
            } else {
                50_000 + 1000 * i as usize
            };
            let entries = [file(&format!("f{i}"), pseudo_random(len, i))];
            let tar = cairn_sample::build_layer_tar(&entries, 0).unwrap();
            (tar, LayerCompression::Gzip)
        })
        .collect();
    writer.add_image(Some("v1"), &amd64(), &layers).unwrap();
    writer.finish().unwrap();
    let store = new_store(dir);
    convert(&store, &format!("oci:{}:v1", layout.display()), "v1", &[]).unwrap();
    store
}

/// What the fake registry saw.
#[derive(Default)]
struct Sink {
    /// Blobs stored (each checked against its digest), by digest.
    blobs: HashMap<String, Vec<u8>>,
    /// Uploads completed, by digest.
    completed: HashMap<String, usize>,
    /// Upload sessions: bytes so far, by id.
    sessions: HashMap<usize, Vec<u8>>,
    next_session: usize,
    /// Most sessions open at once.
    most_open: usize,
    /// PATCH requests still to fail with a 503.
    patches_to_fail: usize,
    /// Refuse every upload's last PUT with a 400.
    refuse_puts: bool,
    manifests: Vec<Vec<u8>>,
}

/// A registry that takes blob uploads (HEAD, POST, PATCH, PUT) and manifests, for any
/// repository, into one `Sink`.
struct FakeSink {
    address: String,
    sink: Arc<Mutex<Sink>>,
}

impl FakeSink {
    fn start(sink: Sink) -> FakeSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let sink = Arc::new(Mutex::new(sink));
        let shared = sink.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let sink = shared.clone();
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        FakeSink { address, sink }
    }
}

/// Answers requests on one connection until it closes.
fn serve(stream: TcpStream, sink: &Mutex<Sink>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let Some((k, v)) = header.trim_end().split_once(": ") else {
                break;
            };
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (status, location) = answer(&mut sink.lock().unwrap(), method, target, body);
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n");
        if let Some(location) = location {
            head += &format!("Location: {location}\r\n");
        }
        out.write_all(format!("{head}\r\n").as_bytes()).unwrap();
    }
}

/// The status line and Location of the answer to one request.
fn answer(
    sink: &mut Sink,
    method: &str,
    target: &str,
    body: Vec<u8>,
) -> (&'static str, Option<String>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let repo = path
        .trim_start_matches("/v2/")
        .split("/blobs/")
        .next()
        .unwrap_or("");
    let session = |id: usize| Some(format!("/v2/{repo}/blobs/uploads/{id}"));
    match method {
        "HEAD" => {
            let digest = path.rsplit('/').next().unwrap_or("");
            if sink.blobs.contains_key(digest) {
                ("200 OK", None)
            } else {
                ("404 Not Found", None)
            }
        }
        "POST" => {
            // Mounts are not supported: a new session, as the spec allows.
            let id = sink.next_session;
            sink.next_session += 1;
            sink.sessions.insert(id, Vec::new());
            sink.most_open = sink.most_open.max(sink.sessions.len());
            ("202 Accepted", session(id))
        }
        "PATCH" => {
            let id: usize = path.rsplit('/').next().unwrap().parse().unwrap();
            if sink.patches_to_fail > 0 {
                sink.patches_to_fail -= 1;
                sink.sessions.remove(&id);
                return ("503 Service Unavailable", None);
            }
            sink.sessions.get_mut(&id).unwrap().extend_from_slice(&body);
            ("202 Accepted", session(id))
        }
        "PUT" if path.contains("/manifests/") => {
            sink.manifests.push(body);
            ("201 Created", Some(path.to_string()))
        }
        "PUT" => {
            let id: usize = path.rsplit('/').next().unwrap().parse().unwrap();
            let bytes = sink.sessions.remove(&id).unwrap();
            let digest = query.strip_prefix("digest=").unwrap().replace("%3A", ":");
            if sink.refuse_puts || sha256_hex(&bytes) != digest {
                return ("400 Bad Request", None);
            }
            *sink.completed.entry(digest.clone()).or_default() += 1;
            sink.blobs.insert(digest.clone(), bytes);
            ("201 Created", Some(format!("/v2/{repo}/blobs/{digest}")))
        }
        _ => ("404 Not Found", None),
    }
}

/// Records the last phase's overall count and every item.
#[derive(Default)]
struct Recorder {
    length: AtomicU64,
    done: AtomicU64,
    items: Mutex<Vec<Arc<ItemRecord>>>,
}

#[derive(Default)]
struct ItemRecord {
    label: String,
    total: u64,
    done: AtomicU64,
    finished: AtomicBool,
}

struct ItemHandle(Arc<ItemRecord>);

impl ItemProgress for ItemHandle {
    fn inc(&self, delta: u64) {
        self.0.done.fetch_add(delta, Ordering::SeqCst);
    }

    fn finish(&self) {
        self.0.finished.store(true, Ordering::SeqCst);
    }
}

impl Progress for Recorder {
    fn set_length(&self, total: u64, _unit: Unit) {
        self.length.store(total, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
    }

    fn inc(&self, delta: u64) {
        self.done.fetch_add(delta, Ordering::SeqCst);
    }

    fn item(&self, label: &str, total: u64, unit: Unit) -> Box<dyn ItemProgress> {
        assert_eq!(unit, Unit::Bytes);
        let record = Arc::new(ItemRecord {
            label: label.to_string(),
            total,
            ..ItemRecord::default()
        });
        self.items.lock().unwrap().push(record.clone());
        Box::new(ItemHandle(record))
    }
}

#[test]
fn parallel_uploads_send_every_blob_once_and_retry_what_breaks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = many_layers_store(tmp.path());
    // Three PATCHes fail (the first ones, so in different blobs' uploads): those are retried.
    let fake = FakeSink::start(Sink {
        patches_to_fail: 3,
        ..Sink::default()
    });
    let progress = Recorder::default();
    let target = spec(&fake.address, "many:v1");
    let report = store
        .store()
        .push("v1", &target, &PushOptions::default(), &progress)
        .unwrap();
    let sink = fake.sink.lock().unwrap();
    assert_eq!(report.transferred.blobs_uploaded, 14, "{report:?}");
    assert_eq!(sink.patches_to_fail, 0);
    // Each blob arrived whole exactly once, and the manifest names just those.
    assert_eq!(sink.completed.len(), 14);
    assert!(
        sink.completed.values().all(|&n| n == 1),
        "{:?}",
        sink.completed
    );
    let manifest: serde_json::Value = serde_json::from_slice(&sink.manifests[0]).unwrap();
    let mut named = vec![manifest["config"]["digest"].as_str().unwrap()];
    named.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap()),
    );
    assert!(named.iter().all(|d| sink.blobs.contains_key(*d)) && named.len() == 14);
    // Uploads overlapped, never more than four at once.
    assert!((2..=4).contains(&sink.most_open), "{}", sink.most_open);
    // The whole counted once despite the retries; a finished item per blob, each counted whole.
    let total = report.transferred.bytes_uploaded;
    assert_eq!(progress.length.load(Ordering::SeqCst), total);
    assert_eq!(progress.done.load(Ordering::SeqCst), total);
    let items = progress.items.lock().unwrap();
    assert_eq!(items.len(), 14);
    for item in items.iter() {
        assert_eq!(
            item.done.load(Ordering::SeqCst),
            item.total,
            "{}",
            item.label
        );
        assert!(item.finished.load(Ordering::SeqCst), "{}", item.label);
        let hex = item.label.trim_start_matches("blob ");
        assert!(named
            .iter()
            .any(|d| d.starts_with(&format!("sha256:{hex}"))));
    }
    drop(sink);

    // Pushed again: every blob is there already.
    let again = store
        .store()
        .push("v1", &target, &PushOptions::default(), &NoProgress)
        .unwrap();
    let t = &again.transferred;
    assert_eq!((t.blobs_uploaded, t.blobs_present), (0, 14), "{again:?}");
}

#[test]
fn a_refused_upload_names_the_registry_and_the_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let store = new_store(&tmp.path().join("s"));
    convert(&store, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
    let fake = FakeSink::start(Sink {
        refuse_puts: true,
        ..Sink::default()
    });
    let target = spec(&fake.address, "demo:v1");
    let err = store
        .store()
        .push("v1", &target, &PushOptions::default(), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("http://{}/v2/demo", fake.address))
            && err.contains("upload of blob sha256:")
            && !err.contains("gave up"),
        "{err}"
    );
    assert!(fake.sink.lock().unwrap().manifests.is_empty());
}
