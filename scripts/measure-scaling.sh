#!/usr/bin/env bash
# How the protocol's cost grows with the network: for each worker count (default 3, 6 and 12),
# a fresh local network (4 validator nodes, that many honest workers, 2 AI validators) runs a
# two-round job of the tiny digits MLP with every worker selected each round, so that training
# does not dominate; then it prints the rounds' blocks and seconds, the weight the chain used
# (tests/js/round-costs.js), and the bytes each AI validator downloaded.
#   scripts/measure-scaling.sh [WORKERS...]
# With 2-second blocks (what shorter blocks give a round): build a node with them and point
# the script at it, keeping the 6-second node for everything else:
#   cargo build -p agora-node --features fast-blocks
#   cp "$CARGO_TARGET_DIR/debug/agora-node" /tmp/agora-node-2s && cargo build -p agora-node
#   AGORA_NODE_BIN=/tmp/agora-node-2s scripts/measure-scaling.sh 3
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$AGORA_ROOT"

COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(3 6 12)
export AGORA_CHEAT=none
export AGORA_PORT_OFFSET="${AGORA_PORT_OFFSET:-300}"
WORKER_BIN="${AGORA_WORKER_BIN:-${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker}"
NODE_URL="ws://127.0.0.1:$((9944 + AGORA_PORT_OFFSET))"
ROUNDS=2 LOCAL_STEPS=40 BATCH=32

trap 'bash "$here/local-testnet.sh" stop >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

results=()
for workers in "${COUNTS[@]}"; do
	[ "$workers" -ge 3 ] || { echo "at least 3 workers (Charlie, Dave and Eve)" >&2; exit 2; }
	export AGORA_TESTNET_DIR
	AGORA_TESTNET_DIR=$(mktemp -d -t agora-scaling.XXXXXX)
	export AGORA_EXTRA_WORKERS=$((workers - 3))
	# Shards of 100 samples: every one of up to 14 workers gets a shard of its own.
	"$WORKER_BIN" prepare-data --source digits --out "$AGORA_TESTNET_DIR/data" --shard-size 100 >/dev/null
	bash "$here/local-testnet.sh" start >/dev/null
	config="$AGORA_TESTNET_DIR/job.json"
	jq --argjson w "$workers" --argjson r "$ROUNDS" --argjson s "$LOCAL_STEPS" --argjson b "$BATCH" \
		'.rounds = $r | .local_steps = $s | .hyperparameters.batch_size = $b
		 | .workers_per_round = $w | .samples_per_round = ($w * $s * $b) | .validators_per_update = 2' \
		gpu-worker/jobs/digits-mlp.json >"$config"
	from=$(curl -sf -H 'Content-Type: application/json' \
		-d '{"id":1,"jsonrpc":"2.0","method":"chain_getHeader","params":[]}' \
		"http://127.0.0.1:$((9944 + AGORA_PORT_OFFSET))" | jq -r '.result.number' | xargs printf '%d\n')
	job=$("$WORKER_BIN" job create --suri //Alice --node "$NODE_URL" --config "$config" \
		--dataset "$AGORA_TESTNET_DIR/data/train" --holdout "$AGORA_TESTNET_DIR/data/test")
	timeout 1200 "$WORKER_BIN" job watch --suri //Alice --node "$NODE_URL" --job "$job" >"$AGORA_TESTNET_DIR/watch.log"
	costs=$(cd tests/js && node round-costs.js "$NODE_URL" "$job" "$from")
	# `job N Finalized: K completed rounds, final model …`
	completed=$(sed -n 's/.*: \([0-9]*\) completed rounds.*/\1/p' "$AGORA_TESTNET_DIR/watch.log" | tail -1)
	# The largest of FIELD over the records matching the glob (null when none was written).
	largest() {
		local field=$1 records
		shift
		records=("$@")
		[ -f "${records[0]}" ] || { echo null; return; }
		jq -s "map(.$field) | max" "${records[@]}"
	}
	validator_bytes=$(largest downloaded_bytes "$AGORA_TESTNET_DIR"/validator-*/traffic.json)
	worker_bytes=$(largest downloaded_bytes "$AGORA_TESTNET_DIR"/worker-*/traffic.json)
	training=$(largest training_seconds "$AGORA_TESTNET_DIR"/worker-*/timings/job-"$job"-round-*.json)
	line=$(jq -cn --argjson costs "$costs" --argjson w "$workers" --argjson r "$ROUNDS" \
		--argjson vb "$validator_bytes" --argjson wb "$worker_bytes" --argjson t "$training" \
		'{workers: $w, rounds: $r, seconds_per_round: ($costs.seconds / $r), blocks_per_round: ($costs.blocks / $r),
		  slowest_training_seconds: $t,
		  protocol_weight_ms_per_round: ($costs.protocol_weight_ms / $r),
		  protocol_share_of_block_capacity_percent: $costs.protocol_share_of_block_capacity_percent,
		  protocol_calls_per_round: ($costs.protocol_calls / $r), protocol_bytes_per_round: ($costs.protocol_bytes / $r),
		  validator_downloaded_bytes_per_round: (if $vb == null then null else $vb / $r end), worker_downloaded_bytes_max: $wb, calls: $costs.calls}')
	echo "$line"
	[ "${completed:-0}" -eq "$ROUNDS" ] || echo "warning: $completed of $ROUNDS rounds completed (see $AGORA_TESTNET_DIR)" >&2
	results+=("$line")
	bash "$here/local-testnet.sh" stop >/dev/null
done

echo
echo "| workers | seconds per round | blocks per round | protocol weight per round | share of block capacity | protocol calls per round | their bytes | downloaded per AI validator per round |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for line in "${results[@]}"; do
	jq -r '"| \(.workers) | \(.seconds_per_round) | \(.blocks_per_round) | \(.protocol_weight_ms_per_round) ms | \(.protocol_share_of_block_capacity_percent)% | \(.protocol_calls_per_round) | \(.protocol_bytes_per_round) B | \(if .validator_downloaded_bytes_per_round == null then "?" else (.validator_downloaded_bytes_per_round / 1024 | floor | tostring) + " KiB" end) |"' <<<"$line"
done
