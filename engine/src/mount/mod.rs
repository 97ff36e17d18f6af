//! `mount`: an image (or every named image) as a read-only FUSE filesystem, read straight from
//! the store: the merged root filesystem (whiteouts and opaque directories applied) or the
//! tree as of one layer. Nothing is unpacked; reads decode only the frames they need
//! (`content.rs`), names and attributes come from the layer objects' indexes (`image_fs.rs`),
//! `fuse.rs` speaks to the kernel. While mounted, a lease (`crate::lease`, in the store layer)
//! keeps gc from deleting or moving what the mount reads; the store stays readable and
//! writable meanwhile. `Store::mount` starts one.
//! Mounts are always `ro,nosuid,nodev`, unless `MountOptions::suid_dev` asks for setuid bits
//! and devices to work (one image, seen by its mounter only).

mod content;
#[cfg(test)]
mod content_tests;
mod frames;
mod fuse;
mod image_fs;
mod log;
mod mountinfo;
mod stats;

use crate::error::{Error, Result};
use crate::layout::StoreLayout;
use crate::lease::{Lease, LeaseGuard};
use crate::store::Store;
use crate::ImageId;
use content::Content;
use fuse::{CairnFs, Tree};
use image_fs::ImageFs;
pub use log::{log_file, KEPT_LOGS};
pub use mountinfo::is_cairn_mount;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to mount.
#[derive(Clone, Debug)]
pub enum MountImages {
    /// One image, all its layers or up to layer `layer` (counted from 0, the bottom).
    One {
        /// The image's name in the store.
        name: String,
        /// The top layer shown (0 = the bottom layer alone); `None`: every layer.
        layer: Option<usize>,
    },
    /// Every named image, each as directory `NAME` (a `/` in a name spelled `%2F`, a `%` as
    /// `%25`).
    All,
}

/// How to mount (`MountOptions::default()`: every named image, private to the mounter).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MountOptions {
    /// The image, or every named image.
    pub images: MountImages,
    /// Let users other than the one mounting see the files (FUSE `allow_other`).
    pub allow_other: bool,
    /// Honour the image's setuid/setgid bits and device nodes (mount without `nosuid,nodev`).
    /// Only for one image, and never with `allow_other`: other users could run the image's
    /// setuid programs as their owners (root) or open its devices.
    pub suid_dev: bool,
    /// Bytes of decoded frames kept.
    pub cache_bytes: usize,
    /// Bytes decoded ahead of a file read sequentially.
    pub readahead_bytes: u64,
    /// Threads answering the kernel.
    pub threads: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            images: MountImages::All,
            allow_other: false,
            suid_dev: false,
            // `import pandas` touches 110 frames (107 MB) of py v1 in no order a cache can
            // follow: 32 MiB decoded 155 of them, 64 MiB 112 (`content.rs`).
            cache_bytes: 64 << 20,
            readahead_bytes: 8 << 20,
            threads: 4,
        }
    }
}

/// A mounted filesystem: `run` serves it until it is unmounted.
pub struct MountSession {
    session: fuser::Session<CairnFs>,
    lease: Lease,
    target: PathBuf,
}

/// Unmounts a session from another thread (a signal handler's).
pub struct Unmounter(fuser::SessionUnmounter);

impl Unmounter {
    /// Asks the kernel to unmount; `MountSession::run` then returns.
    pub fn unmount(&mut self) -> Result<()> {
        self.0
            .unmount()
            .map_err(|e| Error::io("unmount", Path::new("mount"), e))
    }
}

impl Store {
    /// Mounts at `target` (an existing directory): takes the lease, opens the images, mounts.
    /// The session serves requests once `MountSession::run` is called.
    pub fn mount(self: Arc<Self>, target: &Path, options: &MountOptions) -> Result<MountSession> {
        MountSession::start(self, target, options)
    }
}

impl MountSession {
    /// See `Store::mount`. The images are resolved under the lease guard, so that no gc or
    /// optimize can delete them between the resolution and the lease.
    fn start(store: Arc<Store>, target: &Path, options: &MountOptions) -> Result<Self> {
        check_options(options)?;
        let layout = StoreLayout::new(store.root());
        let guard = LeaseGuard::shared(&layout)?;
        let chosen = choose_images(&store, &options.images)?;
        let ids: Vec<ImageId> = chosen.iter().map(|(_, id, _)| *id).collect();
        let lease = Lease::take(&layout, &ids, target)?;
        drop(guard);
        // Frames decoded ahead must not push out of the cache the ones being read.
        let readahead = options.readahead_bytes.min(options.cache_bytes as u64 / 2);
        let stats = Arc::new(stats::Stats::from_env());
        let content = Content::new(store.clone(), options.cache_bytes, readahead, stats.clone());
        let mut images = Vec::new();
        for (name, id, top) in chosen {
            let (_, mut layers) = store.image_layers_by_id(&id)?;
            if let Some(top) = top {
                let top = crate::view::layer_index(&name, layers.len(), top)?;
                layers.truncate(top + 1);
            }
            let fs = ImageFs::new(layers, content.clone(), &format!("image {name:?}"))?;
            images.push((dir_name(&name), fs));
        }
        let (fs_name, tree) = match &options.images {
            MountImages::One { name, .. } => {
                (name.clone(), Tree::One(Box::new(images.remove(0).1)))
            }
            MountImages::All => {
                images.sort_by(|a, b| a.0.cmp(&b.0));
                ("all".to_string(), Tree::All(images))
            }
        };
        let session = fuser::Session::new(
            CairnFs::new(tree, stats),
            target,
            &config(&fs_name, options),
        )
        .map_err(|e| mount_error(target, e))?;
        Ok(MountSession {
            session,
            lease,
            target: target.to_path_buf(),
        })
    }

    /// A handle that unmounts this session from another thread (a signal handler's).
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(self.session.unmount_callable())
    }

    /// The lease file gc honours while this runs.
    pub fn lease_path(&self) -> &Path {
        self.lease.path()
    }

    /// Serves requests until the filesystem is unmounted (`umount`, `fusermount -u`, or an
    /// `Unmounter`); the lease goes with it.
    pub fn run(self) -> Result<()> {
        let MountSession {
            session,
            lease,
            target,
        } = self;
        let result = session
            .run()
            .map_err(|e| Error::io("serve the mount", &target, e));
        drop(lease);
        result
    }
}

/// The images to mount: (name, id, last layer shown).
fn choose_images(
    store: &Store,
    images: &MountImages,
) -> Result<Vec<(String, ImageId, Option<usize>)>> {
    match images {
        MountImages::One { name, layer } => Ok(vec![(name.clone(), store.resolve(name)?, *layer)]),
        MountImages::All => Ok(store
            .index()
            .refs()?
            .into_iter()
            .map(|(name, id)| (name, id, None))
            .collect()),
    }
}

/// An image name as one directory name (`%`, `/` and a whole name of dots percent-encoded: a
/// name made before the name rule, `crate::check_image_name`, may be `..`).
fn dir_name(name: &str) -> Vec<u8> {
    let name = name.replace('%', "%25").replace('/', "%2F");
    match name.as_str() {
        "." | ".." => name.replace('.', "%2E").into_bytes(),
        _ => name.into_bytes(),
    }
}

fn config(fs_name: &str, options: &MountOptions) -> fuser::Config {
    use fuser::MountOption;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::DefaultPermissions,
        MountOption::FSName(format!("cairn:{fs_name}")),
        MountOption::Subtype("cairn".into()),
    ];
    // An image's setuid programs and device nodes are the image author's: by default they
    // neither raise privileges nor open devices of this host (`check_options` keeps the
    // exception to one image seen by its mounter alone).
    if options.suid_dev {
        config
            .mount_options
            .extend([MountOption::Suid, MountOption::Dev]);
    } else {
        config
            .mount_options
            .extend([MountOption::NoSuid, MountOption::NoDev]);
    }
    if options.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(options.threads.max(1));
    config
}

/// `suid_dev` is for one image seen by the user who mounts it: with `allow_other` any user
/// could run the image's setuid-root programs as root, and `--all` shows every image.
fn check_options(options: &MountOptions) -> Result<()> {
    if options.suid_dev && options.allow_other {
        return Err(Error::Usage(
            "setuid bits and devices (--suid-dev) cannot be honoured on a mount other users \
             see (--allow-other): they could run the image's setuid programs as their owners"
                .into(),
        ));
    }
    if options.suid_dev && matches!(options.images, MountImages::All) {
        return Err(Error::Usage(
            "setuid bits and devices (--suid-dev) are for one image, not --all".into(),
        ));
    }
    Ok(())
}

fn mount_error(target: &Path, e: std::io::Error) -> Error {
    let hint = if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(2) {
        " (is the directory there, and is FUSE installed: /dev/fuse and fusermount3?)"
    } else if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (mounting needs root or fusermount3 with access to /dev/fuse)"
    } else {
        ""
    };
    Error::Usage(format!("cannot mount at {}: {e}{hint}", target.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn mounts_are_nosuid_nodev_unless_asked_and_never_for_other_users() {
        use super::{check_options, config, MountImages, MountOptions};
        use fuser::MountOption;
        let one = MountImages::One {
            name: "x".into(),
            layer: None,
        };
        for images in [one.clone(), MountImages::All] {
            let options = MountOptions {
                images,
                allow_other: true,
                ..MountOptions::default()
            };
            let mounted = config("x", &options).mount_options;
            assert!(
                mounted.contains(&MountOption::NoSuid) && mounted.contains(&MountOption::NoDev)
            );
            assert!(!mounted.contains(&MountOption::Suid) && !mounted.contains(&MountOption::Dev));
        }
        let asked = MountOptions {
            images: one.clone(),
            suid_dev: true,
            ..MountOptions::default()
        };
        check_options(&asked).unwrap();
        let mounted = config("x", &asked).mount_options;
        assert!(mounted.contains(&MountOption::Suid) && !mounted.contains(&MountOption::NoSuid));
        let shared = MountOptions {
            allow_other: true,
            ..asked.clone()
        };
        let err = check_options(&shared).unwrap_err().to_string();
        assert!(err.contains("--allow-other"), "{err}");
        let all = MountOptions {
            images: MountImages::All,
            ..asked
        };
        assert!(check_options(&all).is_err());
    }

    #[test]
    fn image_names_become_one_directory_name() {
        assert_eq!(super::dir_name("py:v1"), b"py:v1");
        assert_eq!(super::dir_name("library/py:3%"), b"library%2Fpy:3%25");
        assert_eq!(super::dir_name(".."), b"%2E%2E");
    }
}
