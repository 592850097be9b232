//! Binary Merkle tree over 32-byte leaves (blake2b-256), with domain-separated leaf and inner
//! nodes so a leaf can never be passed off as an inner node.
//!
//! Leaf node: `H(0x00 || leaf)`. Inner node: `H(0x01 || left || right)`. A level with an odd
//! number of nodes carries its last node up unchanged. The root of an empty tree is an error.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// A Merkle tree that cannot be built, or a proof that does not hold.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
	#[error("invalid Merkle tree: {0}")]
	InvalidTree(String),
	#[error("invalid Merkle proof: {0}")]
	InvalidProof(String),
}

type Result<T> = std::result::Result<T, MerkleError>;

fn leaf_node(leaf: &Digest) -> Digest {
	Digest::of(&[&[0x00], leaf.as_bytes()])
}

fn inner_node(left: &Digest, right: &Digest) -> Digest {
	Digest::of(&[&[0x01], left.as_bytes(), right.as_bytes()])
}

/// All levels of a Merkle tree, leaves first.
#[derive(Clone, Debug)]
pub struct MerkleTree {
	levels: Vec<Vec<Digest>>,
}

/// Inclusion proof of one leaf: its index, the number of leaves and the sibling hashes from
/// the bottom up (levels where the node was carried up have no sibling).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
	pub leaf_index: u64,
	pub leaf_count: u64,
	pub siblings: Vec<Digest>,
}

impl MerkleTree {
	pub fn new(leaves: &[Digest]) -> Result<Self> {
		if leaves.is_empty() {
			return Err(MerkleError::InvalidTree("a Merkle tree needs at least one leaf".into()));
		}
		let mut levels = vec![leaves.iter().map(leaf_node).collect::<Vec<_>>()];
		while levels.last().map_or(0, Vec::len) > 1 {
			let below = levels.last().expect("levels is never empty");
			let above = below
				.chunks(2)
				.map(|pair| match pair {
					[left, right] => inner_node(left, right),
					[single] => *single,
					_ => unreachable!("chunks(2) yields one or two nodes"),
				})
				.collect();
			levels.push(above);
		}
		Ok(MerkleTree { levels })
	}

	pub fn root(&self) -> Digest {
		self.levels.last().expect("levels is never empty")[0]
	}

	pub fn leaf_count(&self) -> usize {
		self.levels[0].len()
	}

	pub fn proof(&self, leaf_index: usize) -> Result<MerkleProof> {
		if leaf_index >= self.leaf_count() {
			return Err(MerkleError::InvalidTree(format!(
				"leaf {leaf_index} out of {}",
				self.leaf_count()
			)));
		}
		let mut siblings = Vec::new();
		let mut index = leaf_index;
		for level in &self.levels[..self.levels.len() - 1] {
			let sibling = index ^ 1;
			if sibling < level.len() {
				siblings.push(level[sibling]);
			}
			index /= 2;
		}
		Ok(MerkleProof {
			leaf_index: leaf_index as u64,
			leaf_count: self.leaf_count() as u64,
			siblings,
		})
	}
}

/// Root of the tree over `leaves`.
pub fn merkle_root(leaves: &[Digest]) -> Result<Digest> {
	Ok(MerkleTree::new(leaves)?.root())
}

impl MerkleProof {
	/// Checks that `leaf` sits at `leaf_index` under `root`.
	pub fn verify(&self, root: &Digest, leaf: &Digest) -> Result<()> {
		if self.leaf_count == 0 || self.leaf_index >= self.leaf_count {
			return Err(MerkleError::InvalidProof(format!(
				"leaf index {} out of {}",
				self.leaf_index, self.leaf_count
			)));
		}
		let mut node = leaf_node(leaf);
		let mut index = self.leaf_index;
		let mut width = self.leaf_count;
		let mut siblings = self.siblings.iter();
		while width > 1 {
			let sibling_index = index ^ 1;
			if sibling_index < width {
				let sibling = siblings.next().ok_or_else(|| {
					MerkleError::InvalidProof("proof has too few sibling hashes".into())
				})?;
				node = if index.is_multiple_of(2) {
					inner_node(&node, sibling)
				} else {
					inner_node(sibling, &node)
				};
			}
			index /= 2;
			width = width.div_ceil(2);
		}
		if siblings.next().is_some() {
			return Err(MerkleError::InvalidProof(
				"proof has more sibling hashes than the tree has levels".into(),
			));
		}
		if node != *root {
			return Err(MerkleError::InvalidProof(format!(
				"leaf leads to root {node}, expected {root}"
			)));
		}
		Ok(())
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn leaves(count: usize) -> Vec<Digest> {
		(0..count as u64).map(|i| Digest::of(&[&i.to_le_bytes()])).collect()
	}

	#[test]
	fn every_proof_verifies_for_every_tree_size() {
		for count in 1..=17 {
			let leaves = leaves(count);
			let tree = MerkleTree::new(&leaves).unwrap();
			for (index, leaf) in leaves.iter().enumerate() {
				tree.proof(index).unwrap().verify(&tree.root(), leaf).unwrap();
			}
		}
	}

	#[test]
	fn proofs_fail_for_wrong_leaf_index_root_or_siblings() {
		let leaves = leaves(9);
		let tree = MerkleTree::new(&leaves).unwrap();
		let proof = tree.proof(4).unwrap();
		assert!(proof.verify(&tree.root(), &leaves[5]).is_err());

		let other_root = merkle_root(&leaves[..8]).unwrap();
		assert!(matches!(proof.verify(&other_root, &leaves[4]), Err(MerkleError::InvalidProof(_))));

		let mut moved = proof.clone();
		moved.leaf_index = 5;
		assert!(moved.verify(&tree.root(), &leaves[4]).is_err());

		let mut short = proof.clone();
		short.siblings.pop();
		assert!(short.verify(&tree.root(), &leaves[4]).is_err());

		let mut long = proof.clone();
		long.siblings.push(leaves[0]);
		assert!(long.verify(&tree.root(), &leaves[4]).is_err());

		let mut out_of_range = proof;
		out_of_range.leaf_index = 9;
		assert!(out_of_range.verify(&tree.root(), &leaves[4]).is_err());
	}

	#[test]
	fn leaf_and_inner_nodes_are_domain_separated() {
		// A two-leaf tree's root must differ from the one-leaf tree over the concatenation.
		let leaves = leaves(2);
		let root = merkle_root(&leaves).unwrap();
		let fake_leaf = Digest::of(&[leaves[0].as_bytes(), leaves[1].as_bytes()]);
		assert_ne!(root, merkle_root(&[fake_leaf]).unwrap());
		assert!(MerkleTree::new(&[]).is_err());
	}
}
