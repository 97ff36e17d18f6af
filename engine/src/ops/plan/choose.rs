//! Choosing the bases: a tree of image sets (any two nested or disjoint, as `FROM` chains are),
//! each set one base image. A base holds the entries every image of its set shows that its
//! parent does not hold; an image is rebuilt as its chain of bases (root first) plus one top
//! layer of the entries no base of its chain holds.
//!
//! Greedy: the candidates are the image sets some entries are shared by exactly (at least
//! `min_images` images); each round adds the candidate that lowers the bytes shipped the most,
//! while one saves at least `min_saving`. Adding set S, whose direct children among the chosen
//! are C1..Cn and whose parent is P, moves the entries shared by (a superset of) S but not by
//! P out of the children's layers and the images' top layers into S's one layer: each such
//! entry is shipped `|S| - 1 - sum(|Ci| - 1)` fewer times.

use super::catalog::Catalog;
use super::tar_entry::END_OF_ARCHIVE;

/// A set of images as bits.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    pub(super) fn of(members: &[u16], images: usize) -> Bits {
        let mut words = vec![0u64; images.div_ceil(64).max(1)];
        for &m in members {
            words[m as usize / 64] |= 1 << (m % 64);
        }
        Bits(words)
    }

    pub(super) fn contains(&self, image: u16) -> bool {
        self.0[image as usize / 64] & (1 << (image % 64)) != 0
    }

    pub(super) fn subset_of(&self, other: &Bits) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }

    fn disjoint(&self, other: &Bits) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == 0)
    }

    fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

pub(super) struct Base {
    pub members: Vec<u16>,
    pub bits: Bits,
    /// Index of the parent base in `Tree::bases`.
    pub parent: Option<usize>,
}

/// The chosen bases, parents before children (depth first), numbered from 1 in this order.
pub(super) struct Tree {
    pub bases: Vec<Base>,
}

/// How many candidate sets the greedy search weighs (the most promising first).
const MAX_CANDIDATES: usize = 512;

impl Tree {
    pub(super) fn choose(catalog: &Catalog, min_images: usize, min_saving: u64) -> Tree {
        let images = catalog.images.len();
        let groups: Vec<(Bits, u64)> = catalog
            .sets
            .iter()
            .zip(&catalog.groups)
            .filter(|(_, g)| g.bytes > 0)
            .map(|(members, g)| (Bits::of(members, images), g.bytes))
            .collect();
        let shared_by = |set: &Bits| -> u64 {
            groups
                .iter()
                .filter(|(t, _)| set.subset_of(t))
                .map(|(_, b)| b)
                .sum()
        };
        let mut candidates: Vec<(Bits, u64)> = groups
            .iter()
            .map(|(t, _)| t.clone())
            .filter(|t| t.len() >= min_images.max(2))
            .map(|t| {
                let potential = (t.len() as u64 - 1) * shared_by(&t);
                (t, potential)
            })
            .collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0 .0.cmp(&b.0 .0)));
        candidates.truncate(MAX_CANDIDATES);
        let mut chosen: Vec<Bits> = Vec::new();
        loop {
            let mut best: Option<(u64, usize)> = None;
            for (i, (c, _)) in candidates.iter().enumerate() {
                if chosen.contains(c) || !chosen.iter().all(|s| laminar(c, s)) {
                    continue;
                }
                let gain = gain(c, &chosen, &groups);
                if best.is_none_or(|(g, _)| gain > g) {
                    best = Some((gain, i));
                }
            }
            match best {
                Some((gain, i)) if gain >= min_saving.max(1) => {
                    chosen.push(candidates[i].0.clone())
                }
                _ => break,
            }
        }
        Tree::ordered(chosen, images)
    }

    /// Numbers the chosen sets depth first, larger sets first among siblings.
    fn ordered(chosen: Vec<Bits>, images: usize) -> Tree {
        let parent_of = |s: &Bits| -> Option<usize> {
            (0..chosen.len())
                .filter(|&j| chosen[j] != *s && s.subset_of(&chosen[j]))
                .min_by_key(|&j| chosen[j].len())
        };
        let parents: Vec<Option<usize>> = chosen.iter().map(parent_of).collect();
        let members =
            |s: &Bits| -> Vec<u16> { (0..images as u16).filter(|&i| s.contains(i)).collect() };
        let mut order: Vec<usize> = Vec::new();
        let mut stack: Vec<usize> = sorted_children(&chosen, &parents, None, &members);
        stack.reverse();
        while let Some(next) = stack.pop() {
            order.push(next);
            let mut children = sorted_children(&chosen, &parents, Some(next), &members);
            children.reverse();
            stack.extend(children);
        }
        let position = |j: usize| order.iter().position(|&o| o == j);
        let bases = order
            .iter()
            .map(|&j| Base {
                members: members(&chosen[j]),
                bits: chosen[j].clone(),
                parent: parents[j].and_then(position),
            })
            .collect();
        Tree { bases }
    }

    /// The bases an image is built on, root first.
    pub(super) fn chain(&self, image: u16) -> Vec<usize> {
        // Parents come before children in `bases`, and an image's bases are nested.
        (0..self.bases.len())
            .filter(|&b| self.bases[b].bits.contains(image))
            .collect()
    }

    /// The base of `image`'s chain that holds an entry shared by exactly `set`: the largest
    /// base of the chain within `set`, if any; `None` puts it in the image's top layer.
    pub(super) fn base_of(&self, set: &Bits, image: u16) -> Option<usize> {
        self.chain(image)
            .into_iter()
            .find(|&b| self.bases[b].bits.subset_of(set))
    }

    /// The base holding an entry shared by exactly `set`, for the images of base `b`.
    pub(super) fn holds(&self, b: usize, set: &Bits) -> bool {
        let base = &self.bases[b];
        base.bits.subset_of(set)
            && base
                .parent
                .is_none_or(|p| !self.bases[p].bits.subset_of(set))
    }
}

fn sorted_children(
    chosen: &[Bits],
    parents: &[Option<usize>],
    parent: Option<usize>,
    members: &dyn Fn(&Bits) -> Vec<u16>,
) -> Vec<usize> {
    let mut children: Vec<usize> = (0..chosen.len())
        .filter(|&j| parents[j] == parent)
        .collect();
    children.sort_by_key(|&j| (std::cmp::Reverse(chosen[j].len()), members(&chosen[j])));
    children
}

/// Nested or disjoint.
fn laminar(a: &Bits, b: &Bits) -> bool {
    a.subset_of(b) || b.subset_of(a) || a.disjoint(b)
}

/// Bytes shipped fewer if set `c` becomes a base next to `chosen` (see the module comment).
fn gain(c: &Bits, chosen: &[Bits], groups: &[(Bits, u64)]) -> u64 {
    let parent = chosen
        .iter()
        .filter(|s| c.subset_of(s))
        .min_by_key(|s| s.len());
    let inside: Vec<&Bits> = chosen.iter().filter(|s| s.subset_of(c)).collect();
    // The direct children: chosen sets inside c within no other chosen set inside c.
    let children = inside
        .iter()
        .filter(|s| !inside.iter().any(|o| o != *s && s.subset_of(o)));
    let weight = (c.len() as i64 - 1) - children.map(|s| s.len() as i64 - 1).sum::<i64>();
    if weight <= 0 {
        return 0;
    }
    let content: u64 = groups
        .iter()
        .filter(|(t, _)| c.subset_of(t) && parent.is_none_or(|p| !p.subset_of(t)))
        .map(|(_, b)| b)
        .sum();
    (weight as u64 * content).saturating_sub(END_OF_ARCHIVE)
}
