//! The registry client (transport layer, at the bottom of it): how to reach a registry
//! (`RegistrySpec`, `Credentials`, `docker_config` for `~/.docker/config.json`), the connection
//! and its auth (`oci-client`: HTTPS, or HTTP with `insecure`; anonymous, basic and
//! bearer-token auth), bounded waits and retries (`fetch`), documents fetched whole within
//! `oci::limits` and checked against their digests, blob streams resumed by range requests
//! (`RemoteBlob`), and uploads (`upload`). It knows nothing of the store: the convert source
//! (`source::registry`) and the commands over a registry (`remote`: push, store-format pull,
//! remote inventory) sit above it.
//!
//! A blob download that breaks or stalls is resumed where it stopped (an HTTP range request),
//! up to `Timeouts::attempts` tries with growing pauses; the reader checks every layer's sha256
//! and diff_id as it streams, so a resumed layer is verified whole. Every wait on the network is
//! bounded (`fetch` states the arithmetic: a stalled transfer fails within 257.5 s by default).

pub use crate::oci::artifact;
pub(crate) mod docker_config;
pub(crate) mod fetch;
pub(crate) mod upload;

pub use fetch::Timeouts;
pub use upload::Transferred;

use crate::error::{Error, Result};
use crate::oci::limits::{check_len, len_limit};
use crate::oci::{media_type, Descriptor};
use crate::Sha256Digest;
pub(crate) use fetch::manifest_at;
use fetch::{within, Failure, FIRST_PAUSE};
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol, SizedStream};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Downloaded pieces buffered ahead of the convert, per layer. A piece may hold on to a larger
/// network buffer: 64 took py v1's pull to 201 MiB of peak RSS, 8 to 159-166 MiB (2: 153-157).
pub(crate) const PIECES_AHEAD: usize = 8;

/// A registry image and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySpec {
    /// `REGISTRY/REPO[:TAG|@DIGEST]`, as given after `docker://`.
    pub reference: String,
    /// Plain HTTP (and unchecked certificates) for this registry.
    pub insecure: bool,
    /// `None`: from `~/.docker/config.json` if it has some for the registry, else anonymous.
    pub credentials: Option<Credentials>,
    /// How long the registry may keep cairn waiting, and how often to try.
    pub timeouts: Timeouts,
}

/// A user name and password (or token) for basic auth; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.user)
    }
}

impl Credentials {
    /// `USER:PASSWORD`.
    pub fn parse(text: &str) -> Result<Credentials> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                user: user.into(),
                password: password.into(),
            }),
            _ => Err(Error::Usage("--user takes USER:PASSWORD".into())),
        }
    }
}

/// The client, the credentials and the reference: what every request needs.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) auth: RegistryAuth,
    pub(crate) reference: Reference,
    /// `http(s)://REGISTRY/v2/REPO`, for messages and the documents' requests.
    pub(crate) url: String,
    /// For documents read whole and bounded (`fetch`), with the client's timeouts.
    pub(crate) http: reqwest::Client,
    pub(crate) timeouts: Timeouts,
}

impl Connection {
    pub(crate) fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::bad_input(format!("{} {what}", self.url), self.explain(e.to_string()))
    }

    /// What a try that waited `Timeouts::read` in vain says.
    pub(crate) fn stalled(&self, waiting_for: &str) -> String {
        format!(
            "the registry stalled: {waiting_for} for {} s (--read-timeout)",
            self.timeouts.read.as_secs_f64()
        )
    }

    /// `oci-client`'s `reason`, with what it means for the user where it is a common case:
    /// the registry is unreachable, refused the credentials, or wants some.
    pub(crate) fn explain(&self, mut reason: String) -> String {
        if reason.contains("timed out") && !reason.contains("stalled") {
            reason += &format!(
                " (the registry stalled: no answer within {} s, --read-timeout)",
                self.timeouts.read.as_secs_f64()
            );
        } else if reason.contains("error sending request") {
            reason += if self.url.starts_with("https:") {
                " (the registry is unreachable, or speaks plain HTTP: then use --insecure)"
            } else {
                " (the registry is unreachable)"
            };
        } else if refused(&reason) {
            reason = match &self.auth {
                RegistryAuth::Basic(user, _) => format!(
                    "the registry refused the credentials of user {user} (a wrong password, or \
                     no access to this repository; check --user or ~/.docker/config.json): \
                     {reason}"
                ),
                _ => format!(
                    "the registry requires credentials and none were found (use --user \
                     USER:PASSWORD, or `docker login {}` to keep them in \
                     ~/.docker/config.json): {reason}",
                    self.reference.registry()
                ),
            };
        }
        reason
    }
}

/// Whether `oci-client`'s message says the registry turned the request away: a 401
/// (`UnauthorizedError`), a token service's refusal (`AuthenticationFailure`), a 403 with or
/// without the distribution API's `DENIED` body.
fn refused(reason: &str) -> bool {
    [
        "Not authorized: url",
        "Authentication failure:",
        "code: 403",
        "access to the resource is denied",
    ]
    .iter()
    .any(|sign| reason.contains(sign))
}

/// A registry being read: its connection, the runtime its requests run on, and the documents
/// fetched so far.
pub(crate) struct Registry {
    pub(crate) connection: Connection,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) fetched: Mutex<HashMap<Sha256Digest, Vec<u8>>>,
}

/// The media types of indexes and image manifests.
pub(crate) const MANIFEST_TYPES: [&str; 4] = [
    media_type::OCI_INDEX,
    media_type::DOCKER_LIST,
    media_type::OCI_MANIFEST,
    media_type::DOCKER_MANIFEST,
];

pub(crate) fn check_digest(bytes: &[u8], digest: &Sha256Digest, url: &str) -> Result<()> {
    let actual = Sha256Digest::of(bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            object: format!("{url} {digest}"),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// The media type a manifest or index states, or the one its shape implies.
pub(crate) fn document_media_type(bytes: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(stated) = value.get("mediaType").and_then(|m| m.as_str()) {
        return stated.to_string();
    }
    if value.get("manifests").is_some() {
        media_type::OCI_INDEX.into()
    } else {
        media_type::OCI_MANIFEST.into()
    }
}

impl Registry {
    pub(crate) fn connect(spec: &RegistrySpec) -> Result<Registry> {
        let reference: Reference = spec.reference.parse().map_err(|e| {
            Error::Usage(format!(
                "docker://{}: not an image reference ({e}); expected REGISTRY/REPO[:TAG|@DIGEST]",
                spec.reference
            ))
        })?;
        let registry = reference.resolve_registry().to_string();
        let timeouts = spec.timeouts;
        let config = ClientConfig {
            protocol: if spec.insecure {
                ClientProtocol::HttpsExcept(vec![registry.clone()])
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: spec.insecure,
            connect_timeout: Some(timeouts.connect),
            read_timeout: Some(timeouts.read),
            ..ClientConfig::default()
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .danger_accept_invalid_certs(spec.insecure)
            .build()
            .map_err(|e| Error::Usage(format!("set up the HTTP client: {}", fetch::chain(&e))))?;
        let scheme = if spec.insecure { "http" } else { "https" };
        let url = format!("{scheme}://{registry}/v2/{}", reference.repository());
        let credentials = match &spec.credentials {
            Some(c) => Some(c.clone()),
            None => docker_config::credentials(reference.registry())?,
        };
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.user, c.password),
            None => RegistryAuth::Anonymous,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the network runtime", std::path::Path::new("-"), e))?;
        Ok(Registry {
            connection: Connection {
                client: Client::new(config),
                auth,
                reference,
                url,
                http,
                timeouts,
            },
            runtime,
            fetched: Mutex::new(HashMap::new()),
        })
    }

    /// A JSON document, whole (within `oci::limits` for its media type), checked against its
    /// digest.
    pub(crate) fn document(
        &self,
        desc: &Descriptor,
        digest: &Sha256Digest,
        what: &str,
    ) -> Result<Vec<u8>> {
        if let Some(bytes) = self
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
        {
            return Ok(bytes.clone());
        }
        let c = &self.connection;
        let object = format!("{what} {digest}");
        let limit = len_limit(&desc.media_type);
        if let Some(size) = desc.size {
            check_len(size, limit.0, limit.1, &format!("{} {object}", c.url))?;
        }
        let bytes = if MANIFEST_TYPES.contains(&desc.media_type.as_str()) {
            let at = c.reference.clone_with_digest(digest.to_string());
            let accepted = [desc.media_type.as_str()];
            self.runtime
                .block_on(manifest_at(c, &at, &accepted, limit))?
                .1
        } else {
            self.runtime
                .block_on(fetch::small_blob(c, digest, &object, limit))?
        };
        check_digest(&bytes, digest, &format!("{} {what}", c.url))?;
        if let Some(size) = desc.size.filter(|&s| s != bytes.len() as u64) {
            return Err(c.error(
                &object,
                format!(
                    "descriptor says {size} bytes, the registry sent {}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}

/// A layer in a registry, downloaded when opened.
#[derive(Clone)]
pub struct RemoteBlob {
    pub(crate) registry: Arc<Registry>,
    pub(crate) digest: Sha256Digest,
    pub(crate) size: Option<u64>,
}

impl std::fmt::Debug for RemoteBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteBlob({})", self.describe())
    }
}

impl RemoteBlob {
    /// Its size in bytes as the manifest gave it (0 when unknown).
    pub fn len(&self) -> u64 {
        self.size.unwrap_or(0)
    }

    /// Whether its size is 0 or unknown.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registry URL and digest, for messages.
    pub fn describe(&self) -> String {
        format!("{} blob {}", self.registry.connection.url, self.digest)
    }

    /// Starts the download; its bytes come through the reader as they arrive.
    pub fn open(&self) -> Result<RemoteReader> {
        let (sender, receiver) = tokio::sync::mpsc::channel(PIECES_AHEAD);
        let connection = self.registry.connection.clone();
        let digest = self.digest;
        let task = self.registry.runtime.spawn(async move {
            if let Err(e) = download(&connection, &digest, &sender).await {
                let _ = sender.send(Err(std::io::Error::other(e))).await;
            }
        });
        Ok(RemoteReader {
            receiver,
            piece: bytes::Bytes::new(),
            task,
        })
    }
}

/// Sends the blob's bytes, resuming after a broken transfer; the error after the last try.
pub(crate) async fn download(
    c: &Connection,
    digest: &Sha256Digest,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> std::result::Result<(), String> {
    let name = digest.to_string();
    let mut received = 0u64;
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    let attempts = c.timeouts.attempts;
    loop {
        let opened = async {
            open_at(c, &name, received)
                .await
                .map_err(Failure::transient)
        };
        let failure = match within(c, "no answer", opened).await {
            Ok((mut stream, mut skip)) => loop {
                let next = async { Ok(stream.next().await) };
                let next = match within(c, "no data", next).await {
                    Ok(next) => next,
                    Err(stalled) => break stalled.reason,
                };
                match next {
                    None => return Ok(()),
                    Some(Ok(mut piece)) => {
                        // A registry that ignored the range sends the whole blob again.
                        let dropped = skip.min(piece.len() as u64);
                        skip -= dropped;
                        piece = piece.slice(dropped as usize..);
                        received += piece.len() as u64;
                        if !piece.is_empty() && sender.send(Ok(piece)).await.is_err() {
                            return Ok(()); // The reader is gone: the convert stopped.
                        }
                    }
                    Some(Err(e)) => break fetch::chain(&e),
                }
            },
            Err(failure) => failure.reason,
        };
        if attempt >= attempts {
            return Err(format!(
                "{} blob {name}: {} (gave up after {attempt} tries, {received} bytes received)",
                c.url,
                c.explain(failure)
            ));
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
        attempt += 1;
    }
}

/// The blob's stream from byte `from`, and how many bytes of it to drop (a registry that
/// ignores range requests sends everything from the start).
async fn open_at(
    c: &Connection,
    digest: &str,
    from: u64,
) -> std::result::Result<(SizedStream, u64), String> {
    c.client
        .auth(&c.reference, &c.auth, oci_client::RegistryOperation::Pull)
        .await
        .map_err(|e| fetch::chain(&e))?;
    if from == 0 {
        let stream = c.client.pull_blob_stream(&c.reference, digest).await;
        return stream.map(|s| (s, 0)).map_err(|e| fetch::chain(&e));
    }
    match c
        .client
        .pull_blob_stream_partial(&c.reference, digest, from, None)
        .await
    {
        Ok(BlobResponse::Partial(stream)) => Ok((stream, 0)),
        Ok(BlobResponse::Full(stream)) => Ok((stream, from)),
        Err(e) => Err(fetch::chain(&e)),
    }
}

/// A layer's bytes as they download (see `RemoteBlob::open`); the download stops when it is
/// dropped.
pub struct RemoteReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    piece: bytes::Bytes,
    task: tokio::task::JoinHandle<()>,
}

impl std::io::Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(piece)) => self.piece = piece,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece[..n]);
        self.piece = self.piece.slice(n..);
        Ok(n)
    }
}

impl Drop for RemoteReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}
