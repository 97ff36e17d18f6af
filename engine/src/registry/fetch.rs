//! How long a registry may keep cairn waiting, how often a failed request is tried, and the
//! JSON documents (manifests, indexes, configs) fetched whole within `oci::limits`.
//!
//! Every request runs under `Timeouts::read`: the response's headers must come within it
//! (authentication and connecting included; `Timeouts::connect` fails an unreachable host
//! sooner), and then each next piece of its body. A registry that stalls anywhere (headers,
//! a manifest, mid-blob, mid-upload) thus fails the try within `2 × read` (headers just in
//! time, then a silent body); a failed try is tried again after a pause (`FIRST_PAUSE`,
//! doubled each time) up to `attempts` tries, and then the error names the registry, the
//! object and that it stalled. With the defaults (read 25 s, 5 tries) a stalled transfer ends
//! within 5 × 2 × 25 s + (0.5 + 1 + 2 + 4) s = 257.5 s, under 5 minutes, whatever the
//! registry does (`Timeouts::worst_case`). A registry that trickles a byte just within every
//! read timeout is slow, not stalled, and is not bounded here.
//!
//! Documents are not read through `oci-client`'s manifest call, which collects a body of any
//! size: the request is made here (with the token or credentials the client holds), refused
//! on a stated length over its limit, and read piece by piece up to it.

use super::Connection;
use crate::error::Result;
use crate::oci::limits::over_len;
use crate::Sha256Digest;
use futures_util::StreamExt;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use std::future::Future;
use std::time::Duration;

/// The pause before the second try; doubled for each further one.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// How long the network may keep cairn waiting, and how often a failed request is tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection.
    pub connect: Duration,
    /// For a response to start (its headers), and then for each next piece of it.
    pub read: Duration,
    /// Tries of each request or transfer (the first and the retries), at least 1.
    pub attempts: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(25),
            attempts: 5,
        }
    }
}

impl Timeouts {
    /// The longest a transfer can take when the registry stalls on every try: per try the
    /// headers and then a silent body, each up to `read`, and the pauses between tries.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.attempts.max(1);
        let mut pauses = Duration::ZERO;
        let mut pause = FIRST_PAUSE;
        for _ in 1..attempts {
            pauses += pause;
            pause *= 2;
        }
        self.read * 2 * attempts + pauses
    }
}

/// Why one try failed, and whether another may pass.
pub(crate) struct Failure {
    pub reason: String,
    pub transient: bool,
}

impl Failure {
    pub(crate) fn transient(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            transient: true,
        }
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            transient: false,
        }
    }
}

impl From<OciDistributionError> for Failure {
    fn from(e: OciDistributionError) -> Failure {
        let transient = transient(&e);
        Failure {
            reason: chain(&e),
            transient,
        }
    }
}

/// An error and its sources, `: `-separated (a timeout is often only in a source).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text += &format!(": {more}");
        }
        source = s.source();
    }
    text
}

/// Whether a failure may pass if tried again: a broken connection, a timeout, a server error,
/// a registry asking to slow down.
pub(crate) fn transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => {
            *code >= 500 || *code == 408 || *code == 429
        }
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        _ => false,
    }
}

/// `future`, or a transient "stalled" failure once `Timeouts::read` passes without it.
pub(crate) async fn within<T>(
    c: &Connection,
    waiting_for: &str,
    future: impl Future<Output = std::result::Result<T, Failure>>,
) -> std::result::Result<T, Failure> {
    match tokio::time::timeout(c.timeouts.read, future).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::transient(c.stalled(waiting_for))),
    }
}

/// Runs `attempt` until it succeeds, fails for good, or has failed `Timeouts::attempts`
/// times, pausing `FIRST_PAUSE` and then twice as long each time between tries. The error
/// names the registry and `object`.
pub(crate) async fn with_tries<T, F, Fut>(c: &Connection, object: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Failure>>,
{
    let mut pause = FIRST_PAUSE;
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(f) if f.transient && tries < c.timeouts.attempts => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                tries += 1;
            }
            Err(f) if tries > 1 => {
                let reason = format!("{} (gave up after {tries} tries)", f.reason);
                return Err(c.error(object, reason));
            }
            Err(f) => return Err(c.error(object, f.reason)),
        }
    }
}

/// The manifest or index at `at` (a tag or a digest), of one of the `accepted` media types, at
/// most `limit` bytes (the limit named `limit_name`), checked against the digest `at` names or
/// else the one the registry states.
pub(crate) async fn manifest_at(
    c: &Connection,
    at: &Reference,
    accepted: &[&str],
    (limit, limit_name): (u64, &str),
) -> Result<(Sha256Digest, Vec<u8>)> {
    let object = format!("manifest {at}");
    let (bytes, stated) = with_tries(c, &object, || async {
        let url = match at.digest() {
            Some(digest) => format!("{}/manifests/{digest}", c.url),
            None => format!("{}/manifests/{}", c.url, at.tag().unwrap_or("latest")),
        };
        let response = within(c, "no answer", request(c, at, &url, accepted)).await?;
        let stated = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_body(c, response, limit, limit_name).await?;
        Ok((bytes, stated))
    })
    .await?;
    let stated = at.digest().map(str::to_string).or(stated);
    let digest = match stated {
        Some(text) => Sha256Digest::parse(&text).ok_or_else(|| {
            // The words of `source::resolve::parse_digest`, which sits above this client.
            crate::error::Error::bad_input(
                format!("{} {object} {text}", c.url),
                "unsupported digest (cairn reads sha256:<64 hex>)",
            )
        })?,
        None => Sha256Digest::of(&bytes),
    };
    super::check_digest(&bytes, &digest, &c.url)?;
    Ok((digest, bytes))
}

/// An authenticated GET of `url` (accepting `accepted`), up to its response's headers; a
/// refusal or a missing document is a failure for good, a server error a transient one.
async fn request(
    c: &Connection,
    at: &Reference,
    url: &str,
    accepted: &[&str],
) -> std::result::Result<reqwest::Response, Failure> {
    let token = c.client.auth(at, &c.auth, RegistryOperation::Pull).await?;
    let mut request = c.http.get(url).header("accept", accepted.join(", "));
    request = match (token, &c.auth) {
        (Some(token), _) => request.bearer_auth(token),
        (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
        (None, _) => request,
    };
    let response = request
        .send()
        .await
        .map_err(|e| Failure::transient(chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    let reason = match code {
        401 => format!("Not authorized: url {url}"),
        _ => format!("{url}: HTTP status code: {code}"),
    };
    match code >= 500 || code == 408 || code == 429 {
        true => Err(Failure::transient(reason)),
        false => Err(Failure::permanent(reason)),
    }
}

/// A response's body, whole, refused past `limit` bytes (as stated or as it arrives).
async fn read_body(
    c: &Connection,
    mut response: reqwest::Response,
    limit: u64,
    limit_name: &str,
) -> std::result::Result<Vec<u8>, Failure> {
    if let Some(len) = response.content_length().filter(|&len| len > limit) {
        return Err(Failure::permanent(over_len(len, limit, limit_name)));
    }
    let mut bytes = Vec::new();
    loop {
        let next = async {
            response
                .chunk()
                .await
                .map_err(|e| Failure::transient(chain(&e)))
        };
        match within(c, "no data", next).await? {
            None => return Ok(bytes),
            Some(piece) => {
                let len = (bytes.len() + piece.len()) as u64;
                if len > limit {
                    let reason = format!("{} (or more)", over_len(len, limit, limit_name));
                    return Err(Failure::permanent(reason));
                }
                bytes.extend_from_slice(&piece);
            }
        }
    }
}

/// A blob of at most `limit` bytes (the limit named `limit_name`), whole; `object` names it.
pub(crate) async fn small_blob(
    c: &Connection,
    digest: &Sha256Digest,
    object: &str,
    (limit, limit_name): (u64, &str),
) -> Result<Vec<u8>> {
    let digest = digest.to_string();
    with_tries(c, object, || async {
        let open = async {
            c.client
                .auth(&c.reference, &c.auth, RegistryOperation::Pull)
                .await?;
            Ok::<_, Failure>(
                c.client
                    .pull_blob_stream(&c.reference, digest.as_str())
                    .await?,
            )
        };
        let mut stream = within(c, "no answer", open).await?;
        if let Some(len) = stream.content_length.filter(|&len| len > limit) {
            return Err(Failure::permanent(over_len(len, limit, limit_name)));
        }
        let mut bytes = Vec::new();
        loop {
            let next = async { Ok(stream.next().await) };
            match within(c, "no data", next).await? {
                None => return Ok(bytes),
                Some(Err(e)) => return Err(Failure::transient(chain(&e))),
                Some(Ok(piece)) => {
                    let len = (bytes.len() + piece.len()) as u64;
                    if len > limit {
                        let reason = format!("{} (or more)", over_len(len, limit, limit_name));
                        return Err(Failure::permanent(reason));
                    }
                    bytes.extend_from_slice(&piece);
                }
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module doc's arithmetic: a stalled transfer ends within 257.5 s by default.
    #[test]
    fn the_default_timeouts_bound_a_stalled_transfer_under_five_minutes() {
        let worst = Timeouts::default().worst_case();
        assert_eq!(worst, Duration::from_millis(257_500));
        assert!(worst < Duration::from_secs(300));
    }
}
