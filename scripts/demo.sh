#!/usr/bin/env bash
# Agora's main job, end to end: a decentralized training job on a local network.
#
#   scripts/demo.sh            set up and build if needed, start the network (4 validator
#                              nodes, 4 GPU workers, 3 AI validators), submit a training job on
#                              the bundled digits data, show its progress, download the final
#                              model and evaluate it, print the job's on-chain record and who
#                              was paid what; then one worker serves the model and Alice buys
#                              predictions for held-out samples (cost, provider's earnings,
#                              the audits' outcomes); stop everything
#   scripts/demo.sh --check    the same, then check the outcome with @polkadot/api
#                              (tests/js/e2e.test.js) before stopping, and the explorer in
#                              headless Chromium while the job runs (explorer/e2e/check.js):
#                              CI's end-to-end test
#   scripts/demo.sh --lm       a language-model job instead: a BPE tokenizer trained on the
#                              English prose of Python's documentation (Debian's python3.11-doc),
#                              token shards, a GPT trained over the network for 3 DiLoCo rounds
#                              (AdamW with warmup, cosine decay and clipping, its state carried
#                              from round to round, and an outer Nesterov step), held-out loss
#                              and perplexity of every round's model, and a text sample from the
#                              final one
#   scripts/demo.sh --lm --check
#                              the language-model job in 2 overlapped rounds (round 2 trained
#                              while round 1 is verified), then checks that perplexity fell round
#                              by round and the job's outcome with @polkadot/api:
#                              CI's end-to-end test of a language-model round
#
# The Agora Explorer follows the network at http://127.0.0.1:8080/ while the demo runs.
#
# Eve is told to cheat (she skips every second training step) so that the demo shows a
# cheater caught by replay and slashed; Mallory (Eve's stash account) trains on other data than
# her shards and is caught too; a fourth worker (Dave's stash account) plants updates that no
# training matches and exposes them once the verdicts are committed, which catches the third AI
# validator (Ferdie's stash account), who approves everything without checking. Meanwhile Dave
# and Bob sit behind a flaky network (the first download of every blob fails) and must lose
# nothing. Validators score every update on the held-out set the job commits to.
# AGORA_CHEAT=none makes everyone honest (and leaves the adversaries and the flaky network out).
# Ctrl-C stops everything cleanly at any point.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$AGORA_ROOT"

CHECK=0
LM=0
for arg in "$@"; do
	case "$arg" in
	--check) CHECK=1 ;;
	--lm) LM=1 ;;
	*)
		echo "usage: scripts/demo.sh [--lm] [--check]" >&2
		exit 2
		;;
	esac
done

export AGORA_CHEAT="${AGORA_CHEAT:-skip-steps}"
export AGORA_TESTNET_DIR="${AGORA_TESTNET_DIR:-$(mktemp -d -t agora-demo.XXXXXX)}"
export AGORA_PORT_OFFSET="${AGORA_PORT_OFFSET:-0}"
WORKER_BIN="${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker"
NODE_URL="ws://127.0.0.1:$((9944 + AGORA_PORT_OFFSET))"
# The explorer follows Dave's node (index 3), which the browser check restarts at the end.
EXPLORER_NODE=3
EXPLORER_URL="http://127.0.0.1:$((8080 + AGORA_PORT_OFFSET))/"
EXPLORER_PID=""
CHECK_PID=""

say() { printf '\n\033[1;35m[demo]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[demo] error:\033[0m %s\n' "$*" >&2
	show_warnings
	exit 1
}
# What went wrong in the workers and AI validators, for a failed run (CI keeps no logs).
show_warnings() {
	grep -H 'WARN' "$AGORA_TESTNET_DIR"/worker-*.log "$AGORA_TESTNET_DIR"/validator-*.log 2>/dev/null |
		sed 's/\x1b\[[0-9;]*m//g' | tail -40 >&2 || true
}

stop_network() {
	# Stopping must finish even if Ctrl-C is pressed again.
	trap - EXIT
	trap '' INT TERM
	say "stopping the network"
	for pid in "$CHECK_PID" "$EXPLORER_PID"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	bash "$here/local-testnet.sh" stop || true
}

# Set up and build only what is missing, so that a second run starts at once.
if [ ! -x "$AGORA_NODE_BIN" ] || [ ! -x "$WORKER_BIN" ] || [ ! -d tests/js/node_modules ]; then
	say "first run: setting up the machine and building (tens of minutes on a small machine)"
	bash "$here/setup.sh"
	bash "$here/worker-setup.sh"
	cargo build -p agora-node
	(source "$here/worker-env.sh" && cd gpu-worker && cargo build --workspace --all-features)
fi

trap stop_network EXIT
trap 'say "interrupted"; exit 130' INT TERM

say "starting the network in $AGORA_TESTNET_DIR"
bash "$here/local-testnet.sh" start

bash "$here/explorer.sh" --port "$((8080 + AGORA_PORT_OFFSET))" --cache "$AGORA_TESTNET_DIR/explorer-cache" \
	--rpc "ws://127.0.0.1:$((9944 + AGORA_PORT_OFFSET + EXPLORER_NODE))" >"$AGORA_TESTNET_DIR/explorer.log" 2>&1 &
EXPLORER_PID=$!
say "Agora Explorer: $EXPLORER_URL (log $AGORA_TESTNET_DIR/explorer.log)"

# The language-model job: from a corpus to a GPT that writes, over the same network.
language_model_job() {
	local text="$AGORA_TESTNET_DIR/text"
	say "preparing text: a BPE tokenizer trained on Python's documentation, windows of 65 tokens"
	"$WORKER_BIN" prepare-text --corpus python-docs --vocab 1024 --context 64 --shard-windows 500 \
		--holdout-every 20 --max-windows 4000 --out "$text"
	local tokenizers=("$text"/tokenizer-*.json)
	[ ${#tokenizers[@]} -eq 1 ] && [ -f "${tokenizers[0]}" ] ||
		die "prepare-text left ${#tokenizers[@]} tokenizer files in $text, expected one"
	local tokenizer=${tokenizers[0]}
	say "Charlie publishes the token shards and their tokenizer as their data provider (served by Charlie's worker)"
	for set in train holdout; do
		"$WORKER_BIN" data publish --suri //Charlie --node "$NODE_URL" --dataset "$text/$set" \
			--tokenizer "$tokenizer" --state-dir "$AGORA_TESTNET_DIR/worker-charlie" \
			>>"$AGORA_TESTNET_DIR/publish.log" 2>&1 ||
			die "publishing the $set set failed; see $AGORA_TESTNET_DIR/publish.log"
	done
	local config=gpu-worker/jobs/text-gpt.json rounds=3
	if [ "$CHECK" -eq 1 ]; then
		# Two rounds are enough to check that the second steps from the first's record (the
		# schedule, set for three, does not finish: no matter for the check). They overlap, so
		# that the check covers round 2 trained while round 1 is verified (its 40-step rounds
		# pay for that in held-out loss: docs/language-models.md).
		rounds=2
		config="$AGORA_TESTNET_DIR/text-gpt.json"
		jq '.rounds = 2 | .hyperparameters.overlap = "eager"' gpu-worker/jobs/text-gpt.json >"$config" ||
			die "could not set the check's rounds and overlap in $config"
	fi
	say "Alice submits a language-model job: a GPT on the token shards, $rounds DiLoCo rounds, its tokenizer pinned by hash"
	JOB=$("$WORKER_BIN" job create --suri //Alice --node "$NODE_URL" --config "$config" \
		--dataset "$text/train" --holdout "$text/holdout" --tokenizer "$tokenizer")
	local started=$SECONDS
	timeout 900 "$WORKER_BIN" job watch --suri //Alice --node "$NODE_URL" --job "$JOB" ||
		die "following job $JOB failed (interrupted, or not finished in 15 minutes); logs in $AGORA_TESTNET_DIR"
	say "job $JOB finished in $((SECONDS - started)) s; every round's model, downloaded and scored on held-out text"
	MODEL="$AGORA_TESTNET_DIR/final-model.safetensors"
	"$WORKER_BIN" job download --suri //Alice --node "$NODE_URL" --job "$JOB" --out "$MODEL" \
		--test-data "$text/holdout" --every-round --store "$AGORA_TESTNET_DIR/client" |
		tee "$AGORA_TESTNET_DIR/download.log"
	# `tokenizer <hash> verified against the job, written to <path>`: the job's own tokenizer,
	# fetched from its workers, decodes the samples below.
	local job_tokenizer
	job_tokenizer=$(sed -n 's/^tokenizer [0-9a-f]* verified against the job, written to //p' \
		"$AGORA_TESTNET_DIR/download.log")
	[ -f "$job_tokenizer" ] || die "the job's tokenizer was not downloaded; see $AGORA_TESTNET_DIR/download.log"
	cmp -s "$job_tokenizer" "$tokenizer" || die "the downloaded tokenizer is not the one the shards were cut with"
	if [ "$CHECK" -eq 1 ]; then
		say "checking that held-out perplexity fell round by round, from the initial model's"
		# `round N: held-out loss L, perplexity P, …`: every round's loss below the one before,
		# the first below the untrained model's ln(vocabulary) = ln(1024).
		awk -v rounds="$rounds" '
			/^round [0-9]+: held-out loss/ { loss = $5 + 0
				if (loss >= previous) { print "round " $2 " loss " loss " is not below " previous; bad = 1 }
				previous = loss; seen += 1 }
			BEGIN { previous = log(1024) }
			END { if (seen != rounds) { print seen " rounds scored, expected " rounds; bad = 1 }; exit bad }
		' "$AGORA_TESTNET_DIR/download.log" || die "perplexity did not fall round by round"
		say "checking the outcome with @polkadot/api (tests/js/e2e.test.js)"
		(cd tests/js && AGORA_WS="$NODE_URL" AGORA_E2E_JOB="$JOB" AGORA_E2E_MODEL="$MODEL" \
			AGORA_E2E_CHEATER="${AGORA_CHEAT}" npm test --silent -- e2e.test.js) ||
			die "end-to-end checks of the language-model job failed; logs in $AGORA_TESTNET_DIR"
	fi
	say "a sample from the final model (temperature 0.8)"
	"$WORKER_BIN" generate --model "$MODEL" --tokenizer "$job_tokenizer" \
		--prompt "The function" --tokens 40 --seed 1
	say "the job's on-chain record, and who holds, staked and is owed what"
	"$WORKER_BIN" job report --suri //Alice --node "$NODE_URL" --job "$JOB"
	say "done"
}
if [ "$LM" -eq 1 ]; then
	language_model_job
	exit 0
fi

say "Alice submits a training job: an MLP on the digits shards, 2 rounds, up to 5 workers per round"
JOB=$("$WORKER_BIN" job create --suri //Alice --node "$NODE_URL" --config gpu-worker/jobs/digits-mlp.json \
	--dataset "$AGORA_TESTNET_DIR/data/train" --holdout "$AGORA_TESTNET_DIR/data/test")
say "job $JOB created; following it (each round: open, training, commit, reveal, aggregation)"
if [ "$CHECK" -eq 1 ]; then
	slash=()
	[ "$AGORA_CHEAT" != none ] && slash=(--slash FailedReplay)
	(cd explorer && node e2e/check.js --url "$EXPLORER_URL" --job "$JOB" --out "$AGORA_TESTNET_DIR/explorer" \
		"${slash[@]}" --restart "bash '$here/local-testnet.sh' stop-node $EXPLORER_NODE && bash '$here/local-testnet.sh' restart-node $EXPLORER_NODE") \
		>"$AGORA_TESTNET_DIR/explorer-check.log" 2>&1 &
	CHECK_PID=$!
fi
started=$SECONDS
timeout 900 "$WORKER_BIN" job watch --suri //Alice --node "$NODE_URL" --job "$JOB" ||
	die "following job $JOB failed (interrupted, or not finished in 15 minutes); logs in $AGORA_TESTNET_DIR"
say "job $JOB finished in $((SECONDS - started)) s"

say "downloading the final model from the workers over libp2p and evaluating it"
MODEL="$AGORA_TESTNET_DIR/final-model.safetensors"
"$WORKER_BIN" job download --suri //Alice --node "$NODE_URL" --job "$JOB" --out "$MODEL" \
	--test-data "$AGORA_TESTNET_DIR/data/test" --store "$AGORA_TESTNET_DIR/client"

say "the job's on-chain record, and who holds, staked and is owed what"
"$WORKER_BIN" job report --suri //Alice --node "$NODE_URL" --job "$JOB"

say "blob traffic of each participant"
for state in "$AGORA_TESTNET_DIR"/worker-* "$AGORA_TESTNET_DIR"/validator-*; do
	[ -f "$state/traffic.json" ] && printf '  %-18s %s\n' "$(basename "$state")" "$(cat "$state/traffic.json")"
done

say "the inference market: Charlie's worker serves the new model, Alice buys predictions"
# Windows of blocks rather than the runtime's minutes and an hour, and every batch audited, so
# that the demo shows an audit's outcome (set through sudo here; governance sets them on a
# real network).
(cd tests/js && node market-params.js "$NODE_URL" \
	'{"auditRate":1000000000,"auditDelay":2,"commitPeriod":4,"revealPeriod":4,"disputeWindow":8,"closeDelay":5}') \
	>"$AGORA_TESTNET_DIR/market-params.log" || die "setting the market's parameters failed"
bash "$here/local-testnet.sh" serve-ai 0 "$JOB" 0.01 --settle-every 10
"$WORKER_BIN" models --suri //Alice --node "$NODE_URL"
say "Alice pays into a channel with Charlie and sends 20 held-out samples over libp2p"
"$WORKER_BIN" infer --suri //Alice --node "$NODE_URL" --model "$JOB" --data "$AGORA_TESTNET_DIR/data/test" \
	--count 20 --follow --follow-timeout 300 | tee "$AGORA_TESTNET_DIR/infer.log" ||
	die "buying predictions failed; logs in $AGORA_TESTNET_DIR"

if [ "$CHECK" -eq 1 ]; then
	say "checking the outcome with @polkadot/api (tests/js/e2e.test.js)"
	(cd tests/js && AGORA_WS="$NODE_URL" AGORA_E2E_JOB="$JOB" AGORA_E2E_MODEL="$MODEL" AGORA_E2E_MARKET=1 \
		AGORA_E2E_CHEATER="${AGORA_CHEAT}" npm test --silent -- e2e.test.js) ||
		die "end-to-end checks failed; logs in $AGORA_TESTNET_DIR"
	if [ "$AGORA_CHEAT" != none ]; then
		# The checks above found Dave and Bob paid and never slashed; this shows that their
		# downloads did fail (and were asked again) all along.
		for flaky in worker-dave validator-bob; do
			failures=$(grep -c 'injected transient failure' "$AGORA_TESTNET_DIR/$flaky.log" || true)
			[ "$failures" -gt 0 ] || die "no download of $flaky failed: the flaky network was not injected"
			say "$flaky: $failures injected download failures, asked again, nothing lost"
		done
	fi
	say "the explorer in headless Chromium (explorer/e2e/check.js)"
	explorer_status=0
	wait "$CHECK_PID" || explorer_status=$?
	CHECK_PID=""
	cat "$AGORA_TESTNET_DIR/explorer-check.log"
	[ "$explorer_status" -eq 0 ] || die "the explorer check failed; screenshots in $AGORA_TESTNET_DIR/explorer"
fi
say "done"
