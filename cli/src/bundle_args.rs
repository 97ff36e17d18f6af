//! Arguments of `cairn dict` and `cairn bundle`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DictArgs {
    #[command(subcommand)]
    pub command: DictCommand,
}

#[derive(Subcommand, Debug)]
pub enum DictCommand {
    /// Write a dictionary file of the chunks these images (or with --all, the store) hold.
    ///
    /// A few bytes per chunk (the first 8 bytes of its id, its size; compressed): small enough
    /// to send from a receiving site to the sender, which then bundles only what the site
    /// lacks (`cairn bundle create --have-dict FILE`).
    #[command(after_help = crate::examples::DICT_EXPORT)]
    Export(DictExportArgs),
    /// Make a dictionary image of the chunks that at least K of these images share.
    ///
    /// The image (one layer of files chunks/<id>, one chunk each) stores nothing new but its
    /// metadata; convert new images against it with `--dict NAME`. Prints its size and how much
    /// of each source image it holds.
    #[command(after_help = crate::examples::DICT_BUILD)]
    Build(DictBuildArgs),
}

#[derive(Args, Debug)]
pub struct DictBuildArgs {
    /// The images to draw shared chunks from.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// A chunk goes in when at least this many of the images hold it.
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub min_images: usize,
    /// The name of the dictionary image.
    #[arg(long)]
    pub name: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DictExportArgs {
    /// Images whose chunks to list.
    #[arg(required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every chunk of the store (and every name in it).
    #[arg(long)]
    pub all: bool,
    /// The dictionary file (`-`: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

#[derive(Subcommand, Debug)]
pub enum BundleCommand {
    /// Write images into one file holding only the chunk data the receiver lacks.
    ///
    /// The bundle holds the images' metadata and every chunk they use, except those the
    /// receiver holds already: the chunks of --have images (of this store), of --have-dict
    /// dictionaries (`cairn dict export` on the receiver), and of --since bundles (imported
    /// there before: monthly full, daily increments). Compressed data is copied as stored. The
    /// bundle records which chunks it relies on and which images they came from, and ends with
    /// a checksum.
    #[command(after_help = crate::examples::BUNDLE_CREATE)]
    Create(BundleCreateArgs),
    /// Check a bundle whole, then add its images to the store.
    ///
    /// Refused, with the store unchanged, when the bundle is damaged or truncated, or relies on
    /// chunks this store lacks (the message names the images it expected). Importing the same
    /// bundle twice changes nothing.
    #[command(after_help = crate::examples::BUNDLE_IMPORT)]
    Import(BundleImportArgs),
    /// Show a bundle's images, sizes and what it relies on (its checksum is checked).
    #[command(after_help = crate::examples::BUNDLE_INSPECT)]
    Inspect(BundleInspectArgs),
}

#[derive(Args, Debug)]
pub struct BundleCreateArgs {
    /// Images to bundle.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The bundle file (`-`: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// An image of this store the receiver holds (repeatable).
    #[arg(long, value_name = "NAME")]
    pub have: Vec<String>,
    /// A dictionary the receiver exported (repeatable).
    #[arg(long, value_name = "FILE")]
    pub have_dict: Vec<PathBuf>,
    /// A bundle the receiver imported (repeatable).
    #[arg(long, value_name = "BUNDLE")]
    pub since: Vec<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BundleImportArgs {
    /// The bundle file (`-`: stdin).
    pub file: PathBuf,
    /// Point names the store has already at the bundle's images.
    #[arg(long)]
    pub replace: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BundleInspectArgs {
    /// The bundle file (`-`: stdin).
    pub file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}
