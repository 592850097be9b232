// The CUDA numerics settings libtorch keeps in its global context, which tch does not expose.
// Plain bool setters only: nothing crosses this boundary that depends on the C++ ABI.
#include <ATen/Context.h>

extern "C" void agora_set_deterministic(bool on) {
	auto& context = at::globalContext();
	context.setDeterministicCuDNN(on);
	context.setBenchmarkCuDNN(!on);
	// Warn-only: an operation with no deterministic CUDA kernel logs and runs (the replay
	// tolerance absorbs its rounding) instead of stopping a worker mid-round.
	context.setDeterministicAlgorithms(on, /*warn_only=*/true);
}

extern "C" void agora_set_allow_tf32(bool on) {
	auto& context = at::globalContext();
	context.setAllowTF32CuBLAS(on);
	context.setAllowTF32CuDNN(on);
}

extern "C" bool agora_deterministic_algorithms() {
	return at::globalContext().deterministicAlgorithms();
}

extern "C" bool agora_allow_tf32_cublas() {
	return at::globalContext().allowTF32CuBLAS();
}
