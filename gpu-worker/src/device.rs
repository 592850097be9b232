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
