#!/usr/bin/env bash
# The worker's GPU path in one short run (a few minutes on one GPU), on a machine with an
# NVIDIA GPU and driver after scripts/worker-setup.sh (its torch wheel carries CUDA):
#   1. the CUDA tests: two CUDA runs of a GPT bit-identical under the worker's numerics
#      (cuDNN deterministic, benchmark off, deterministic algorithms, TF32 off,
#      CUBLAS_WORKSPACE_CONFIG), every segment replayed within tolerance on the GPU and on the
#      CPU, batches through pinned memory intact;
#   2. training throughput of tch against PyTorch on the same models, weights and batches
#      (gpt-cpu and GPT-2 small among them), the device synchronized before each clock reading,
#      in float32 and with bf16 autocast;
#   3. the replay deviation grid of a GPT: segment lengths 1 to 40 steps, replayed cuda->cuda
#      and cuda->cpu, against the tolerance and a subtle cheat, in float32 and in bf16 (a grid
#      beyond its tolerance is reported and fails the check at the end, after the rest ran);
#   4. the GPU memory used (the most nvidia-smi saw during the run).
# Everything it prints is also written to gpu-check.log (or $AGORA_GPU_CHECK_LOG); put it in
# docs/language-models.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/worker-env.sh"
cd "$AGORA_ROOT/gpu-worker"
LOG="${AGORA_GPU_CHECK_LOG:-$AGORA_ROOT/gpu-check.log}"
exec > >(tee "$LOG") 2>&1

say() { printf '\n\033[1;35m[gpu-check]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[gpu-check] error:\033[0m %s\n' "$*" >&2
	exit 1
}

command -v nvidia-smi >/dev/null || die "no nvidia-smi: this check needs an NVIDIA GPU and driver"
say "$(date -u +%FT%TZ) on $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
"$AGORA_VENV/bin/python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "sees", torch.cuda.device_count(), "GPU(s)")'

# The most GPU memory in use while the check runs, sampled twice a second.
PEAK_FILE="$(mktemp)"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$PEAK_FILE" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true; rm -f "$PEAK_FILE"' EXIT

started=$SECONDS
say "building the worker (release, with the simulated cheats for the grid)"
cargo build --release --locked --all-features -p agora-worker -p agora-proof --tests --bins
WORKER="$CARGO_TARGET_DIR/release/agora-worker"

say "1. CUDA tests (a missing GPU fails them here)"
AGORA_REQUIRE_CUDA=1 cargo test --release --locked --all-features -p agora-proof --test cuda -- --nocapture
AGORA_REQUIRE_CUDA=1 cargo test --release --locked -p agora-ml --lib device

say "2. throughput: tch against PyTorch, same model, weights and batches"
"$WORKER" bench throughput --models gpt-cpu gpt2-small transformer-char
"$WORKER" bench throughput --models gpt-cpu gpt2-small --precision bf16

say "3. replay deviation grid of a GPT (cuda->cuda, cuda->cpu, by segment length)"
failed=""
"$WORKER" bench lm-replay || failed="$failed float32-replay-grid"
"$WORKER" bench lm-replay --precision bf16 || failed="$failed bf16-replay-grid"

kill "$SAMPLER" 2>/dev/null || true
say "4. GPU memory: at most $(sort -n "$PEAK_FILE" | tail -1) MiB in use during the check"
[ -z "$failed" ] || die "honest replays beyond the tolerance:$failed (log in $LOG)"
say "passed in $((SECONDS - started)) s; log in $LOG"
