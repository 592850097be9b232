//! Agora's ML core: parameter sets with content hashes, the model architectures (one file
//! each), datasets with content commitments, deterministic training with tch (libtorch),
//! verifiable aggregation, update compression and differential privacy.
//!
//! It works on files and in-memory values and knows nothing of the chain or the network: the
//! proof of training (`agora-proof`), the protocol rules (`agora-protocol`) and the daemons
//! (`agora-daemon`) build on it.

pub mod aggregate;
pub mod compress;
pub mod data;
pub mod device;
pub mod error;
pub mod models;
pub mod outer;
pub mod params;
pub mod privacy;
pub mod train;

pub use agora_core::{digest, Digest};
pub use error::{Result, WorkerError};
