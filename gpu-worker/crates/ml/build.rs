//! Compiles `csrc/cuda_policy.cpp`, the few libtorch settings tch does not expose (cuDNN
//! determinism, deterministic algorithms, TF32, bf16 autocast), against the headers of the libtorch that tch
//! links. torch-sys reports that libtorch's library directory (`links = "tch"` metadata); its
//! headers are beside it.

fn main() {
	println!("cargo:rerun-if-changed=csrc/cuda_policy.cpp");
	println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
	let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
		.expect("torch-sys reports libtorch's library directory (DEP_TCH_LIBTORCH_LIB)");
	let root = std::path::Path::new(&lib).parent().expect("libtorch's lib directory has a parent");
	println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
	let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
	cc::Build::new()
		.cpp(true)
		.pic(true)
		.warnings(false)
		.include(root.join("include"))
		.include(root.join("include/torch/csrc/api/include"))
		.flag("-std=c++17")
		// PyPI's torch 2.x and libtorch builds use the new C++ ABI (torch-sys's default too).
		.flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
		.file("csrc/cuda_policy.cpp")
		.compile("agora_cuda_policy");
}
