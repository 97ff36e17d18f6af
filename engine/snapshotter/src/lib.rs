//! A containerd snapshotter over a cairn store (a containerd "proxy plugin": containerd's
//! snapshots gRPC service on a unix socket).
//!
//! containerd applies each layer of an image it pulls into an active snapshot that cairn
//! prepared; at commit cairn takes the applied tree into the store (chunked, deduplicated
//! against every stored image) and keeps no unpacked copy. A container gets an overlay mount
//! whose lower directory is its chain's merged view, served from the store by one FUSE mount
//! per chain, and whose upper directory is its own. Snapshot records live in the store and
//! survive a restart.
//!
//! Modules: `snapshots` (the records and every operation), `commit` (an applied tree into the
//! store), `chains` (chains the store holds already: nothing to apply), `dir_tar` (the tree read as a layer tar), `views` (the chains' FUSE mounts),
//! `service` (the gRPC service), `filters` (list filters), `records` (the record files).

mod chains;
mod commit;
pub mod dir_tar;
mod error;
mod filters;
mod log;
pub mod records;
mod service;
pub mod snapshots;
mod store_images;
mod views;

pub use error::{SnapError, SnapResult};
pub use log::log_to;
pub use snapshots::{Layout, Snapshots, IMAGE_PREFIX};

use std::path::Path;
use std::sync::Arc;

/// Serves the snapshots of `layout` on the unix socket `socket` (replacing a stale socket
/// file) until the process is stopped. Cleans up what a crash left first.
pub fn serve(layout: Layout, socket: &Path) -> SnapResult<()> {
    let snapshots = Arc::new(Snapshots::open(layout)?);
    if let Err(e) = snapshots.cleanup() {
        log::line(&format!("cleanup at start: {e}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| SnapError::io("start the runtime for", socket, e))?;
    runtime.block_on(async {
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SnapError::io("create", dir, e))?;
        }
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SnapError::io("remove the old socket", socket, e)),
        }
        let listener = tokio::net::UnixListener::bind(socket)
            .map_err(|e| SnapError::io("listen on", socket, e))?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        log::line(&format!("serving snapshots on {}", socket.display()));
        containerd_snapshots::tonic::transport::Server::builder()
            .add_service(containerd_snapshots::server(Arc::new(
                service::Service::new(snapshots),
            )))
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| SnapError::Internal(format!("serve {}: {e}", socket.display())))
    })
}
