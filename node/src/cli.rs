//! Command-line interface of `agora-node`.

/// How blocks are authored. (Instant sealing, a block per transaction, was removed: with the
/// transaction pool of this SDK release its blocks came out empty, and an option that does not
/// work is not offered.)
#[derive(Debug, Copy, Clone, PartialEq, Eq, clap::ValueEnum)]
pub enum Sealing {
	/// A block only when asked over RPC (`engine_createBlock`, `engine_finalizeBlock`).
	Manual,
}

#[derive(Debug, clap::Parser)]
#[command(name = "agora-node", version, about, propagate_version = true)]
pub struct Cli {
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	#[clap(flatten)]
	pub run: sc_cli::RunCmd,

	/// Author blocks on demand instead of by BABE slots (single-node test chains only).
	/// GRANDPA is not run: blocks are finalized as they are sealed.
	#[arg(long, value_enum)]
	pub sealing: Option<Sealing>,
}

#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
	/// Key management: generate, inspect and insert keys.
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),

	/// Build a chain specification (JSON) from a built-in chain.
	BuildSpec(sc_cli::BuildSpecCmd),

	/// Validate blocks.
	CheckBlock(sc_cli::CheckBlockCmd),

	/// Export blocks.
	ExportBlocks(sc_cli::ExportBlocksCmd),

	/// Export the state of a given block into a chain spec.
	ExportState(sc_cli::ExportStateCmd),

	/// Import blocks.
	ImportBlocks(sc_cli::ImportBlocksCmd),

	/// Remove the whole chain.
	PurgeChain(sc_cli::PurgeChainCmd),

	/// Revert the chain to a previous state.
	Revert(sc_cli::RevertCmd),

	/// Benchmark pallets, storage, machine and blocks (weights come from here).
	#[command(subcommand)]
	Benchmark(frame_benchmarking_cli::BenchmarkCmd),

	/// Database metadata.
	ChainInfo(sc_cli::ChainInfoCmd),
}
