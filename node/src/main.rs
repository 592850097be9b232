//! `agora-node`: a validator and RPC endpoint of the Agora chain.

// `sc_cli::Error` and `sc_service::Error`, which every node entry point returns, are large enums
// defined upstream; boxing them at each call would only hide the same error behind another type.
#![allow(clippy::result_large_err)]

mod benchmarking;
mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() {
	if let Err(error) = command::run() {
		// One clear line for the operator, not a debug dump of nested error enums.
		eprintln!("Error: {error}");
		std::process::exit(1);
	}
}
