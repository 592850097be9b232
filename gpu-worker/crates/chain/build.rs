//! The client is generated from `metadata/agora.scale` by a macro that does not tell cargo
//! about the file: this makes a new metadata file rebuild the crate.

fn main() {
	println!("cargo:rerun-if-changed=../../metadata/agora.scale");
}
