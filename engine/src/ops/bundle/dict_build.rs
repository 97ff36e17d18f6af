//! `cairn dict build NAME... --min-images K --name DICT`: a dictionary image holding the chunks
//! that at least K of the named images share (what Nydus's `chunkdict generate` makes), usable
//! as `--dict DICT` when converting new images. It is an ordinary image of one layer whose files
//! `chunks/<id>` each hold one shared chunk's bytes: a content-defined chunk cut alone is cut
//! again at the same place (the chunker restarts at each chunk and finds no earlier cut), so
//! each file is exactly that chunk, and the convert stores nothing new but the metadata.

use crate::error::{Error, IoContext, Result};
use crate::format::blob::BlobReader;
use crate::format::{chunk_from_frame, ChunkLocation};
use crate::ops::convert::{ConvertOptions, ConvertReport};
use crate::progress::{Progress, Unit};
use crate::source::{PlatformChoice, SourceSpec};
use crate::store::SharedWriter;
use crate::{ChunkId, DeltaMode};
use serde::Serialize;
use std::collections::HashMap;

/// What `dict build` made: the dictionary image and how much of each source it covers.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct DictBuildReport {
    /// The dictionary image's name in the store.
    pub name: String,
    /// A chunk is in the dictionary when at least this many of the named images hold it.
    pub min_images: usize,
    /// Distinct chunks in the dictionary.
    pub chunks: u64,
    /// Their uncompressed bytes.
    pub bytes: u64,
    /// What the dictionary image added to the store (its metadata).
    pub added_bytes: u64,
    /// How much of each source image the dictionary holds.
    pub coverage: Vec<Coverage>,
    /// Wall-clock seconds of the whole build, the dictionary image's convert included.
    pub seconds: f64,
}

/// How much of one source image a dictionary holds.
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    /// The source image's name in the store.
    pub image: String,
    /// Uncompressed bytes of the image's distinct chunks.
    pub unique_bytes: u64,
    /// Uncompressed bytes of those distinct chunks that the dictionary holds.
    pub covered_bytes: u64,
    /// `covered_bytes / unique_bytes` (0 for an image without chunks).
    pub covered_ratio: f64,
}

pub(crate) fn build_dict(
    writer: &SharedWriter,
    names: &[String],
    min_images: usize,
    dict_name: &str,
    progress: &dyn Progress,
) -> Result<DictBuildReport> {
    let started = std::time::Instant::now();
    crate::check_image_name(dict_name)?;
    if min_images < 1 || min_images > names.len() {
        return Err(Error::Usage(format!(
            "--min-images {min_images}: give a number from 1 to the {} images named",
            names.len()
        )));
    }
    progress.set_message("counting shared chunks");
    let mut counts: HashMap<ChunkId, (u32, u32)> = HashMap::new();
    let mut images = Vec::new();
    for name in names {
        let (_, layers) = writer.store().image_layers(name)?;
        let sizes = crate::view::chunk_sets::ChunkSizes::of(&layers)?;
        for chunk in sizes.iter() {
            counts.entry(chunk.id).or_insert((0, chunk.len)).0 += 1;
        }
        images.push((name.clone(), sizes));
    }
    let mut chosen: Vec<(ChunkLocation, ChunkId)> = Vec::new();
    for (id, (count, _)) in &counts {
        if *count as usize >= min_images {
            let location = writer.store().index().get_chunk(id)?.ok_or_else(|| {
                Error::corrupt(
                    format!("chunk {id}"),
                    "named by an image but not in the index",
                )
            })?;
            chosen.push((location, *id));
        }
    }
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "no chunk is shared by {min_images} of these images: nothing to put in a dictionary"
        )));
    }
    // In stored order, so that each frame is decoded once.
    chosen.sort_by_key(|(l, id)| (l.blob, l.slice.offset, l.slice.skip, *id));
    let bytes: u64 = chosen.iter().map(|(l, _)| l.slice.len as u64).sum();
    let tar = writer.writer().tmp_file("dict.tar");
    write_tar(writer, &chosen, &tar, bytes, progress)?;
    let options = ConvertOptions {
        source: SourceSpec::LayerFile { file: tar.clone() },
        name: dict_name.to_string(),
        dict: names.to_vec(),
        platform: PlatformChoice::Default,
        replace: false,
        delta: Some(DeltaMode::Off),
        layers_in_flight: None,
        optimize: false,
    };
    let converted: Result<ConvertReport> = writer.convert(&options, progress);
    let _ = std::fs::remove_file(&tar);
    let converted = converted?;
    let in_dict: std::collections::HashSet<ChunkId> = chosen.iter().map(|(_, id)| *id).collect();
    let coverage = images
        .iter()
        .map(|(name, sizes)| {
            let covered: u64 = sizes
                .iter()
                .filter(|c| in_dict.contains(&c.id))
                .map(|c| c.len as u64)
                .sum();
            Coverage {
                image: name.clone(),
                unique_bytes: sizes.bytes(),
                covered_bytes: covered,
                covered_ratio: covered as f64 / sizes.bytes().max(1) as f64,
            }
        })
        .collect();
    Ok(DictBuildReport {
        name: dict_name.to_string(),
        min_images,
        chunks: chosen.len() as u64,
        bytes,
        added_bytes: converted.images.iter().map(|i| i.added_bytes).sum(),
        coverage,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The layer tar: one file `chunks/<id>` per chunk, each chunk read and checked on the way.
fn write_tar(
    writer: &SharedWriter,
    chosen: &[(ChunkLocation, ChunkId)],
    path: &std::path::Path,
    total: u64,
    progress: &dyn Progress,
) -> Result<()> {
    progress.set_length(total, Unit::Bytes);
    progress.set_message("gathering chunks");
    let file = std::fs::File::create(path).with_path("create", path)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut frame: Option<((crate::BlobId, u64), Vec<u8>)> = None;
    let mut reader: Option<BlobReader> = None;
    for (location, id) in chosen {
        if frame
            .as_ref()
            .is_none_or(|(key, _)| *key != location.frame_key())
        {
            if reader.as_ref().is_none_or(|r| r.id() != location.blob) {
                reader = Some(BlobReader::open(
                    &writer.store().blob_path(&location.blob),
                    location.blob,
                )?);
            }
            let decoded = reader
                .as_ref()
                .expect("set above")
                .read_frame(location, writer.store())?;
            frame = Some((location.frame_key(), decoded));
        }
        let (_, data) = frame.as_ref().expect("set above");
        let object = || format!("blob {} offset {}", location.blob, location.slice.offset);
        let chunk = chunk_from_frame(id, data, location.slice.skip, location.slice.len, object)?;
        let mut header = tar::Header::new_ustar();
        header
            .set_path(format!("chunks/{}", id.to_hex()))
            .with_path("write", path)?;
        header.set_size(chunk.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, chunk).with_path("write", path)?;
        progress.inc(chunk.len() as u64);
    }
    let out = tar.into_inner().with_path("write", path)?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io("write", path, e.into_error()))?;
    file.sync_all().with_path("sync", path)?;
    Ok(())
}

impl SharedWriter {
    /// Builds a dictionary image `dict_name` of the chunks at least `min_images` of `names`
    /// share (`cairn dict build`).
    pub fn build_dict(
        &self,
        names: &[String],
        min_images: usize,
        dict_name: &str,
        progress: &dyn Progress,
    ) -> Result<DictBuildReport> {
        build_dict(self, names, min_images, dict_name, progress)
    }
}
