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
log "cargo clippy --all-targets -- -D warnings"
nice -n 19 cargo clippy --locked --all-targets -- -D warnings
log "cargo test"
nice -n 19 cargo test --locked
