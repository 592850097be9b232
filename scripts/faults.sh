#!/usr/bin/env bash
# Fault tolerance of a training job on the local network, checked end to end:
#   1. a worker (Dave) is killed with SIGKILL after applying to round 1: he is selected, never
#      submits, is timed out and slashed for the no-show, and the round completes with the
#      other two workers;
#   2. the validator node (Bob's) that Dave's worker, Charlie's worker and Ferdie's AI validator
#      talk to is stopped and restarted on the same database: it keeps its chain, and the live
#      worker and validator reconnect on their own and carry on with their duties;
#   3. Dave's worker is restarted on its state directory while round 1 is verified: it keeps
#      its p2p identity and registration, tops its stake back up, and trains in round 3 (round
#      2's workers were drawn from the applications taken while round 1 trained, when Dave was
#      down: he applies while round 2 trains);
# then tests/js/faults.test.js checks the outcome with @polkadot/api.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$AGORA_ROOT"

export AGORA_CHEAT=none
# Charlie's worker, Dave's worker and Ferdie's validator follow Bob's node (node 1).
export AGORA_AI_NODES="1 1 2 1 0"
export AGORA_TESTNET_DIR="${AGORA_TESTNET_DIR:-$(mktemp -d -t agora-faults.XXXXXX)}"
export AGORA_PORT_OFFSET="${AGORA_PORT_OFFSET:-400}"
WORKER_BIN="${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker"
NODE_URL="ws://127.0.0.1:$((9944 + AGORA_PORT_OFFSET))"
BOB_RPC="http://127.0.0.1:$((9945 + AGORA_PORT_OFFSET))"
DIR="$AGORA_TESTNET_DIR"

say() { printf '\n\033[1;33m[faults]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[faults] FAIL:\033[0m %s\n' "$*" >&2
	# What went wrong in the workers and AI validators (CI keeps no logs).
	grep -H 'WARN' "$DIR"/worker-*.log "$DIR"/validator-*.log 2>/dev/null |
		sed 's/\x1b\[[0-9;]*m//g' | tail -40 >&2 || true
	exit 1
}
rpc() {
	curl -sf --max-time 5 -H 'Content-Type: application/json' \
		-d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":${3:-[]}}" "$1"
}
# wait_for <timeout s> <description> <command…>
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "timed out after ${deadline}s waiting for $what"
		sleep 1
	done
}

WATCH_PID=""
cleanup() {
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
	bash "$here/local-testnet.sh" stop >/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the network in $DIR"
bash "$here/local-testnet.sh" start >/dev/null

# Three rounds: Dave misses round 1 (killed) and round 2 (drawn while he was down).
jq '.rounds = 3' gpu-worker/jobs/digits-mlp.json >"$DIR/faults-job.json"
JOB=$("$WORKER_BIN" job create --suri //Alice --node "$NODE_URL" \
	--config "$DIR/faults-job.json" --dataset "$DIR/data/train" --holdout "$DIR/data/test")
"$WORKER_BIN" job watch --suri //Alice --node "$NODE_URL" --job "$JOB" >"$DIR/watch.log" 2>&1 &
WATCH_PID=$!
say "job $JOB created"

wait_for 120 "Dave to apply" grep -q 'applied' "$DIR/worker-dave.log"
kill -KILL "$(cat "$DIR/worker-dave.pid")"
rm -f "$DIR/worker-dave.pid"
say "worker Dave killed (SIGKILL) after applying to round 1"

before=$(rpc "$BOB_RPC" chain_getHeader | jq -r '.result.number' | xargs printf '%d')
kill -INT "$(cat "$DIR/bob.pid")"
wait_for 60 "Bob's node to stop" bash -c "! kill -0 $(cat "$DIR/bob.pid") 2>/dev/null"
rm -f "$DIR/bob.pid"
say "Bob's node stopped at best #$before; restarting it on the same database"
bash "$here/local-testnet.sh" restart-node 1 >/dev/null
wait_for 120 "Bob's RPC" rpc "$BOB_RPC" system_health
after=$(rpc "$BOB_RPC" chain_getHeader | jq -r '.result.number' | xargs printf '%d')
[ "$after" -ge "$before" ] || die "Bob's node restarted at #$after, below #$before: it lost its chain"
say "Bob's node restarted with its chain (best #$after)"

# Restarted once round 1 is being verified (Dave's training deadline has passed), so that
# it is back, with its stake topped up, when round 2 trains, and applies for round 3.
wait_for 300 "round 1 to be verified" grep -q 'round 1/3 Verifying' "$DIR/watch.log"
say "round 1 went on without Dave; restarting his worker on its state directory"
bash "$here/local-testnet.sh" restart-ai 1 >/dev/null
wait_for 300 "round 3 to start" grep -q 'round 3/3' "$DIR/watch.log"

wait_for 420 "the job to finish" grep -q 'Finalized' "$DIR/watch.log"
cat "$DIR/watch.log"
grep -q 'already registered' "$DIR/worker-dave.log" || die "Dave's worker did not find its registration"
# Charlie and Ferdie lived through Bob's restart: each reconnected, then did duties.
for name in worker-charlie validator-ferdie; do
	sed 's/\x1b\[[0-9;]*m//g' "$DIR/$name.log" |
		awk '/reconnected to the node/ { back = 1 } back && / done$| done / { ok = 1 } END { exit !ok }' ||
		die "$name did not reconnect to Bob's node and carry on with its duties"
	say "$name reconnected to Bob's node and carried on"
done

say "checking the outcome with @polkadot/api (tests/js/faults.test.js)"
(cd tests/js && AGORA_WS="$NODE_URL" AGORA_E2E_JOB="$JOB" npm test --silent -- faults.test.js) ||
	die "fault checks failed; logs in $DIR"
say "PASS"
