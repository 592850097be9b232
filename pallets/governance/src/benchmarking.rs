//! Benchmarks for `pallet_governance`.

use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{EnsureOrigin, Get};

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn set_track_timing() -> Result<(), BenchmarkError> {
		let origin =
			T::TimingOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let bounds = T::TimingBounds::get();
		let timing = TrackTiming {
			prepare_period: bounds.prepare_period.1,
			decision_period: bounds.decision_period.1,
			confirm_period: bounds.confirm_period.0,
			min_enactment_period: bounds.min_enactment_period.1,
		};

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, tracks::PROTOCOL_PARAMS, timing);

		assert_eq!(Pallet::<T>::timing(tracks::PROTOCOL_PARAMS), timing);
		Ok(())
	}

	// Measured with the runtime's costliest delegated call, whose bounds check (it may read
	// storage) belongs to this call's weight. The delegated call itself runs inside the
	// measurement and its own weight is added again at dispatch: an overestimate by that call's
	// weight, never an underestimate.
	#[benchmark]
	fn dispatch_delegated() -> Result<(), BenchmarkError> {
		let origin =
			T::DelegationOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let call = T::BenchmarkHelper::delegated_call();

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, alloc::boxed::Box::new(call));

		Ok(())
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
