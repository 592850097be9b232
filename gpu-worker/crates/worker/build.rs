//! Embeds libtorch's library directory as an rpath, so the worker binary, its tests and its
//! benchmarks find libtorch*.so without LD_LIBRARY_PATH (cargo does not pass tch's own
//! `rustc-link-arg`s on to dependent crates). torch-sys, a direct dependency for this reason,
//! reports the directory through its `links = "tch"` metadata.

fn main() {
	println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
	let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
	if os == "linux" {
		if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
			println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
		}
	}
}
