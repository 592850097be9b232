#!/usr/bin/env bash
# Regenerates the weights of Agora's pallets with `agora-node benchmark pallet`, on this
# machine: each pallet's own `pallets/<name>/src/weights.rs` (its `WeightInfo` trait, the
# `SubstrateWeight` the runtime uses, and `()` for mocks), from one run per pallet with
# scripts/frame-weight-template.hbs. Run it on reference hardware before a release.
#
#   scripts/benchmark.sh [pallet …]        default: every Agora pallet
#
# Environment: STEPS (default 20) and REPEAT (default 5) per benchmark.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT"

PALLETS=("$@")
[ ${#PALLETS[@]} -gt 0 ] ||
	PALLETS=(pallet_contributions pallet_tasks pallet_validation pallet_rewards pallet_governance
		pallet_inference)

printf '\033[1;34m[benchmark]\033[0m building agora-node with runtime-benchmarks\n'
cargo build -p agora-node --features runtime-benchmarks

for pallet in "${PALLETS[@]}"; do
	printf '\033[1;34m[benchmark]\033[0m %s\n' "$pallet"
	"$AGORA_NODE_BIN" benchmark pallet \
		--runtime "$CARGO_TARGET_DIR/debug/wbuild/agora-runtime/agora_runtime.wasm" \
		--genesis-builder runtime --genesis-builder-preset development \
		--pallet "$pallet" --extrinsic '*' \
		--steps "${STEPS:-20}" --repeat "${REPEAT:-5}" \
		--wasm-execution compiled \
		--header scripts/weights-header.txt \
		--template scripts/frame-weight-template.hbs \
		--output "pallets/${pallet#pallet_}/src/weights.rs"
done
