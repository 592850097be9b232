#!/usr/bin/env bash
# What overlapping rounds gives (docs/language-models.md, "Overlapping training with
# verification"): for each overlap setting (default: sequential, then eager), a fresh local
# network (4 validator nodes, 3 honest workers, 2 AI validators) runs a three-round job of the
# CPU GPT on Python's documentation whose rounds train LOCAL_STEPS inner steps (default 1200:
# about a minute per round on a 2-core machine with the three workers training at once; 2400
# for about two minutes). Its AI validators check every hash and score every update but
# replay nothing (AGORA_VALIDATOR_REPLAY=skip): on a real network each participant has its
# own machine, and here their replays would compete with the next round's training for the
# same two cores, so that what is measured would be this machine, not the protocol. Prints,
# per round, its blocks (training phase and verification, from the job's watch) and the
# slowest worker's training seconds (from the workers' timing records), and which runs trained
# early were submitted or dropped.
#   [LOCAL_STEPS=N] scripts/measure-overlap.sh [sequential|eager ...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$AGORA_ROOT"

SETTINGS=("$@")
[ ${#SETTINGS[@]} -gt 0 ] || SETTINGS=(sequential eager)
export AGORA_CHEAT=none AGORA_VALIDATOR_REPLAY=skip
export AGORA_PORT_OFFSET="${AGORA_PORT_OFFSET:-300}"
WORKER_BIN="${AGORA_WORKER_BIN:-${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker}"
NODE_URL="ws://127.0.0.1:$((9944 + AGORA_PORT_OFFSET))"
ROUNDS=3 LOCAL_STEPS="${LOCAL_STEPS:-1200}"

trap 'bash "$here/local-testnet.sh" stop >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

for overlap in "${SETTINGS[@]}"; do
	case "$overlap" in sequential | eager) ;; *) echo "unknown overlap '$overlap'" >&2; exit 2 ;; esac
	export AGORA_TESTNET_DIR
	AGORA_TESTNET_DIR=$(mktemp -d -t agora-overlap.XXXXXX)
	text="$AGORA_TESTNET_DIR/text"
	"$WORKER_BIN" prepare-text --corpus python-docs --vocab 1024 --context 64 --shard-windows 500 \
		--holdout-every 20 --max-windows 4000 --out "$text" >/dev/null
	tokenizer=$(ls "$text"/tokenizer-*.json)
	bash "$here/local-testnet.sh" start >/dev/null
	for set in train holdout; do
		"$WORKER_BIN" data publish --suri //Charlie --node "$NODE_URL" --dataset "$text/$set" \
			--tokenizer "$tokenizer" --state-dir "$AGORA_TESTNET_DIR/worker-charlie" \
			>>"$AGORA_TESTNET_DIR/publish.log" 2>&1
	done
	config="$AGORA_TESTNET_DIR/job.json"
	# Training may take up to 40 blocks; the schedule spans the job's steps.
	jq --arg o "$overlap" --argjson r "$ROUNDS" --argjson s "$LOCAL_STEPS" \
		'.rounds = $r | .local_steps = $s | .checkpoint_interval = ($s / 10 | floor)
		 | .workers_per_round = 3 | .validators_per_update = 2
		 | .samples_per_round = (3 * $s * .hyperparameters.batch_size)
		 | .hyperparameters.schedule.total_steps = ($r * $s) | .hyperparameters.overlap = $o
		 | .periods.training = 40' \
		gpu-worker/jobs/text-gpt.json >"$config"
	job=$("$WORKER_BIN" job create --suri //Alice --node "$NODE_URL" --config "$config" \
		--dataset "$text/train" --holdout "$text/holdout" --tokenizer "$tokenizer")
	started=$SECONDS
	timeout 2400 "$WORKER_BIN" job watch --suri //Alice --node "$NODE_URL" --job "$job" \
		>"$AGORA_TESTNET_DIR/watch.log"
	seconds=$((SECONDS - started))
	echo "overlap $overlap: job $job in $seconds s ($AGORA_TESTNET_DIR)"
	# A round runs from its first line (Open, or Training for a drawn round) to the next
	# round's first line (or the job's end); its training from its Training to Verifying line.
	awk -v job="$job" '
		$2 == "job" && $3 == job":" && $4 == "round" {
			split($5, r, "/"); n = r[1]; block = substr($1, 2); phase = $6
			if (!(n in start)) { start[n] = block; order[++rounds] = n }
			if (phase == "Training" && !(n in training)) training[n] = block
			if (phase == "Verifying" && !(n in verifying)) verifying[n] = block
			last = block
		}
		END {
			for (i = 1; i <= rounds; i++) {
				n = order[i]; end = (i < rounds) ? start[order[i + 1]] : last
				printf "round %s: %d blocks (training phase %d, verification %d)\n", n, end - start[n],
					verifying[n] - training[n], end - verifying[n]
			}
		}' "$AGORA_TESTNET_DIR/watch.log"
	for round in $(seq 1 "$ROUNDS"); do
		slowest=$(jq -s 'map(.training_seconds) | max' \
			"$AGORA_TESTNET_DIR"/worker-*/timings/job-"$job"-round-"$round".json 2>/dev/null || echo null)
		echo "round $round: slowest worker trained $slowest s"
	done
	grep -h "submitting the run trained early\|early run dropped" "$AGORA_TESTNET_DIR"/worker-*.log |
		sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160 || true
	bash "$here/local-testnet.sh" stop >/dev/null
done
