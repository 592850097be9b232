#!/usr/bin/env bash
# Installs everything a fresh Debian/Ubuntu machine needs to build, run and test Agora.
# Idempotent: a second run checks each step and skips what is already there.
# Downloads only from the package registries (Debian, crates.io, npm).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2
	exit 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "run as root or install sudo"
	SUDO="sudo"
fi

APT_PACKAGES=(build-essential pkg-config git curl ca-certificates clang libclang-dev
	protobuf-compiler mold lld jq zstd)

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# 1. System packages.
command -v apt-get >/dev/null || die "this script supports Debian/Ubuntu (apt-get) only"
apt_install "${APT_PACKAGES[@]}"
# Node.js for the @polkadot/api tests: keep one that is already there (it may not come from apt).
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm

# 2. Native Rust toolchain (rustup's default toolchain).
command -v cargo >/dev/null || die "no Rust toolchain: install rustup (https://rustup.rs) and rerun"
command -v rustup >/dev/null || die "rustup is needed to pick the WASM toolchain; install it and rerun"
for component in rustfmt clippy; do
	rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

# 3. A toolchain that can build the runtime for wasm32v1-none.
wasm_toolchain_file="$HOME/.cache/agora-wasm-toolchain"
mkdir -p "$HOME/.cache"
if rustup target list --installed | grep -qx wasm32v1-none; then
	log "wasm: default toolchain has wasm32v1-none"
	: >"$wasm_toolchain_file"
elif rustup target add wasm32v1-none >/dev/null 2>&1; then
	log "wasm: installed wasm32v1-none with rustup"
	: >"$wasm_toolchain_file"
else
	# rustup cannot download the target here: use Debian's rustc-web, which ships the standard
	# library sources, and build core/alloc/compiler_builtins for wasm32v1-none from them once.
	log "wasm: rustup cannot fetch wasm32v1-none, using Debian's rustc-web"
	apt_install rustc-web cargo-web rust-web-src lld-22
	rustup toolchain list | grep -q '^debian' || rustup toolchain link debian /usr
	sysroot_lib="$(rustc +debian --print sysroot)/lib/rustlib/wasm32v1-none/lib"
	if ! ls "$sysroot_lib"/libcore-*.rlib >/dev/null 2>&1; then
		log "wasm: building the wasm32v1-none standard library (a few minutes, once)"
		stdbuild="$HOME/.cache/agora-wasm-std"
		rm -rf "$stdbuild"
		mkdir -p "$stdbuild/src"
		cat >"$stdbuild/Cargo.toml" <<-'EOF'
			[package]
			name = "wasm-std"
			version = "0.0.0"
			edition = "2021"
			[lib]
			path = "src/lib.rs"
			[profile.release]
			panic = "abort"
		EOF
		echo '#![no_std]' >"$stdbuild/src/lib.rs"
		(cd "$stdbuild" && RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes CARGO_TARGET_DIR="$stdbuild/target" \
			cargo +debian build --release -Zbuild-std=core,alloc \
			-Zbuild-std-features=compiler-builtins-mem --target wasm32v1-none)
		$SUDO mkdir -p "$sysroot_lib"
		for crate in core alloc compiler_builtins; do
			$SUDO cp "$stdbuild"/target/wasm32v1-none/release/deps/lib"$crate"-*.rlib "$sysroot_lib/"
		done
	fi
	echo debian >"$wasm_toolchain_file"
fi

# 4. JavaScript client tests (@polkadot/api against a running node), and the explorer with the
# browser its test drives (Debian's Chromium, headless).
if [ ! -d tests/js/node_modules/@polkadot/api ]; then
	log "npm: installing the JS test dependencies"
	(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d explorer/node_modules/@polkadot/api ]; then
	log "npm: installing the explorer's dependencies"
	(cd explorer && npm ci --no-audit --no-fund --loglevel=error)
fi
command -v chromium >/dev/null || apt_install chromium

log "done. Build with: source scripts/env.sh && cargo build -p agora-node"
