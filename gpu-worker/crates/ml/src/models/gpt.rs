//! A GPT-style decoder (GPT-2's layout): learned positions, pre-norm blocks of causal
//! self-attention and a GELU MLP, a final layer norm, and the output projection tied to the token
//! embedding (`logits = h · Wteᵀ`), so the model has no separate output matrix.
//!
//! Initialisation follows GPT-2: every weight matrix and embedding with standard deviation
//! 0.02, the two projections that write into the residual stream (`attention_out`, `mlp_out`)
//! with 0.02 / √(2·layers) so that the stream's variance does not grow with depth, biases 0 and
//! layer-norm gains 1. The values themselves come from [`Architecture::initial_params`]'s
//! device-independent generator (uniform with that standard deviation).
//!
//! [`Architecture::initial_params`]: super::Architecture::initial_params

use tch::Tensor;

use super::DecoderTrunk;

/// The GPT network.
#[derive(Debug)]
pub struct GptNet {
	trunk: DecoderTrunk,
}

impl GptNet {
	pub(super) fn new(trunk: DecoderTrunk) -> Self {
		GptNet { trunk }
	}

	/// Tokens `[batch, time]` (i64) to next-token logits `[batch, time, vocab]`.
	pub(super) fn forward(&self, tokens: &Tensor) -> Tensor {
		// Tied output layer: the same matrix reads tokens in and scores them out.
		self.trunk.forward(tokens).matmul(&self.trunk.token_embedding.ws.tr())
	}
}

/// Parameters of the embeddings, `layers` blocks and the final layer norm (checked arithmetic):
/// a GPT's whole count, and a transformer's before its separate output layer.
pub(super) fn parameters(
	vocab: usize,
	context: usize,
	width: usize,
	layers: usize,
) -> Option<usize> {
	let linear = |i: usize, o: usize| i.checked_mul(o)?.checked_add(o);
	let w = width;
	let block = [
		4usize.checked_mul(w)?,
		linear(w, w.checked_mul(3)?)?,
		linear(w, w)?,
		linear(w, w.checked_mul(4)?)?,
		linear(w.checked_mul(4)?, w)?,
	]
	.iter()
	.try_fold(0usize, |sum, &part| sum.checked_add(part))?;
	vocab
		.checked_mul(w)?
		.checked_add(context.checked_mul(w)?)?
		.checked_add(block.checked_mul(layers)?)?
		.checked_add(2usize.checked_mul(w)?)
}

/// GPT-2's standard deviation for the weight tensor `name` of a model with `layers` blocks.
pub(super) fn init_std(name: &str, layers: usize) -> f32 {
	let writes_residual = name.contains("attention_out") || name.contains("mlp_out");
	if writes_residual {
		0.02 / (2.0 * layers.max(1) as f32).sqrt()
	} else {
		0.02
	}
}

#[cfg(test)]
mod tests {
	use tch::{Device, Kind, Tensor};

	use super::super::{Architecture, Model, Network};

	#[test]
	fn gpt2_small_has_gpt2_smalls_parameter_count() {
		let arch = Architecture::from_id("gpt2-small").unwrap();
		// GPT-2 small (117M in its paper, 124M counted): 124,439,808 with tied embeddings.
		assert_eq!(arch.num_parameters(), Some(124_439_808));
		assert_eq!(arch.id(), "gpt:vocab=50257,ctx=1024,width=768,heads=12,layers=12");
		let cpu = Architecture::from_id("gpt-cpu").unwrap();
		let count = cpu.num_parameters().unwrap();
		assert!((9_000_000..11_000_000).contains(&count), "{count}");
	}

	#[test]
	fn embeddings_are_tied_and_attention_is_causal() {
		let arch = Architecture::from_id("gpt:vocab=300,ctx=16,width=32,heads=4,layers=2").unwrap();
		let params = arch.initial_params(7).unwrap();
		// Built and counted agree, and there is no output matrix besides the embedding.
		assert_eq!(params.values().len(), arch.num_parameters().unwrap());
		assert!(params.layout().specs().iter().all(|s| !s.name.contains("head")));
		let model = Model::new(&arch, &params, Device::Cpu).unwrap();
		let tokens = Tensor::from_slice(&[5i64, 299, 17, 42, 0, 3]).view([1, 6]);
		let logits = tch::nn::Module::forward(model.network(), &tokens);
		assert_eq!(logits.size(), vec![1, 6, 300]);
		// Changing a later token leaves the logits of earlier positions as they were.
		let changed = Tensor::from_slice(&[5i64, 299, 17, 42, 1, 3]).view([1, 6]);
		let other = tch::nn::Module::forward(model.network(), &changed);
		let before = |t: &Tensor| t.narrow(1, 0, 4);
		assert!(before(&logits).allclose(&before(&other), 1e-6, 1e-6, false));
		assert!(!logits.narrow(1, 4, 1).allclose(&other.narrow(1, 4, 1), 1e-6, 1e-6, false));
		// The scores are the final states against the token embedding itself.
		let Network::Gpt(net) = model.network() else { panic!("a GPT") };
		let weights = net.trunk.token_embedding.ws.shallow_clone();
		tch::no_grad(|| {
			let _ = weights.get(299).fill_(0.0);
		});
		let zeroed = tch::nn::Module::forward(model.network(), &changed);
		let last = zeroed.select(1, 5).select(0, 0);
		assert_eq!(last.double_value(&[299]), 0.0, "token 299 scored by its own embedding");
		assert_eq!(zeroed.kind(), Kind::Float);
	}

	#[test]
	fn initialisation_follows_gpt2() {
		let arch = Architecture::from_id("gpt:vocab=500,ctx=32,width=64,heads=4,layers=8").unwrap();
		let params = arch.initial_params(1).unwrap();
		assert_eq!(params, arch.initial_params(1).unwrap(), "deterministic");
		let std_of = |name: &str| {
			let index = params.layout().specs().iter().position(|s| s.name == name).unwrap();
			let values = params.tensor(index);
			let mean_square: f64 =
				values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / values.len() as f64;
			mean_square.sqrt()
		};
		assert!((std_of("token_embedding.weight") - 0.02).abs() < 0.001);
		assert!((std_of("block0.qkv.weight") - 0.02).abs() < 0.001);
		// Residual projections: 0.02 / √(2 · 8) = 0.005.
		assert!((std_of("block3.mlp_out.weight") - 0.005).abs() < 0.0005);
		assert_eq!(std_of("block3.mlp_out.bias"), 0.0);
		assert_eq!(std_of("ln_final.weight"), 1.0);
	}
}
