#!/usr/bin/env bash
# Measures where the wall time of one training round goes on the local network: a one-round
# job (gpu-worker/jobs/digits-mlp-long.json, or the config given as $1) with three honest
# workers, then every participant's timing record (fetching, training, verification,
# aggregation, waiting for inclusion) and the round's wall time from job creation to
# finalization. Everything else is waiting for blocks and phase deadlines.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$AGORA_ROOT"

CONFIG="${1:-gpu-worker/jobs/digits-mlp-long.json}"
export AGORA_CHEAT=none
export AGORA_TESTNET_DIR="${AGORA_TESTNET_DIR:-$(mktemp -d -t agora-measure.XXXXXX)}"
export AGORA_PORT_OFFSET="${AGORA_PORT_OFFSET:-300}"
WORKER_BIN="${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker"
NODE_URL="ws://127.0.0.1:$((9944 + AGORA_PORT_OFFSET))"

trap 'bash "$here/local-testnet.sh" stop >/dev/null || true' EXIT
trap 'exit 130' INT TERM
bash "$here/local-testnet.sh" start >/dev/null

started=$SECONDS
JOB=$("$WORKER_BIN" job create --suri //Alice --node "$NODE_URL" --config "$CONFIG" \
	--dataset "$AGORA_TESTNET_DIR/data/train" --holdout "$AGORA_TESTNET_DIR/data/test")
"$WORKER_BIN" job watch --suri //Alice --node "$NODE_URL" --job "$JOB"
wall=$((SECONDS - started))

echo
echo "job $JOB ($CONFIG): $wall s from creation to finalization"
for state in "$AGORA_TESTNET_DIR"/worker-* "$AGORA_TESTNET_DIR"/validator-*; do
	for record in "$state"/timings/job-"$JOB"-round-*.json; do
		[ -f "$record" ] || continue
		printf '%-18s %s\n' "$(basename "$state")" "$(jq -c . "$record")"
	done
	[ -f "$state/traffic.json" ] && printf '%-18s traffic %s\n' "$(basename "$state")" "$(cat "$state/traffic.json")"
done
training=$(cat "$AGORA_TESTNET_DIR"/worker-*/timings/job-"$JOB"-round-1.json | jq -s 'map(.training_seconds) | max')
echo "slowest worker's local training: $training s; everything else: $(jq -n "$wall - $training") s" \
	"($(jq -n "100 * ($wall - $training) / $training | floor") % of training)"
