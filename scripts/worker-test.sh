#!/usr/bin/env bash
# Checks the GPU worker (gpu-worker/): sets up the venv with libtorch if needed, then rustfmt,
# clippy with warnings as errors, and the test suite. Safe to run from a fresh clone; downloads
# only from PyPI and crates.io. Heavy steps run at low priority so that they do not starve other
# work on a small machine.
set -euo pipefail

here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/worker-setup.sh"
source "$here/worker-env.sh"
cd "$AGORA_ROOT/gpu-worker"

log() { printf '\033[1;34m[worker-test]\033[0m %s\n' "$*"; }

log "cargo fmt --check"
cargo fmt --all -- --check
# The workspace's crates: see gpu-worker/Cargo.toml. Tests and the demo build with the `cheats`
# feature (simulated cheating workers and lazy validators); release builds leave it out, so
# clippy checks both.
log "cargo clippy --all-targets -- -D warnings (with and without the cheats feature)"
nice -n 19 cargo clippy --locked --workspace --all-targets --all-features -- -D warnings
nice -n 19 cargo clippy --locked --workspace --all-targets -- -D warnings
log "the chain and peer-to-peer crates build and test without libtorch"
if cargo tree --locked -p agora-chain -p agora-p2p -e normal | grep -Eq '[ ─](tch|torch-sys) v[0-9]'; then
	echo "agora-chain or agora-p2p depends on libtorch" >&2
	exit 1
fi
log "cargo test"
nice -n 19 cargo test --locked --workspace --all-features
