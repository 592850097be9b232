//! The Agora worker's programs: the worker and validator daemon ([`daemon`]) and the
//! submitter's and data provider's side ([`client`]).
//!
//! They drive the chain through [`agora_chain`] and exchange blobs through [`agora_p2p`]; the
//! ML work is [`agora_protocol`]'s rules over [`agora_ml`].

pub mod client;
pub mod daemon;

#[cfg(test)]
mod daemon_tests;
#[cfg(test)]
mod fakes;
#[cfg(feature = "cheats")]
pub mod faults;
