//! Throughput of the pieces a convert is made of, on the demo image's layer tars (text,
//! libraries and a 3 MiB random binary): chunking, chunk ids (BLAKE3) against OCI digests
//! (sha256), zstd level 3 per chunk both ways, and gzip decompression of a layer.
//!
//! `cargo bench -p cairn-bench --bench primitives` (add `-- --quick` for a fast pass).

use cairn_engine::{Chunker, ChunkerParams, Compression};
use cairn_sample::{demo_layers, LayerCompression};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

/// The demo v1 layers, one after the other (about 4 MB).
fn data() -> Vec<u8> {
    demo_layers(1).expect("demo layers").concat()
}

fn chunks_of(data: &[u8], params: &ChunkerParams) -> Vec<Vec<u8>> {
    let mut chunker = Chunker::new(params).expect("valid chunker");
    let mut chunks = Vec::new();
    chunker
        .chunk_stream(data, |c| {
            chunks.push(c.to_vec());
            Ok::<_, std::io::Error>(())
        })
        .expect("in memory");
    chunks
}

fn chunking(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("chunking");
    group.throughput(Throughput::Bytes(data.len() as u64));
    let settings = [
        ("fastcdc-default", ChunkerParams::default()),
        ("fixed-1m", ChunkerParams::fixed(1 << 20).expect("valid")),
    ];
    for (name, params) in settings {
        let mut chunker = Chunker::new(&params).expect("valid chunker");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                chunker
                    .chunk_stream(black_box(&data[..]), |c| {
                        n += c.len();
                        Ok::<_, std::io::Error>(())
                    })
                    .expect("in memory");
                n
            })
        });
    }
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("hashing");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&data))));
    group.bench_function("sha256", |b| {
        use sha2::Digest;
        b.iter(|| sha2::Sha256::digest(black_box(&data)))
    });
    group.finish();
}

fn zstd_chunks(c: &mut Criterion) {
    let data = data();
    let chunks = chunks_of(&data, &ChunkerParams::default());
    let compressed: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| zstd::bulk::compress(c, 3).expect("compress"))
        .collect();
    let mut group = c.benchmark_group("zstd-3 per chunk");
    // Both directions are counted in uncompressed bytes.
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("compress", |b| {
        let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd");
        b.iter(|| {
            chunks
                .iter()
                .map(|c| compressor.compress(black_box(c)).expect("compress").len())
                .sum::<usize>()
        })
    });
    group.bench_function("decompress", |b| {
        let mut decompressor = zstd::bulk::Decompressor::new().expect("zstd");
        b.iter(|| {
            compressed
                .iter()
                .zip(&chunks)
                .map(|(z, c)| {
                    decompressor
                        .decompress(black_box(z), c.len())
                        .expect("decompress")
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

fn gzip_layer(c: &mut Criterion) {
    let layers = demo_layers(1).expect("demo layers");
    let mut group = c.benchmark_group("gzip layer decompression");
    for (i, tar) in layers.iter().enumerate() {
        let gz = LayerCompression::Gzip.compress(tar).expect("gzip");
        group.throughput(Throughput::Bytes(tar.len() as u64));
        group.bench_with_input(BenchmarkId::new("layer", i), &gz, |b, gz| {
            b.iter(|| {
                let mut reader = Compression::Gzip.decoder(&gz[..]).expect("decoder");
                let mut sink = Vec::with_capacity(tar.len());
                reader.read_to_end(&mut sink).expect("gunzip");
                sink.len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = primitives;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = chunking, hashing, zstd_chunks, gzip_layer
}
criterion_main!(primitives);
