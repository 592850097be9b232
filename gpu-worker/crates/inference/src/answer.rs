//! What a request's input and a provider's answer are, and how an answer is computed and
//! checked.
//!
//! Inputs: a classifier takes its features as little-endian f32 (already scaled as in
//! training: `inputs` values for an MLP, `channels x side x side` for a CNN); a language model
//! takes 1 to `context` tokens as its token datasets store them (a byte each for a vocabulary
//! of up to 256, else two, little-endian). Answers: the logits, little-endian f32 (a
//! classifier's classes, a language model's next-token distribution after the last input
//! token): `4 × vocab` bytes, which is why a model whose answer would not fit a challenge on
//! chain ([`MAX_ANSWER_BYTES`]) cannot be served.
//! The same model on the same input gives bit-identical logits on one CPU; across devices an
//! auditor accepts logits within [`LOGIT_TOLERANCE`] with the same top class.

use agora_ml::data::{decode_tokens, token_bytes, Batch, Dataset};
use agora_ml::models::{Architecture, Model};
use tch::{Device, Kind, Tensor};

/// Largest difference between a provider's logit and the auditor's, relative to the largest
/// logit's magnitude (at least 1), that still counts as the same answer. Recomputation is
/// bit-exact on the same CPU build; this allows for another device's summation order, which is
/// not measured yet (no GPU was lent).
pub const LOGIT_TOLERANCE: f32 = 1e-3;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
	#[error("the input has {got} bytes, the model takes {expected}")]
	InputSize { got: usize, expected: String },
	#[error("the input holds a value that is not finite")]
	NotFinite,
	#[error("token {0} is outside the model's vocabulary")]
	Token(usize),
	#[error("the model failed: {0}")]
	Model(String),
}

impl From<tch::TchError> for AnswerError {
	fn from(e: tch::TchError) -> Self {
		AnswerError::Model(e.to_string())
	}
}

/// The most bytes an answer may take: what an answer to a challenge carries on chain
/// (pallet-inference's `MaxChallengeBytes`). A provider whose answers could not be given on
/// chain could not answer a challenge and would be slashed, so such a model is not served.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Errors unless every answer of `arch` (its logits) fits in [`MAX_ANSWER_BYTES`].
pub fn check_answer_size(arch: &Architecture) -> Result<(), AnswerError> {
	let outputs = match arch {
		Architecture::Mlp { classes, .. } | Architecture::Cnn { classes, .. } => *classes,
		Architecture::Transformer { vocab, .. } | Architecture::Gpt { vocab, .. } => *vocab,
	};
	let bytes = outputs.saturating_mul(4);
	if bytes > MAX_ANSWER_BYTES {
		return Err(AnswerError::Model(format!(
			"answers of {arch} take {bytes} bytes, more than a challenge carries on chain \
			 ({MAX_ANSWER_BYTES}): it cannot be served"
		)));
	}
	Ok(())
}

/// The input tensor a request's bytes stand for, checked against the architecture.
fn input_tensor(arch: &Architecture, input: &[u8]) -> Result<Tensor, AnswerError> {
	let features = match arch {
		Architecture::Mlp { inputs, .. } => Some(*inputs),
		Architecture::Cnn { channels, side, .. } => Some(channels * side * side),
		Architecture::Transformer { .. } | Architecture::Gpt { .. } => None,
	};
	match (arch.language_shape(), features) {
		(_, Some(features)) => {
			if input.len() != features * 4 {
				return Err(AnswerError::InputSize {
					got: input.len(),
					expected: format!("{} ({features} f32)", features * 4),
				});
			}
			let values: Vec<f32> = input
				.chunks_exact(4)
				.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
				.collect();
			if values.iter().any(|v| !v.is_finite()) {
				return Err(AnswerError::NotFinite);
			}
			Ok(Tensor::f_from_slice(&values)?.f_view([1, features as i64])?)
		},
		(Some((vocab, context)), None) => {
			// Tokens as a token dataset stores them: a byte each, or two for a wide vocabulary.
			let width = token_bytes(vocab);
			let count = input.len() / width;
			if count == 0 || count > context || !input.len().is_multiple_of(width) {
				return Err(AnswerError::InputSize {
					got: input.len(),
					expected: format!("1 to {context} tokens of {width} byte(s)"),
				});
			}
			if let Some(token) = decode_tokens(input, vocab).find(|&t| t >= vocab) {
				return Err(AnswerError::Token(token));
			}
			let tokens: Vec<i64> = decode_tokens(input, vocab).map(|t| t as i64).collect();
			Ok(Tensor::f_from_slice(&tokens)?.f_view([1, count as i64])?)
		},
		_ => Err(AnswerError::Model("unsupported architecture".into())),
	}
}

/// Computes the answer (the logits) of `model` on a request's `input`.
pub fn answer(model: &Model, input: &[u8]) -> Result<Vec<u8>, AnswerError> {
	let xs = input_tensor(model.architecture(), input)?.f_to_device(model.device())?;
	let logits = tch::no_grad(|| -> Result<Tensor, AnswerError> {
		let out = tch::nn::Module::forward(model.network(), &xs);
		let out = match model.architecture() {
			// The distribution of the token after the last input token.
			arch if arch.is_language_model() => out.f_select(1, -1)?,
			_ => out,
		};
		Ok(out.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?.f_flatten(0, -1)?)
	})?;
	let values = Vec::<f32>::try_from(&logits).map_err(|e| AnswerError::Model(e.to_string()))?;
	Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// The answer to a request put on chain: the logits, or the empty output, a refusal, for an
/// input the model cannot take. Auditors recompute it the same way, so a refusal of a valid
/// input is a wrong answer.
pub fn answer_or_refusal(model: &Model, input: &[u8]) -> Result<Vec<u8>, AnswerError> {
	match answer(model, input) {
		Err(AnswerError::InputSize { .. } | AnswerError::NotFinite | AnswerError::Token(_)) => {
			Ok(Vec::new())
		},
		other => other,
	}
}

/// The logits an answer's bytes hold (`None` if they are not whole f32s).
pub fn logits(answer: &[u8]) -> Option<Vec<f32>> {
	if !answer.len().is_multiple_of(4) || answer.is_empty() {
		return None;
	}
	Some(answer.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The predicted class (or next token) of an answer.
pub fn top_class(logits: &[f32]) -> Option<usize> {
	logits
		.iter()
		.enumerate()
		.filter(|(_, v)| v.is_finite())
		.max_by(|a, b| a.1.total_cmp(b.1))
		.map(|(index, _)| index)
}

/// Whether a provider's answer is the auditor's own, within the devices' tolerance: as many
/// logits, each within [`LOGIT_TOLERANCE`] of the largest magnitude, and the same top class.
pub fn answers_agree(claimed: &[u8], recomputed: &[u8]) -> bool {
	if claimed == recomputed {
		return true;
	}
	let (Some(claimed), Some(recomputed)) = (logits(claimed), logits(recomputed)) else {
		return false;
	};
	if claimed.len() != recomputed.len() || claimed.iter().any(|v| !v.is_finite()) {
		return false;
	}
	let scale = recomputed.iter().fold(1f32, |m, v| m.max(v.abs()));
	let close =
		claimed.iter().zip(&recomputed).all(|(a, b)| (a - b).abs() <= LOGIT_TOLERANCE * scale);
	close && top_class(&claimed) == top_class(&recomputed)
}

/// The request inputs of a prepared dataset's samples (classifiers' scaled features, or a token
/// window without its last token), with their labels where the dataset has them.
pub fn inputs_of(
	dataset: &Dataset,
	indices: &[u32],
) -> anyhow::Result<Vec<(Vec<u8>, Option<usize>)>> {
	let mut out = Vec::with_capacity(indices.len());
	for &index in indices {
		match dataset.batch(&[index], Device::Cpu)? {
			Batch::Classification { inputs, labels } => {
				let values = Vec::<f32>::try_from(&inputs.flatten(0, -1))?;
				let label = Vec::<i64>::try_from(&labels)?.first().map(|&l| l as usize);
				out.push((values.iter().flat_map(|v| v.to_le_bytes()).collect(), label));
			},
			Batch::Language { inputs, targets } => {
				let agora_ml::data::SampleKind::Tokens { vocab, .. } = dataset.kind() else {
					anyhow::bail!("a language batch of a dataset without tokens");
				};
				// Tokens as the model's requests take them: one or two bytes each.
				let tokens = Vec::<i64>::try_from(&inputs.flatten(0, -1))?;
				let tokens: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
				let last =
					Vec::<i64>::try_from(&targets.flatten(0, -1))?.last().map(|&t| t as usize);
				out.push((agora_ml::data::encode_tokens(&tokens, vocab)?, last));
			},
		}
	}
	Ok(out)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn model(preset: &str) -> Model {
		let arch = Architecture::from_id(preset).unwrap();
		let params = arch.initial_params(1).unwrap();
		Model::new(&arch, &params, Device::Cpu).unwrap()
	}

	fn features(values: &[f32]) -> Vec<u8> {
		values.iter().flat_map(|v| v.to_le_bytes()).collect()
	}

	#[test]
	fn answers_are_logits_and_bit_identical_when_recomputed() {
		let mlp = model("mlp-digits");
		let input = features(&(0..64).map(|i| (i % 17) as f32 / 16.0).collect::<Vec<_>>());
		let first = answer(&mlp, &input).unwrap();
		assert_eq!(logits(&first).unwrap().len(), 10);
		// Another model instance from the same weights: the same bytes.
		assert_eq!(answer(&model("mlp-digits"), &input).unwrap(), first);
		assert!(answers_agree(&first, &first));

		let transformer = model("transformer-char");
		let prompt = b"In the beginning".to_vec();
		let next = answer(&transformer, &prompt).unwrap();
		assert_eq!(logits(&next).unwrap().len(), 128);
		assert_eq!(answer(&model("transformer-char"), &prompt).unwrap(), next);
	}

	#[test]
	fn a_gpt_takes_two_byte_tokens_and_only_answers_that_fit_on_chain_are_served() {
		let arch = Architecture::from_id("gpt:vocab=1024,ctx=8,width=16,heads=2,layers=1").unwrap();
		let gpt = Model::new(&arch, &arch.initial_params(2).unwrap(), Device::Cpu).unwrap();
		// A window of a 1,024-token dataset becomes a request of two bytes per token.
		let tokens: Vec<u32> = vec![1000, 3, 512, 7, 999, 0, 42, 300, 1];
		let window = agora_ml::data::encode_tokens(&tokens, 1024).unwrap();
		let kind = agora_ml::data::SampleKind::Tokens { length: 9, vocab: 1024 };
		let data = Dataset::new(kind, 0, 1.0, window, Vec::new()).unwrap();
		let requests = inputs_of(&data, &[0]).unwrap();
		let (input, label) = &requests[0];
		assert_eq!(input, &agora_ml::data::encode_tokens(&tokens[..8], 1024).unwrap());
		assert_eq!(*label, Some(1));
		let reply = answer(&gpt, input).unwrap();
		assert_eq!(logits(&reply).unwrap().len(), 1024);
		// An odd byte count or a token outside the vocabulary is refused, not misread.
		assert!(matches!(answer(&gpt, &input[1..]), Err(AnswerError::InputSize { .. })));
		let outside = agora_ml::data::encode_tokens(&[1023], 1024).unwrap();
		assert!(answer(&gpt, &[outside[0], 0xff]).is_err());
		// 1,024 logits fit a challenge's answer on chain; GPT-2's 50,257 do not.
		check_answer_size(&arch).unwrap();
		assert!(check_answer_size(&Architecture::from_id("gpt2-small").unwrap()).is_err());
		assert!(check_answer_size(&Architecture::from_id("gpt-cpu").unwrap()).is_err());
	}

	#[test]
	fn malformed_inputs_are_refused() {
		let mlp = model("mlp-digits");
		assert!(matches!(answer(&mlp, &[0; 12]), Err(AnswerError::InputSize { .. })));
		let mut nan = features(&[0.0; 64]);
		nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
		assert!(matches!(answer(&mlp, &nan), Err(AnswerError::NotFinite)));
		let transformer = model("transformer-char");
		assert!(matches!(answer(&transformer, &[200]), Err(AnswerError::Token(200))));
		assert!(matches!(answer(&transformer, &[]), Err(AnswerError::InputSize { .. })));
		assert!(matches!(answer(&transformer, &[1; 65]), Err(AnswerError::InputSize { .. })));
		// On chain such inputs get the empty answer; valid ones their logits.
		assert_eq!(answer_or_refusal(&mlp, &[0; 12]).unwrap(), Vec::<u8>::new());
		assert_eq!(answer_or_refusal(&transformer, &[200]).unwrap(), Vec::<u8>::new());
		let valid = features(&[0.5; 64]);
		assert_eq!(answer_or_refusal(&mlp, &valid).unwrap(), answer(&mlp, &valid).unwrap());
	}

	#[test]
	fn a_wrong_answer_does_not_agree_and_device_noise_does() {
		let honest = features(&[1.0, 5.0, -2.0]);
		let noisy = features(&[1.0001, 4.9998, -2.0002]);
		assert!(answers_agree(&noisy, &honest));
		// Another top class, a shifted logit, another length, non-finite values, garbage.
		assert!(!answers_agree(&features(&[5.0, 1.0, -2.0]), &honest));
		assert!(!answers_agree(&features(&[1.0, 5.0, -1.9]), &honest));
		assert!(!answers_agree(&features(&[1.0, 5.0]), &honest));
		assert!(!answers_agree(&features(&[f32::NAN, 5.0, -2.0]), &honest));
		assert!(!answers_agree(&[1, 2, 3], &honest));
	}
}
