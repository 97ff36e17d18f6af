//! Command-line arguments (clap). Parsed here, turned into engine options by each command.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Chunk-level deduplicating store for OCI container images",
    long_about = "cairn takes container images apart into content-defined chunks, keeps every \
                  chunk once, and gives every image back bit for bit.\n\n\
                  Start with `cairn demo`, or:\n  cairn init\n  cairn convert oci:DIR:v1 --name app:v1\n  \
                  cairn convert oci:DIR:v2 --name app:v2 --dict app:v1\n  cairn images"
)]
pub struct Cli {
    /// The store directory.
    #[arg(
        long,
        global = true,
        env = "CAIRN_STORE",
        default_value = "./cairn-store"
    )]
    pub store: PathBuf,

    /// Never draw progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new, empty store.
    Init(InitArgs),
    /// Convert an image into the store, deduplicated against a dictionary.
    Convert(ConvertArgs),
    /// List the images in the store.
    Images(JsonArg),
    /// Write an image out as an OCI image layout or an archive for `docker load`.
    Export(ExportArgs),
    /// Write one layer's uncompressed tar, byte-identical to the original.
    ExportLayer(ExportLayerArgs),
    /// Print one file of an image (the merged view of its layers).
    Cat(CatArgs),
    /// Build two versions of a small generated image, convert both and show what v1 shares with v2.
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
pub struct JsonArg {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// FastCDC minimum chunk size, bytes.
    #[arg(long)]
    pub min_chunk: Option<u32>,
    /// FastCDC average chunk size, bytes.
    #[arg(long)]
    pub avg_chunk: Option<u32>,
    /// FastCDC maximum chunk size, bytes (at most 1 MiB).
    #[arg(long)]
    pub max_chunk: Option<u32>,
    /// zstd level for new chunks.
    #[arg(long)]
    pub level: Option<i32>,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// oci:DIR[:REF] (OCI image layout), docker-archive:FILE (`docker save` output), or a path
    /// to a single layer .tar, .tar.gz or .tar.zst.
    pub source: String,
    /// Name to record the image under.
    #[arg(long)]
    pub name: String,
    /// Reuse only chunks of this image (repeatable). Default: every chunk in the store.
    #[arg(long = "dict", value_name = "NAME")]
    pub dict: Vec<String>,
    /// Platform to convert from a multi-arch image (default: the only one, else the host's).
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT]",
        conflicts_with = "all_platforms"
    )]
    pub platform: Option<String>,
    /// Convert every platform, each as NAME@os/arch[/variant].
    #[arg(long)]
    pub all_platforms: bool,
    /// Point NAME at the new image if it already exists.
    #[arg(long)]
    pub replace: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    long_about = "Write an image out as an OCI image layout or an archive for `docker load`.\n\n\
                  Every layer is re-created from the store and checked against its diff_id; the \
                  image config is written byte for byte as it was converted, so the image keeps \
                  its config digest (and image id). Layers are compressed anew, so their digests, \
                  and the manifest's, are new.\n\n\
                  Examples:\n  cairn export app:v1 oci:out:v1\n  \
                  cairn export app:v2 oci:out:v2 --compression zstd\n  \
                  cairn export app:v1 docker-archive:app.tar   # then: docker load -i app.tar"
)]
pub struct ExportArgs {
    /// Image name in the store.
    pub name: String,
    /// oci:DIR[:REF]: an OCI image layout directory, created, or added to if it is one
    /// (an entry with the same REF is replaced; blobs are shared). docker-archive:FILE: a tar
    /// for `docker load`, with uncompressed layers.
    pub target: String,
    /// Layer compression in an OCI layout [default: gzip].
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Compression level: gzip 0-9 (default 6), zstd 1-22 (default 3; negative: faster).
    #[arg(long, allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Name of the image in the target: its ref in index.json (which oci:DIR:REF also gives),
    /// or its repo:tag in a docker archive. Default: NAME.
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

#[derive(Args, Debug)]
pub struct ExportLayerArgs {
    /// Image name.
    pub name: String,
    /// Layer index, from 0 (the bottom layer).
    pub index: usize,
    /// Output file, or - for standard output.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct CatArgs {
    /// Image name.
    pub name: String,
    /// Path inside the image.
    pub path: String,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the generated images and store in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}
