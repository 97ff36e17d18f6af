//! Entry points for the fuzz targets in `fuzz/`: each feeds arbitrary bytes to one decoder and
//! must return (with an error or not) without panicking. Not a stable API.

use std::io::Read;

/// Walks a tar stream to its end, reading every entry's content.
pub fn tar_stream(data: &[u8]) {
    let mut stream = crate::layer::TarStream::new(data, "fuzz");
    let mut buf = [0u8; 4096];
    while let Ok(Some(_)) = stream.next_entry() {
        let mut content = stream.content();
        loop {
            match content.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    let _ = stream.take_trailer();
}

/// Walks a tar stream read from `input` as convert does and checks what must hold for any
/// input (panicking otherwise, for the fuzzer to report): the raw bytes before each entry's
/// content stay within the walker's bound; a stream the walker accepts comes back exactly
/// (every entry's raw bytes and content, then the trailer, hash to what was read); and every
/// entry path and hardlink target that unpack's path rule lets through stays inside the root.
/// Returns how many entries were read (`None` if the stream was refused).
pub fn tar_walk(input: &mut dyn Read) -> Option<usize> {
    use crate::layer::entry_path::check_path;
    use crate::layer::tar_stream::MAX_HEADER_BYTES;
    struct Tee<'a> {
        inner: &'a mut dyn Read,
        hasher: blake3::Hasher,
    }
    impl Read for Tee<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
    }
    let inside = |path: &[u8]| {
        if check_path(path).is_ok() {
            assert!(
                !path.starts_with(b"/"),
                "an absolute path passed the path rule"
            );
            assert!(
                path.split(|&b| b == b'/').all(|c| c != b".."),
                "a `..` component passed the path rule"
            );
        }
    };
    let mut tee = Tee {
        inner: input,
        hasher: blake3::Hasher::new(),
    };
    let mut out = blake3::Hasher::new();
    let mut entries = 0;
    let mut stream = crate::layer::TarStream::new(&mut tee, "fuzz");
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let entry = match stream.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(_) => return None,
        };
        assert!(
            entry.raw.len() as u64 <= MAX_HEADER_BYTES,
            "raw header over the bound"
        );
        inside(&entry.meta.path);
        if let Some(target) = &entry.meta.link_target {
            inside(target);
        }
        out.update(&entry.raw);
        entries += 1;
        let mut content = stream.content();
        loop {
            match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.update(&buf[..n]);
                }
                Err(_) => return None,
            }
        }
    }
    out.update(&stream.take_trailer());
    drop(stream);
    assert_eq!(
        out.finalize(),
        tee.hasher.finalize(),
        "the walker's bytes differ from the stream"
    );
    Some(entries)
}

/// Decodes a blob's footer and table of contents, then again with the ToC checksum made to
/// match (so random ToC records reach the record checks), and decodes every frame the ToC
/// names and takes each chunk out of it.
pub fn blob_toc(data: &[u8]) {
    use crate::format::blob::{decode_toc, FOOTER_LEN};
    let _ = decode_toc(data, "fuzz");
    let len = data.len() as u64;
    if len < FOOTER_LEN {
        return;
    }
    let footer_at = (len - FOOTER_LEN) as usize;
    let toc_offset = u64::from_le_bytes(data[footer_at..footer_at + 8].try_into().unwrap());
    if toc_offset > footer_at as u64 {
        return;
    }
    let mut patched = data.to_vec();
    let checksum = blake3::hash(&data[toc_offset as usize..footer_at]);
    patched[footer_at + 16..footer_at + 48].copy_from_slice(checksum.as_bytes());
    let Ok(toc) = decode_toc(&patched, "fuzz") else {
        return;
    };
    for entry in toc {
        let slice = entry.slice;
        let (start, end) = (
            slice.offset as usize,
            slice.offset as usize + slice.stored_len as usize,
        );
        let object = || "fuzz".to_string();
        if let Ok(frame) = crate::format::decode_frame(
            &patched[start..end],
            slice.frame_len,
            slice.codec,
            object,
            &crate::format::NoBases,
        ) {
            let _ =
                crate::format::chunk_from_frame(&entry.id, &frame, slice.skip, slice.len, object);
        }
    }
}

/// Decodes a bootstrap file.
pub fn bootstrap(data: &[u8]) {
    let _ = crate::format::bootstrap::Bootstrap::decode(data, "fuzz");
}

/// Decodes a bootstrap payload as if its checksum had matched (reaches the bincode decoder and
/// the reference checks, which the checksum otherwise shields from random input).
pub fn bootstrap_payload(data: &[u8]) {
    let _ = crate::format::bootstrap::Bootstrap::decode_payload(data, "fuzz");
}

/// Decodes the same bytes as a registry's manifest, index and config are decoded (within
/// `oci::limits`: size, layer count, index entries), and walks what a pull then reads of them.
pub fn registry_manifest(data: &[u8]) {
    use crate::oci::limits::{decode_config, decode_index, decode_manifest};
    if let Ok(manifest) = decode_manifest(data, "fuzz") {
        assert!(manifest.layers.len() <= crate::oci::limits::MAX_LAYERS);
        for layer in &manifest.layers {
            let _ = crate::Sha256Digest::parse(&layer.digest);
        }
    }
    if let Ok(index) = decode_index(data, "fuzz") {
        assert!(index.manifests.len() <= crate::oci::limits::MAX_INDEX_ENTRIES);
        for entry in &index.manifests {
            let _ = entry.platform.as_ref().map(crate::platform::Platform::from);
        }
    }
    if let Ok(config) = decode_config(data, "fuzz") {
        assert!(config.diff_ids().len() <= crate::oci::limits::MAX_LAYERS);
        let _ = config.platform();
    }
}

/// Decodes the same bytes as a store-format artifact's manifest (then each of its files'
/// descriptors) and config (then checked against a store and its bases listed).
pub fn artifact_config(data: &[u8]) {
    use crate::oci::artifact::{ArtifactConfig, ArtifactFile, ArtifactManifest};
    if let Ok(manifest) = ArtifactManifest::decode(data, "fuzz") {
        for desc in &manifest.layers {
            let _ = ArtifactFile::from_descriptor(desc, "fuzz");
        }
    }
    if let Ok(config) = ArtifactConfig::decode(data, "fuzz") {
        let _ = config.check("fuzz", &crate::chunk::ChunkerParams::default());
        for blob in config.bases.keys() {
            let id = crate::BlobId::from_hex(blob).expect("decode checked every bases blob id");
            config
                .bases_of(&id)
                .expect("decode checked every base chunk id");
        }
    }
}

/// Parses an OCI index, manifest and config from the same bytes.
pub fn oci_json(data: &[u8]) {
    use crate::oci::{parse, Config, Index, Manifest};
    let _ = parse::<Index>(data, "fuzz");
    let _ = parse::<Manifest>(data, "fuzz");
    let _ = parse::<Config>(data, "fuzz");
}

/// Opens arbitrary bytes as a layer metadata object with the object id and block hashes
/// unchecked (so random tables and blocks reach the decoders and their checks), then reads
/// every entry and path record it claims, by streaming and by random access.
pub fn layer_meta(data: &[u8]) {
    use crate::format::layer_meta::LayerMeta;
    let Ok(meta) = LayerMeta::open_unverified(data.to_vec(), "fuzz") else {
        return;
    };
    let _ = (meta.info(), meta.blobs());
    for entry in meta.entries() {
        if entry.is_err() {
            break;
        }
    }
    for n in 0..meta.entry_count().min(4096) {
        if meta.entry(n).is_err() {
            break;
        }
    }
    let mut parents: Vec<Vec<u8>> = Vec::new();
    for record in meta.paths().take(4096) {
        let Ok(record) = record else { break };
        let _ = meta.lookup(&record.parent, &record.name);
        if parents.last() != Some(&record.parent) {
            parents.push(record.parent);
        }
    }
    for dir in parents.iter().take(64) {
        for child in meta.children(dir) {
            if child.is_err() {
                break;
            }
        }
    }
}

/// Derives a few entries from arbitrary bytes (paths from a small set of names, whiteouts and
/// opaque markers among them; chunks in a three-blob table), writes them with small block and
/// sort bounds (many blocks, many runs), reads them back and checks that every entry, the path
/// index (against `model_paths`), every lookup and every directory listing come back equal.
pub fn layer_meta_roundtrip(data: &[u8]) {
    use crate::format::layer_meta::{model_paths, LayerMeta, LayerMetaWriter, WriterLimits};
    let entries = fuzz_entries(data);
    // On tmpfs when there is one: the writer's fsync is then free, and runs are many.
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("cairn-fuzz-layer-meta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("object");
    let limits = WriterLimits {
        entry_block: 300,
        path_block: 100,
        sort_run: 600,
        sort_fan_in: 2,
    };
    let mut writer = LayerMetaWriter::with_limits(path.clone(), limits).expect("create");
    for entry in &entries {
        writer.push(entry.clone()).expect("push");
    }
    let source = crate::format::layer_meta::LayerSource {
        diff_id: crate::Sha256Digest::of(data),
        size: data.len() as u64,
        trailer: vec![0; data.len() % 7],
    };
    let blobs = (0..3u8)
        .map(|b| crate::format::bootstrap::BlobRecord {
            id: crate::BlobId([b; 32]),
            size: b as u64,
        })
        .collect();
    // No fail point of its own until convert writes these objects.
    let sealed = writer
        .finish(source, blobs, "convert.bootstrap.write")
        .expect("finish");
    let size = std::fs::metadata(&sealed.tmp_path).expect("written").len();
    assert_eq!(sealed.size, size);
    assert!(sealed.entry_blocks as u64 <= sealed.info.entry_count);
    assert!(sealed.path_blocks as u64 <= sealed.path_records);
    assert!(sealed.sort_runs <= entries.len());
    let meta = LayerMeta::open(&sealed.tmp_path, sealed.id, "fuzz").expect("open");
    assert_eq!(meta.info(), &sealed.info);
    let read: Vec<_> = meta.entries().map(|e| e.expect("entry")).collect();
    assert_eq!(read, entries);
    for (n, entry) in entries.iter().enumerate().rev() {
        assert_eq!(&meta.entry(n as u64).expect("entry"), entry);
    }
    let (model, root_opaque) = model_paths(&entries);
    assert_eq!(meta.info().root_opaque, root_opaque);
    let paths: Vec<_> = meta.paths().map(|r| r.expect("path")).collect();
    assert_eq!(paths, model);
    assert_eq!(sealed.path_records, model.len() as u64);
    for record in &model {
        let found = meta.lookup(&record.parent, &record.name).expect("lookup");
        assert_eq!(found.as_ref(), Some(record));
        let children: Vec<_> = meta
            .children(&record.parent)
            .map(|r| r.expect("child"))
            .collect();
        let expected: Vec<_> = model
            .iter()
            .filter(|r| r.parent == record.parent)
            .cloned()
            .collect();
        assert_eq!(children, expected);
    }
    assert_eq!(meta.lookup(b"", b"absent").expect("lookup"), None);
    let _ = std::fs::remove_file(&path);
}

/// The entries `layer_meta_roundtrip` writes: 4 bytes per entry (kind, path, chunks).
fn fuzz_entries(data: &[u8]) -> Vec<crate::format::layer_meta::LayerEntry> {
    use crate::format::bootstrap::ChunkRecord;
    use crate::layer::{EntryKind, EntryMeta};
    const NAMES: &[&[u8]] = &[
        b"a",
        b"b",
        b"dir",
        b".wh.a",
        b".wh.dir",
        b".wh..wh..opq",
        b".",
        b"",
        b"..",
        b".wh.",
        b".wh..",
        b"a-name-long-enough-to-need-a-pax-header-in-a-real-tar-archive-xxxxxxxxxxxxxx",
    ];
    const KINDS: &[EntryKind] = &[
        EntryKind::File,
        EntryKind::Directory,
        EntryKind::Symlink,
        EntryKind::Hardlink,
        EntryKind::Fifo,
        EntryKind::Other(b'S'),
    ];
    data.chunks(4)
        .take(512)
        .map(|b| {
            let byte = |i: usize| b.get(i).copied().unwrap_or(0) as usize;
            let mut path = Vec::new();
            if byte(0) & 0x80 != 0 {
                path.extend_from_slice(b"./");
            }
            for c in 0..1 + byte(1) % 3 {
                if c > 0 {
                    path.push(b'/');
                }
                path.extend_from_slice(NAMES[(byte(1) / 3 + c * byte(2)) % NAMES.len()]);
            }
            let chunks: Vec<ChunkRecord> = (0..byte(3) % 4)
                .map(|i| ChunkRecord {
                    id: crate::ChunkId([i as u8; 32]),
                    blob: ((byte(2) + i) % 3) as u32,
                    slice: crate::format::FrameSlice {
                        offset: 16 + i as u64,
                        stored_len: 1 + byte(3) as u32,
                        frame_len: 1 + byte(3) as u32,
                        skip: 0,
                        len: 1 + byte(3) as u32,
                        codec: crate::format::Codec::Raw,
                    },
                })
                .collect();
            crate::format::layer_meta::LayerEntry {
                raw_header: vec![byte(0) as u8; byte(0) * 4],
                meta: EntryMeta {
                    size: chunks.iter().map(|c| c.slice.len as u64).sum(),
                    path,
                    kind: KINDS[byte(0) % KINDS.len()],
                    mode: 0o644,
                    uid: byte(2) as u64,
                    gid: 0,
                    uname: Vec::new(),
                    gname: b"root".to_vec(),
                    mtime: -(byte(1) as i64),
                    link_target: (byte(0) % 2 == 0).then(|| b"target".to_vec()),
                    xattrs: vec![(b"user.x".to_vec(), vec![byte(3) as u8])],
                    dev_major: 0,
                    dev_minor: 0,
                },
                chunks,
            }
        })
        .collect()
}

/// Decodes a delta frame (header, then zstd against a base) from arbitrary bytes, the base taken
/// from the input's head; then compresses the rest against that base and checks it decodes back.
pub fn delta_frame(data: &[u8]) {
    use crate::format::{delta, BaseSource, Codec};
    struct Fixed<'b>(&'b [u8]);
    impl BaseSource for Fixed<'_> {
        fn base_bytes(&self, ids: &[crate::ChunkId]) -> crate::Result<Vec<u8>> {
            Ok(self.0.repeat(ids.len()))
        }
    }
    let split = data.first().map_or(0, |&b| b as usize * data.len() / 256);
    let (base, rest) = data.split_at(split);
    let frame_len = (rest.len() as u32)
        .saturating_mul(4)
        .min(crate::format::MAX_FRAME_LEN);
    let object = || "fuzz".to_string();
    let _ = crate::format::decode_frame(rest, frame_len, Codec::Delta, object, &Fixed(base));
    // The same bytes behind a valid header, so that they reach zstd.
    let mut forced = Vec::new();
    let header = delta::DeltaHeader {
        bases: vec![crate::ChunkId([0; 32])],
        plain_stored: 0,
    };
    header.encode(&mut forced);
    forced.extend_from_slice(rest);
    let _ = crate::format::decode_frame(&forced, frame_len, Codec::Delta, object, &Fixed(base));
    if let Ok(zstd) = delta::compress(rest, base, 1) {
        let back = delta::decompress(&zstd, base, rest.len()).expect("own delta frame decodes");
        assert_eq!(back, rest, "a delta frame decodes to other bytes");
    }
}

/// Reads a bundle record by record as `bundle import` does: every record decoded (objects
/// copied to a sink), to the end record's checksum.
pub fn bundle_records(data: &[u8]) {
    use crate::format::bundle::{BundleReader, Kind};
    let Ok(mut reader) = BundleReader::new(data, "fuzz") else {
        return;
    };
    while let Ok(Some(head)) = reader.next_head() {
        let read = match head.kind {
            Kind::Manifest => reader.manifest(&head).map(drop),
            Kind::Relied => reader.relied(&head).map(drop),
            Kind::Frame => reader.frame(&head).map(drop),
            Kind::LayerObject | Kind::Bootstrap => {
                reader.object(&head, &mut std::io::sink()).map(drop)
            }
            Kind::End => reader.skip(&head),
        };
        if read.is_err() {
            return;
        }
    }
}

/// Reads a chunk dictionary file; one that reads must write back to a file that reads back
/// equal (panicking otherwise, for the fuzzer to report).
pub fn dict_file(data: &[u8]) {
    use crate::format::dict::ChunkDictionary;
    let Ok(dict) = ChunkDictionary::read(&mut &data[..], "fuzz") else {
        return;
    };
    let mut again = Vec::new();
    dict.write(&mut again)
        .expect("a dictionary that read writes");
    let back = ChunkDictionary::read(&mut &again[..], "fuzz").expect("a written dictionary reads");
    assert_eq!(back, dict, "a dictionary changed through write and read");
}
