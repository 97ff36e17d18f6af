//! GNU sparse files unpacked. An old GNU sparse entry (type `S`) becomes a file of its real
//! size with each stored segment written at its offset and the rest left as holes, as GNU tar
//! extracts it; its map comes from the entry's raw header bytes (`layer::sparse`). A file in
//! one of the PAX sparse formats is refused, naming it, rather than written as the stored data
//! (map and segments back to back) under the format's placeholder name. The file is created,
//! and its metadata set, as `write_file` does (rule (3) of the module doc).

use super::sys::{self, Node};
use super::{Site, TreeWriter};
use crate::error::{IoContext, Result};
use crate::format::bootstrap::BlobRecord;
use crate::format::layer_meta::LayerEntry;
use crate::layer::sparse::{sparse_of, Segment, Sparse};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

/// Refuses a regular entry that is a file in a PAX sparse format. Only entries with extension
/// entries before their header (more than one block and padding of raw bytes) can be.
pub(super) fn refuse_pax_sparse(site: &Site, entry: &LayerEntry) -> Result<()> {
    if entry.raw_header.len() < 1024 {
        return Ok(());
    }
    match sparse_of(&entry.raw_header, entry.meta.size).map_err(|r| site.bad(r))? {
        Sparse::Pax(version) => Err(site.bad(format!(
            "a GNU sparse file in PAX format {version}, which unpack cannot write (GNU tar \
             can: export the layer and extract it with tar)"
        ))),
        _ => Ok(()),
    }
}

impl TreeWriter<'_> {
    /// An old GNU sparse file: its segments written where its map says, then its real size.
    pub(super) fn write_sparse(
        &mut self,
        site: &Site,
        entry: &LayerEntry,
        blobs: &[BlobRecord],
    ) -> Result<()> {
        let map = match sparse_of(&entry.raw_header, entry.meta.size).map_err(|r| site.bad(r))? {
            Sparse::OldGnu(map) => map,
            _ => return Err(site.bad("an entry of type 'S' without a GNU sparse header")),
        };
        let (dir, name) = self
            .walker
            .parent(site.path)
            .map_err(|e| site.walk_error(e))?;
        let file = sys::create_file_at(dir, &name).with_path("create", &site.file())?;
        let mut segments = map.segments.iter();
        let mut current: Option<Segment> = None;
        let mut done = 0u64;
        for chunk in &entry.chunks {
            let data = self.chunks.read(chunk, blobs)?;
            let mut rest = data.as_slice();
            while !rest.is_empty() {
                let segment = match current {
                    Some(s) if done < s.len => s,
                    _ => {
                        done = 0;
                        current = Some(*segments.next().ok_or_else(|| {
                            site.bad("more stored data than its GNU sparse map places")
                        })?);
                        continue;
                    }
                };
                let n = rest.len().min((segment.len - done) as usize);
                file.write_all_at(&rest[..n], segment.offset + done)
                    .with_path("write", &site.file())?;
                done += n as u64;
                rest = &rest[n..];
            }
            self.report.bytes += data.len() as u64;
            self.progress.inc(data.len() as u64);
        }
        file.set_len(map.real_size)
            .with_path("set the size of", &site.file())?;
        self.meta.apply(Node::Open(file.as_fd()), &entry.meta, site)
    }
}
