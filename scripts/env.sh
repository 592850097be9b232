# Shared environment for Agora's scripts: `source scripts/env.sh`.
# It only sets variables; scripts/setup.sh installs what they point at.

AGORA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AGORA_ROOT

# One build directory outside the work tree, shared by every clone on this machine, so that
# rebuilds (and CI runs on the same machine) are incremental. A CARGO_TARGET_DIR that
# scripts/worker-env.sh set for the GPU worker's own workspace is not the chain's.
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "$CARGO_TARGET_DIR" = "${AGORA_WORKER_TARGET_DIR:-}" ]; then
	unset CARGO_TARGET_DIR
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
# The runtime's WASM build runs in the target directory; this lets it find (and use) our
# Cargo.lock, so that the WASM runtime is built from exactly the locked crate versions.
export WASM_BUILD_WORKSPACE_HINT="$AGORA_ROOT"

# The WASM runtime is built by the toolchain that has a wasm32v1-none standard library:
# either the default rustup toolchain (when `rustup target add wasm32v1-none` worked) or
# Debian's rustc-web, linked into rustup as `debian` by scripts/setup.sh.
if [ -z "${WASM_BUILD_TOOLCHAIN:-}" ] && [ -f "$HOME/.cache/agora-wasm-toolchain" ]; then
	WASM_BUILD_TOOLCHAIN="$(cat "$HOME/.cache/agora-wasm-toolchain")"
	if [ -n "$WASM_BUILD_TOOLCHAIN" ]; then
		export WASM_BUILD_TOOLCHAIN
	fi
fi

export AGORA_NODE_BIN="${AGORA_NODE_BIN:-$CARGO_TARGET_DIR/debug/agora-node}"

# frame-benchmarking-cli ships a test runtime of its own whose WASM is only used by
# `benchmark storage --mode validate-block`; skipping it saves a second runtime build.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1
