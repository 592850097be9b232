//! What every part of the Agora worker shares and that needs neither libtorch nor a network:
//! blake2b-256 content hashes ([`Digest`], the same function as the runtime's `blake2_256`) and
//! crash-safe state files ([`state`]) and the
//! binary Merkle tree that commits to checkpoints and dataset shards ([`merkle`]).

pub mod digest;
pub mod merkle;
pub mod state;

pub use digest::{Digest, Hasher, ParseDigestError};
