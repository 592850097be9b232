#!/usr/bin/env bash
# A whole Agora network on 127.0.0.1: four validator nodes (Alice, Bob, Charlie, Dave), three
# GPU workers (Charlie, Dave, Eve) and two AI validators (Ferdie, Bob), each worker and AI
# validator talking to its own node and serving blobs on its own p2p port.
#
#   scripts/local-testnet.sh start    start the nodes, wait until finality advances, prepare
#                                     and publish the digits dataset, start workers and
#                                     AI validators
#   scripts/local-testnet.sh stop     stop everything (SIGINT, then SIGKILL after 20 s)
#   scripts/local-testnet.sh status   best and finalized block of each node, AI processes
#   scripts/local-testnet.sh test [--join]
#                                     nodes only: kill -9 one validator and check that finality
#                                     goes on; restart it and check that it catches up with
#                                     every finalized block intact; with --join, then what
#                                     join-test does on the same network; stop
#   scripts/local-testnet.sh join-test
#                                     nodes only, plus a fifth node with an empty keystore: its
#                                     operator joins the validator set with ordinary extrinsics
#                                     (bond, keys from author_rotateKeysWithOwner, setKeys,
#                                     validate), is elected and authors blocks; its node is
#                                     killed, im-online reports it and it is chilled (not
#                                     slashed) while finality goes on; its operator unbonds and
#                                     the next era's set is without it
#                                     (tests/js/validator.test.js); stop
#   scripts/local-testnet.sh run      start and stay in the foreground until Ctrl-C
#   scripts/local-testnet.sh stop-node N
#                                     stop node N (0-3) alone
#   scripts/local-testnet.sh restart-node N | restart-ai N
#                                     start node N (0-3) or AI participant N (0-4) again after
#                                     it stopped, on its existing database or state directory
#   scripts/local-testnet.sh serve-ai N MODEL PRICE [options]
#                                     restart worker N (0-2) as `agora-worker serve`: it also
#                                     serves catalogued model MODEL at PRICE AGR per request
#
# Environment: AGORA_NODE_BIN (the node binary), AGORA_WORKER_BIN (the worker binary),
# AGORA_TESTNET_DIR (data and logs; default $CARGO_TARGET_DIR/local-testnet), AGORA_PORT_OFFSET
# (added to every port; default 0), AGORA_CHEAT (how Eve cheats, e.g. skip-steps; default none),
# AGORA_EXTRA_WORKERS (honest workers besides Charlie, Dave and Eve, accounts //Worker1, …,
# funded by Alice at start; default 0; scripts/measure-scaling.sh), AGORA_VALIDATOR_REPLAY=skip
# (the AI validators check every hash but replay nothing, as if their replays ran on machines of
# their own: scripts/measure-overlap.sh; default: they replay).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

NODE_BIN="${AGORA_NODE_BIN}"
WORKER_BIN="${AGORA_WORKER_BIN:-${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker}"
# The bundled data of this checkout: a worker binary in the shared target directory may have been
# built from another clone, whose path it would otherwise look in.
export AGORA_DATA_DIR="${AGORA_DATA_DIR:-$AGORA_ROOT/gpu-worker/data}"
DIR="${AGORA_TESTNET_DIR:-$CARGO_TARGET_DIR/local-testnet}"
OFFSET="${AGORA_PORT_OFFSET:-0}"
# The fifth (index 4) is not a genesis validator: it joins through extrinsics (join-test).
NAMES=(alice bob charlie dave fifth)
# AI participants: name, role, dev account, node index it talks to.
AI_NAMES=(worker-charlie worker-dave worker-eve validator-ferdie validator-bob)
AI_ROLES=(worker worker worker validator validator)
AI_ACCOUNTS=(Charlie Dave Eve Ferdie Bob)
# The node each participant talks to (AGORA_AI_NODES overrides it, e.g. scripts/faults.sh).
# shellcheck disable=SC2206
AI_NODES=(${AGORA_AI_NODES:-0 1 2 3 0})
# With a cheat set for Eve (the demo), three more adversaries join: a worker that plants updates
# no training commitment matches (it tests the validators), a validator that approves every
# update without checking it (the planted updates catch it), and Mallory (Eve's stash account),
# who trains on other data than her shards. Two honest participants, Dave and Bob, then sit
# behind a flaky network (the first download of every blob fails), which must cost them nothing.
ADVERSARIES=0
if [ -n "${AGORA_CHEAT:-}" ] && [ "$AGORA_CHEAT" != none ]; then
	ADVERSARIES=1
	AI_NAMES+=(worker-planter validator-lazy worker-mallory)
	AI_ROLES+=(worker validator worker)
	AI_ACCOUNTS+=(Dave//stash Ferdie//stash Eve//stash)
	AI_NODES+=(1 2 3)
fi
EXTRA_WORKERS=()
[[ "${AGORA_EXTRA_WORKERS:-0}" =~ ^[0-9]+$ ]] || {
	echo "AGORA_EXTRA_WORKERS must be a number of workers, not '$AGORA_EXTRA_WORKERS'" >&2
	exit 2
}
# `stop` stops the extra workers only with the same AGORA_EXTRA_WORKERS as `start`.
for k in $(seq 1 "${AGORA_EXTRA_WORKERS:-0}"); do
	AI_NAMES+=("worker-w$k")
	AI_ROLES+=(worker)
	AI_ACCOUNTS+=("Worker$k")
	AI_NODES+=($((k % 4)))
	EXTRA_WORKERS+=("//Worker$k")
done

log() { printf '\033[1;34m[testnet]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[testnet] error:\033[0m %s\n' "$*" >&2
	exit 1
}
# die_showing LOG MESSAGE: dies with the end of LOG, so that CI's output says why.
die_showing() {
	local file=$1
	shift
	printf '\033[1;31m[testnet] error:\033[0m %s; the end of %s:\n' "$*" "$file" >&2
	tail -n 20 "$file" | sed 's/^/  | /' >&2
	exit 1
}

p2p_port() { echo $((30333 + OFFSET + $1)); }
rpc_port() { echo $((9944 + OFFSET + $1)); }
prometheus_port() { echo $((9615 + OFFSET + $1)); }
pid_file() { echo "$DIR/${NAMES[$1]}.pid"; }

# rpc <node index> <method> [params json]
rpc() {
	curl -sf --max-time 5 -H 'Content-Type: application/json' \
		-d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":${3:-[]}}" \
		"http://127.0.0.1:$(rpc_port "$1")"
}

best_number() { rpc "$1" chain_getHeader | jq -r '.result.number' | xargs printf '%d\n'; }
finalized_number() {
	local hash
	hash=$(rpc "$1" chain_getFinalizedHead | jq -r '.result')
	rpc "$1" chain_getHeader "[\"$hash\"]" | jq -r '.result.number' | xargs printf '%d\n'
}
block_hash() { rpc "$1" chain_getBlockHash "[$2]" | jq -r '.result'; }

is_running() {
	local pid_file
	pid_file=$(pid_file "$1")
	[ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# Every node keeps its network key (its peer id) across restarts; the others find the network
# through Alice's.
node_key_file() { echo "$DIR/${NAMES[$1]}-node-key"; }
bootnode_address() {
	local peer_id
	peer_id=$("$NODE_BIN" key inspect-node-key --file "$(node_key_file 0)")
	echo "/ip4/127.0.0.1/tcp/$(p2p_port 0)/p2p/$peer_id"
}

start_node() {
	local i=$1 name=${NAMES[$1]}
	# The genesis validators use their development keys (--alice, …); the fifth node is an
	# ordinary validator node whose keys its operator generates (author_rotateKeysWithOwner).
	local identity=("--$name")
	[ "$i" -eq 4 ] && identity=(--validator --name "$name")
	local args=(--chain local "${identity[@]}" --base-path "$DIR/$name"
		--node-key-file "$(node_key_file "$i")"
		--port "$(p2p_port "$i")" --rpc-port "$(rpc_port "$i")"
		--prometheus-port "$(prometheus_port "$i")" --rpc-cors all
		--no-mdns --no-telemetry --allow-private-ip)
	if [ "$i" -ne 0 ]; then
		args+=(--bootnodes "$(bootnode_address)")
	fi
	"$NODE_BIN" "${args[@]}" >>"$DIR/$name.log" 2>&1 &
	echo $! >"$(pid_file "$i")"
	log "$name: pid $!, rpc $(rpc_port "$i"), p2p $(p2p_port "$i"), log $DIR/$name.log"
}

wait_rpc() {
	local i=$1 deadline=$((SECONDS + 120))
	until rpc "$i" system_health >/dev/null 2>&1; do
		is_running "$i" || die "${NAMES[$i]} exited; see $DIR/${NAMES[$i]}.log"
		[ $SECONDS -lt $deadline ] || die "${NAMES[$i]}'s RPC did not come up in 120 s"
		sleep 1
	done
}

# wait_finalized <node index> <minimum finalized number> <timeout s>
wait_finalized() {
	local i=$1 target=$2 deadline=$((SECONDS + $3)) current=0
	while :; do
		current=$(finalized_number "$i" 2>/dev/null || echo 0)
		[ "$current" -ge "$target" ] && return 0
		[ $SECONDS -lt $deadline ] || die "${NAMES[$i]}: finalized #$current, wanted #$target within $3 s"
		sleep 2
	done
}

cmd_start() {
	[ -x "$NODE_BIN" ] || die "no node binary at $NODE_BIN: build it with 'cargo build -p agora-node'"
	for i in 0 1 2 3; do
		is_running "$i" && die "${NAMES[$i]} is already running (scripts/local-testnet.sh stop)"
	done
	mkdir -p "$DIR"
	for i in 0 1 2 3; do
		[ -f "$(node_key_file "$i")" ] || "$NODE_BIN" key generate-node-key --file "$(node_key_file "$i")" 2>/dev/null
	done
	for i in 0 1 2 3; do start_node "$i"; done
	for i in 0 1 2 3; do wait_rpc "$i"; done
	log "waiting for finality to advance"
	wait_finalized 0 2 180
	status_all
}

# stop_process <pid file> <name>: SIGINT, then SIGKILL after 20 s.
stop_process() {
	local pid
	pid=$(cat "$1")
	kill -INT "$pid" 2>/dev/null || true
	for _ in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	rm -f "$1"
	log "$2 stopped"
}

stop_node() {
	is_running "$1" || return 0
	stop_process "$(pid_file "$1")" "${NAMES[$1]}"
}

cmd_stop() {
	stop_ai
	for i in 4 3 2 1 0; do stop_node "$i"; done
}

ai_pid_file() { echo "$DIR/${AI_NAMES[$1]}.pid"; }
ai_p2p_port() { echo $((30433 + OFFSET + $1)); }
ai_running() {
	local pid_file
	pid_file=$(ai_pid_file "$1")
	[ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# The bundled digits data: a training set in 5 shards (one per worker of the demo job) and a
# held-out test set, which the demo job commits to.
prepare_data() {
	if [ ! -f "$DIR/data/train/manifest.json" ]; then
		"$WORKER_BIN" prepare-data --source digits --out "$DIR/data" --shard-size 288 >/dev/null
	fi
}

# start_ai_participant N [serve args…]: with serve args, worker N runs as `agora-worker serve`
# (the same account, state and p2p port) and also serves a catalogued model.
start_ai_participant() {
	local i=$1 name=${AI_NAMES[$1]} role=${AI_ROLES[$1]}
	shift
	local command=$role
	[ $# -gt 0 ] && command=serve
	local args=("$command" --suri "//${AI_ACCOUNTS[$i]}"
		--node "ws://127.0.0.1:$(rpc_port "${AI_NODES[$i]}")"
		--state-dir "$DIR/$name" --p2p-port "$(ai_p2p_port "$i")" "$@")
	if [ "$role" = validator ]; then
		args+=(--holdout "$DIR/data/test")
		[ "${AGORA_VALIDATOR_REPLAY:-}" = skip ] && [ "$name" != validator-lazy ] &&
			args+=(--lazy skip-replay)
	fi
	case "$name" in
	worker-eve) [ -n "${AGORA_CHEAT:-}" ] && args+=(--cheat "$AGORA_CHEAT") ;;
	worker-planter) args+=(--cheat plant) ;;
	validator-lazy) args+=(--lazy approve-all) ;;
	worker-mallory) args+=(--cheat substituted-data) ;;
	worker-dave | validator-bob) [ "$ADVERSARIES" = 1 ] && args+=(--flaky-network) ;;
	esac
	# One libtorch thread each: five to seven AI processes share a small machine with four nodes.
	RUST_LOG="${RUST_LOG:-info}" "$WORKER_BIN" --threads 1 "${args[@]}" >>"$DIR/$name.log" 2>&1 &
	echo $! >"$(ai_pid_file "$i")"
	log "$name: pid $!, p2p $(ai_p2p_port "$i"), log $DIR/$name.log"
}

start_ai() {
	[ -x "$WORKER_BIN" ] || die "no worker binary at $WORKER_BIN: build it with scripts/worker-test.sh"
	prepare_data
	log "Charlie publishes the digits training and held-out shards as their data provider"
	for set in train test; do
		"$WORKER_BIN" data publish --suri //Charlie --node "ws://127.0.0.1:$(rpc_port 0)" \
			--dataset "$DIR/data/$set" --state-dir "$DIR/${AI_NAMES[0]}" >>"$DIR/publish.log" 2>&1 ||
			die_showing "$DIR/publish.log" "publishing the $set set failed"
	done
	if [ ${#EXTRA_WORKERS[@]} -gt 0 ]; then
		log "Alice funds the ${#EXTRA_WORKERS[@]} extra workers"
		(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/js" &&
			node fund.js "ws://127.0.0.1:$(rpc_port 0)" 1000 "${EXTRA_WORKERS[@]}") >>"$DIR/publish.log" 2>&1 ||
			die_showing "$DIR/publish.log" "funding the extra workers failed"
	fi
	for i in "${!AI_NAMES[@]}"; do start_ai_participant "$i"; done
	# Registered once every participant's registration is on chain.
	local deadline=$((SECONDS + 120))
	for i in "${!AI_NAMES[@]}"; do
		until grep -q 'registered' "$DIR/${AI_NAMES[$i]}.log"; do
			ai_running "$i" || die_showing "$DIR/${AI_NAMES[$i]}.log" "${AI_NAMES[$i]} exited"
			[ $SECONDS -lt $deadline ] || die "${AI_NAMES[$i]} did not register in 120 s"
			sleep 1
		done
	done
	log "${#AI_NAMES[@]} workers and AI validators registered"
}

stop_ai() {
	for i in "${!AI_NAMES[@]}"; do
		ai_running "$i" && stop_process "$(ai_pid_file "$i")" "${AI_NAMES[$i]}"
	done
	return 0
}

status_all() {
	for i in "${!AI_NAMES[@]}"; do
		if ai_running "$i"; then
			log "$(printf '%-18s running (pid %s)' "${AI_NAMES[$i]}" "$(cat "$(ai_pid_file "$i")")")"
		fi
	done
	for i in 0 1 2 3; do
		if is_running "$i"; then
			log "$(printf '%-8s best #%-5s finalized #%-5s peers %s' "${NAMES[$i]}" \
				"$(best_number "$i")" "$(finalized_number "$i")" \
				"$(rpc "$i" system_health | jq -r '.result.peers')")"
		else
			log "$(printf '%-8s not running' "${NAMES[$i]}")"
		fi
	done
}

cmd_test() {
	rm -rf "$DIR"
	trap cmd_stop EXIT
	cmd_start

	local victim=3 before_kill
	before_kill=$(finalized_number 0)
	log "kill -9 ${NAMES[$victim]} at finalized #$before_kill"
	kill -KILL "$(cat "$(pid_file $victim)")"
	rm -f "$(pid_file $victim)"

	# Three of four validators are more than two thirds: GRANDPA must go on finalizing.
	wait_finalized 0 $((before_kill + 3)) 180
	local with_three
	with_three=$(finalized_number 0)
	log "finality went on without ${NAMES[$victim]}: #$before_kill -> #$with_three"

	start_node "$victim"
	wait_rpc "$victim"
	wait_finalized "$victim" "$with_three" 180
	local caught_up
	caught_up=$(finalized_number "$victim")
	log "${NAMES[$victim]} restarted and caught up to finalized #$caught_up"

	# Every finalized block the victim had and everything finalized while it was down must be
	# the same blocks on both nodes.
	for n in $(seq 1 "$with_three"); do
		local a d
		a=$(block_hash 0 "$n")
		d=$(block_hash "$victim" "$n")
		[ "$a" = "$d" ] || die "block #$n differs: alice $a, ${NAMES[$victim]} $d"
	done
	log "blocks #1..#$with_three are identical on alice and ${NAMES[$victim]}"
	status_all
	log "PASS: finality survived one validator down and the restarted node caught up"
	[ "${1:-}" = --join ] && join_fifth
	return 0
}

# A fifth node joins the running network's validator set through extrinsics, goes offline and
# leaves (tests/js/validator.test.js).
join_fifth() {
	"$NODE_BIN" key generate-node-key --file "$(node_key_file 4)" 2>/dev/null
	start_node 4
	wait_rpc 4
	log "fifth node up; its operator joins the validator set (tests/js/validator.test.js)"
	(cd "$AGORA_ROOT/tests/js" && AGORA_WS="ws://127.0.0.1:$(rpc_port 0)" \
		AGORA_NEW_VALIDATOR_WS="ws://127.0.0.1:$(rpc_port 4)" \
		AGORA_NEW_VALIDATOR_PID="$(cat "$(pid_file 4)")" npm test --silent -- validator.test.js) ||
		die "the join test failed; node logs in $DIR"
	rm -f "$(pid_file 4)"
	status_all
	log "PASS: a validator joined through extrinsics, was reported offline, and left"
}

cmd_join_test() {
	rm -rf "$DIR"
	trap cmd_stop EXIT
	cmd_start
	join_fifth
}

cmd_run() {
	trap cmd_stop EXIT INT TERM
	cmd_start
	start_ai
	log "running; Polkadot.js Apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A$(rpc_port 0)#/explorer"
	log "Ctrl-C stops the network"
	while :; do
		sleep 30
		status_all
	done
}

case "${1:-}" in
start)
	cmd_start
	start_ai
	;;
stop) cmd_stop ;;
status) status_all ;;
stop-node) stop_node "${2:?node index}" ;;
restart-node)
	is_running "${2:?node index}" && die "${NAMES[$2]} is running"
	start_node "$2"
	wait_rpc "$2"
	;;
restart-ai)
	ai_running "${2:?participant index}" && die "${AI_NAMES[$2]} is running"
	start_ai_participant "$2"
	;;
serve-ai)
	# serve-ai N MODEL PRICE [serve options…]: worker N again as `agora-worker serve`.
	[ "${AI_ROLES[${2:?participant index}]}" = worker ] || die "${AI_NAMES[$2]} is not a worker"
	ai_running "$2" && stop_process "$(ai_pid_file "$2")" "${AI_NAMES[$2]}"
	participant=$2 model=${3:?model id} price=${4:?price in AGR}
	shift 4
	start_ai_participant "$participant" --model "$model" --price "$price" "$@"
	deadline=$((SECONDS + 120))
	until grep -q 'answering requests' "$DIR/${AI_NAMES[$participant]}.log"; do
		ai_running "$participant" || die "${AI_NAMES[$participant]} exited; see $DIR/${AI_NAMES[$participant]}.log"
		[ $SECONDS -lt $deadline ] || die "${AI_NAMES[$participant]} did not offer model $model in 120 s"
		sleep 1
	done
	log "${AI_NAMES[$participant]} serves model $model at $price AGR per request"
	;;
test) cmd_test "${2:-}" ;;
join-test) cmd_join_test ;;
run) cmd_run ;;
*)
	sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
