//! containerd's snapshots service over `Snapshots`: each call runs on the blocking pool (a
//! commit converts a whole layer; mounting a view starts a process) and answers with the
//! gRPC code containerd expects (`error.rs`).

use crate::error::{SnapError, SnapResult};
use crate::filters;
use crate::records::{Kind, Record};
use crate::snapshots::Snapshots;
use containerd_snapshots::api::types::Mount;
use containerd_snapshots::tonic::{async_trait, Status};
use containerd_snapshots::{Info, Usage};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The service containerd calls.
pub struct Service {
    snapshots: Arc<Snapshots>,
}

impl Service {
    /// Serves `snapshots`.
    pub fn new(snapshots: Arc<Snapshots>) -> Service {
        Service { snapshots }
    }

    async fn run<T: Send + 'static>(
        &self,
        what: String,
        call: impl FnOnce(&Snapshots) -> SnapResult<T> + Send + 'static,
    ) -> Result<T, Status> {
        let snapshots = self.snapshots.clone();
        let result = tokio::task::spawn_blocking(move || call(&snapshots))
            .await
            .map_err(|e| Status::internal(format!("{what}: {e}")))?;
        if let Err(e) = &result {
            crate::log::line(&format!("{what}: {:?} {e}", e.code()));
        }
        result.map_err(Status::from)
    }
}

impl Service {
    /// Prepare (active) and View: a new snapshot on `parent`, logged with its labels.
    async fn make(
        &self,
        key: String,
        parent: String,
        given: HashMap<String, String>,
        kind: Kind,
    ) -> Result<Vec<Mount>, Status> {
        let what = format!("{} {key} (parent {parent:?})", kind.name());
        crate::log::line(&format!("{what}, labels {given:?}"));
        self.run(what, move |s| s.prepare(&key, &parent, labels(given), kind))
            .await
    }
}

fn info(record: Record) -> Info {
    Info {
        kind: match record.kind {
            Kind::View => containerd_snapshots::Kind::View,
            Kind::Active => containerd_snapshots::Kind::Active,
            Kind::Committed => containerd_snapshots::Kind::Committed,
        },
        name: record.key,
        parent: record.parent,
        labels: record.labels.into_iter().collect(),
        created_at: record.created,
        updated_at: record.updated,
    }
}

fn labels(labels: HashMap<String, String>) -> BTreeMap<String, String> {
    labels.into_iter().collect()
}

// The trait's error (and its list stream's item) is tonic's `Status`, large as it is.
#[allow(clippy::result_large_err)]
#[async_trait]
impl containerd_snapshots::Snapshotter for Service {
    type Error = Status;

    async fn stat(&self, key: String) -> Result<Info, Status> {
        let what = format!("stat {key}");
        self.run(what, move |s| s.stat(&key).map(info)).await
    }

    async fn update(&self, update: Info, fields: Option<Vec<String>>) -> Result<Info, Status> {
        let what = format!("update {}", update.name);
        self.run(what, move |s| {
            let fields = fields.unwrap_or_default();
            s.update(&update.name, labels(update.labels), &fields)
                .map(info)
        })
        .await
    }

    async fn usage(&self, key: String) -> Result<Usage, Status> {
        let what = format!("usage {key}");
        self.run(what, move |s| {
            let (size, inodes) = s.usage(&key)?;
            Ok(Usage {
                size: size as i64,
                inodes: inodes as i64,
            })
        })
        .await
    }

    async fn mounts(&self, key: String) -> Result<Vec<Mount>, Status> {
        let what = format!("mounts {key}");
        self.run(what, move |s| s.mounts(&key)).await
    }

    async fn prepare(
        &self,
        key: String,
        parent: String,
        given: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Status> {
        self.make(key, parent, given, Kind::Active).await
    }

    async fn view(
        &self,
        key: String,
        parent: String,
        given: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Status> {
        self.make(key, parent, given, Kind::View).await
    }

    async fn commit(
        &self,
        name: String,
        key: String,
        given: HashMap<String, String>,
    ) -> Result<(), Status> {
        let what = format!("commit {key} as {name}");
        let started = std::time::Instant::now();
        let shown = what.clone();
        let result = self
            .run(what, move |s| s.commit(&name, &key, labels(given)))
            .await;
        if result.is_ok() {
            crate::log::line(&format!(
                "{shown}: {:.2} s",
                started.elapsed().as_secs_f64()
            ));
        }
        result
    }

    async fn remove(&self, key: String) -> Result<(), Status> {
        let what = format!("remove {key}");
        self.run(what, move |s| s.remove(&key)).await
    }

    async fn clear(&self) -> Result<(), Status> {
        self.run("cleanup".into(), |s| s.cleanup()).await
    }

    type InfoStream = futures_util::stream::Iter<std::vec::IntoIter<Result<Info, Status>>>;

    async fn list(
        &self,
        _snapshotter: String,
        given: Vec<String>,
    ) -> Result<Self::InfoStream, Status> {
        let what = format!("list {given:?}");
        let infos = self
            .run(what, move |s| {
                let filters = filters::parse(&given)?;
                Ok(s.list()
                    .into_iter()
                    .filter(|r| filters::matches(&filters, r))
                    .map(|r| Ok(info(r)))
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(futures_util::stream::iter(infos))
    }
}

impl From<std::io::Error> for SnapError {
    fn from(e: std::io::Error) -> Self {
        SnapError::Internal(e.to_string())
    }
}
