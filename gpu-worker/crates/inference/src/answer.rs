//! What a request's input and a provider's answer are, and how an answer is computed and
//! checked.
//!
//! Inputs: a classifier takes its features as little-endian f32 (already scaled as in
//! training: `inputs` values for an MLP, `channels x side x side` for a CNN); the character
//! transformer takes 1 to `context` byte tokens. Answers: the logits, little-endian f32 (a
//! classifier's classes, the transformer's next-token distribution after the last input token).
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
pub fn inputs_of(dataset: &Dataset, indices: &[u32]) -> anyhow::Result<Vec<(Vec<u8>, Option<u8>)>> {
	let mut out = Vec::with_capacity(indices.len());
	for &index in indices {
		match dataset.batch(&[index], Device::Cpu)? {
			Batch::Classification { inputs, labels } => {
				let values = Vec::<f32>::try_from(&inputs.flatten(0, -1))?;
				let label = Vec::<i64>::try_from(&labels)?.first().map(|&l| l as u8);
				out.push((values.iter().flat_map(|v| v.to_le_bytes()).collect(), label));
			},
			Batch::Language { inputs, targets } => {
				let tokens = Vec::<i64>::try_from(&inputs.flatten(0, -1))?;
				let last = Vec::<i64>::try_from(&targets.flatten(0, -1))?.last().map(|&t| t as u8);
				out.push((tokens.iter().map(|&t| t as u8).collect(), last));
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
