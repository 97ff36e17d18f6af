//! `cairn plan NAME...`: proposes shared base images for a set of images, as a tree (OS base,
//! runtime, framework, ...), from what their filesystems share entry by entry (`visible`:
//! path, metadata and content, not mtimes), and says what rebuilding the images on them saves
//! at layer granularity; `--emit-base N` and `--emit-image NAME` write base N, or an image
//! rebuilt on its bases, as an OCI image (`emit`).
//!
//! Bytes are uncompressed tar bytes, as `FROM`-based images ship them:
//! - **before**, an image's release ships its layers no other image of the set has (the others
//!   are already where it goes); the set ships each distinct layer (by diff_id) once.
//! - **after**, every base layer is shipped once, and an image's release ships its top layer
//!   only. Layer sizes are those of the tars `emit` writes, to the byte.
//!
//! One pass reads the images (`catalog`); the tree is chosen from the groups of entries shared
//! by the same images (`choose`); nothing is written to the store.

mod catalog;
mod choose;
mod emit;
mod tar_entry;
mod visible;

pub use emit::{EmitRequest, EmitWhat, Emitted};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::Store;
use catalog::Catalog;
use choose::{Bits, Tree};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use tar_entry::END_OF_ARCHIVE;

/// Which images `plan` considers, its thresholds, and what it writes out.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlanOptions {
    /// The stored images to plan for (at least 2), by name.
    pub names: Vec<String>,
    /// A base serves at least this many images (at least 2).
    pub min_images: usize,
    /// A base is proposed only if it lowers the bytes shipped by at least this much.
    pub min_saving: u64,
    /// Bases and rebuilt images to write as OCI layouts once the plan is made.
    pub emit: Vec<EmitRequest>,
}

impl PlanOptions {
    /// Plans `names` with the default thresholds (`Default`), emitting nothing.
    pub fn new(names: Vec<String>) -> PlanOptions {
        PlanOptions {
            names,
            ..PlanOptions::default()
        }
    }
}

impl Default for PlanOptions {
    /// No images yet; bases that serve at least 2 images and save at least 1 MB.
    fn default() -> Self {
        PlanOptions {
            names: Vec::new(),
            min_images: 2,
            min_saving: 1_000_000,
            emit: Vec::new(),
        }
    }
}

/// The proposed bases, what each image ships before and after, and what was emitted.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PlanReport {
    /// The `min_images` threshold the plan used.
    pub min_images: usize,
    /// The `min_saving` threshold the plan used, in uncompressed tar bytes.
    pub min_saving: u64,
    /// The proposed bases, parents before children.
    pub bases: Vec<PlanBase>,
    /// One row per planned image, in the order named.
    pub images: Vec<PlanImage>,
    /// The whole set's bytes shipped before and after.
    pub totals: PlanTotals,
    /// One per emit request, in the order given.
    pub emitted: Vec<Emitted>,
    /// Wall-clock seconds of the whole plan, emits included.
    pub seconds: f64,
}

/// One proposed base image: a single layer of the entries its images share.
#[derive(Clone, Debug, Serialize)]
pub struct PlanBase {
    /// From 1, parents before children.
    pub number: usize,
    /// The number of the base this one is built on; `None` for a root base.
    pub parent: Option<usize>,
    /// The images built on it (directly or through a child base).
    pub images: Vec<String>,
    /// Visible entries (files, directories, links) its layer holds.
    pub entries: u64,
    /// Its one layer's tar bytes.
    pub layer_bytes: u64,
    /// Bytes the images it serves no longer ship in their own layers: (images - 1) x its layer,
    /// less what its child bases already shared.
    pub saves_bytes: u64,
    /// Its content by directory prefix, largest first.
    pub prefixes: Vec<PrefixBytes>,
    /// Package-like names its files belong to (Debian doc directories, Python dist-info).
    pub packages: Vec<String>,
}

/// A base's entries under one directory prefix.
#[derive(Clone, Debug, Serialize)]
pub struct PrefixBytes {
    /// The directory's first three components (deeper under a package root such as
    /// `usr/lib/jvm`); `/` for entries at the top.
    pub prefix: String,
    /// Entries under the prefix.
    pub entries: u64,
    /// Their tar bytes (headers and content).
    pub bytes: u64,
}

/// One planned image: its bases and what a release of it ships before and after.
#[derive(Clone, Debug, Serialize)]
pub struct PlanImage {
    /// The image's name in the store.
    pub name: String,
    /// Visible entries (files, directories, links) of its filesystem.
    pub entries: u64,
    /// Its layers today.
    pub layers: usize,
    /// Tar bytes of all its layers.
    pub image_bytes: u64,
    /// The numbers of its bases, root first (empty when no base serves it).
    pub bases: Vec<usize>,
    /// What a release of it ships at layer granularity today: its layers no other image of the
    /// set has.
    pub release_bytes_before: u64,
    /// What it ships rebuilt on its bases: its top layer.
    pub release_bytes_after: u64,
}

/// What the whole set of images ships, before and after rebuilding on the bases.
#[derive(Clone, Debug, Serialize)]
pub struct PlanTotals {
    /// Every distinct layer of the set (by diff_id), once.
    pub layers_before: usize,
    /// Their tar bytes.
    pub bytes_before: u64,
    /// Every base layer once, plus every image's top layer (empty top layers counted once).
    pub layers_after: usize,
    /// Their tar bytes.
    pub bytes_after: u64,
    /// `bytes_before - bytes_after`; negative when the plan would ship more.
    pub saved_bytes: i64,
    /// `saved_bytes / bytes_before`.
    pub saved_ratio: f64,
}

pub(crate) fn plan(
    store: &Store,
    options: &PlanOptions,
    progress: &dyn Progress,
) -> Result<PlanReport> {
    let started = std::time::Instant::now();
    if options.names.len() < 2 {
        return Err(Error::Usage(
            "plan needs at least two images to find what they share".into(),
        ));
    }
    if options.min_images < 2 || options.min_images > options.names.len() {
        return Err(Error::Usage(format!(
            "--min-images {}: give a number from 2 to the {} images named",
            options.min_images,
            options.names.len()
        )));
    }
    let catalog = Catalog::read(store, &options.names, progress)?;
    let tree = Tree::choose(&catalog, options.min_images, options.min_saving);
    let accounts = Accounts::of(&catalog, &tree);
    let bases = describe_bases(&catalog, &tree, &accounts);
    let images = describe_images(&catalog, &tree, &accounts);
    let totals = totals(&catalog, &bases, &images);
    for request in &options.emit {
        emit::check(&catalog, &tree, request)?;
    }
    let mut emitted = Vec::new();
    for request in &options.emit {
        emitted.push(emit::emit(store, &catalog, &tree, request, progress)?);
    }
    Ok(PlanReport {
        min_images: options.min_images,
        min_saving: options.min_saving,
        bases,
        images,
        totals,
        emitted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where each group's entries go: per base, the groups it holds; per image, its top's bytes.
struct Accounts {
    /// Base index -> set numbers of the groups it holds.
    base_groups: Vec<Vec<usize>>,
    /// Image -> (entries, bytes) of its top layer's entries.
    tops: Vec<(u64, u64)>,
}

impl Accounts {
    fn of(catalog: &Catalog, tree: &Tree) -> Accounts {
        let n = catalog.images.len();
        let mut base_groups = vec![Vec::new(); tree.bases.len()];
        let mut tops = vec![(0u64, 0u64); n];
        for (set, group) in catalog.groups.iter().enumerate() {
            if group.entries == 0 {
                continue;
            }
            let members = &catalog.sets[set];
            let bits = Bits::of(members, n);
            for (b, groups) in base_groups.iter_mut().enumerate() {
                if tree.holds(b, &bits) {
                    groups.push(set);
                }
            }
            for &image in members {
                if tree.base_of(&bits, image).is_none() {
                    tops[image as usize].0 += group.entries;
                    tops[image as usize].1 += group.bytes;
                }
            }
        }
        Accounts { base_groups, tops }
    }
}

/// How many prefixes a base's summary lists.
const PREFIXES_LISTED: usize = 12;

fn describe_bases(catalog: &Catalog, tree: &Tree, accounts: &Accounts) -> Vec<PlanBase> {
    let mut out: Vec<PlanBase> = Vec::new();
    for (b, base) in tree.bases.iter().enumerate() {
        let mut entries = 0;
        let mut bytes = 0;
        let mut prefixes: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut packages: HashSet<u32> = HashSet::new();
        for &set in &accounts.base_groups[b] {
            let group = &catalog.groups[set];
            entries += group.entries;
            bytes += group.bytes;
            for (p, (e, by)) in &group.prefixes {
                let sum = prefixes.entry(*p).or_default();
                sum.0 += e;
                sum.1 += by;
            }
            packages.extend(&group.packages);
        }
        let mut prefixes: Vec<PrefixBytes> = prefixes
            .into_iter()
            .map(|(p, (entries, bytes))| PrefixBytes {
                prefix: catalog.names[p as usize].clone(),
                entries,
                bytes,
            })
            .collect();
        prefixes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.prefix.cmp(&b.prefix)));
        prefixes.truncate(PREFIXES_LISTED);
        let mut packages: Vec<String> = packages
            .into_iter()
            .map(|p| catalog.names[p as usize].clone())
            .collect();
        packages.sort();
        let children: u64 = tree
            .bases
            .iter()
            .filter(|c| c.parent == Some(b))
            .map(|c| c.members.len() as u64 - 1)
            .sum();
        let weight = (base.members.len() as u64 - 1).saturating_sub(children);
        out.push(PlanBase {
            number: b + 1,
            parent: base.parent.map(|p| p + 1),
            images: names(catalog, &base.members),
            entries,
            layer_bytes: bytes + END_OF_ARCHIVE,
            saves_bytes: (weight * bytes).saturating_sub(END_OF_ARCHIVE),
            prefixes,
            packages,
        });
    }
    out
}

fn names(catalog: &Catalog, members: &[u16]) -> Vec<String> {
    members
        .iter()
        .map(|&m| catalog.images[m as usize].name.clone())
        .collect()
}

fn describe_images(catalog: &Catalog, tree: &Tree, accounts: &Accounts) -> Vec<PlanImage> {
    let mut holders: HashMap<crate::Sha256Digest, usize> = HashMap::new();
    for image in &catalog.images {
        let distinct: HashSet<_> = image.bootstrap.layers.iter().map(|l| l.diff_id).collect();
        for d in distinct {
            *holders.entry(d).or_default() += 1;
        }
    }
    catalog
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let layers = &image.bootstrap.layers;
            PlanImage {
                name: image.name.clone(),
                entries: image.entries,
                layers: layers.len(),
                image_bytes: layers.iter().map(|l| l.size).sum(),
                bases: tree.chain(i as u16).iter().map(|b| b + 1).collect(),
                release_bytes_before: layers
                    .iter()
                    .filter(|l| holders[&l.diff_id] == 1)
                    .map(|l| l.size)
                    .sum(),
                release_bytes_after: accounts.tops[i].1 + END_OF_ARCHIVE,
            }
        })
        .collect()
}

fn totals(catalog: &Catalog, bases: &[PlanBase], images: &[PlanImage]) -> PlanTotals {
    let mut seen = HashSet::new();
    let mut bytes_before = 0;
    for image in &catalog.images {
        for layer in &image.bootstrap.layers {
            if seen.insert(layer.diff_id) {
                bytes_before += layer.size;
            }
        }
    }
    // Top layers with no entry are the same empty tar: one layer, shipped once.
    let empty_tops = images
        .iter()
        .filter(|i| i.release_bytes_after == END_OF_ARCHIVE)
        .count();
    let tops: u64 = images.iter().map(|i| i.release_bytes_after).sum::<u64>()
        - END_OF_ARCHIVE * empty_tops.saturating_sub(1) as u64;
    let bytes_after = bases.iter().map(|b| b.layer_bytes).sum::<u64>() + tops;
    let saved = bytes_before as i64 - bytes_after as i64;
    PlanTotals {
        layers_before: seen.len(),
        bytes_before,
        layers_after: bases.len() + images.len() - empty_tops.saturating_sub(1),
        bytes_after,
        saved_bytes: saved,
        saved_ratio: saved as f64 / bytes_before.max(1) as f64,
    }
}

/// `cairn plan`.
impl crate::store::Store {
    /// Proposes shared base images for these images (and writes those asked for).
    pub fn plan(
        &self,
        options: &PlanOptions,
        progress: &dyn crate::Progress,
    ) -> Result<PlanReport> {
        plan(self, options, progress)
    }
}
