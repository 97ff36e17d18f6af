//! Hostile registries: a small HTTP server on loopback, written here, that serves a real image
//! (the demo's v1 layout) and stalls at one point (the response headers, the manifest's body,
//! the middle of a layer, an upload), or serves a manifest past the limits. Each pull or push
//! must end with a clear error naming the registry, the object and what went wrong, and leave
//! the store as it was. The timeouts are short (1 s, 2 tries) so that the tests run fast.

use crate::helpers::*;
use cairn_engine::remote::{PushOptions, RegistrySpec, Timeouts};
use cairn_engine::{PlatformChoice, SourceSpec, StoreWriter};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the server stalls, or what it serves instead of the image.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hostile {
    /// Reads a manifest request and never answers it.
    Headers,
    /// Sends a manifest's headers and half its body, then nothing.
    ManifestBody,
    /// Sends half of each layer (nothing of a resumed one), then nothing.
    MidBlob,
    /// Takes an upload's first request, then reads nothing more and never answers.
    Upload,
    /// Serves a manifest of this many layers for the tag; `bool`: with its length stated.
    Layers(usize, bool),
}

/// How long a stalled connection is held open (far past the test's timeouts).
const HOLD: Duration = Duration::from_secs(30);

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(1),
        attempts: 2,
    }
}

fn spec(address: &str) -> RegistrySpec {
    RegistrySpec {
        reference: format!("{address}/demo:v1"),
        insecure: true,
        credentials: None,
        timeouts: timeouts(),
    }
}

/// Starts the server; its address.
fn start(layout: &Path, hostile: Hostile) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blobs = layout.join("blobs/sha256");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (blobs, manifest) = (blobs.clone(), manifest.clone());
            std::thread::spawn(move || serve(stream, &blobs, &manifest, hostile));
        }
    });
    address
}

/// A manifest of `layers` layers (and a config with as many diff_ids), as JSON.
fn many_layers(layers: usize) -> Vec<u8> {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let layer = format!(
        r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":1}}"#
    );
    let layers = vec![layer; layers].join(",");
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":1}},"layers":[{layers}]}}"#
    )
    .into_bytes()
}

/// Answers the requests of one connection.
fn serve(stream: TcpStream, blobs: &Path, manifest: &str, hostile: Hostile) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let Some((k, v)) = header.trim_end().split_once(": ") else {
                break;
            };
            headers.insert(k.to_ascii_lowercase(), v.to_string());
        }
        let stall = || std::thread::sleep(HOLD);
        let last = path.rsplit('/').next().unwrap_or("").to_string();
        let respond = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
            let head = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(body);
        };
        if path == "/v2/" {
            respond(&mut out, "200 OK", "", b"{}");
        } else if path.contains("/manifests/") && method == "GET" {
            let (body, digest) = match hostile {
                Hostile::Layers(n, _) => {
                    let body = many_layers(n);
                    let digest = format!("sha256:{}", sha256_hex(&body));
                    (body, digest)
                }
                _ => {
                    let body = std::fs::read(blobs.join(manifest.trim_start_matches("sha256:")));
                    (body.unwrap(), manifest.to_string())
                }
            };
            let kind = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";
            let extra = format!("{kind}Docker-Content-Digest: {digest}\r\n");
            match hostile {
                Hostile::Headers => return stall(),
                Hostile::ManifestBody => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = out.write_all(head.as_bytes());
                    let _ = out.write_all(&body[..body.len() / 2]);
                    return stall();
                }
                Hostile::Layers(_, false) => {
                    // No stated length: the body runs until the connection closes.
                    let head = format!("HTTP/1.1 200 OK\r\n{extra}Connection: close\r\n\r\n");
                    let _ = out.write_all(head.as_bytes());
                    let _ = out.write_all(&body);
                    return;
                }
                _ => respond(&mut out, "200 OK", &extra, &body),
            }
        } else if path.contains("/blobs/uploads/") && method == "POST" {
            let location = format!(
                "Location: {}\r\n",
                path.trim_end_matches('/').to_string() + "/u1"
            );
            respond(&mut out, "202 Accepted", &location, b"");
        } else if path.contains("/blobs/uploads/") {
            // PATCH or PUT of an upload: the server takes nothing more.
            assert_eq!(hostile, Hostile::Upload, "{method} {path}");
            return stall();
        } else if path.contains("/blobs/") {
            let body = std::fs::read(blobs.join(last.trim_start_matches("sha256:")));
            let Ok(body) = body else {
                respond(&mut out, "404 Not Found", "", b"");
                continue;
            };
            if method == "HEAD" {
                respond(&mut out, "200 OK", "", b"");
                continue;
            }
            let is_layer = body.len() > 4096;
            if hostile == Hostile::MidBlob && is_layer {
                if headers.contains_key("range") {
                    let head = "HTTP/1.1 206 Partial Content\r\nContent-Length: 1\r\n\r\n";
                    let _ = out.write_all(head.as_bytes());
                    return stall();
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body[..body.len() / 2]);
                return stall();
            }
            respond(&mut out, "200 OK", "", &body);
        } else {
            respond(&mut out, "404 Not Found", "", b"");
        }
        let mut rest = vec![
            0u8;
            headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0)
        ];
        let _ = reader.read_exact(&mut rest);
    }
}

/// The demo's v1 layout, and an empty store.
fn setup(tmp: &Path) -> (PathBuf, StoreWriter) {
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.join("images")).unwrap();
    (v1, new_store(&tmp.join("store")))
}

fn pull(writer: &StoreWriter, address: &str) -> String {
    let mut options = options("oci:unused", "v1", &[]);
    options.source = SourceSpec::Registry(spec(address));
    options.platform = PlatformChoice::Default;
    let before = (store_files(writer.store()), snapshot(writer.store()));
    let err = writer
        .convert(&options, &cairn_engine::NoProgress)
        .unwrap_err()
        .to_string();
    assert_eq!(
        (store_files(writer.store()), snapshot(writer.store())),
        before,
        "{err}"
    );
    assert!(writer.store().images().unwrap().is_empty());
    err
}

#[test]
fn a_registry_that_stalls_anywhere_fails_the_pull_clearly_within_its_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, store) = setup(tmp.path());
    for (hostile, object) in [
        (Hostile::Headers, "manifest"),
        (Hostile::ManifestBody, "manifest"),
        (Hostile::MidBlob, "blob sha256:"),
    ] {
        let address = start(&v1, hostile);
        let err = pull(&store, &address);
        assert!(
            err.contains(&address)
                && err.contains(object)
                && err.contains("stalled")
                && err.contains("gave up after 2 tries"),
            "{hostile:?}: {err}"
        );
    }
}

#[test]
fn a_registry_that_stalls_mid_upload_fails_the_push_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, store) = setup(tmp.path());
    convert(&store, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
    let empty = tmp.path().join("empty-layout");
    std::fs::create_dir_all(empty.join("blobs/sha256")).unwrap();
    std::fs::write(
        empty.join("index.json"),
        r#"{"manifests":[{"digest":"sha256:00"}]}"#,
    )
    .unwrap();
    // A registry holding no blob, so that every one is uploaded.
    let address = start(&empty, Hostile::Upload);
    let err = store
        .store()
        .push(
            "v1",
            &spec(&address),
            &PushOptions::default(),
            &cairn_engine::NoProgress,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&address)
            && err.contains("upload of blob sha256:")
            && err.contains("stalled")
            && err.contains("gave up after 2 tries"),
        "{err}"
    );
}

#[test]
fn a_manifest_past_the_limits_is_refused_naming_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, store) = setup(tmp.path());
    // 100,000 layers: ~9 MB, refused on its stated length, or as it arrives without one.
    for stated in [true, false] {
        let address = start(&v1, Hostile::Layers(100_000, stated));
        let err = pull(&store, &address);
        assert!(
            err.contains(&address) && err.contains("manifest size limit of 4194304 bytes"),
            "{err}"
        );
    }
    // Within the size limit, but 1001 layers.
    let address = start(&v1, Hostile::Layers(1001, true));
    let err = pull(&store, &address);
    assert!(
        err.contains("1001 layers") && err.contains("layer count limit of 1000"),
        "{err}"
    );
}
