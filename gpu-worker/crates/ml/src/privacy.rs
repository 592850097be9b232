//! Differential privacy for updates: clip each update to an L2 norm, add Gaussian noise, and
//! account the privacy loss.
//!
//! The noise is added by the worker to its own update (local DP at the level of the whole
//! update), so the guarantee holds against the aggregator and the validators too. Accounting:
//! the Gaussian mechanism with sensitivity C and noise std σ·C has Rényi DP
//! ε(α) = α / (2σ²) per round; T rounds compose to T·α / (2σ²); converting with
//! ε = RDP(α) + ln(1/δ)/(α - 1) and minimizing over α gives the reported (ε, δ). No privacy
//! amplification by subsampling is claimed, so the bound is conservative.

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};
use crate::params::ParamSet;

/// Clipping and noise settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpConfig {
	/// L2 bound C on an update.
	pub clip_norm: f64,
	/// σ: the noise std is σ·C.
	pub noise_multiplier: f64,
}

impl DpConfig {
	fn validate(&self) -> Result<()> {
		let clip_ok = self.clip_norm.is_finite() && self.clip_norm > 0.0;
		let noise_ok = self.noise_multiplier.is_finite() && self.noise_multiplier >= 0.0;
		if !(clip_ok && noise_ok) {
			return Err(WorkerError::InvalidArgument(format!("invalid DP settings {self:?}")));
		}
		Ok(())
	}
}

/// Clips `delta` to `clip_norm` and adds N(0, (σC)²) to every coordinate, drawing from `rng`
/// (use an unpredictable one, e.g. `rand::rngs::OsRng`, in production). Returns the norm
/// before clipping.
pub fn privatize(delta: &mut ParamSet, config: &DpConfig, rng: &mut impl RngCore) -> Result<f64> {
	config.validate()?;
	delta.check_finite()?;
	let norm = delta.l2_norm();
	let factor = if norm > config.clip_norm { (config.clip_norm / norm) as f32 } else { 1.0 };
	let std = config.noise_multiplier * config.clip_norm;
	for value in delta.values_mut() {
		*value = *value * factor + (std * standard_normal(rng)) as f32;
	}
	Ok(norm)
}

/// Box-Muller transform.
fn standard_normal(rng: &mut impl RngCore) -> f64 {
	// 1 - u in (0, 1]: ln never sees 0.
	let u1: f64 = 1.0 - rng.gen::<f64>();
	let u2: f64 = rng.gen::<f64>();
	(-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// ε after `rounds` noisy releases with noise multiplier σ at the given δ (RDP accounting,
/// minimized over α > 1). Infinite without noise.
pub fn epsilon(noise_multiplier: f64, rounds: u64, delta: f64) -> Result<f64> {
	if !(delta > 0.0 && delta < 1.0) {
		return Err(WorkerError::InvalidArgument(format!("δ = {delta} must be in (0, 1)")));
	}
	if noise_multiplier <= 0.0 || !noise_multiplier.is_finite() {
		return Ok(f64::INFINITY);
	}
	let rdp_per_alpha = rounds as f64 / (2.0 * noise_multiplier * noise_multiplier);
	let log_inv_delta = (1.0 / delta).ln();
	// Closed-form optimum of α·r + L/(α - 1): α = 1 + sqrt(L / r).
	let alpha = 1.0 + (log_inv_delta / rdp_per_alpha).sqrt();
	Ok(alpha * rdp_per_alpha + log_inv_delta / (alpha - 1.0))
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::params::{Layout, TensorSpec};
	use rand::SeedableRng;
	use rand_chacha::ChaCha20Rng;

	fn ones(n: usize) -> ParamSet {
		let layout = Layout::new(vec![TensorSpec { name: "x".into(), shape: vec![n] }]).unwrap();
		ParamSet::new(layout, vec![1.0; n]).unwrap()
	}

	#[test]
	fn clipping_bounds_the_norm_and_noise_has_the_right_scale() {
		let mut rng = ChaCha20Rng::seed_from_u64(1);
		let mut delta = ones(10_000);
		let before =
			privatize(&mut delta, &DpConfig { clip_norm: 1.0, noise_multiplier: 0.0 }, &mut rng)
				.unwrap();
		assert!((before - 100.0).abs() < 1e-9);
		assert!((delta.l2_norm() - 1.0).abs() < 1e-5);

		let mut noisy = ParamSet::zeros(delta.layout().clone());
		privatize(&mut noisy, &DpConfig { clip_norm: 2.0, noise_multiplier: 0.5 }, &mut rng)
			.unwrap();
		let std =
			(noisy.values().iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 10_000.0).sqrt();
		assert!((std - 1.0).abs() < 0.05, "std {std}");
	}

	#[test]
	fn epsilon_matches_closed_form_and_grows_with_rounds() {
		// T/(2σ²) + sqrt(2 T ln(1/δ)) / σ
		let (sigma, rounds, delta) = (1.0f64, 10u64, 1e-5f64);
		let expected = rounds as f64 / (2.0 * sigma * sigma)
			+ (2.0 * rounds as f64 * (1.0 / delta).ln()).sqrt() / sigma;
		assert!((epsilon(sigma, rounds, delta).unwrap() - expected).abs() < 1e-9);
		assert!(epsilon(sigma, 20, delta).unwrap() > epsilon(sigma, 10, delta).unwrap());
		assert!(epsilon(2.0, 10, delta).unwrap() < epsilon(1.0, 10, delta).unwrap());
		assert_eq!(epsilon(0.0, 1, delta).unwrap(), f64::INFINITY);
		assert!(epsilon(1.0, 1, 0.0).is_err());
	}

	#[test]
	fn bad_settings_and_non_finite_updates_are_errors() {
		let mut rng = ChaCha20Rng::seed_from_u64(2);
		let bad = DpConfig { clip_norm: 0.0, noise_multiplier: 1.0 };
		assert!(privatize(&mut ones(3), &bad, &mut rng).is_err());
		let mut nan = ones(3);
		nan.values_mut()[1] = f32::NAN;
		let ok = DpConfig { clip_norm: 1.0, noise_multiplier: 1.0 };
		assert!(matches!(privatize(&mut nan, &ok, &mut rng), Err(WorkerError::NonFinite { .. })));
	}
}
