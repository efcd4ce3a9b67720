//! Merkle tree hashing and proofs as in Certificate Transparency (RFC 9162
//! §2.1, the same as RFC 6962 §2.1): pure functions, no I/O.
//!
//! - leaf hash: `SHA-256(0x00 ‖ leaf)`;
//! - interior node: `SHA-256(0x01 ‖ left ‖ right)`;
//! - the tree head of `n` leaves splits at the largest power of two smaller
//!   than `n` (`MTH`); the empty tree's head is `SHA-256("")`.
//!
//! The functions take leaf *hashes* ([`leaf_hash`] of each entry), so a log
//! keeps 32 bytes per entry and never re-reads the entries to prove.
//! Inclusion and consistency proofs are generated as RFC 9162 §2.1.3.1 and
//! §2.1.4.1 define them and verified with the algorithms of §2.1.3.2 and
//! §2.1.4.2, so a client with any RFC 9162 verifier can check them.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node or a tree head.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`: the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The head of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n` ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// `MTH(D[n])`: the tree head of the leaves whose hashes are `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The roots of the perfect subtrees a tree decomposes into, largest
/// first (one per set bit of its size: RFC 9162's compact range of the
/// whole tree). Enough to append leaves and compute the tree head without
/// the leaves themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree's.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (its [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                node = node_hash(&left, &node);
            }
            s >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The tree head, `MTH` of every leaf pushed.
    pub fn root(&self) -> Hash {
        match self.nodes.split_last() {
            None => empty_root(),
            Some((last, rest)) => rest.iter().rev().fold(*last, |acc, n| node_hash(n, &acc)),
        }
    }

    /// The subtree roots, concatenated (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.concat()
    }

    /// What [`Frontier::to_bytes`] wrote for a tree of `size`; `None` when
    /// the bytes do not hold one root per set bit of `size`.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size.count_ones() as usize * 32 {
            return None;
        }
        let nodes = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().ok())
            .collect::<Option<Vec<Hash>>>()?;
        Some(Self { size, nodes })
    }
}

/// `PATH(m, D[n])`: the inclusion proof of leaf `index` in the tree of the
/// first `size` of `leaves` (RFC 9162 §2.1.3.1); `None` unless
/// `index < size ≤ leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Option<Vec<Hash>> {
    if size > leaves.len() as u64 || index >= size {
        return None;
    }
    let mut proof = Vec::new();
    path(index as usize, &leaves[..size as usize], &mut proof);
    Some(proof)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// `PROOF(m, D[n])`: the consistency proof between the trees of the first
/// `first` and the first `second` of `leaves` (RFC 9162 §2.1.4.1; empty
/// when `first` is 0 or equals `second`); `None` unless
/// `first ≤ second ≤ leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], first: u64, second: u64) -> Option<Vec<Hash>> {
    if second > leaves.len() as u64 || first > second {
        return None;
    }
    let mut proof = Vec::new();
    if first > 0 && first < second {
        subproof(first as usize, &leaves[..second as usize], true, &mut proof);
    }
    Some(proof)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], complete, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Whether `proof` shows the leaf with hash `leaf` at `index` in the tree of
/// `size` leaves whose head is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Whether `proof` shows that the tree of `second` leaves with head
/// `second_root` extends the tree of `first` leaves with head `first_root`
/// (RFC 9162 §2.1.4.2; a tree of 0 leaves is extended by every tree).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty() && *first_root == empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *first_root && sr == *second_root && snode == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The RFC 6962 reference entries (as in Certificate Transparency's and
    /// Trillian's test data).
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|e| leaf_hash(&hex::decode(e).unwrap()))
        .collect()
    }

    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn tree_heads_match_the_reference_vectors() {
        let leaves = reference_leaves();
        for (n, want) in REFERENCE_ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root(&leaves[..n])), *want, "size {n}");
        }
        assert_eq!(empty_root(), h(REFERENCE_ROOTS[0]));
    }

    #[test]
    fn proofs_match_the_reference_vectors() {
        let leaves = reference_leaves();
        let root8 = h(REFERENCE_ROOTS[8]);
        let cases: [(u64, [&str; 3]); 2] = [
            (
                0,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, want) in cases {
            let proof = inclusion_proof(&leaves, index, 8).unwrap();
            assert_eq!(proof, want.map(h).to_vec(), "inclusion of {index}");
            assert!(verify_inclusion(
                &leaves[index as usize],
                index,
                8,
                &proof,
                &root8
            ));
        }
        let consistency: [(u64, &[&str]); 2] = [
            (
                2,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (first, want) in consistency {
            let proof = consistency_proof(&leaves, first, 8).unwrap();
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "consistency {first} → 8");
            assert!(verify_consistency(
                first,
                8,
                &h(REFERENCE_ROOTS[first as usize]),
                &root8,
                &proof
            ));
        }
    }

    #[test]
    fn degenerate_sizes() {
        let leaves = reference_leaves();
        let (r4, r8) = (root(&leaves[..4]), root(&leaves));
        assert!(verify_consistency(4, 4, &r4, &r4, &[]));
        assert!(!verify_consistency(4, 4, &r4, &r8, &[]));
        assert!(!verify_consistency(4, 4, &r4, &r4, &[r4]));
        assert!(verify_consistency(0, 8, &empty_root(), &r8, &[]));
        assert!(!verify_consistency(0, 8, &r4, &r8, &[]));
        assert!(!verify_consistency(8, 4, &r8, &r4, &[]));
        assert!(!verify_consistency(4, 8, &r4, &r8, &[]));
        assert!(inclusion_proof(&leaves, 8, 8).is_none());
        assert!(inclusion_proof(&leaves, 0, 9).is_none());
        assert!(consistency_proof(&leaves, 5, 3).is_none());
        assert!(consistency_proof(&leaves, 0, 9).is_none());
        assert!(inclusion_proof(&leaves, 0, 1).unwrap().is_empty());
        assert!(verify_inclusion(&leaves[0], 0, 1, &[], &leaves[0]));
        assert!(!verify_inclusion(&leaves[0], 1, 1, &[], &leaves[0]));
    }

    /// Distinct entries (the index is part of each).
    fn tree() -> impl Strategy<Value = Vec<Hash>> {
        prop::collection::vec(any::<[u8; 8]>(), 1..80).prop_map(|entries| {
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| leaf_hash(&[&(i as u64).to_be_bytes()[..], e].concat()))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_frontier_gives_every_tree_head(leaves in tree()) {
            let mut f = Frontier::new();
            prop_assert_eq!(f.root(), empty_root());
            for (i, leaf) in leaves.iter().enumerate() {
                f.push(*leaf);
                prop_assert_eq!(f.root(), root(&leaves[..=i]));
                let again = Frontier::from_bytes(f.size(), &f.to_bytes()).unwrap();
                prop_assert_eq!(&again, &f);
            }
            prop_assert!(Frontier::from_bytes(f.size(), &f.to_bytes()[1..]).is_none());
        }

        #[test]
        fn every_inclusion_proof_verifies_and_a_changed_leaf_or_size_fails(
            leaves in tree(), pick in any::<prop::sample::Index>(), size_pick in any::<prop::sample::Index>(),
        ) {
            let n = leaves.len() as u64;
            let size = size_pick.index(leaves.len()) as u64 + 1;
            let index = pick.index(size as usize) as u64;
            let r = root(&leaves[..size as usize]);
            let proof = inclusion_proof(&leaves, index, size).unwrap();
            let leaf = leaves[index as usize];
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &r));
            let mut other = leaf;
            other[0] ^= 1;
            prop_assert!(!verify_inclusion(&other, index, size, &proof, &r));
            if size < n {
                let bigger = root(&leaves[..size as usize + 1]);
                prop_assert!(!verify_inclusion(&leaf, index, size + 1, &proof, &bigger));
            }
            if size > 1 {
                prop_assert!(!verify_inclusion(&leaf, (index + 1) % size, size, &proof, &r));
                let mut bent = proof.clone();
                bent[0][31] ^= 0x80;
                prop_assert!(!verify_inclusion(&leaf, index, size, &bent, &r));
                prop_assert!(!verify_inclusion(&leaf, index, size, &proof[1..], &r));
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_a_changed_leaf_or_size_fails(
            leaves in tree(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(),
        ) {
            let n = leaves.len();
            let (x, y) = (a.index(n + 1) as u64, b.index(n + 1) as u64);
            let (first, second) = (x.min(y), x.max(y));
            let (r1, r2) = (root(&leaves[..first as usize]), root(&leaves[..second as usize]));
            let proof = consistency_proof(&leaves, first, second).unwrap();
            prop_assert!(verify_consistency(first, second, &r1, &r2, &proof));
            if first > 0 && first < second {
                // A rewritten leaf inside the older tree breaks it.
                let mut forged = leaves.clone();
                forged[0][0] ^= 1;
                let f1 = root(&forged[..first as usize]);
                prop_assert!(!verify_consistency(first, second, &f1, &r2, &proof));
                if (second as usize) < n {
                    let bigger = root(&leaves[..second as usize + 1]);
                    prop_assert!(!verify_consistency(first, second + 1, &r1, &bigger, &proof));
                }
                let mut bent = proof.clone();
                bent[0][5] ^= 0x10;
                prop_assert!(!verify_consistency(first, second, &r1, &r2, &bent));
            }
        }
    }
}
