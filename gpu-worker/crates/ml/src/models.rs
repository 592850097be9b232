//! Model registry: architectures identified by an id that spells out every hyperparameter,
//! deterministic initialization from a seed, and the tch networks themselves.
//!
//! Ids look like `mlp:in=64,hidden=128,out=10`, `cnn:ch=1,side=8,conv=16-32,out=10` and
//! `transformer:vocab=128,ctx=64,width=64,heads=4,layers=2`; a few presets have short names
//! (see [`PRESETS`]). Two machines that agree on the id and the seed build bit-identical
//! initial weights, because initialization runs in plain Rust (ChaCha20 + exact f32
//! arithmetic) rather than on libtorch's device-dependent RNG.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::digest::{Digest, Hasher};
use crate::error::{Result, WorkerError};
use crate::params::{Layout, ParamSet};

mod gpt;
pub use gpt::GptNet;

/// Short names for the architectures the project uses.
pub const PRESETS: &[(&str, &str)] = &[
	("mlp-digits", "mlp:in=64,hidden=128,out=10"),
	("cnn-digits", "cnn:ch=1,side=8,conv=16-32,out=10"),
	("transformer-char", "transformer:vocab=128,ctx=64,width=64,heads=4,layers=2"),
	("mlp-bench", "mlp:in=784,hidden=512-256,out=10"),
	("cnn-bench", "cnn:ch=1,side=28,conv=32-64,out=10"),
	// About 10M parameters over an 8,192-token BPE vocabulary: trains in minutes on a CPU.
	("gpt-cpu", "gpt:vocab=8192,ctx=256,width=256,heads=8,layers=10"),
	// GPT-2 small's shape (124,439,808 parameters with tied embeddings).
	("gpt2-small", "gpt:vocab=50257,ctx=1024,width=768,heads=12,layers=12"),
];

/// Largest model the worker accepts (4 GiB of f32 weights).
pub const MAX_PARAMETERS: usize = 1 << 30;

/// A network architecture with all its hyperparameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Architecture {
	/// Fully connected classifier on flattened inputs, ReLU between layers.
	Mlp { inputs: usize, hidden: Vec<usize>, classes: usize },
	/// 3x3 convolutions (padding 1), each followed by ReLU and 2x2 max pooling, then a linear
	/// classifier.
	Cnn { channels: usize, side: usize, conv: Vec<usize>, classes: usize },
	/// Pre-norm decoder-only transformer over byte tokens, causal self-attention.
	Transformer { vocab: usize, context: usize, width: usize, heads: usize, layers: usize },
	/// GPT-style language model ([`gpt`]): the transformer's blocks with tied input and output
	/// embeddings and GPT-2's initialisation, over any vocabulary (a BPE tokenizer's).
	Gpt { vocab: usize, context: usize, width: usize, heads: usize, layers: usize },
}

fn parse_list(id: &str, value: &str) -> Result<Vec<usize>> {
	value.split('-').map(|part| parse_number(id, part)).collect()
}

fn parse_number(id: &str, value: &str) -> Result<usize> {
	value.parse().map_err(|_| WorkerError::Architecture {
		id: id.to_string(),
		reason: format!("`{value}` is not a number"),
	})
}

fn join_list(values: &[usize]) -> String {
	values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("-")
}

impl Architecture {
	/// Parses an id or a preset name.
	pub fn from_id(id: &str) -> Result<Self> {
		let id = PRESETS.iter().find(|(name, _)| *name == id).map(|(_, full)| *full).unwrap_or(id);
		let malformed = |reason: &str| WorkerError::Architecture {
			id: id.to_string(),
			reason: reason.to_string(),
		};
		let (kind, rest) =
			id.split_once(':').ok_or_else(|| malformed("expected `kind:key=value,...`"))?;
		let mut fields = BTreeMap::new();
		for pair in rest.split(',') {
			let (key, value) =
				pair.split_once('=').ok_or_else(|| malformed("expected key=value"))?;
			if fields.insert(key, value).is_some() {
				return Err(malformed("repeated key"));
			}
		}
		let mut take =
			|key: &str| fields.remove(key).ok_or_else(|| malformed(&format!("missing `{key}`")));
		let arch = match kind {
			"mlp" => Architecture::Mlp {
				inputs: parse_number(id, take("in")?)?,
				hidden: parse_list(id, take("hidden")?)?,
				classes: parse_number(id, take("out")?)?,
			},
			"cnn" => Architecture::Cnn {
				channels: parse_number(id, take("ch")?)?,
				side: parse_number(id, take("side")?)?,
				conv: parse_list(id, take("conv")?)?,
				classes: parse_number(id, take("out")?)?,
			},
			"transformer" => Architecture::Transformer {
				vocab: parse_number(id, take("vocab")?)?,
				context: parse_number(id, take("ctx")?)?,
				width: parse_number(id, take("width")?)?,
				heads: parse_number(id, take("heads")?)?,
				layers: parse_number(id, take("layers")?)?,
			},
			"gpt" => Architecture::Gpt {
				vocab: parse_number(id, take("vocab")?)?,
				context: parse_number(id, take("ctx")?)?,
				width: parse_number(id, take("width")?)?,
				heads: parse_number(id, take("heads")?)?,
				layers: parse_number(id, take("layers")?)?,
			},
			other => return Err(malformed(&format!("unknown kind `{other}`"))),
		};
		if let Some(key) = fields.keys().next() {
			return Err(malformed(&format!("unknown key `{key}`")));
		}
		arch.validate()?;
		Ok(arch)
	}

	/// The canonical id; `from_id(arch.id()) == arch`.
	pub fn id(&self) -> String {
		match self {
            Architecture::Mlp {
                inputs,
                hidden,
                classes,
            } => format!("mlp:in={inputs},hidden={},out={classes}", join_list(hidden)),
            Architecture::Cnn {
                channels,
                side,
                conv,
                classes,
            } => format!(
                "cnn:ch={channels},side={side},conv={},out={classes}",
                join_list(conv)
            ),
            Architecture::Transformer {
                vocab,
                context,
                width,
                heads,
                layers,
            } => format!(
                "transformer:vocab={vocab},ctx={context},width={width},heads={heads},layers={layers}"
            ),
            Architecture::Gpt {
                vocab,
                context,
                width,
                heads,
                layers,
            } => format!("gpt:vocab={vocab},ctx={context},width={width},heads={heads},layers={layers}"),
        }
	}

	fn validate(&self) -> Result<()> {
		let fail = |reason: &str| {
			Err(WorkerError::Architecture { id: self.id(), reason: reason.to_string() })
		};
		// Ids can come from other parties (a commitment): refuse sizes that would exhaust
		// memory before anything is allocated.
		match self.num_parameters() {
			Some(count) if count <= MAX_PARAMETERS => {},
			_ => return fail(&format!("more than {MAX_PARAMETERS} parameters")),
		}
		match self {
			Architecture::Mlp { inputs, hidden, classes } => {
				if *inputs == 0 || *classes == 0 || hidden.contains(&0) {
					return fail("sizes must be positive");
				}
			},
			Architecture::Cnn { channels, side, conv, classes } => {
				if *channels == 0 || *classes == 0 || conv.is_empty() || conv.contains(&0) {
					return fail("sizes must be positive and there must be a conv layer");
				}
				if pooled_side(*side, conv.len()) == 0 {
					return fail("too many pooling stages for the image side");
				}
			},
			Architecture::Transformer { vocab, context, width, heads, layers }
			| Architecture::Gpt { vocab, context, width, heads, layers } => {
				if *vocab == 0 || *context == 0 || *layers == 0 || *heads == 0 {
					return fail("sizes must be positive");
				}
				if width % heads != 0 {
					return fail("width must be a multiple of heads");
				}
			},
		}
		Ok(())
	}

	/// Number of parameters, computed without building the network (checked arithmetic).
	pub fn num_parameters(&self) -> Option<usize> {
		let linear = |i: usize, o: usize| i.checked_mul(o)?.checked_add(o);
		match self {
			Architecture::Mlp { inputs, hidden, classes } => {
				let mut total = 0usize;
				let mut width = *inputs;
				for &size in hidden {
					total = total.checked_add(linear(width, size)?)?;
					width = size;
				}
				total.checked_add(linear(width, *classes)?)
			},
			Architecture::Cnn { channels, side, conv, classes } => {
				let mut total = 0usize;
				let mut in_channels = *channels;
				for &out in conv {
					total = total.checked_add(linear(in_channels.checked_mul(9)?, out)?)?;
					in_channels = out;
				}
				let pooled = pooled_side(*side, conv.len());
				let features = in_channels.checked_mul(pooled)?.checked_mul(pooled)?;
				total.checked_add(linear(features, *classes)?)
			},
			Architecture::Transformer { vocab, context, width, layers, .. } => {
				gpt::parameters(*vocab, *context, *width, *layers)?
					.checked_add(linear(*width, *vocab)?)
			},
			// Tied embeddings: the output layer is the token embedding, no parameters of its own.
			Architecture::Gpt { vocab, context, width, layers, .. } => {
				gpt::parameters(*vocab, *context, *width, *layers)
			},
		}
	}

	/// `(vocabulary, context)` of a language model; `None` for a classifier.
	pub fn language_shape(&self) -> Option<(usize, usize)> {
		match self {
			Architecture::Transformer { vocab, context, .. }
			| Architecture::Gpt { vocab, context, .. } => Some((*vocab, *context)),
			Architecture::Mlp { .. } | Architecture::Cnn { .. } => None,
		}
	}

	/// Whether samples are images with labels (classification) or token sequences.
	pub fn is_language_model(&self) -> bool {
		self.language_shape().is_some()
	}

	/// Builds the network's variables in `vs` and returns the network.
	pub fn build(&self, vs: &nn::Path) -> Network {
		match self {
			Architecture::Mlp { inputs, hidden, classes } => {
				let mut layers = Vec::new();
				let mut width = *inputs as i64;
				for (index, &size) in hidden.iter().enumerate() {
					layers.push(nn::linear(
						vs / format!("fc{index}"),
						width,
						size as i64,
						Default::default(),
					));
					width = size as i64;
				}
				let output = nn::linear(vs / "out", width, *classes as i64, Default::default());
				Network::Mlp(MlpNet { layers, output })
			},
			Architecture::Cnn { channels, side, conv, classes } => {
				let config = nn::ConvConfig { padding: 1, ..Default::default() };
				let mut layers = Vec::new();
				let mut in_channels = *channels as i64;
				for (index, &out_channels) in conv.iter().enumerate() {
					layers.push(nn::conv2d(
						vs / format!("conv{index}"),
						in_channels,
						out_channels as i64,
						3,
						config,
					));
					in_channels = out_channels as i64;
				}
				let pooled = pooled_side(*side, conv.len()) as i64;
				let output = nn::linear(
					vs / "out",
					in_channels * pooled * pooled,
					*classes as i64,
					Default::default(),
				);
				Network::Cnn(CnnNet {
					input_shape: [*channels as i64, *side as i64, *side as i64],
					layers,
					output,
				})
			},
			Architecture::Transformer { vocab, context, width, heads, layers } => {
				Network::Transformer(TransformerNet {
					trunk: DecoderTrunk::new(vs, *vocab, *context, *width, *heads, *layers),
					head: nn::linear(vs / "head", *width as i64, *vocab as i64, Default::default()),
				})
			},
			Architecture::Gpt { vocab, context, width, heads, layers } => Network::Gpt(
				GptNet::new(DecoderTrunk::new(vs, *vocab, *context, *width, *heads, *layers)),
			),
		}
	}

	/// The parameter layout of this architecture (built on a throwaway CPU VarStore).
	pub fn layout(&self) -> Result<Layout> {
		let vs = nn::VarStore::new(Device::Cpu);
		let _network = self.build(&vs.root());
		ParamSet::layout_of_var_store(&vs)
	}

	/// Deterministic initial weights for `seed`, computed without libtorch's RNG so they are
	/// bit-identical on every machine and device.
	///
	/// Each tensor gets its own ChaCha20 stream keyed by (seed, tensor name); values are
	/// uniform in [-bound, bound] built from 24 random bits with exact f32 arithmetic:
	/// biases 0, layer-norm gains 1, embeddings bound 0.02·√3 (std 0.02), weight matrices and
	/// convolution kernels bound 1/√fan_in (PyTorch's default scale).
	pub fn initial_params(&self, seed: u64) -> Result<ParamSet> {
		let layout = self.layout()?;
		let mut params = ParamSet::zeros(layout.clone());
		for (index, spec) in layout.specs().iter().enumerate() {
			let range = layout.range(index);
			let values = &mut params.values_mut()[range];
			let leaf = spec.name.rsplit('.').next().unwrap_or(&spec.name);
			let is_norm = spec.name.contains("ln_");
			let rule = if leaf == "bias" {
				InitRule::Constant(0.0)
			} else if is_norm {
				InitRule::Constant(1.0)
			} else if let Architecture::Gpt { layers, .. } = self {
				InitRule::Uniform(gpt::init_std(&spec.name, *layers) * 3f32.sqrt())
			} else if spec.name.contains("embedding") {
				InitRule::Uniform(0.02 * 3f32.sqrt())
			} else {
				let fan_in: usize = spec.shape.iter().skip(1).product();
				InitRule::Uniform(1.0 / (fan_in.max(1) as f32).sqrt())
			};
			match rule {
				InitRule::Constant(c) => values.fill(c),
				InitRule::Uniform(bound) => {
					let mut hasher = Hasher::new();
					hasher.update(b"agora/init/v1");
					hasher.update_u64(seed);
					hasher.update(spec.name.as_bytes());
					let mut rng = ChaCha20Rng::from_seed(hasher.finish().0);
					for value in values.iter_mut() {
						// 24 random bits -> exact f32 in [0, 1), then an affine map whose
						// rounding is fixed by IEEE 754.
						let unit = (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
						*value = (2.0 * unit - 1.0) * bound;
					}
				},
			}
		}
		Ok(params)
	}
}

/// Image side after `stages` 2x2 poolings (0 when the image is too small, or for absurd
/// stage counts that would overflow the shift).
fn pooled_side(side: usize, stages: usize) -> usize {
	u32::try_from(stages).ok().and_then(|s| side.checked_shr(s)).unwrap_or(0)
}

enum InitRule {
	Constant(f32),
	Uniform(f32),
}

impl std::fmt::Display for Architecture {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.write_str(&self.id())
	}
}

/// Multi-layer perceptron.
#[derive(Debug)]
pub struct MlpNet {
	layers: Vec<nn::Linear>,
	output: nn::Linear,
}

/// Small convolutional network.
#[derive(Debug)]
pub struct CnnNet {
	input_shape: [i64; 3],
	layers: Vec<nn::Conv2D>,
	output: nn::Linear,
}

/// A pre-norm block: `x + attention(ln(x))`, then `x + mlp(ln(x))` (GELU, 4× width).
#[derive(Debug)]
struct TransformerBlock {
	ln_attention: nn::LayerNorm,
	qkv: nn::Linear,
	attention_out: nn::Linear,
	ln_mlp: nn::LayerNorm,
	mlp_in: nn::Linear,
	mlp_out: nn::Linear,
	heads: i64,
}

impl TransformerBlock {
	fn new(block: &nn::Path, width: i64, heads: i64) -> Self {
		let linear = |name: &str, inputs: i64, outputs: i64| {
			nn::linear(block / name, inputs, outputs, Default::default())
		};
		TransformerBlock {
			ln_attention: nn::layer_norm(block / "ln_attention", vec![width], Default::default()),
			qkv: linear("qkv", width, 3 * width),
			attention_out: linear("attention_out", width, width),
			ln_mlp: nn::layer_norm(block / "ln_mlp", vec![width], Default::default()),
			mlp_in: linear("mlp_in", width, 4 * width),
			mlp_out: linear("mlp_out", 4 * width, width),
			heads,
		}
	}

	fn forward(&self, x: &Tensor, causal_mask: &Tensor) -> Tensor {
		let (batch, time, width) = x.size3().expect("transformer activations are 3-d");
		let head_dim = width / self.heads;
		let qkv = self.qkv.forward(&self.ln_attention.forward(x));
		let split_heads = |t: &Tensor| t.view([batch, time, self.heads, head_dim]).transpose(1, 2);
		let parts = qkv.split(width, 2);
		let (q, k, v) = (split_heads(&parts[0]), split_heads(&parts[1]), split_heads(&parts[2]));
		// Explicit attention rather than a fused kernel: the same ops on every backend keeps
		// replays close to the original run.
		let scores = q.matmul(&k.transpose(-2, -1)) * (1.0 / (head_dim as f64).sqrt());
		let weights = scores.masked_fill(causal_mask, f64::NEG_INFINITY).softmax(-1, Kind::Float);
		let attended = weights.matmul(&v).transpose(1, 2).contiguous().view([batch, time, width]);
		let x = x + self.attention_out.forward(&attended);
		let hidden = self.mlp_in.forward(&self.ln_mlp.forward(&x)).gelu("none");
		&x + self.mlp_out.forward(&hidden)
	}
}

/// Decoder-only transformer language model.
#[derive(Debug)]
pub struct TransformerNet {
	trunk: DecoderTrunk,
	head: nn::Linear,
}

/// What the transformer and the GPT share: token and learned position embeddings, the
/// pre-norm blocks under a causal mask, and the final layer norm (they differ only in the
/// output layer).
#[derive(Debug)]
struct DecoderTrunk {
	token_embedding: nn::Embedding,
	position_embedding: Tensor,
	blocks: Vec<TransformerBlock>,
	ln_final: nn::LayerNorm,
}

impl DecoderTrunk {
	fn new(
		vs: &nn::Path,
		vocab: usize,
		context: usize,
		width: usize,
		heads: usize,
		layers: usize,
	) -> Self {
		let (vocab, context, width) = (vocab as i64, context as i64, width as i64);
		DecoderTrunk {
			token_embedding: nn::embedding(
				vs / "token_embedding",
				vocab,
				width,
				Default::default(),
			),
			position_embedding: vs.zeros("position_embedding", &[context, width]),
			blocks: (0..layers)
				.map(|index| {
					TransformerBlock::new(&(vs / format!("block{index}")), width, heads as i64)
				})
				.collect(),
			ln_final: nn::layer_norm(vs / "ln_final", vec![width], Default::default()),
		}
	}

	/// Tokens `[batch, time]` (i64) to the final states `[batch, time, width]`.
	fn forward(&self, tokens: &Tensor) -> Tensor {
		let time = tokens.size()[1];
		let positions = self.position_embedding.narrow(0, 0, time);
		let mut x = self.token_embedding.forward(tokens) + positions;
		let causal_mask = Tensor::ones([time, time], (Kind::Bool, tokens.device())).triu(1);
		for block in &self.blocks {
			x = block.forward(&x, &causal_mask);
		}
		self.ln_final.forward(&x)
	}
}

/// A built network: maps a batch of inputs to logits.
#[derive(Debug)]
pub enum Network {
	Mlp(MlpNet),
	Cnn(CnnNet),
	Transformer(TransformerNet),
	Gpt(GptNet),
}

impl Module for Network {
	/// Classifiers take f32 inputs `[batch, features...]` and return `[batch, classes]`;
	/// the transformer takes i64 tokens `[batch, time]` and returns `[batch, time, vocab]`.
	fn forward(&self, xs: &Tensor) -> Tensor {
		match self {
			Network::Mlp(net) => {
				let mut x = xs.flatten(1, -1);
				for layer in &net.layers {
					x = layer.forward(&x).relu();
				}
				net.output.forward(&x)
			},
			Network::Cnn(net) => {
				let [c, h, w] = net.input_shape;
				let mut x = xs.view([-1, c, h, w]);
				for layer in &net.layers {
					x = layer.forward(&x).relu().max_pool2d_default(2);
				}
				net.output.forward(&x.flatten(1, -1))
			},
			Network::Transformer(net) => net.head.forward(&net.trunk.forward(xs)),
			Network::Gpt(net) => net.forward(xs),
		}
	}
}

/// A network with its variables on a device.
pub struct Model {
	arch: Architecture,
	vs: nn::VarStore,
	network: Network,
}

impl Model {
	/// Builds the architecture on `device` and loads `params` into it; the parameter layout
	/// must match the architecture exactly.
	pub fn new(arch: &Architecture, params: &ParamSet, device: Device) -> Result<Self> {
		let vs = nn::VarStore::new(device);
		let network = arch.build(&vs.root());
		params.copy_into_var_store(&vs)?;
		Ok(Model { arch: arch.clone(), vs, network })
	}

	pub fn architecture(&self) -> &Architecture {
		&self.arch
	}

	pub fn var_store(&self) -> &nn::VarStore {
		&self.vs
	}

	pub fn network(&self) -> &Network {
		&self.network
	}

	pub fn device(&self) -> Device {
		self.vs.device()
	}

	/// Current weights as plain f32 buffers.
	pub fn params(&self) -> Result<ParamSet> {
		ParamSet::from_var_store(&self.vs)
	}

	pub fn load_params(&self, params: &ParamSet) -> Result<()> {
		params.copy_into_var_store(&self.vs)
	}
}

/// Metadata keys of model files.
pub const META_ARCH: &str = "agora.arch";
pub const META_HASH: &str = "agora.hash";

/// Saves weights as safetensors with the architecture id and content hash in the metadata.
pub fn save_model(path: &Path, arch: &Architecture, params: &ParamSet) -> Result<Digest> {
	let hash = params.content_hash();
	let metadata = BTreeMap::from([
		(META_ARCH.to_string(), arch.id()),
		(META_HASH.to_string(), hash.to_hex()),
	]);
	params.save(path, &metadata)?;
	Ok(hash)
}

/// Loads a model file and checks it: architecture id present and parseable, tensors exactly
/// the architecture's (names and shapes), all values finite, and the content hash equal to
/// the one recorded in the file.
pub fn load_model(path: &Path) -> Result<(Architecture, ParamSet)> {
	let (params, metadata) = ParamSet::load(path)?;
	let arch_id = metadata.get(META_ARCH).ok_or_else(|| {
		WorkerError::Safetensors(format!("{} has no `{META_ARCH}` metadata", path.display()))
	})?;
	let arch = Architecture::from_id(arch_id)?;
	arch.layout()?.check_matches(params.layout())?;
	params.check_finite()?;
	if let Some(recorded) = metadata.get(META_HASH) {
		let actual = params.content_hash();
		if *recorded != actual.to_hex() {
			return Err(WorkerError::HashMismatch {
				what: path.display().to_string(),
				expected: recorded.clone(),
				actual: actual.to_hex(),
			});
		}
	}
	Ok((arch, params))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn ids_round_trip_and_presets_resolve() {
		for (name, id) in PRESETS {
			let arch = Architecture::from_id(name).unwrap();
			assert_eq!(arch.id(), *id);
			assert_eq!(Architecture::from_id(&arch.id()).unwrap(), arch);
		}
	}

	#[test]
	fn parameter_count_matches_the_built_network() {
		for (name, _) in PRESETS {
			let arch = Architecture::from_id(name).unwrap();
			assert_eq!(arch.num_parameters(), Some(arch.layout().unwrap().num_values()), "{name}");
		}
		assert!(Architecture::from_id("mlp:in=100000,hidden=100000,out=10").is_err());
		let deep = format!("cnn:ch=1,side=8,conv={},out=10", vec!["1"; 70].join("-"));
		assert!(Architecture::from_id(&deep).is_err());
	}

	#[test]
	fn malformed_ids_are_errors() {
		for bad in [
			"mlp",
			"mlp:in=64",
			"mlp:in=64,hidden=x,out=10",
			"rnn:in=1",
			"mlp:in=64,hidden=128,out=10,extra=1",
			"transformer:vocab=128,ctx=64,width=65,heads=4,layers=2",
			"cnn:ch=1,side=2,conv=4-4,out=10",
		] {
			assert!(
				matches!(Architecture::from_id(bad), Err(WorkerError::Architecture { .. })),
				"{bad} should be rejected"
			);
		}
	}

	#[test]
	fn initialization_is_deterministic_and_seed_dependent() {
		let arch = Architecture::from_id("cnn-digits").unwrap();
		let a = arch.initial_params(7).unwrap();
		let b = arch.initial_params(7).unwrap();
		let c = arch.initial_params(8).unwrap();
		assert_eq!(a.content_hash(), b.content_hash());
		assert_ne!(a.content_hash(), c.content_hash());
		// Pinned: a change here changes every commitment made from a seed.
		assert_eq!(
			Architecture::from_id("mlp:in=4,hidden=3,out=2")
				.unwrap()
				.initial_params(1)
				.unwrap()
				.content_hash()
				.to_hex(),
			PINNED_MLP_INIT_HASH
		);
	}

	const PINNED_MLP_INIT_HASH: &str =
		"89c12d822266e40c64b20fc97ba017c8f2ea11e5ae50672c6323426d7a17a0cc";

	#[test]
	fn every_architecture_runs_forward_with_the_expected_shapes() {
		let cases = [
			("mlp-digits", Tensor::zeros([3, 64], (Kind::Float, Device::Cpu)), vec![3, 10]),
			("cnn-digits", Tensor::zeros([3, 1, 8, 8], (Kind::Float, Device::Cpu)), vec![3, 10]),
			(
				"transformer:vocab=16,ctx=8,width=8,heads=2,layers=1",
				Tensor::zeros([2, 8], (Kind::Int64, Device::Cpu)),
				vec![2, 8, 16],
			),
		];
		for (id, input, expected) in cases {
			let arch = Architecture::from_id(id).unwrap();
			let model = Model::new(&arch, &arch.initial_params(0).unwrap(), Device::Cpu).unwrap();
			assert_eq!(model.params().unwrap(), arch.initial_params(0).unwrap());
			let output = model.network().forward(&input);
			assert_eq!(output.size(), expected, "{id}");
		}
	}

	#[test]
	fn model_files_are_checked_on_load() {
		let dir = tempfile::tempdir().unwrap();
		let arch = Architecture::from_id("mlp-digits").unwrap();
		let params = arch.initial_params(3).unwrap();
		let path = dir.path().join("model.safetensors");
		let hash = save_model(&path, &arch, &params).unwrap();
		let (loaded_arch, loaded) = load_model(&path).unwrap();
		assert_eq!((loaded_arch, loaded.content_hash()), (arch.clone(), hash));

		// Weights of another architecture under this architecture's id.
		let other = Architecture::from_id("mlp:in=64,hidden=32,out=10").unwrap();
		let mut metadata = BTreeMap::from([(META_ARCH.to_string(), arch.id())]);
		other.initial_params(3).unwrap().save(&path, &metadata).unwrap();
		assert!(matches!(load_model(&path), Err(WorkerError::ShapeMismatch { .. })));

		// Right shapes, wrong recorded hash.
		metadata.insert(META_HASH.to_string(), Digest::of(&[b"x"]).to_hex());
		params.save(&path, &metadata).unwrap();
		assert!(matches!(load_model(&path), Err(WorkerError::HashMismatch { .. })));

		// Truncated file.
		let bytes = std::fs::read(&path).unwrap();
		std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
		assert!(matches!(load_model(&path), Err(WorkerError::Safetensors(_))));
	}
}
