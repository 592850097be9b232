#!/usr/bin/env bash
# Sets up the machine (if needed) and runs every Agora test. CI runs exactly this (.ci/run).
#
#   scripts/test.sh            everything
#   scripts/test.sh unit       format, lints and Rust unit tests only
#
# Steps: cargo fmt --check; cargo clippy -D warnings; cargo test; build agora-node; start
# `agora-node --dev` and run the @polkadot/api tests against it; `--sealing manual`; bad
# command-line input; the four-validator local testnet with one validator killed; the GPU
# worker's own tests.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT"

log() { printf '\n\033[1;32m[test]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[test] FAIL:\033[0m %s\n' "$*" >&2
	exit 1
}

WORK="$(mktemp -d -t agora-test.XXXXXX)"
NODE_PID=""
cleanup() {
	if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill -INT "$NODE_PID" 2>/dev/null || true
		wait "$NODE_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# rpc <port> <method> [params json]
rpc() {
	curl -sf --max-time 5 -H 'Content-Type: application/json' \
		-d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":${3:-[]}}" \
		"http://127.0.0.1:$1"
}

# start_node <log file> <args…>: starts agora-node in the background and waits for its RPC.
start_node() {
	local log_file=$1
	shift
	"$AGORA_NODE_BIN" "$@" >"$log_file" 2>&1 &
	NODE_PID=$!
	local deadline=$((SECONDS + 120))
	until rpc 9944 system_health >/dev/null 2>&1; do
		kill -0 "$NODE_PID" 2>/dev/null || {
			tail -20 "$log_file" >&2
			die "agora-node $* exited"
		}
		[ $SECONDS -lt $deadline ] || die "agora-node's RPC did not come up in 120 s"
		sleep 1
	done
}

stop_node() {
	kill -INT "$NODE_PID"
	wait "$NODE_PID" || die "agora-node did not exit cleanly on SIGINT"
	NODE_PID=""
}

step_setup() {
	log "setup"
	bash scripts/setup.sh
}

step_unit() {
	log "cargo fmt --check"
	cargo fmt --all -- --check
	log "cargo clippy -D warnings"
	cargo clippy --workspace --all-targets -- -D warnings
	log "cargo test (unit tests)"
	cargo test --workspace
}

step_build() {
	log "cargo build -p agora-node"
	cargo build -p agora-node
}

step_dev_chain() {
	log "agora-node --dev + @polkadot/api tests"
	start_node "$WORK/dev.log" --dev --rpc-port 9944
	(cd tests/js && npm test --silent -- chain.test.js) || {
		tail -30 "$WORK/dev.log" >&2
		die "@polkadot/api tests against --dev"
	}
	stop_node
}

step_manual_sealing() {
	log "agora-node --dev --sealing manual"
	start_node "$WORK/manual.log" --dev --sealing manual --rpc-port 9944
	rpc 9944 engine_createBlock '[true, false, null]' >/dev/null || die "engine_createBlock"
	rpc 9944 engine_createBlock '[true, true, null]' >/dev/null || die "engine_createBlock"
	local best finalized_hash finalized
	best=$(rpc 9944 chain_getHeader | jq -r '.result.number')
	finalized_hash=$(rpc 9944 chain_getFinalizedHead | jq -r '.result')
	finalized=$(rpc 9944 chain_getHeader "[\"$finalized_hash\"]" | jq -r '.result.number')
	[ "$((best))" -eq 2 ] || die "manual sealing: best block #$((best)), expected #2"
	[ "$((finalized))" -eq 2 ] || die "manual sealing: finalized #$((finalized)), expected #2"
	stop_node
	echo "sealed and finalized 2 blocks on demand"
}

# expect_clean_error <description> <args…>: the node must exit non-zero with a one-line error
# and no panic.
expect_clean_error() {
	local what=$1
	shift
	local out="$WORK/error.out" status=0
	timeout 60 "$AGORA_NODE_BIN" "$@" >"$out" 2>&1 || status=$?
	[ "$status" -ne 0 ] || die "$what: exited with 0"
	[ "$status" -ne 124 ] || die "$what: still running after 60 s"
	grep -qi 'panicked\|backtrace' "$out" && die "$what: panicked: $(cat "$out")"
	local error_lines
	error_lines=$(grep -c '^Error: ' "$out" || true)
	[ "$error_lines" -eq 1 ] || die "$what: expected one 'Error:' line, got: $(cat "$out")"
	echo "$what -> $(grep '^Error: ' "$out")"
}

step_bad_input() {
	log "bad command-line input: clear one-line errors"
	expect_clean_error "unknown chain" --chain no-such-chain --tmp
	start_node "$WORK/dev.log" --dev --rpc-port 9944 --port 30555
	expect_clean_error "RPC port in use" --dev --rpc-port 9944 --port 30556
	expect_clean_error "p2p port in use" --chain dev --tmp --rpc-port 9950 --port 30555
	stop_node
	mkdir -p "$WORK/corrupt"
	"$AGORA_NODE_BIN" --dev --base-path "$WORK/corrupt" --rpc-port 9944 >"$WORK/corrupt.log" 2>&1 &
	NODE_PID=$!
	sleep 1
	until rpc 9944 system_health >/dev/null 2>&1; do sleep 1; done
	stop_node
	find "$WORK/corrupt/chains" -path '*paritydb*' -type f -name 'metadata' -print0 |
		xargs -0 -r sh -c 'for f; do printf "garbage" >"$f"; done' sh
	expect_clean_error "corrupt base path" --dev --base-path "$WORK/corrupt" --rpc-port 9951
}

step_local_testnet() {
	log "local testnet: 4 validators, one killed and restarted"
	AGORA_TESTNET_DIR="$WORK/local-testnet" AGORA_PORT_OFFSET=100 bash scripts/local-testnet.sh test
}

step_worker() {
	if [ -f scripts/worker-test.sh ]; then
		log "gpu-worker"
		bash scripts/worker-test.sh
	fi
}

case "${1:-all}" in
unit)
	step_setup
	step_unit
	;;
all)
	started=$SECONDS
	step_setup
	step_unit
	step_build
	step_dev_chain
	step_manual_sealing
	step_bad_input
	step_local_testnet
	step_worker
	log "all tests passed in $((SECONDS - started)) s"
	;;
*)
	die "usage: scripts/test.sh [all|unit]"
	;;
esac
