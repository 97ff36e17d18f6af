//! Sending local files to a registry as blobs, `IN_FLIGHT` at a time. For each blob: a HEAD
//! request (a blob the repository has is not sent again); then, for a missing one, a
//! cross-repository mount from each `mount_from` repository of the same registry in turn (201:
//! mounted; anything else, such as a 202 from a registry that starts an upload instead, falls
//! back); then a chunked upload read from the file, started again from the file after a
//! transient failure, up to `Timeouts::attempts` tries with growing pauses. Each request
//! waits at most `Timeouts::read` for its answer (`fetch`: a registry that stalls mid-upload
//! fails the try); so does each piece handed to the client. Shared by the plain push and the
//! store-format push.

use super::fetch::{with_tries, within, Failure};
use super::{Connection, Registry};
use crate::error::{Error, Result};
use crate::progress::{Progress, Unit};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::errors::OciDistributionError;
use oci_client::{Reference, RegistryOperation};
use serde::Serialize;
use std::cell::Cell;
use std::io::Read;
use std::path::PathBuf;

/// Bytes read from a file at a time; each piece is one PATCH request of the upload, and 4 MiB
/// is the largest the client sends in one. Against a local registry (on a busy 2-core
/// machine), py v2's upload (3 layers, 77 MB) took 0.4-0.8 s with 4 MiB pieces, 1.2-1.9 s with
/// 1 MiB ones, for 20-30 MB more peak memory (up to three pieces per blob in flight: being
/// read, queued, being sent).
const PIECE: usize = 4 << 20;
/// Blobs sent at once. A blob's upload is a chain of round trips (HEAD, POST, PATCHes, PUT)
/// that mostly waits on the registry, so a few in flight hide that latency, and small blobs go
/// through while a large one is sent. Against the same registry, 40 layers of 1 MB went up in
/// 2.3-3.0 s one at a time, 0.8-1.0 s two at a time, 0.74-0.9 s with 4, 0.57-0.79 s with 8:
/// beyond 4 little is gained, and on a real link more only share the same bandwidth (and
/// memory: `PIECE`).
const IN_FLIGHT: usize = 4;

/// A local file to send as a blob.
#[derive(Clone, Debug)]
pub(crate) struct LocalBlob {
    pub path: PathBuf,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    pub size: u64,
}

/// What an upload sent and what it found there already.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Transferred {
    /// Blobs sent.
    pub blobs_uploaded: u64,
    /// Bytes of the blobs sent.
    pub bytes_uploaded: u64,
    /// Blobs the repository had already (not sent).
    pub blobs_present: u64,
    /// Bytes of those blobs.
    pub bytes_present: u64,
    /// Blobs mounted from another repository of the registry (not sent).
    pub blobs_mounted: u64,
    /// Bytes of those blobs.
    pub bytes_mounted: u64,
}

/// How one blob got to the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Present,
    Mounted,
    Uploaded,
}

impl Transferred {
    /// Both counts together.
    pub(crate) fn plus(mut self, other: &Transferred) -> Transferred {
        self.blobs_uploaded += other.blobs_uploaded;
        self.bytes_uploaded += other.bytes_uploaded;
        self.blobs_present += other.blobs_present;
        self.bytes_present += other.bytes_present;
        self.blobs_mounted += other.blobs_mounted;
        self.bytes_mounted += other.bytes_mounted;
        self
    }

    fn add(mut self, outcome: Outcome, size: u64) -> Transferred {
        let (blobs, bytes) = match outcome {
            Outcome::Present => (&mut self.blobs_present, &mut self.bytes_present),
            Outcome::Mounted => (&mut self.blobs_mounted, &mut self.bytes_mounted),
            Outcome::Uploaded => (&mut self.blobs_uploaded, &mut self.bytes_uploaded),
        };
        *blobs += 1;
        *bytes += size;
        self
    }
}

/// Sends every blob the repository lacks. `mount_from`: other repositories of the same
/// registry (`REPO` paths) to mount a missing blob from before sending it.
pub(crate) fn upload_missing(
    registry: &Registry,
    blobs: &[LocalBlob],
    mount_from: &[String],
    progress: &dyn Progress,
) -> Result<Transferred> {
    let c = &registry.connection;
    let sources = &mount_sources(c, mount_from)?;
    progress.set_message("upload");
    progress.set_length(blobs.iter().map(|b| b.size).sum(), Unit::Bytes);
    // The largest first, so that the last to finish is a small one.
    let mut order: Vec<&LocalBlob> = blobs.iter().collect();
    order.sort_by_key(|b| std::cmp::Reverse(b.size));
    registry.runtime.block_on(async {
        authenticate(c).await?;
        futures_util::stream::iter(order)
            .map(|blob| async move {
                let outcome = send(c, blob, sources, progress).await?;
                Ok((outcome, blob.size))
            })
            .buffer_unordered(IN_FLIGHT)
            .try_fold(Transferred::default(), |done, (outcome, size)| async move {
                Ok(done.add(outcome, size))
            })
            .await
    })
}

/// Hands the credentials to the client, which then sends them (or a token they earn) with
/// every request of the push. Anonymous access needs nothing.
async fn authenticate(c: &Connection) -> Result<()> {
    if matches!(c.auth, oci_client::secrets::RegistryAuth::Anonymous) {
        return Ok(());
    }
    with_tries(c, "authentication for push", || {
        let auth = async {
            c.client
                .auth(&c.reference, &c.auth, RegistryOperation::Push)
                .await?;
            Ok::<_, Failure>(())
        };
        within(c, "no answer", auth)
    })
    .await
}

/// The repositories to mount from as references on the pushed-to registry: each given once,
/// never the pushed-to repository itself.
fn mount_sources(c: &Connection, mount_from: &[String]) -> Result<Vec<Reference>> {
    let mut sources: Vec<Reference> = Vec::new();
    for repo in mount_from {
        let at = format!("{}/{repo}", c.reference.registry());
        let source: Reference = match at.parse() {
            Ok(source) if !repo.contains([':', '@']) => source,
            _ => {
                return Err(Error::Usage(format!(
                    "mount from {repo:?}: not a repository path (REPO, on the registry pushed to)"
                )))
            }
        };
        let known = sources
            .iter()
            .any(|s| s.repository() == source.repository());
        if !known && source.repository() != c.reference.repository() {
            sources.push(source);
        }
    }
    Ok(sources)
}

/// Blobs the repository has already, or mounts from a repository of `mount_from`, without
/// sending any: what was found and mounted, and the digests of those neither has, in the
/// order given. `blobs`: digest and size of each. The push of an image's original blobs
/// starts here.
pub(crate) fn place_existing(
    registry: &Registry,
    blobs: &[(String, u64)],
    mount_from: &[String],
) -> Result<(Transferred, Vec<String>)> {
    let c = &registry.connection;
    let sources = &mount_sources(c, mount_from)?;
    registry.runtime.block_on(async {
        authenticate(c).await?;
        let found: Vec<Result<Option<Outcome>>> = futures_util::stream::iter(blobs)
            .map(|(digest, _)| find_or_mount(c, digest, sources))
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let mut done = Transferred::default();
        let mut missing = Vec::new();
        for ((digest, size), found) in blobs.iter().zip(found) {
            match found? {
                Some(outcome) => done = done.add(outcome, *size),
                None => missing.push(digest.clone()),
            }
        }
        Ok((done, missing))
    })
}

/// Whether the repository has the blob `digest` (`Present`), or one of `sources` lent it
/// (`Mounted`); `None` when neither.
async fn find_or_mount(
    c: &Connection,
    digest: &str,
    sources: &[Reference],
) -> Result<Option<Outcome>> {
    let what = format!("blob {digest}");
    let exists = with_tries(c, &what, || {
        let head = async { Ok::<_, Failure>(c.client.blob_exists(&c.reference, digest).await?) };
        within(c, "no answer", head)
    })
    .await?;
    if exists {
        return Ok(Some(Outcome::Present));
    }
    Ok(mount(c, digest, sources).await.then_some(Outcome::Mounted))
}

/// Gets one blob into the repository: found there, mounted, or uploaded.
async fn send(
    c: &Connection,
    blob: &LocalBlob,
    sources: &[Reference],
    progress: &dyn Progress,
) -> Result<Outcome> {
    if let Some(outcome) = find_or_mount(c, &blob.digest, sources).await? {
        progress.inc(blob.size);
        return Ok(outcome);
    }
    let label = format!("blob {}", short(&blob.digest));
    let item = progress.item(&label, blob.size, Unit::Bytes);
    // Bytes reported so far: a retry reports only what goes beyond them.
    let reported = Cell::new(0);
    let report = |delta| {
        progress.inc(delta);
        item.inc(delta);
    };
    let what = format!("upload of blob {}", blob.digest);
    with_tries(c, &what, || async {
        upload(c, blob, &reported, &report).await
    })
    .await?;
    item.finish();
    Ok(Outcome::Uploaded)
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    hex.get(..12).unwrap_or(hex)
}

/// Whether a repository in `sources` lent the blob (a 201 answer to a mount request).
async fn mount(c: &Connection, digest: &str, sources: &[Reference]) -> bool {
    for source in sources {
        let lend =
            async { Ok::<_, Failure>(c.client.mount_blob(&c.reference, source, digest).await?) };
        if within(c, "no answer", lend).await.is_ok() {
            return true;
        }
    }
    false
}

/// Sends one blob file in `PIECE`-sized parts, calling `report` with the bytes handed to the
/// client beyond `reported`.
async fn upload(
    c: &Connection,
    blob: &LocalBlob,
    reported: &Cell<u64>,
    report: &dyn Fn(u64),
) -> std::result::Result<(), Failure> {
    let mut file = std::fs::File::open(&blob.path)
        .map_err(|e| Failure::permanent(format!("open {}: {e}", blob.path.display())))?;
    // The client wants a stream it owns; the pieces go through a channel from the loop below,
    // which can report progress as the client takes them.
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let pieces = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    });
    let push = c
        .client
        .push_blob_stream(&c.reference, pieces, &blob.digest, Some(blob.size));
    let feed = async move {
        let mut sent = 0u64;
        loop {
            let mut piece = vec![0; PIECE];
            let piece = match file.read(&mut piece) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    piece.truncate(n);
                    Ok(bytes::Bytes::from(piece))
                }
                Err(e) => Err(OciDistributionError::IoError(e)),
            };
            let failed = piece.is_err();
            let n = piece.as_ref().map_or(0, |p| p.len() as u64);
            // The client stopped taking pieces: it failed, and says why; or it took none for
            // `Timeouts::read`: the registry stalled.
            match tokio::time::timeout(c.timeouts.read, sender.send(piece)).await {
                Ok(Ok(())) if !failed => {}
                Ok(_) => return Ok(()),
                Err(_) => return Err(Failure::transient(c.stalled("took no data"))),
            }
            sent += n;
            if sent > reported.get() {
                report(sent - reported.get());
                reported.set(sent);
            }
        }
    };
    // A stalled feed ends the try at once (the push is dropped with it); otherwise the push's
    // own outcome counts.
    let feed = async move {
        let outcome = feed.await;
        if outcome.is_ok() {
            std::future::pending::<()>().await;
        }
        outcome
    };
    futures_util::pin_mut!(push, feed);
    match futures_util::future::select(push, feed).await {
        futures_util::future::Either::Left((pushed, _)) => pushed.map(drop).map_err(Failure::from),
        futures_util::future::Either::Right((stalled, _)) => stalled,
    }
}

/// Puts the manifest (after every blob it names) under the reference's tag.
pub(crate) fn put_manifest(registry: &Registry, bytes: Vec<u8>, media_type: &str) -> Result<()> {
    let c = &registry.connection;
    let content_type = http::HeaderValue::from_str(media_type)
        .map_err(|e| Error::corrupt("manifest media type", e.to_string()))?;
    let tag = c.reference.tag().unwrap_or("latest").to_string();
    let what = format!("manifest {tag}");
    registry.runtime.block_on(with_tries(c, &what, || {
        let put = async {
            let (bytes, content_type) = (bytes.clone(), content_type.clone());
            Ok::<_, Failure>(
                c.client
                    .push_manifest_raw(&c.reference, bytes, content_type)
                    .await?,
            )
        };
        within(c, "no answer", put)
    }))?;
    Ok(())
}
