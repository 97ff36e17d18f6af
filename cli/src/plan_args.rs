//! Arguments of `cairn plan`.

use clap::Args;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The images to plan bases for (at least two).
    #[arg(required = true, num_args = 2..)]
    pub names: Vec<String>,
    /// A base serves at least this many of the images.
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub min_images: usize,
    /// Propose a base only if it lowers the bytes shipped by at least this many megabytes.
    #[arg(long, value_name = "MB", default_value_t = 1.0)]
    pub min_saving_mb: f64,
    /// Write base N of the plan (with the bases it is built on, one layer each) as an OCI
    /// image: `--emit-base 2 oci:DIR:REF`. Repeatable.
    #[arg(long, num_args = 2, value_names = ["N", "oci:DIR[:REF]"], action = clap::ArgAction::Append)]
    pub emit_base: Vec<String>,
    /// Write image NAME rebuilt on its planned bases (their layers, then one layer of what no
    /// base holds) as an OCI image: `--emit-image api:v1 oci:DIR:REF`. Repeatable.
    #[arg(long, num_args = 2, value_names = ["NAME", "oci:DIR[:REF]"], action = clap::ArgAction::Append)]
    pub emit_image: Vec<String>,
    /// Machine-readable output (the whole plan, exact bytes).
    #[arg(long)]
    pub json: bool,
}
