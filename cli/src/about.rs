//! The long descriptions (`--help`) of the commands that need more than their one line.

/// `cairn push --help`.
pub const PUSH: &str = "Push an image from the store to an OCI registry, as an ordinary OCI \
                  image.\n\n\
                  The image goes back as it came when it can: if the repository already has \
                  every layer blob of the image's original manifest, or can mount it from \
                  another repository of the same registry (--mount-from, and the repository \
                  the image was pulled from), the original config and manifest are sent byte \
                  for byte (each checked against its digest first): the tag names the \
                  original manifest digest and no layer is uploaded.\n\n\
                  Otherwise every layer is re-created from the store and checked against its \
                  diff_id, then compressed with gzip (deterministically: the same image pushes \
                  the same digests), which gives a new manifest digest: push says so on stderr \
                  before uploading, and prints the new digest and the original one. The config \
                  is sent byte for byte; blobs the registry already has are skipped (one HEAD \
                  each), missing ones are mounted where they can be, the others are sent, \
                  several at once; the manifest goes last, so the tag never names a missing \
                  blob. The layers are staged in a temporary directory ($TMPDIR).\n\n\
                  With --store-format, the image's store files go instead, as a cairn \
                  artifact (docs/FORMAT.md), for `cairn pull --store-format` on other hosts: \
                  several hosts share one converted store through the registry.";

/// `cairn pull --help`.
pub const PULL: &str = "Pull an image from an OCI registry into the store.\n\n\
                  Reads the index or manifest and the config (digests verified) and streams each \
                  layer straight into the converter as it downloads: no layer is written to a \
                  file, and a layer whose digest the store already holds is not downloaded. A \
                  broken download is resumed where it stopped (up to 5 tries); on any error \
                  nothing is committed.\n\n\
                  Credentials: --user, else ~/.docker/config.json (`docker login`, `skopeo \
                  login`), else anonymous; bearer tokens are fetched as the registry asks.";

/// `cairn export --help`.
pub const EXPORT: &str =
    "Write an image out as an OCI image layout or an archive for `docker load`.\n\n\
                  Every layer is re-created from the store and checked against its diff_id; the \
                  image config is written byte for byte as it was converted, so the image keeps \
                  its config digest (and image id). Layers are compressed anew, so their digests, \
                  and the manifest's, are new. An existing FILE, or an image of the layout with \
                  the same ref, is replaced only with --force.";

/// `cairn verify --help`.
pub const VERIFY: &str =
    "Check every blob, layer object, bootstrap and index entry; non-zero exit status \
                  if anything is damaged.\n\n\
                  With --repair-index, first rebuild the index from the blobs, bootstraps and \
                  layer objects (it need not open, or exist): every chunk of every good blob, a \
                  record and layer keys per good bootstrap, and the old names whose image is \
                  still whole. An image no name \
                  reaches any more gets the name recovered-<first 12 hex digits of its id>; \
                  this brings back images removed with `cairn rm` but not yet garbage-collected \
                  (remove them again). Damaged blobs and bootstraps are reported and left as \
                  they are. The check then runs on the rebuilt index.";

/// `cairn snapshotter --help`.
pub const SNAPSHOTTER: &str = "Serve containerd's snapshots API from the store, as a \
                  containerd proxy plugin, so that a node's images live in the store and its \
                  containers run from it.\n\n\
                  containerd applies each layer it pulls into a snapshot prepared here; at \
                  commit cairn takes the applied tree into the store (chunked, deduplicated \
                  against every stored image) and keeps no unpacked copy. A container's root \
                  is an overlay: the lower directory is its chain's merged view, one read-only \
                  FUSE mount per chain (a `cairn mount` process, shared by every container of \
                  that chain, kept while a snapshot stands on it), the upper and work \
                  directories are its own, under --root. Snapshot records live in the store \
                  (STORE/snapshotter/records) and survive a restart; views stay mounted across \
                  one. Committed snapshots are store images named snapshot/ID; removing the \
                  snapshot removes the name, and `cairn gc` frees the data no image uses.\n\n\
                  Runs as root (it mounts), in the foreground; stop it with SIGTERM. Needs \
                  /dev/fuse and overlayfs.";
