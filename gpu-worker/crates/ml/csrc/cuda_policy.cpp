// The CUDA numerics settings libtorch keeps in its global context, and its bf16 autocast, which
// tch does not expose (tch's `autocast` switches CUDA only, to float16). Plain bools only:
// nothing crosses this boundary that depends on the C++ ABI, and nothing unwinds across it
// (every function is noexcept: a libtorch error here ends the process instead of unwinding
// into Rust).
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

extern "C" void agora_set_deterministic(bool on) noexcept {
	auto& context = at::globalContext();
	context.setDeterministicCuDNN(on);
	context.setBenchmarkCuDNN(!on);
	// Warn-only: an operation with no deterministic CUDA kernel logs and runs (the replay
	// tolerance absorbs its rounding) instead of stopping a worker mid-round.
	context.setDeterministicAlgorithms(on, /*warn_only=*/true);
}

extern "C" void agora_set_allow_tf32(bool on) noexcept {
	auto& context = at::globalContext();
	context.setAllowTF32CuBLAS(on);
	context.setAllowTF32CuDNN(on);
}

extern "C" bool agora_deterministic_algorithms() noexcept {
	return at::globalContext().deterministicAlgorithms();
}

extern "C" bool agora_allow_tf32_cublas() noexcept {
	return at::globalContext().allowTF32CuBLAS();
}

// cuBLAS may sum a bf16 product's partial results in bf16 ("reduced-precision reductions", on
// by default); off, it sums in float32 as the CPU does, so that a bf16 run replayed on another
// device stays within the bf16 tolerance.
extern "C" void agora_set_bf16_reduced_reductions(bool on) noexcept {
	at::globalContext().setAllowBF16ReductionCuBLAS(on);
}

extern "C" bool agora_bf16_reduced_reductions() noexcept {
	return at::globalContext().allowBF16ReductionCuBLAS() ==
		at::CuBLASReductionOption::AllowReducedPrecisionWithSplitK;
}

static at::DeviceType autocast_device(bool cuda) {
	return cuda ? at::kCUDA : at::kCPU;
}

// Enters a bf16 autocast region on this thread for the CUDA or the CPU backend; returns whether
// autocast was already on there (for agora_autocast_exit to restore).
extern "C" bool agora_autocast_enter(bool cuda) noexcept {
	const auto device = autocast_device(cuda);
	const bool previous = at::autocast::is_autocast_enabled(device);
	at::autocast::set_autocast_dtype(device, at::kBFloat16);
	at::autocast::set_autocast_enabled(device, true);
	at::autocast::increment_nesting();
	return previous;
}

// Leaves the region: the outermost exit drops the cached bf16 copies of the weights, which the
// optimizer step is about to change.
extern "C" void agora_autocast_exit(bool cuda, bool previous) noexcept {
	if (at::autocast::decrement_nesting() == 0) {
		at::autocast::clear_cache();
	}
	at::autocast::set_autocast_enabled(autocast_device(cuda), previous);
}

extern "C" bool agora_autocast_enabled(bool cuda) noexcept {
	return at::autocast::is_autocast_enabled(autocast_device(cuda));
}
