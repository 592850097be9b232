//! Agora GPU worker's ML core: models, datasets with content commitments, training with tch,
//! proof of training (Merkle commitments over checkpoints and a replay verifier), verifiable
//! aggregation, update compression and differential privacy.
//!
//! Independent of the chain: everything here works on files and in-memory values, so it is
//! tested on its own; the chain and network wiring lives elsewhere.

pub mod aggregate;
pub mod compress;
pub mod data;
pub mod device;
pub mod digest;
pub mod error;
pub mod models;
pub mod params;
pub mod privacy;
pub mod proof;
pub mod train;

pub use digest::Digest;
pub use error::{Result, WorkerError};
