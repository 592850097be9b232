//! Device selection.
//!
//! libtorch registers its CUDA backend from the static initializers of `libtorch_cuda.so`.
//! Nothing in the worker references a symbol of that library, so the linker drops it (rustc
//! links with `--as-needed`, and the mold linker this repository uses keeps it dropped even
//! with a later `--no-as-needed`); `Device::cuda_if_available()` would then never see a GPU.
//! [`best_device`] loads the backend explicitly first.
//!
//! It also sets how CUDA computes, since a validator replays a worker's steps and must land
//! within a tolerance of them ([`set_reproducible_numerics`]).

use std::marker::PhantomData;

use tch::Device;

/// Loads libtorch's CUDA backend when this machine has an NVIDIA driver, sets the numerics
/// every Agora run uses ([`set_reproducible_numerics`]), then returns
/// `Device::cuda_if_available()`. Call it before any thread starts: it sets an environment
/// variable that cuBLAS reads.
pub fn best_device() -> Device {
	load_cuda_backend();
	set_reproducible_numerics();
	Device::cuda_if_available()
}

/// Waits until `device` has finished the work queued on it (nothing to wait for on a CPU):
/// what a timing of GPU work must do before it reads the clock.
pub fn synchronize(device: Device) {
	if let Device::Cuda(index) = device {
		tch::Cuda::synchronize(index as i64);
	}
}

/// cuBLAS's workspace setting for reproducible results (NVIDIA's cuBLAS documentation,
/// "Results reproducibility"): without it, a matrix product may split its sums differently
/// from run to run.
pub const CUBLAS_WORKSPACE_CONFIG: &str = ":4096:8";

extern "C" {
	fn agora_set_deterministic(on: bool);
	fn agora_set_allow_tf32(on: bool);
	fn agora_deterministic_algorithms() -> bool;
	fn agora_allow_tf32_cublas() -> bool;
	fn agora_set_bf16_reduced_reductions(on: bool);
	fn agora_bf16_reduced_reductions() -> bool;
	fn agora_autocast_enter(cuda: bool) -> bool;
	fn agora_autocast_exit(cuda: bool, previous: bool);
	fn agora_autocast_enabled(cuda: bool) -> bool;
}

/// The numerics of Agora's runs, on every device:
/// - cuDNN deterministic, its autotuner (benchmark mode) off, since the autotuner may pick a
///   different algorithm, with different rounding, in a worker's run and in its replay;
/// - libtorch's deterministic algorithms on, in warn-only mode: an operation with no
///   deterministic CUDA kernel logs a warning and runs (the replay tolerance absorbs its
///   rounding) rather than stopping a worker's training;
/// - `CUBLAS_WORKSPACE_CONFIG` set unless the operator set it;
/// - TF32 off for matrix products and convolutions (the TF32 policy): a TF32 product keeps 10
///   bits of mantissa, and a replay on another device (a validator's CPU) could not stay
///   within the float32 tolerance of a run that used it;
/// - cuBLAS's reduced-precision reductions off for bf16 products (a job's bf16 autocast): their
///   partial sums in float32, as on the CPU.
pub fn set_reproducible_numerics() {
	if std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
		std::env::set_var("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG);
	}
	// SAFETY: plain setters of libtorch's global context (csrc/cuda_policy.cpp); they take
	// and return bools only.
	unsafe {
		agora_set_deterministic(true);
		agora_set_allow_tf32(false);
		agora_set_bf16_reduced_reductions(false);
	}
}

/// Whether libtorch runs deterministic algorithms and keeps TF32 and bf16 reduced-precision
/// reductions off, as [`set_reproducible_numerics`] sets.
pub fn numerics_are_reproducible() -> bool {
	// SAFETY: plain getters of libtorch's global context.
	unsafe {
		agora_deterministic_algorithms()
			&& !agora_allow_tf32_cublas()
			&& !agora_bf16_reduced_reductions()
	}
}

/// A bf16 autocast region on the current thread, for `device`'s backend (CUDA, or the CPU),
/// left when dropped: inside it libtorch runs matrix products in bfloat16 and keeps
/// reductions, softmax and the loss in float32, while the weights, their gradients and the
/// optimizer stay float32 (PyTorch's `torch.autocast(device, dtype=torch.bfloat16)`).
/// Autocast is thread-local, so the guard cannot leave its thread.
pub struct Autocast {
	cuda: bool,
	previous: bool,
	_not_send: PhantomData<*const ()>,
}

impl Autocast {
	/// Enters bf16 autocast for `device` on this thread.
	pub fn bf16(device: Device) -> Self {
		let cuda = device.is_cuda();
		// SAFETY: thread-local autocast switches of libtorch (csrc/cuda_policy.cpp); bools only.
		// The autocast dtype is left at bf16 afterwards: only these regions use autocast in
		// an Agora process.
		let previous = unsafe { agora_autocast_enter(cuda) };
		Autocast { cuda, previous, _not_send: PhantomData }
	}
}

impl Drop for Autocast {
	fn drop(&mut self) {
		// SAFETY: as in `bf16`. Leaving the outermost region also drops its cached bf16
		// copies of the weights, which the optimizer step is about to change; the trainer
		// holds a region only around a forward pass, never across a step.
		unsafe { agora_autocast_exit(self.cuda, self.previous) }
	}
}

/// Whether autocast is on for `device`'s backend on this thread.
pub fn autocast_enabled(device: Device) -> bool {
	// SAFETY: a plain getter of libtorch's thread-local autocast state.
	unsafe { agora_autocast_enabled(device.is_cuda()) }
}

#[cfg(target_os = "linux")]
fn load_cuda_backend() {
	// Without a driver there is no GPU to find: skip mapping gigabytes of CUDA libraries.
	if !std::path::Path::new("/proc/driver/nvidia/version").exists() {
		return;
	}
	// SAFETY: dlopen with a valid NUL-terminated name; the handle is deliberately never
	// closed, the backend must stay loaded for the life of the process. The library is found
	// through the binary's rpath (build.rs) or LD_LIBRARY_PATH.
	let handle =
		unsafe { libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
	if handle.is_null() {
		tracing::warn!(
			"NVIDIA driver present but libtorch_cuda.so could not be loaded; using the CPU"
		);
	}
}

#[cfg(not(target_os = "linux"))]
fn load_cuda_backend() {}

/// Largest block glibc's malloc serves from its heap instead of a fresh mmap (glibc's maximum).
pub const MMAP_THRESHOLD_BYTES: i32 = 32 << 20;
/// Free memory at the top of the heap that glibc's malloc keeps instead of returning it.
pub const TRIM_THRESHOLD_BYTES: i32 = 256 << 20;

/// Makes glibc's malloc keep freed activation buffers for reuse.
///
/// libtorch frees and reallocates megabytes of activations and gradients every training
/// step. With glibc's defaults, blocks above 128 KiB (a threshold that adapts only slowly)
/// are mmapped and unmapped on every use, and free heap memory above 128 KiB is returned to
/// the kernel, so each step faults its pages in again: 3–16% of a CNN step in runs here
/// (docs/worker-ml-core.md). Raising both thresholds trades at most
/// [`TRIM_THRESHOLD_BYTES`] of retained memory for that. The same settings exist as the
/// environment variables `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_`, which the
/// PyTorch side of the throughput benchmark gets, so that both sides run alike.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_host_allocator() {
	// SAFETY: mallopt only sets malloc parameters; called at startup, before other threads.
	let accepted = unsafe {
		libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
			&& libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
	};
	if !accepted {
		tracing::warn!("glibc rejected the malloc thresholds; keeping its defaults");
	}
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_host_allocator() {}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_worker_sets_deterministic_numerics_without_tf32() {
		set_reproducible_numerics();
		assert!(numerics_are_reproducible());
		assert!(std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_some());
		// A CPU run is unchanged by the settings: two identical steps give the same bits.
		let a = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).reshape([1, 3]);
		let b = tch::Tensor::from_slice(&[4.0f32, 5.0, 6.0]).reshape([3, 1]);
		assert_eq!(a.matmul(&b).double_value(&[0, 0]), 32.0);
	}

	#[test]
	fn bf16_autocast_runs_products_in_bf16_inside_its_region_only() {
		let a = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).reshape([1, 3]);
		let b = tch::Tensor::from_slice(&[4.0f32, 5.0, 6.0]).reshape([3, 1]);
		assert!(!autocast_enabled(Device::Cpu));
		{
			let _outer = Autocast::bf16(Device::Cpu);
			{
				let _inner = Autocast::bf16(Device::Cpu);
				assert_eq!(a.matmul(&b).kind(), tch::Kind::BFloat16);
			}
			// Leaving a nested region keeps the outer one on.
			assert!(autocast_enabled(Device::Cpu));
			// A product's softmax in float32, as the model asks for it.
			assert_eq!(a.matmul(&b).log_softmax(-1, tch::Kind::Float).kind(), tch::Kind::Float);
		}
		assert!(!autocast_enabled(Device::Cpu));
		assert_eq!(a.matmul(&b).kind(), tch::Kind::Float);
	}
}
