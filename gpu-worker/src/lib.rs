//! Agora GPU worker's ML core: models, datasets with content commitments, training with tch,
//! proof of training (Merkle commitments over checkpoints and a replay verifier), verifiable
//! aggregation, update compression and differential privacy.
//!
//! The ML core is independent of the chain: it works on files and in-memory values and is
//! tested on its own. On top of it, [`protocol`] says what a job means off chain, [`chain`]
//! talks to `agora-node`, [`p2p`] exchanges blobs with peers, and [`daemon`] and [`client`]
//! are the worker, validator and submitter programs.

pub mod aggregate;
pub mod chain;
pub mod client;
pub mod compress;
pub mod daemon;
pub mod data;
pub mod device;
pub mod digest;
pub mod error;
pub mod models;
pub mod p2p;
pub mod params;
pub mod privacy;
pub mod proof;
pub mod protocol;
pub mod state;
pub mod train;

pub use digest::Digest;
pub use error::{Result, WorkerError};
