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
    #[command(after_help = crate::examples::INIT)]
    Init(InitArgs),
    /// Convert an image into the store, deduplicated against a dictionary.
    #[command(after_help = crate::examples::CONVERT)]
    Convert(ConvertArgs),
    /// Pull an image from an OCI registry into the store (layers streamed, never saved).
    #[command(long_about = crate::about::PULL, after_help = crate::examples::PULL)]
    Pull(PullArgs),
    /// Push an image from the store to an OCI registry, as an ordinary OCI image.
    #[command(long_about = crate::about::PUSH, after_help = crate::examples::PUSH)]
    Push(PushArgs),
    /// List the images in the store.
    #[command(after_help = crate::examples::IMAGES)]
    Images(JsonArg),
    /// Write an image out as an OCI image layout or an archive for `docker load`.
    #[command(long_about = crate::about::EXPORT, after_help = crate::examples::EXPORT)]
    Export(ExportArgs),
    /// Write one layer's uncompressed tar, byte-identical to the original.
    #[command(after_help = crate::examples::EXPORT_LAYER)]
    ExportLayer(ExportLayerArgs),
    /// Print one file of an image (the merged view of its layers).
    #[command(after_help = crate::examples::CAT)]
    Cat(CatArgs),
    /// List a directory of an image (the merged view of its layers), without unpacking.
    #[command(after_help = crate::examples::LS)]
    Ls(LsArgs),
    /// How much of NEW is already in OLD: per layer, per file, and layer vs file vs chunk dedup.
    #[command(after_help = crate::examples::DIFF)]
    Diff(DiffArgs),
    /// The store's footprint, what each image owns or shares, and a sharing matrix.
    #[command(after_help = crate::examples::STATS)]
    Stats(StatsArgs),
    /// One row per image, platform and layer (CSV, JSON or a table).
    #[command(after_help = crate::examples::INVENTORY)]
    Inventory(InventoryArgs),
    /// Propose shared base images (a tree: OS, runtime, framework) for these images.
    ///
    /// Finds what the images' filesystems share entry by entry (path, metadata and content;
    /// mtimes aside) and proposes bases as a tree, each base `FROM` its parent. For each base:
    /// the images it serves, what it holds (by directory prefix and package, with bytes), and
    /// what it saves. For each image: the bytes a release ships at layer granularity today
    /// (its layers no other image has) and rebuilt on its bases (its one top layer). Bytes are
    /// uncompressed tar bytes. `--emit-base N oci:DIR:REF` writes a base as an OCI image usable
    /// as `FROM`; `--emit-image NAME oci:DIR:REF` writes an image rebuilt on its bases.
    #[command(after_help = crate::examples::PLAN)]
    Plan(crate::plan_args::PlanArgs),
    /// Write an image's root filesystem (all its layers applied) into a directory.
    ///
    /// Writes the root filesystem into DIR as a container runtime would see it: every layer
    /// applied in order, whiteouts and opaque directories resolved, hardlinks as hardlinks,
    /// symlinks written verbatim (never followed), modes, mtimes and extended attributes set.
    ///
    /// Nothing is ever written outside DIR: an entry with an absolute path or a `..`
    /// component, a path through a symlink, or a hardlink to outside the image stops the unpack
    /// with an error naming the layer and the entry. Devices are created only when running as
    /// root (skipped and reported otherwise); owners are set only as root or with
    /// --same-owner.
    #[command(after_help = crate::examples::UNPACK)]
    Unpack(UnpackArgs),
    /// Check every blob, layer object, bootstrap and index entry; non-zero exit status if damaged.
    #[command(long_about = crate::about::VERIFY, after_help = crate::examples::VERIFY)]
    Verify(VerifyArgs),
    /// Remove images by name (their data stays until `cairn gc`).
    #[command(after_help = crate::examples::RM)]
    Rm(RmArgs),
    /// Delete what no named image uses, compact mostly-dead blobs, report the bytes freed.
    ///
    /// It deletes only what it can prove unused: an image removed with `cairn rm` (the index
    /// keeps its record until gc deletes it). A bootstrap that neither a name nor a record in
    /// the index reaches (an orphan: the index lost it) stops gc before any change, unless
    /// --force-orphans; a missing or empty index stops every command but `cairn verify
    /// --repair-index`, which rebuilds it.
    #[command(after_help = crate::examples::GC)]
    Gc(GcArgs),
    /// Recompress cold data hard: rewrite blobs compressed below the store's optimize target
    /// (zstd-18 by default), oldest first, at low priority.
    ///
    /// Convert compresses fast (zstd-3); optimize, run when the machine is idle, makes the
    /// store smaller. It works in rounds of about 32 MiB of old blobs, each committed on its
    /// own: it can be stopped (--max-seconds, --budget-mb, or killed) and run again to go on.
    /// Images get new bootstraps, their names follow; mounts and readers keep working (a
    /// mounted image's blobs wait for a later run). Like gc, it excludes other writers while it
    /// runs (a convert fails at once, naming it): bound it with --max-seconds. It also deletes
    /// what `cairn gc` would.
    #[command(after_help = crate::examples::OPTIMIZE)]
    Optimize(crate::optimize_args::OptimizeArgs),
    /// Show an image as a read-only filesystem (FUSE), read straight from the store.
    ///
    /// `cairn mount NAME DIR` shows the image's root filesystem at DIR (every layer applied,
    /// whiteouts and opaque directories resolved; --layer N: as of layer N); `cairn mount --all
    /// DIR` shows every named image as DIR/NAME (a `/` in a name spelled %2F). Nothing is
    /// unpacked: reads decode only the frames they need, each chunk checked against its
    /// BLAKE3 (a damaged chunk is an I/O error and a log line naming blob and offset).
    ///
    /// The mount works as the lower directory of an overlayfs, which gives a container a
    /// writable root:
    ///   cairn mount app:v1 /mnt/lower
    ///   mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=U,workdir=W /mnt/root
    ///
    /// Runs in the background once mounted, unless --foreground, logging to
    /// STORE/logs/mount-NAME-PID.log (the store keeps the last 20 mount logs). Unmount with
    /// `cairn umount DIR` (or `fusermount3 -u DIR`, or SIGINT/SIGTERM to the mount process).
    /// Setting CAIRN_MOUNT_STATS in its environment logs counts of requests and frames decoded
    /// when it ends. The store stays
    /// readable and writable meanwhile; gc keeps what a mounted image uses (even if removed
    /// with `rm`) until it is unmounted. Needs /dev/fuse and root, or fusermount3.
    ///
    /// Mount options: ro,nosuid,nodev,default_permissions, always: the image's setuid programs
    /// do not raise privileges and its device nodes do not open this host's devices.
    /// --suid-dev honours them, for one trusted image seen by the mounting user only (it
    /// refuses --allow-other and --all).
    #[command(after_help = crate::examples::MOUNT)]
    Mount(crate::mount_args::MountArgs),
    /// Unmount a directory `cairn mount` mounted.
    #[command(after_help = crate::examples::UMOUNT)]
    Umount(crate::mount_args::UmountArgs),
    /// Build two versions of a small generated image, convert both and show what v1 shares with v2.
    #[command(after_help = crate::examples::DEMO)]
    Demo(DemoArgs),
    /// Chunk dictionaries: what a store holds, to send to a sender of bundles.
    #[command(after_help = crate::examples::DICT)]
    Dict(crate::bundle_args::DictArgs),
    /// Offline bundles: images in one file holding only what the receiver lacks.
    #[command(after_help = crate::examples::BUNDLE)]
    Bundle(crate::bundle_args::BundleArgs),
    /// Serve containerd's snapshots API from the store (a containerd proxy plugin).
    #[command(long_about = crate::about::SNAPSHOTTER, after_help = crate::examples::SNAPSHOTTER)]
    Snapshotter(crate::snapshotter_args::SnapshotterArgs),
    /// List the snapshots containerd keeps in this store (key, kind, parent, image, bytes).
    #[command(after_help = crate::examples::SNAPSHOTS)]
    Snapshots(JsonArg),
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
    /// New chunks are compressed together in frames of up to this many bytes (at most 1 MiB;
    /// 0 stores each chunk alone). Reading one chunk decodes its whole frame.
    #[arg(long, value_name = "BYTES")]
    pub frame_size: Option<u32>,
    /// The store's default for `convert --delta` (default: auto).
    #[arg(long, value_enum)]
    pub delta: Option<DeltaArg>,
}

/// Delta compression of new chunks against their old versions.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaArg {
    /// Every new chunk is compressed alone.
    Off,
    /// A new chunk of a file that an earlier layer of the same image has at the same path, or
    /// else a base image (the --dict images, else the images of the same repository: the name
    /// before its last ':'), is stored as the difference to the old version's chunks when that
    /// is smaller.
    Auto,
}

impl DeltaArg {
    pub fn mode(self) -> cairn_engine::DeltaMode {
        match self {
            DeltaArg::Off => cairn_engine::DeltaMode::Off,
            DeltaArg::Auto => cairn_engine::DeltaMode::Auto,
        }
    }
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// oci:DIR[:REF] (OCI image layout), docker://REGISTRY/REPO[:TAG|@DIGEST] (see `cairn
    /// pull` for the registry options), docker-archive:FILE (`docker save` output), or a path
    /// to a single layer .tar, .tar.gz or .tar.zst.
    pub source: String,
    #[command(flatten)]
    pub into: IntoStoreArgs,
}

/// How an image goes into the store: what `convert` and `pull` share.
#[derive(Args, Debug)]
pub struct IntoStoreArgs {
    /// Name to record the image under: 1 to 255 bytes of printable characters, with no
    /// empty, `.` or `..` step between slashes (e.g. `py:3.12`, `library/py:3.12`).
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
    /// Delta-compress new chunks against their old versions (default: the store's, set by
    /// `init --delta`, auto unless changed).
    #[arg(long, value_enum)]
    pub delta: Option<DeltaArg>,
    /// Layers converted at the same time (default: 2). With 1, each layer starts once the
    /// layers before it are done, so the delta bases it finds in them do not depend on timing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub layers_in_flight: Option<u32>,
    /// Compress new chunks at the store's optimize target (zstd-18) at once, as `cairn
    /// optimize` would later: a smaller store for a convert several times slower.
    #[arg(long)]
    pub optimize: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Image name in the store.
    pub name: String,
    /// REGISTRY/REPO:TAG (a leading docker:// is allowed).
    pub target: String,
    /// Push the store's own files (bootstrap, layer objects, the blobs they name and the blobs
    /// of their delta bases) as a cairn artifact, for `pull --store-format` into other stores,
    /// rather than an ordinary OCI image. Only files the repository lacks are sent.
    #[arg(long)]
    pub store_format: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Another repository of the same registry (a path such as team/base) that may hold some
    /// of the blobs: they are mounted from it rather than sent. Repeatable; tried in order.
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// How to reach a registry: what `pull`, `push` and `inventory docker://` share.
#[derive(Args, Debug)]
pub struct RegistryArgs {
    /// Plain HTTP, certificates not checked: for a registry on localhost or a test network.
    #[arg(long)]
    pub insecure: bool,
    /// USER:PASSWORD for basic auth (or a token as the password). Default: the credentials
    /// `docker login` or `skopeo login` stored in ~/.docker/config.json, else anonymous.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "CAIRN_REGISTRY_USER",
        hide_env_values = true
    )]
    pub user: Option<String>,
    /// Seconds a registry may take to answer a request (connecting included), and then to
    /// send each next piece of it, before the try counts as stalled. With the defaults a
    /// registry that stalls fails the transfer within 5 tries x 2 x 25 s + 7.5 s of pauses =
    /// 257.5 s. Raise it on a very slow link (a 4 MiB upload piece must go within it).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 25.0,
        env = "CAIRN_REGISTRY_READ_TIMEOUT"
    )]
    pub read_timeout: f64,
    /// Seconds to open a connection to the registry.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        env = "CAIRN_REGISTRY_CONNECT_TIMEOUT"
    )]
    pub connect_timeout: f64,
    /// Tries of each request or transfer (a broken or stalled download resumes where it
    /// stopped), with pauses of 0.5 s, 1 s, 2 s, ... between them.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        env = "CAIRN_REGISTRY_ATTEMPTS"
    )]
    pub attempts: u32,
}

impl RegistryArgs {
    fn timeouts(&self) -> cairn_engine::Result<cairn_engine::source::registry::Timeouts> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 && value <= 86_400.0 {
                Ok(std::time::Duration::from_secs_f64(value))
            } else {
                Err(cairn_engine::Error::Usage(format!(
                    "--{name} takes a number of seconds above 0 (at most a day), not {value}"
                )))
            }
        };
        if self.attempts == 0 {
            return Err(cairn_engine::Error::Usage(
                "--attempts takes 1 or more".into(),
            ));
        }
        Ok(cairn_engine::source::registry::Timeouts {
            connect: seconds("connect-timeout", self.connect_timeout)?,
            read: seconds("read-timeout", self.read_timeout)?,
            attempts: self.attempts,
        })
    }

    /// The registry image `reference` (`REGISTRY/REPO[:TAG|@DIGEST]`) reached this way.
    pub fn spec(
        &self,
        reference: &str,
    ) -> cairn_engine::Result<cairn_engine::source::registry::RegistrySpec> {
        use cairn_engine::source::registry::{Credentials, RegistrySpec};
        Ok(RegistrySpec {
            reference: reference.to_string(),
            insecure: self.insecure,
            credentials: self.user.as_deref().map(Credentials::parse).transpose()?,
            timeouts: self.timeouts()?,
        })
    }
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// REGISTRY/REPO[:TAG|@DIGEST] (a leading docker:// is allowed).
    pub reference: String,
    /// Pull a cairn artifact pushed with `push --store-format`: the store files (bootstrap,
    /// layer objects, blobs) are taken as they are, and only those this store lacks are
    /// downloaded. Takes --name, --replace and --json only.
    #[arg(long)]
    pub store_format: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub into: IntoStoreArgs,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Image name in the store.
    pub name: String,
    /// oci:DIR[:REF]: an OCI image layout directory, created, or added to if it is one (blobs
    /// are shared; an entry with the same REF is replaced only with --force).
    /// docker-archive:FILE: a tar for `docker load`, with uncompressed layers (an existing
    /// FILE is replaced only with --force).
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
    /// Replace an existing docker-archive FILE, or an entry of the OCI layout with the same
    /// REF. Without it export refuses to overwrite either (adding a new REF to a layout needs
    /// no --force).
    #[arg(long)]
    pub force: bool,
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
    /// Output file (an existing file is replaced only with --force), a device such as
    /// /dev/null, or - for standard output.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CatArgs {
    /// Image name.
    pub name: String,
    /// Path inside the image. Symlinks on the way are followed as a shell in the container
    /// follows them, inside the image only.
    pub path: String,
    /// Take the path as it is: do not follow symlinks.
    #[arg(long)]
    pub no_follow: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Image name.
    pub name: String,
    /// Directory (or file) inside the image. Symlinks on the way, and a symlink it names, are
    /// followed as a shell in the container follows them, inside the image only.
    #[arg(default_value = "/")]
    pub path: String,
    /// Take the path as it is: do not follow symlinks (a symlink is listed itself).
    #[arg(long)]
    pub no_follow: bool,
    /// Mode, owner, size, modification time and link targets.
    #[arg(short, long)]
    pub long: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The image compared against.
    pub old: String,
    /// The image whose content is looked for in OLD.
    pub new: String,
    /// Which breakdown to print after the totals.
    #[arg(long, value_enum, default_value = "layer")]
    pub by: DiffBy,
    /// How many files to list, by bytes OLD lacks.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Machine-readable output (every figure, exact bytes).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffBy {
    Layer,
    File,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Images to detail (default: all).
    pub names: Vec<String>,
    /// Also print, for every pair of the images, the share of bytes in common.
    #[arg(long)]
    pub matrix: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// docker://REGISTRY/REPO[:TAG]: a registry's repository instead of the store, read from
    /// its manifests and configs only (no layer is downloaded). A cairn store-format artifact
    /// (push --store-format) is one row of kind cairn-store; a tag or platform that cannot be
    /// read is a row of kind error with the reason, and the inventory goes on: every row is
    /// printed, the errors are repeated on stderr, and the exit status is then 3.
    #[arg(value_name = "docker://REGISTRY/REPO")]
    pub repository: Option<String>,
    /// With a repository: the tags matching this pattern (`*`, `?`).
    #[arg(
        long,
        value_name = "PATTERN",
        conflicts_with = "all_tags",
        requires = "repository"
    )]
    pub tags: Option<String>,
    /// With a repository: every tag.
    #[arg(long, requires = "repository")]
    pub all_tags: bool,
    /// With a repository: how to reach its registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: InventoryFormat,
    /// Instead of the layer rows: the N images with the most layers, per platform.
    #[arg(long, value_name = "N")]
    pub top_layers: Option<usize>,
    /// With --format parquet: one row per image, per layer (the default), per file entry, or
    /// per chunk reference of a file.
    #[arg(long, value_enum)]
    pub level: Option<InventoryLevel>,
    /// With --format parquet: FILE.parquet, or DIR/ for a Hive-style tree of one file per level
    /// and image, DIR/level=LEVEL/image=NAME/part-0.parquet (NAME percent-encoded), which
    /// DuckDB reads with read_parquet('DIR/level=chunk/*/*.parquet', hive_partitioning = true).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// With -o: replace files that exist (without it, inventory refuses and writes nothing).
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryLevel {
    Image,
    Layer,
    File,
    Chunk,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryFormat {
    Csv,
    Json,
    /// Parquet tables (needs -o), for DuckDB, Athena, Spark.
    Parquet,
    Table,
}

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// Image name.
    pub name: String,
    /// Target directory: created if missing, must be empty if it exists.
    pub dir: PathBuf,
    /// Apply layers 0 to N only: the filesystem as of layer N.
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// What to do when an extended attribute cannot be set: stop (strict) or report it and go
    /// on (warn).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = XattrPolicy::Warn)]
    pub xattrs: XattrPolicy,
    /// Set file owners from the image even when not running as root (as root they always are).
    #[arg(long)]
    pub same_owner: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrPolicy {
    /// Stop at the first extended attribute that cannot be set.
    Strict,
    /// Report it as a warning and go on.
    Warn,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also hash every blob and decompress every chunk to check its BLAKE3, and re-create
    /// every layer's tar to check its sha256 against its diff_id (reads all data).
    #[arg(long)]
    pub full: bool,
    /// First rebuild the index from the blobs, bootstraps and layer objects (takes the writer lock).
    #[arg(long)]
    pub repair_index: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Image names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Report what would be deleted and compacted, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rewrite blobs whose live chunks hold less than this share of their stored bytes into
    /// new blobs (0 to 1; 0 turns compaction off). Images using them get new bootstraps (and
    /// image ids); their names follow.
    #[arg(long, value_name = "RATIO", default_value_t = cairn_engine::DEFAULT_COMPACT_BELOW)]
    pub compact_below: f64,
    /// Also delete orphan bootstraps: images no name reaches that the index has no record of.
    /// Without it gc refuses to run while there are any, since nothing proves them unused (an
    /// index that was lost or rebuilt badly would make every image look unused); images removed
    /// with `cairn rm` keep their record and are deleted without it. `cairn verify
    /// --repair-index` instead gives each orphan a name (`recovered-<id>`).
    #[arg(long)]
    pub force_orphans: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
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

/// How `--no-follow` asks for a path to be looked up.
pub fn follow(no_follow: bool) -> cairn_engine::Follow {
    if no_follow {
        cairn_engine::Follow::No
    } else {
        cairn_engine::Follow::Symlinks
    }
}
