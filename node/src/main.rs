//! `agora-node`: a validator and RPC endpoint of the Agora chain.

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
