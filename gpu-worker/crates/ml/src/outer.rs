//! DiLoCo's outer optimizer (Douillard et al., 2023): the mean of the workers' updates is a
//! pseudo-gradient, and the round's model takes a Nesterov-momentum step along it instead of
//! simply adding it.
//!
//! Workers train `H` inner steps from the round's model; `delta = mean(local) - global`. The
//! pseudo-gradient is `g = -delta`, and with outer rate `lr` and momentum `mu`:
//!
//! ```text
//! m'     = mu * m + g
//! global' = global - lr * (g + mu * m')
//! ```
//!
//! `lr = 1, mu = 0` is plain federated averaging. The momentum `m` is part of the round's model
//! record, so every participant computes the next model from the same state. Every value is
//! computed element by element in f32, in the same order, with no fused multiply-add (Rust never
//! contracts one), so the result is bit-identical on every machine, like the aggregate itself.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};
use crate::params::ParamSet;

/// The outer optimizer of a job's rounds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum OuterOptimizer {
	/// Nesterov momentum over pseudo-gradients; DiLoCo's choice is `lr = 0.7, momentum = 0.9`.
	Nesterov { lr: f64, momentum: f64 },
}

/// The round's model after the outer step, and the outer optimizer's new state.
#[derive(Clone, Debug, PartialEq)]
pub struct OuterStep {
	pub model: ParamSet,
	pub momentum: ParamSet,
}

impl OuterOptimizer {
	/// DiLoCo's published setting.
	pub fn diloco() -> Self {
		OuterOptimizer::Nesterov { lr: 0.7, momentum: 0.9 }
	}

	/// Refuses rates that cannot train: `lr` in (0, 2], `momentum` in [0, 1).
	pub fn validate(&self) -> Result<()> {
		let OuterOptimizer::Nesterov { lr, momentum } = *self;
		if !(lr > 0.0 && lr <= 2.0) {
			return Err(WorkerError::InvalidArgument(format!(
				"outer learning rate {lr} is not in (0, 2]"
			)));
		}
		if !(0.0..1.0).contains(&momentum) {
			return Err(WorkerError::InvalidArgument(format!(
				"outer momentum {momentum} is not in [0, 1)"
			)));
		}
		Ok(())
	}

	/// One outer step from `global` along the aggregated update `delta`, with the momentum of
	/// the previous rounds (`None`: the first round, zero momentum).
	pub fn step(
		&self,
		global: &ParamSet,
		delta: &ParamSet,
		momentum: Option<&ParamSet>,
	) -> Result<OuterStep> {
		self.validate()?;
		global.layout().check_matches(delta.layout())?;
		let zeros;
		let previous = match momentum {
			Some(previous) => {
				global.layout().check_matches(previous.layout())?;
				previous
			},
			None => {
				zeros = ParamSet::zeros(global.layout().clone());
				&zeros
			},
		};
		let OuterOptimizer::Nesterov { lr, momentum: mu } = *self;
		// The rates are cast once, so every participant multiplies by the same f32 values.
		let (lr, mu) = (lr as f32, mu as f32);
		let mut model = global.clone();
		let mut next = previous.clone();
		for ((weight, buffer), &update) in
			model.values_mut().iter_mut().zip(next.values_mut().iter_mut()).zip(delta.values())
		{
			let gradient = -update;
			*buffer = mu * *buffer + gradient;
			*weight -= lr * (gradient + mu * *buffer);
		}
		model.check_finite()?;
		next.check_finite()?;
		Ok(OuterStep { model, momentum: next })
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::params::{Layout, TensorSpec};

	fn set(values: &[f32]) -> ParamSet {
		let layout =
			Layout::new(vec![TensorSpec { name: "w".into(), shape: vec![values.len()] }]).unwrap();
		ParamSet::new(layout, values.to_vec()).unwrap()
	}

	#[test]
	fn unit_rate_without_momentum_is_federated_averaging() {
		let plain = OuterOptimizer::Nesterov { lr: 1.0, momentum: 0.0 };
		let step = plain.step(&set(&[1.0, -2.0]), &set(&[0.5, 0.25]), None).unwrap();
		assert_eq!(step.model.values(), &[1.5, -1.75]);
		assert_eq!(step.momentum.values(), &[-0.5, -0.25]);
	}

	#[test]
	fn nesterov_steps_follow_the_published_update_rule() {
		let outer = OuterOptimizer::Nesterov { lr: 0.5, momentum: 0.9 };
		let first = outer.step(&set(&[0.0]), &set(&[1.0]), None).unwrap();
		// g = -1; m = -1; w = 0 - 0.5 * (-1 + 0.9 * -1) = 0.95
		assert_eq!(first.momentum.values(), &[-1.0]);
		assert!((first.model.values()[0] - 0.95).abs() < 1e-6);
		let second = outer.step(&first.model, &set(&[1.0]), Some(&first.momentum)).unwrap();
		// g = -1; m = 0.9 * -1 - 1 = -1.9; w = 0.95 - 0.5 * (-1 + 0.9 * -1.9) = 2.305
		assert!((second.momentum.values()[0] + 1.9).abs() < 1e-6);
		assert!((second.model.values()[0] - 2.305).abs() < 1e-5);
	}

	#[test]
	fn rates_that_cannot_train_and_mismatched_layouts_are_refused() {
		for (lr, momentum) in [(0.0, 0.9), (2.5, 0.9), (0.7, 1.0), (0.7, -0.1), (f64::NAN, 0.0)] {
			assert!(OuterOptimizer::Nesterov { lr, momentum }.validate().is_err());
		}
		let outer = OuterOptimizer::diloco();
		assert!(outer.step(&set(&[0.0]), &set(&[1.0, 2.0]), None).is_err());
		assert!(outer.step(&set(&[0.0]), &set(&[1.0]), Some(&set(&[1.0, 2.0]))).is_err());
		assert!(outer.step(&set(&[f32::MAX]), &set(&[-f32::MAX]), None).is_err());
	}
}
