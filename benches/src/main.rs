//! `cairn-bench`: measurements that choose and check cairn's parameters and show where cairn
//! stands. Prints what it measured.
//!
//! - `cairn-bench footprint --old oci:DIR:REF --new oci:DIR:REF [--out DIR] [--peers]`: what
//!   the pair costs to store in plain layer storage, a containerd-style node, whole-file and
//!   fixed-chunk dedup, cairn, and (with `--peers`) restic, borg and casync; bytes, time, CPU
//!   and peak RSS per row, written as `report.md`, `report.json` and `footprint.svg`
//!   (`footprint/`).
//! - `cairn-bench sweep --old ... --new ... [--params MIN/AVG/MAX,...]`: the chunk-size sweep
//!   behind the default chunker parameters (`sweep.rs`, `docs/CHUNKING.md`).
//! - `cairn-bench big-file [--size-mb 600]`: peak RSS and speed of a layer with one large file
//!   (`big_file.rs`).
//! - `cairn-bench delta-pair [--size-mb 200] [--changed-permille 5]`: what delta frames save on a
//!   large file changed by scattered bytes (`delta_pair.rs`).
//! - `cairn-bench many-files [--files 1000000]`: time, peak RSS and store size of an image of
//!   very many files, convert to unpack (`many_files/`).
//! - `cairn-bench bundle --old oci:DIR:REF --new oci:DIR:REF [--out DIR] [--json]`: shipping
//!   OLD, then NEW to a site holding OLD, offline: a cairn bundle against a `docker save`-style
//!   tar, image-transmit's layer-digest tar and squashfs; bytes, create and import time, and
//!   issue 16's goals checked (`bundle/`).
//! - `cairn-bench limits --source oci:DIR[:REF] [--out DIR] [--json]`: each stage of a convert
//!   (decode, sha256, FastCDC, BLAKE3, zstd, writing the blob) alone on the image's own layers in
//!   CPU seconds per GB, the pipeline limit they allow on this machine, and `cairn convert`'s
//!   speed against it, for new data and for known content (`limits/`).
//! - `cairn-bench mount --image oci:DIR:REF...`: reading images through `cairn mount` against
//!   their unpacked trees, and a node's disk with the store against blobs plus snapshots;
//!   with `--start CMD`, a program's cold and warm start from each (`mount.rs`,
//!   `mount/start.rs`; needs root and /dev/fuse).
//!
//! Throughput micro-benchmarks are criterion targets: `cargo bench -p cairn-bench`.

mod big_file;
mod bundle;
mod delta_pair;
mod footprint;
mod harness;
mod limits;
mod many_files;
mod mount;
mod sweep;

use anyhow::Result;
use cairn_engine::InitOptions;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cairn-bench",
    about = "cairn benchmarks: storage footprint against other schemes, chunker parameter sweep"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store OLD then NEW in each storage scheme; one table of bytes, time, CPU and memory.
    Footprint {
        /// The older image: oci:DIR:REF (or docker-archive:FILE, or a layer file).
        #[arg(long)]
        old: String,
        /// The newer image.
        #[arg(long)]
        new: String,
        /// Where to write report.md, report.json and footprint.svg (and rows.jsonl, a row a
        /// line as each completes).
        #[arg(long, default_value = "bench-out")]
        out: PathBuf,
        /// Scratch directory for the rows' stores (default OUT/work; emptied first, removed after).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Keep the work directory.
        #[arg(long)]
        keep_work: bool,
        /// Also run restic, borg and casync, those found on PATH.
        #[arg(long)]
        peers: bool,
        /// The cairn binary (default: `cairn` next to cairn-bench; in-process if there is none).
        #[arg(long)]
        cairn: Option<PathBuf>,
    },
    /// Convert OLD then NEW (with OLD as dictionary) once per chunker setting.
    Sweep {
        #[arg(long)]
        old: String,
        #[arg(long)]
        new: String,
        /// Comma-separated MIN/AVG/MAX in KiB, e.g. 16/64/1024.
        #[arg(
            long,
            default_value = "4/16/1024,8/32/1024,16/64/1024,32/128/1024,64/256/1024"
        )]
        params: String,
        /// zstd level of the stores.
        #[arg(long, default_value_t = 3)]
        level: i32,
        /// Where to put the temporary stores (default: a temporary directory).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Convert (and export) a generated layer holding one file of SIZE MB: peak RSS and speed.
    BigFile {
        /// The file's size in MB (10^6 bytes).
        #[arg(long, default_value_t = 600)]
        size_mb: u64,
        /// Scratch directory (emptied first, removed after).
        #[arg(long, default_value = "bench-out/big-file")]
        work: PathBuf,
        /// The cairn binary (default: next to this one).
        #[arg(long)]
        cairn: Option<PathBuf>,
    },
    /// Two layers of one large file, the second with scattered bytes changed: what v2 adds to a
    /// store with delta frames off and on, convert and read time.
    DeltaPair {
        /// The file's size in MB (10^6 bytes).
        #[arg(long, default_value_t = 200)]
        size_mb: u64,
        /// Bytes of every thousand changed in v2, at scattered offsets.
        #[arg(long, default_value_t = 5)]
        changed_permille: u32,
        /// Scratch directory (emptied first, removed after).
        #[arg(long, default_value = "bench-out/delta-pair")]
        work: PathBuf,
        /// The cairn binary (default: next to this one).
        #[arg(long)]
        cairn: Option<PathBuf>,
        /// Also write the rows as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Generate two layer tars of very many files; measure convert, cat, ls, diff, export, unpack.
    ManyFiles {
        /// Regular files in v1 (v2 changes 1 %, removes 0.2 %, adds 0.2 %).
        #[arg(long, default_value_t = 1_000_000)]
        files: u64,
        /// The largest of the three large files, MB (the others are 1/2 and 1/4); 0: none.
        #[arg(long, default_value_t = 240)]
        large_mb: u64,
        /// Seed of the generated tree and contents.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Scratch directory for the tars, the store and the unpacked tree (emptied first,
        /// removed after unless --keep).
        #[arg(long, default_value = "bench-out/many-files")]
        work: PathBuf,
        /// The cairn binary (default: next to this one).
        #[arg(long)]
        cairn: Option<PathBuf>,
        /// Keep the work directory (tars and store).
        #[arg(long)]
        keep: bool,
        /// Also write every figure as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Stop a step that runs longer than this many seconds (it is reported as failed).
        #[arg(long, default_value_t = 3600)]
        step_timeout: u64,
    },
    /// Ship OLD, then NEW to a receiver holding OLD: cairn bundles against docker save, a
    /// layer-digest tar and squashfs; bytes, create and import time.
    Bundle {
        /// The older image: oci:DIR:REF (or docker-archive:FILE).
        #[arg(long)]
        old: String,
        /// The newer image.
        #[arg(long)]
        new: String,
        /// Where to write report.md and report.json; the scratch directory is OUT/work
        /// (emptied first, removed after).
        #[arg(long, default_value = "bench-out/bundle")]
        out: PathBuf,
        /// Keep the work directory (stores, bundles, tars, squashfs images).
        #[arg(long)]
        keep_work: bool,
        /// The cairn binary (default: next to this one).
        #[arg(long)]
        cairn: Option<PathBuf>,
        /// Print the report as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Each stage of a convert alone on the image's layers, the pipeline limit they allow, and
    /// `cairn convert` against it (new data, then known content).
    Limits(limits::Options),
    /// Read images through `cairn mount` and from their unpacked trees; the disk of a node
    /// running them from the store against blobs plus snapshots.
    Mount {
        /// Images, oldest first (each converted with the one before as dictionary).
        #[arg(long = "image", required = true)]
        images: Vec<String>,
        /// Scratch directory (emptied first, removed after); its file system is the "ext4" side.
        #[arg(long, default_value = "bench-out/mount")]
        work: PathBuf,
        /// The cairn binary (default: next to this one).
        #[arg(long)]
        cairn: Option<PathBuf>,
        #[command(flatten)]
        start: mount::StartOptions,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// One step of a footprint row, run by `footprint` as a measured child process.
    #[command(hide = true, subcommand)]
    Internal(Internal),
}

#[derive(Subcommand)]
enum Internal {
    /// Layer blobs into a registry-like directory, once per digest.
    Registry {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        source: String,
    },
    /// Layer blobs plus one unpacked snapshot per layer chain.
    Containerd {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        source: String,
    },
    /// Convert into a store of fixed 1 MiB chunks.
    Fixed {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        source: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        dict: Vec<String>,
    },
    /// Every distinct file of image NAME in STORE, zstd-compressed alone into DIR.
    WholeFile {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// A `docker save`-style tar of SOURCE, without the layers of --receiver-has images.
    ImageTar {
        #[arg(long)]
        source: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        receiver_has: Vec<String>,
    },
    /// Gunzip and untar each layer of ARCHIVE that DIR lacks into DIR/layers/<digest>.
    TarImport {
        #[arg(long)]
        archive: PathBuf,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Unpack each layer of SOURCE that DIR lacks into DIR/layers/<digest>.
    UnpackLayers {
        #[arg(long)]
        source: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// What `cairn convert` does (init with the defaults first if there is no store).
    Convert {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        source: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        dict: Vec<String>,
        /// `--delta off`.
        #[arg(long)]
        delta_off: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Footprint {
            old,
            new,
            out,
            work,
            keep_work,
            peers,
            cairn,
        } => {
            let report = footprint::run(&footprint::Options {
                old,
                new,
                out: out.clone(),
                work,
                keep_work,
                peers,
                cairn,
            })?;
            print!("{}", footprint::table(&report));
            eprintln!(
                "footprint: wrote report.md, report.json and footprint.svg to {}",
                out.display()
            );
            Ok(())
        }
        Command::Sweep {
            old,
            new,
            params,
            level,
            work,
            json,
        } => sweep::sweep(&old, &new, &params, level, work.as_deref(), json.as_deref()),
        Command::BigFile {
            size_mb,
            work,
            cairn,
        } => big_file::run(size_mb, &work, cairn.as_deref()),
        Command::Bundle {
            old,
            new,
            out,
            keep_work,
            cairn,
            json,
        } => {
            let report = bundle::run(&bundle::Options {
                old,
                new,
                out: out.clone(),
                keep_work,
                cairn,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bundle::report::table(&report));
            }
            eprintln!(
                "bundle: wrote report.md and report.json to {}",
                out.display()
            );
            Ok(())
        }
        Command::Limits(options) => limits::command(&options),
        Command::Mount {
            images,
            work,
            cairn,
            json,
            start,
        } => {
            let result = mount::run(&images, &work, cairn.as_deref(), json.as_deref(), &start);
            let _ = std::fs::remove_dir_all(&work);
            result
        }
        Command::DeltaPair {
            size_mb,
            changed_permille,
            work,
            cairn,
            json,
        } => delta_pair::run(
            size_mb,
            changed_permille,
            &work,
            cairn.as_deref(),
            json.as_deref(),
        ),
        Command::ManyFiles {
            files,
            large_mb,
            seed,
            work,
            cairn,
            keep,
            json,
            step_timeout,
        } => {
            let report = many_files::run(&many_files::Options {
                files,
                large_mb,
                seed,
                work,
                cairn,
                keep,
                json,
                step_timeout_s: step_timeout,
            })?;
            print!("{}", many_files::render(&report));
            Ok(())
        }
        Command::Internal(internal) => run_internal(internal),
    }
}

fn run_internal(internal: Internal) -> Result<()> {
    use footprint::rows;
    match internal {
        Internal::Registry { dir, source } => harness::node::registry(&dir, &source),
        Internal::Containerd { dir, source } => harness::node::containerd(&dir, &source),
        Internal::Fixed {
            store,
            source,
            name,
            dict,
        } => rows::convert(&store, &rows::fixed_init()?, &source, &name, &dict, None).map(drop),
        Internal::WholeFile { dir, store, name } => rows::whole_file(&dir, &store, &name),
        Internal::ImageTar {
            source,
            out,
            receiver_has,
        } => bundle::tars::image_tar(&source, &out, &receiver_has).map(drop),
        Internal::TarImport { archive, dir } => bundle::tars::tar_import(&archive, &dir).map(drop),
        Internal::UnpackLayers { source, dir } => {
            bundle::tars::unpack_layers(&source, &dir).map(drop)
        }
        Internal::Convert {
            store,
            source,
            name,
            dict,
            delta_off,
        } => {
            let delta = delta_off.then_some(cairn_engine::DeltaMode::Off);
            rows::convert(
                &store,
                &InitOptions::default(),
                &source,
                &name,
                &dict,
                delta,
            )
            .map(drop)
        }
    }
}
