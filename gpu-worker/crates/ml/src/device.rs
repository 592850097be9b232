//! Device selection.
//!
//! libtorch registers its CUDA backend from the static initializers of `libtorch_cuda.so`.
//! Nothing in the worker references a symbol of that library, so the linker drops it (rustc
//! links with `--as-needed`, and the mold linker this repository uses keeps it dropped even
//! with a later `--no-as-needed`); `Device::cuda_if_available()` would then never see a GPU.
//! [`best_device`] loads the backend explicitly first.

use tch::Device;

/// Loads libtorch's CUDA backend when this machine has an NVIDIA driver, then returns
/// `Device::cuda_if_available()`.
pub fn best_device() -> Device {
	load_cuda_backend();
	Device::cuda_if_available()
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
