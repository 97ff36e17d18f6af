//! End-to-end throughput on the demo image (`cairn_sample::write_demo_layouts`): convert of v1
//! into an empty store (gzip layers in, blobs, bootstrap and index out), and export of a layer's
//! exact tar from the store to `io::sink`, and unpack of the image into a new directory on the
//! temporary directory's filesystem. Throughput is in uncompressed tar bytes.
//!
//! `cargo bench -p cairn-bench --bench store` (add `-- --quick` for a fast pass).

use cairn_engine::{
    ConvertOptions, InitOptions, NoProgress, SourceSpec, StoreWriter, UnpackOptions,
};
use cairn_sample::{demo_layers, write_demo_layouts};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::path::Path;
use std::time::Duration;

fn convert_into(store: &StoreWriter, source: &str, name: &str) {
    store
        .convert(
            &ConvertOptions::new(SourceSpec::parse(source).expect("source"), name),
            &NoProgress,
        )
        .expect("convert");
}

fn v1_source(dir: &Path) -> String {
    let (v1, _) = write_demo_layouts(dir).expect("demo layouts");
    format!("oci:{}:v1", v1.display())
}

fn convert(c: &mut Criterion) {
    let images = tempfile::tempdir().expect("tempdir");
    let source = v1_source(images.path());
    let tar_bytes: usize = demo_layers(1)
        .expect("demo layers")
        .iter()
        .map(Vec::len)
        .sum();
    let mut group = c.benchmark_group("convert");
    group.throughput(Throughput::Bytes(tar_bytes as u64));
    group.bench_function("demo v1 into an empty store", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let store = StoreWriter::init(&dir.path().join("store"), &InitOptions::default())
                    .expect("init");
                convert_into(&store, &source, "v1");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn export(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = v1_source(tmp.path());
    let store =
        StoreWriter::init(&tmp.path().join("store"), &InitOptions::default()).expect("init");
    convert_into(&store, &source, "v1");
    let layers = demo_layers(1).expect("demo layers");
    let mut group = c.benchmark_group("export layer");
    for (i, tar) in layers.iter().enumerate() {
        group.throughput(Throughput::Bytes(tar.len() as u64));
        group.bench_with_input(BenchmarkId::new("demo v1 layer", i), &i, |b, &i| {
            b.iter(|| {
                store
                    .store()
                    .export_layer("v1", i, &mut std::io::sink(), &NoProgress)
                    .expect("export")
            })
        });
    }
    group.finish();
}

fn unpack(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = v1_source(tmp.path());
    let store =
        StoreWriter::init(&tmp.path().join("store"), &InitOptions::default()).expect("init");
    convert_into(&store, &source, "v1");
    let tar_bytes: usize = demo_layers(1)
        .expect("demo layers")
        .iter()
        .map(Vec::len)
        .sum();
    let mut group = c.benchmark_group("unpack");
    group.throughput(Throughput::Bytes(tar_bytes as u64));
    group.bench_function("demo v1 into an empty directory", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(tmp.path()).expect("tempdir"),
            |dir| {
                let target = dir.path().join("rootfs");
                store
                    .store()
                    .unpack("v1", &target, &UnpackOptions::default(), &NoProgress)
                    .expect("unpack");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = store;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = convert, export, unpack
}
criterion_main!(store);
