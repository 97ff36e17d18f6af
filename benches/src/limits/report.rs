//! What the limits bench measured, the limits and ratios computed from it, and its renderings:
//! a Markdown table with summary lines (printed, and `report.md`) and JSON (`report.json`,
//! `--json`).

use super::converts::ConvertRun;
use crate::harness::machine::Machine;
use crate::harness::pipeline::clock::Span;
use crate::harness::pipeline::mbps;
use serde::Serialize;

/// One stage, alone, over the whole image.
#[derive(Debug, Serialize)]
pub struct Stage {
    pub id: String,
    pub label: String,
    /// Bytes the stage took in (compressed bytes, tar bytes, file contents, new chunks or
    /// stored frames); the per-GB figures are per GB of tar whatever the input.
    pub input_bytes: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
    pub cpu_s_per_gb: f64,
    /// MB of tar per CPU second: what one core doing only this stage keeps up with.
    pub core_mbps: f64,
}

impl Stage {
    pub fn new(id: &str, label: &str, input_bytes: u64, span: Span, tar_bytes: u64) -> Stage {
        Stage {
            id: id.into(),
            label: label.into(),
            input_bytes,
            cpu_s: span.cpu_s,
            wall_s: span.wall_s,
            cpu_s_per_gb: span.cpu_s / (tar_bytes as f64 / 1e9),
            core_mbps: mbps(tar_bytes, span.cpu_s),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub layers: usize,
    pub compressed_bytes: u64,
    pub tar_bytes: u64,
    /// Bytes of regular files' contents (what is chunked).
    pub file_bytes: u64,
    pub chunks: u64,
    /// Distinct chunks: what a convert into an empty store compresses and writes.
    pub new_chunks: u64,
    pub new_chunk_bytes: u64,
    /// Bytes of the stored frames (stage 5's output).
    pub stored_bytes: u64,
    pub chunker: String,
    pub compression: String,
    /// `std::thread::available_parallelism`.
    pub cores: usize,
    pub machine: Machine,
    /// How the converts ran.
    pub cairn: String,
    pub stages: Vec<Stage>,
    /// CPU seconds of decoding each layer (stage 1 by layer).
    pub decode_layer_cpu_s: Vec<f64>,
    pub stages_cpu_s: f64,
    /// tar MB / (the stages' CPU seconds / cores): every core busy, the stages perfectly
    /// overlapped, nothing else done.
    pub pipeline_limit_mbps: f64,
    pub convert_mbps: f64,
    pub convert_ratio: f64,
    /// Layers decoded at once at best: min(cores, layers).
    pub decode_parallelism: usize,
    /// tar MB / (decode CPU seconds / decode_parallelism).
    pub known_limit_mbps: f64,
    pub known_mbps: f64,
    pub known_ratio: f64,
    /// tar MB / the longer of (decode CPU seconds / decode_parallelism) and the largest
    /// layer's decode CPU seconds: the decode-only limit once a layer too large to share the
    /// cores evenly with the others is accounted for. Never above `known_limit_mbps`.
    pub known_critical_path_limit_mbps: f64,
    pub known_critical_path_ratio: f64,
    /// tar MB / (CPU seconds of the stages known content still needs, `KNOWN_CONTENT_STAGES`,
    /// / cores): a limit the convert of known content cannot pass on this machine whatever
    /// the overlap, below the decode-only limits when the cores are few.
    pub known_pipeline_limit_mbps: f64,
    pub known_pipeline_ratio: f64,
    /// Blob bytes the known-content convert added to the store (0 expected).
    pub known_added_blob_bytes: u64,
    /// The image converted again as it is: layer objects reused by digest, no layer read.
    pub layer_reuse_mbps: f64,
    /// The converts: new data, known content, layer objects reused.
    pub converts: Vec<ConvertRun>,
}

/// The stages a convert of known content still runs: the layer must be decoded and checked
/// against its digests, and its chunks cut and hashed to find them stored.
pub const KNOWN_CONTENT_STAGES: [&str; 5] =
    ["decode", "sha256_blob", "sha256_tar", "fastcdc", "blake3"];

/// What `Report::new` computes the limits and ratios from.
pub struct Measured {
    pub stages: Vec<Stage>,
    pub decode_layers: Vec<Span>,
    pub cores: usize,
    pub tar_bytes: u64,
    /// Converts of new data, of known content, and with layer objects reused.
    pub converts: [ConvertRun; 3],
}

/// The figures that are not computed: the image and the machine.
pub struct Inputs {
    pub source: String,
    pub compressed_bytes: u64,
    pub file_bytes: u64,
    pub chunks: u64,
    pub new_chunks: u64,
    pub new_chunk_bytes: u64,
    pub stored_bytes: u64,
    pub chunker: String,
    pub compression: String,
    pub machine: Machine,
    pub cairn: String,
    pub known_added_blob_bytes: u64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl Report {
    pub fn new(inputs: Inputs, measured: Measured) -> Report {
        let tar = measured.tar_bytes;
        let cores = measured.cores.max(1);
        let stages_cpu_s: f64 = measured.stages.iter().map(|s| s.cpu_s).sum();
        let pipeline_limit_mbps = mbps(tar, stages_cpu_s / cores as f64);
        // Known content needs only decoding on the critical path (digests, chunking and
        // lookups can run beside it), and one layer's gzip or zstd stream decodes serially:
        // at most one core per layer works on it, so min(cores, layers) cores at best. A
        // layer that takes longer alone than that even share bounds it harder still: the
        // critical-path limit.
        let decode_cpu_s: f64 = measured.decode_layers.iter().map(|s| s.cpu_s).sum();
        let largest_layer_s = measured
            .decode_layers
            .iter()
            .map(|s| s.cpu_s)
            .fold(0.0, f64::max);
        let layers = measured.decode_layers.len();
        let decode_parallelism = cores.min(layers).max(1);
        let shared_s = decode_cpu_s / decode_parallelism as f64;
        let known_limit_mbps = mbps(tar, shared_s);
        let known_critical_path_limit_mbps = mbps(tar, shared_s.max(largest_layer_s));
        let known_stages_cpu_s: f64 = measured
            .stages
            .iter()
            .filter(|s| KNOWN_CONTENT_STAGES.contains(&s.id.as_str()))
            .map(|s| s.cpu_s)
            .sum();
        let known_pipeline_limit_mbps = mbps(tar, known_stages_cpu_s / cores as f64);
        let [new, known, reuse] = measured.converts;
        let (convert_mbps, known_mbps) = (new.mbps(tar), known.mbps(tar));
        Report {
            source: inputs.source,
            layers,
            compressed_bytes: inputs.compressed_bytes,
            tar_bytes: tar,
            file_bytes: inputs.file_bytes,
            chunks: inputs.chunks,
            new_chunks: inputs.new_chunks,
            new_chunk_bytes: inputs.new_chunk_bytes,
            stored_bytes: inputs.stored_bytes,
            chunker: inputs.chunker,
            compression: inputs.compression,
            cores,
            machine: inputs.machine,
            cairn: inputs.cairn,
            stages: measured.stages,
            decode_layer_cpu_s: measured.decode_layers.iter().map(|s| s.cpu_s).collect(),
            stages_cpu_s,
            pipeline_limit_mbps,
            convert_mbps,
            convert_ratio: ratio(convert_mbps, pipeline_limit_mbps),
            decode_parallelism,
            known_limit_mbps,
            known_mbps,
            known_ratio: ratio(known_mbps, known_limit_mbps),
            known_critical_path_limit_mbps,
            known_critical_path_ratio: ratio(known_mbps, known_critical_path_limit_mbps),
            known_pipeline_limit_mbps,
            known_pipeline_ratio: ratio(known_mbps, known_pipeline_limit_mbps),
            known_added_blob_bytes: inputs.known_added_blob_bytes,
            layer_reuse_mbps: reuse.mbps(tar),
            converts: vec![new, known, reuse],
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// The stage table and the summary lines (Markdown).
pub fn table(r: &Report) -> String {
    let mut out = String::from(
        "| stage | input MB | CPU s | wall s | CPU s per GB of tar | MB/s of tar, one core |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for s in &r.stages {
        out += &format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.1} |\n",
            s.label,
            mb(s.input_bytes),
            s.cpu_s,
            s.wall_s,
            s.cpu_s_per_gb,
            s.core_mbps
        );
    }
    let per_gb = r.stages_cpu_s / (r.tar_bytes as f64 / 1e9);
    out += &format!(
        "| **all stages** | | **{:.3}** | | **{per_gb:.3}** | **{:.1}** |\n\n",
        r.stages_cpu_s,
        mbps(r.tar_bytes, r.stages_cpu_s)
    );
    let [new, known, reuse] = [&r.converts[0], &r.converts[1], &r.converts[2]];
    out += &format!(
        "- pipeline limit: {} MB of tar / ({:.3} CPU s / {} cores) = **{:.1} MB/s**\n",
        mb(r.tar_bytes),
        r.stages_cpu_s,
        r.cores,
        r.pipeline_limit_mbps
    );
    out += &format!(
        "- convert into an empty store: {:.2} s wall, {:.2} s CPU: **{:.1} MB/s = {:.2} of \
         the pipeline limit**\n",
        new.span.wall_s, new.span.cpu_s, r.convert_mbps, r.convert_ratio
    );
    let largest = r.decode_layer_cpu_s.iter().copied().fold(0.0, f64::max);
    out += &format!(
        "- known-content limit: decode alone, {:.3} CPU s / min({} cores, {} layers) = \
         **{:.1} MB/s**; with the largest layer ({largest:.3} CPU s) on a core of its own: {:.1} MB/s; \
         decode, sha256, FastCDC and BLAKE3 (what known content still needs) over {} cores: \
         {:.1} MB/s\n",
        r.decode_layer_cpu_s.iter().sum::<f64>(),
        r.cores,
        r.layers,
        r.known_limit_mbps,
        r.known_critical_path_limit_mbps,
        r.cores,
        r.known_pipeline_limit_mbps
    );
    out += &format!(
        "- convert of the same content again (layers re-read; {} MB of blobs added): {:.2} s \
         wall, {:.2} s CPU: **{:.1} MB/s = {:.2} of the known-content limit** ({:.2} of the \
         largest layer's, {:.2} of the known-content stages')\n",
        mb(r.known_added_blob_bytes),
        known.span.wall_s,
        known.span.cpu_s,
        r.known_mbps,
        r.known_ratio,
        r.known_critical_path_ratio,
        r.known_pipeline_ratio
    );
    out += &format!(
        "- convert of the same image again (layer objects reused by digest, no layer read): \
         {:.2} s wall, {:.2} s CPU: {:.1} MB/s\n",
        reuse.span.wall_s, reuse.span.cpu_s, r.layer_reuse_mbps
    );
    out
}

/// `report.md`: the inputs, the machine, the table and how it was measured.
pub fn markdown(r: &Report) -> String {
    let mut out = String::from("# cairn limits\n\n");
    out += &format!(
        "- image: `{}` ({} layers, {} MB stored, {} MB of tar, {} MB of file contents)\n\
         - {} chunks ({}), {} new ({} MB), stored in {} MB of frames ({})\n",
        r.source,
        r.layers,
        mb(r.compressed_bytes),
        mb(r.tar_bytes),
        mb(r.file_bytes),
        r.chunks,
        r.chunker,
        r.new_chunks,
        mb(r.new_chunk_bytes),
        mb(r.stored_bytes),
        r.compression
    );
    out += &format!(
        "- machine: {} cores ({}), {:.1} GiB; load average {:.2} at the start, {:.2} at the end\n\
         - converts ran with: {}\n\n",
        r.cores,
        r.machine.cpu_model,
        r.machine.memory_bytes as f64 / (1u64 << 30) as f64,
        r.machine.load_average_start,
        r.machine.load_average_end,
        r.cairn
    );
    out += "MB = 10^6 bytes, GB = 10^9. Each stage ran alone over the whole image on one \
            thread, its input in memory (loading it is not counted); CPU s is this process's \
            CPU clock (user + system). The pipeline limit assumes every core busy with the \
            stages perfectly overlapped; a convert also parses the tar, looks chunks up and \
            writes metadata and the index, which no stage counts. The converts are child \
            processes, each after a `sync`: wall time from start to exit, CPU time the \
            kernel's. The known-content convert reads a `docker save` archive of the image's \
            own blobs whose layers state no digest, so cairn cannot reuse the first convert's \
            layer objects and reads every layer.\n\n";
    out += &table(r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, wall_s: f64) -> ConvertRun {
        ConvertRun {
            name: name.into(),
            source: "oci:x".into(),
            span: Span {
                cpu_s: wall_s * 1.5,
                wall_s,
            },
        }
    }

    fn span(cpu_s: f64) -> Span {
        Span {
            cpu_s,
            wall_s: cpu_s,
        }
    }

    fn inputs() -> Inputs {
        Inputs {
            source: "oci:x".into(),
            compressed_bytes: 300,
            file_bytes: 900,
            chunks: 3,
            new_chunks: 2,
            new_chunk_bytes: 800,
            stored_bytes: 100,
            chunker: "fastcdc".into(),
            compression: "zstd-3".into(),
            machine: crate::harness::machine::machine(0.0),
            cairn: "in-process".into(),
            known_added_blob_bytes: 0,
        }
    }

    fn report_with(decode_layers: Vec<Span>) -> Report {
        let tar = 1_000_000_000;
        Report::new(
            inputs(),
            Measured {
                stages: vec![
                    Stage::new("decode", "decode", 300, span(2.0), tar),
                    Stage::new("zstd", "zstd", 100, span(3.0), tar),
                ],
                decode_layers,
                cores: 2,
                tar_bytes: tar,
                converts: [run("new", 10.0), run("known", 4.0), run("reuse", 0.5)],
            },
        )
    }

    #[test]
    fn limits_and_ratios() {
        // One layer: decoding cannot use the second core.
        let report = report_with(vec![span(2.0)]);
        assert_eq!(report.stages[0].cpu_s_per_gb, 2.0);
        assert_eq!(report.stages[0].core_mbps, 500.0);
        assert_eq!(report.pipeline_limit_mbps, 400.0);
        assert_eq!(report.convert_mbps, 100.0);
        assert_eq!(report.convert_ratio, 0.25);
        assert_eq!(
            (report.decode_parallelism, report.known_limit_mbps),
            (1, 500.0)
        );
        assert_eq!(report.known_ratio, 0.5);
        assert_eq!(report.known_critical_path_limit_mbps, 500.0);
        // Of the two stages only decode is needed for known content.
        assert_eq!(report.known_pipeline_limit_mbps, 1000.0);
        let md = markdown(&report);
        assert!(
            md.contains("| decode | 0.0 | 2.000 | 2.000 | 2.000 | 500.0 |"),
            "{md}"
        );
        assert!(md.contains("**400.0 MB/s**"), "{md}");
        assert_eq!(mbps(5, 0.0), 0.0);

        // Two layers on two cores, one taking 3/4 of the decoding: it is the critical path.
        let report = report_with(vec![span(1.5), span(0.5)]);
        assert_eq!(
            (report.decode_parallelism, report.known_limit_mbps),
            (2, 1000.0)
        );
        assert_eq!(report.known_critical_path_limit_mbps, 1000.0 / 1.5);
    }
}
