#!/usr/bin/env bash
# Sets up the machine (if needed) and runs every Agora test. CI runs exactly this (.ci/run).
#
#   scripts/test.sh            everything
#   scripts/test.sh unit       format, lints and Rust unit tests only
#   scripts/test.sh STEP…      single steps of a built tree: chain, sealing, bad-input, testnet,
#                              worker, e2e, faults, docker
#
# Steps: cargo fmt --check; cargo clippy -D warnings; cargo test; the pallets' benchmark and
# try-runtime tests; build an upgrade runtime (spec_version + 1) and agora-node; start `agora-node --dev`, check that the worker's copy of
# the runtime metadata is current, and run the @polkadot/api tests against it (chain,
# governance, runtime upgrade); `--sealing manual` with the inference market's tests; bad command-line input; the four-validator
# local testnet with one validator killed, then a fifth validator joining through extrinsics
# (bond, session keys, validate), reported offline and leaving; the GPU worker's own tests; the end-to-end job
# (scripts/demo.sh --check: a whole network, a job with a cheating worker, checked with
# @polkadot/api, and the Agora Explorer driven in headless Chromium while the job runs; then
# scripts/demo.sh --lm --check: a GPT trained in two DiLoCo rounds over the network, its
# perplexity falling round by round and its outcome checked with @polkadot/api);
# faults (scripts/faults.sh: a worker killed mid-round and restarted, a node restarted); docker
# (scripts/docker.sh check: the images, packaged from the binaries built above, and the compose
# network's blocks, finality, registrations and health checks).
set -euo pipefail

# The node under test is the one this run builds, whatever the caller's environment names.
unset AGORA_NODE_BIN
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT"

log() { printf '\n\033[1;32m[test]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[test] FAIL:\033[0m %s\n' "$*" >&2
	exit 1
}

WORK="$(mktemp -d -t agora-test.XXXXXX)"
NODE_PID=""
# Steps run in the background beside others (in_background): their pids and start times.
declare -A BACKGROUND_PID=() BACKGROUND_STARTED=()""
# kill_tree <pid>: the process and all its descendants, the deepest first.
kill_tree() {
	local child
	for child in $(pgrep -P "$1" || true); do
		kill_tree "$child"
	done
	kill "$1" 2>/dev/null || true
}

cleanup() {
	if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill -INT "$NODE_PID" 2>/dev/null || true
		wait "$NODE_PID" 2>/dev/null || true
	fi
	# The steps run in the background: everything under them (cargo, nodes, daemons).
	local pid
	for pid in "${BACKGROUND_PID[@]}"; do
		kill_tree "$pid"
		wait "$pid" 2>/dev/null || true
	done
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
	! rpc 9944 system_health >/dev/null 2>&1 || die "something already serves RPC on port 9944"
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

# timed <step>: runs a step and notes its wall time for the summary (where CI's time goes).
TIMINGS=""
timed() {
	local step_started=$SECONDS
	"$@"
	TIMINGS="$TIMINGS ${1#step_} $((SECONDS - step_started)) s,"
	log "${1#step_} took $((SECONDS - step_started)) s"
}

step_setup() {
	log "setup"
	bash scripts/setup.sh
}

# `cargo clippy -- -D warnings`, built rather than only checked: clippy-driver compiles our own
# crates (linting them, warnings as errors) and every dependency is compiled once for the lints,
# the tests and the node alike. A plain `cargo clippy` would first check-build the whole Polkadot
# SDK a second time, about 20 minutes on a 2-core machine. With a WASM toolchain other than the
# default one (Debian's rustc-web), the nested WASM build cannot use this clippy-driver, so the
# plain `cargo clippy` is used there.
use_clippy_driver() {
	if [ -z "${WASM_BUILD_TOOLCHAIN:-}" ]; then
		RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
		export RUSTC_WORKSPACE_WRAPPER
		export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
	fi
}

step_unit() {
	log "cargo fmt --check"
	cargo fmt --all -- --check
	log "cargo clippy -D warnings"
	if [ -n "${RUSTC_WORKSPACE_WRAPPER:-}" ]; then
		cargo build --workspace --all-targets --keep-going
	else
		cargo clippy --workspace --all-targets -- -D warnings
	fi
	log "cargo test (unit tests)"
	cargo test --workspace
	# The benchmarks' own test suites (each benchmark run once on the pallet's mock, its
	# assertions included) and the try-runtime hooks: code behind these features that a default
	# build never compiles. Only the pallets and the SDK crates they use are built again with the
	# features, not the node.
	log "cargo test --features runtime-benchmarks,try-runtime (benchmarks and try-runtime, per pallet)"
	cargo test --features runtime-benchmarks,try-runtime \
		-p pallet-contributions -p pallet-tasks -p pallet-validation -p pallet-rewards -p pallet-governance -p pallet-inference \
		-p pallet-session-timing
	# The runtime's upgrade as `try-runtime on-runtime-upgrade` runs it: every migration's
	# checks and every pallet's try_state (natively: no WASM build).
	log "cargo test -p agora-runtime --features try-runtime (the upgrade's try-runtime checks)"
	SKIP_WASM_BUILD=1 cargo test -p agora-runtime --features try-runtime --test migrations
}

step_build() {
	log "cargo build -p agora-node"
	cargo build -p agora-node
}

# The runtime upgrade that the governance test enacts: this runtime with its spec_version
# raised by one, built the way a release is (the source is restored afterwards). It is built as
# part of the node (`cargo build -p agora-node`), so that every dependency keeps the node's
# features: `cargo build -p agora-runtime` alone resolves features differently and compiled
# binaryen and much of the SDK a second time (13 minutes on a fresh machine). The node is then
# rebuilt with the restored source; only the runtime and the node's final crate compile again.
#
# The result is kept beside the build, under a key of everything the WASM is built from (the
# committed runtime and pallets, the workspace manifest and lock file, the toolchains): a run on
# the same sources uses it instead of building the runtime twice more. A tree with uncommitted
# changes there is never cached.
upgrade_runtime_key() {
	[ -z "$(git status --porcelain -- runtime pallets Cargo.toml Cargo.lock .cargo 2>/dev/null)" ] || return 1
	{
		git rev-parse HEAD:runtime HEAD:pallets HEAD:Cargo.toml HEAD:Cargo.lock HEAD:.cargo
		rustc -V
		cargo -V
		echo "${WASM_BUILD_TOOLCHAIN:-}"
	} | sha256sum | cut -c1-32
}

step_upgrade_runtime() {
	log "build the upgrade runtime (spec_version + 1)"
	local lib=runtime/src/lib.rs current key="" cached=""
	current=$(sed -n 's/^\tspec_version: \([0-9]*\),$/\1/p' "$lib")
	[ -n "$current" ] || die "no spec_version in $lib"
	if key=$(upgrade_runtime_key); then
		cached="$CARGO_TARGET_DIR/upgrade-runtime/$key.wasm"
		if [ -s "$cached" ]; then
			cp "$cached" "$WORK/upgrade.wasm"
			export AGORA_UPGRADE_WASM="$WORK/upgrade.wasm"
			echo "spec_version $((current + 1)) runtime: $AGORA_UPGRADE_WASM (built earlier from these sources: $cached)"
			step_build
			return
		fi
	fi
	cp "$lib" "$WORK/lib.rs.orig"
	sed -i "s/^\tspec_version: $current,$/\tspec_version: $((current + 1)),/" "$lib"
	local status=0
	cargo build -p agora-node || status=$?
	# A debug build leaves the runtime uncompressed, and at 4.4 MB it no longer fits in a block's
	# 3.75 MB for normal transactions: compress it as a release build does (zstd behind the
	# sp-maybe-compressed-blob prefix, which the runtime's code loader recognizes).
	if [ "$status" -eq 0 ]; then
		{
			printf '\x52\xbc\x53\x76\x46\xdb\x8e\x05'
			zstd -q -19 -c "$CARGO_TARGET_DIR/debug/wbuild/agora-runtime/agora_runtime.wasm"
		} >"$WORK/upgrade.wasm" || status=$?
	fi
	cp "$WORK/lib.rs.orig" "$lib"
	[ "$status" -eq 0 ] || die "building the upgrade runtime"
	if [ -n "$cached" ]; then
		# Older builds' entries go: one runtime's worth of space is enough.
		rm -rf "$(dirname "$cached")"
		mkdir -p "$(dirname "$cached")"
		cp "$WORK/upgrade.wasm" "$cached.tmp" && mv "$cached.tmp" "$cached"
	fi
	export AGORA_UPGRADE_WASM="$WORK/upgrade.wasm"
	echo "spec_version $((current + 1)) runtime: $AGORA_UPGRADE_WASM"
	step_build
}

step_dev_chain() {
	log "agora-node --dev + @polkadot/api tests (chain, protocol, governance, runtime upgrade)"
	start_node "$WORK/dev.log" --dev --rpc-port 9944
	python3 scripts/fetch-metadata.py http://127.0.0.1:9944 "$WORK/metadata.scale"
	cmp -s "$WORK/metadata.scale" gpu-worker/metadata/agora.scale ||
		die "gpu-worker/metadata/agora.scale is stale: with 'agora-node --dev' running, run
       python3 scripts/fetch-metadata.py gpu-worker/metadata/agora.scale"
	echo "the worker's runtime metadata is current"
	(cd tests/js && npm test --silent -- chain.test.js protocol.test.js governance.test.js) || {
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
	echo "sealed and finalized 2 blocks on demand"
	# The inference market, every party played from @polkadot/api, on blocks sealed on demand
	# (a training round to list a model, then sessions, audits and attacks: seconds, not minutes).
	(cd tests/js && npm test --silent -- inference.test.js) || {
		tail -30 "$WORK/manual.log" >&2
		die "@polkadot/api inference tests against --sealing manual"
	}
	stop_node
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
	log "local testnet: 4 validators, one killed and restarted; a fifth joins by extrinsics, goes offline, leaves"
	AGORA_TESTNET_DIR="$WORK/local-testnet" AGORA_PORT_OFFSET=100 bash scripts/local-testnet.sh test --join
}

# in_background <name> <command…>: starts a step in the background (in this script's process
# group, so that whoever stops the run stops it too), its output in $WORK/<name>.log.
in_background() {
	local name=$1
	shift
	log "$name: starts in the background; log $WORK/$name.log"
	BACKGROUND_STARTED[$name]=$SECONDS
	"$@" >"$WORK/$name.log" 2>&1 &
	BACKGROUND_PID[$name]=$!
}

# wait_in_background <name>: waits for a step started by in_background, then shows its log;
# fails the run if the step failed.
wait_in_background() {
	local name=$1 status=0
	[ -n "${BACKGROUND_PID[$name]:-}" ] || return 0
	log "$name (run in the background; its log follows)"
	wait "${BACKGROUND_PID[$name]}" || status=$?
	unset "BACKGROUND_PID[$name]"
	cat "$WORK/$name.log"
	[ "$status" -eq 0 ] || die "$name failed (log above)"
	log "$name ran $((SECONDS - BACKGROUND_STARTED[$name])) s in the background"
}

step_worker() {
	if [ -f scripts/worker-test.sh ]; then
		log "gpu-worker"
		bash scripts/worker-test.sh
	fi
}

# The worker's tests need no node, and the node's network steps mostly wait for blocks: in a
# full run the worker's tests run beside them, at the lowest CPU priority so that the nodes'
# block production is not starved, and are waited for before the end-to-end steps, which run
# the worker binary they build. Nothing in the network steps runs that binary.
start_worker_tests_in_background() {
	[ -f scripts/worker-test.sh ] || return 0
	in_background gpu-worker nice -n 19 bash scripts/worker-test.sh
}

wait_for_worker_tests() {
	wait_in_background gpu-worker
}

# The local testnet's step only waits for its nodes (sessions, finality, a validator reported
# offline): in a full run it runs beside the --dev steps, on its own ports
# (AGORA_PORT_OFFSET=100; its nodes' p2p ports 30433-30437 meet no other step's), and is waited
# for before the end-to-end steps, which start networks of their own.
start_local_testnet_in_background() {
	in_background local-testnet step_local_testnet
}

wait_for_local_testnet() {
	wait_in_background local-testnet
}

step_e2e() {
	log "explorer: unit tests of its logic (detection rule, event folding)"
	(cd explorer && npm test --silent)
	log "end to end: a training job on a local network, checked with @polkadot/api and in the explorer"
	AGORA_TESTNET_DIR="$WORK/demo" AGORA_PORT_OFFSET=200 bash scripts/demo.sh --check
	log "end to end: a language model trained in DiLoCo rounds on a local network, its perplexity and outcome checked"
	AGORA_TESTNET_DIR="$WORK/demo-lm" AGORA_PORT_OFFSET=300 bash scripts/demo.sh --lm --check
}

step_faults() {
	log "faults: a worker killed mid-round and restarted, a node restarted"
	AGORA_TESTNET_DIR="$WORK/faults" AGORA_PORT_OFFSET=400 bash scripts/faults.sh
}

step_docker() {
	log "docker: images from the built binaries, the compose network up, checked, down"
	bash scripts/docker.sh check
}

case "${1:-all}" in
unit)
	step_setup
	use_clippy_driver
	step_unit
	;;
all)
	started=$SECONDS
	timed step_setup
	use_clippy_driver
	timed step_unit
	timed step_upgrade_runtime
	start_worker_tests_in_background
	start_local_testnet_in_background
	timed step_dev_chain
	timed step_manual_sealing
	timed step_bad_input
	timed wait_for_local_testnet
	timed wait_for_worker_tests
	timed step_e2e
	timed step_faults
	timed step_docker
	log "all tests passed in $((SECONDS - started)) s:${TIMINGS%,}"
	;;
*)
	for step in "$@"; do
		case "$step" in
		chain) step_upgrade_runtime && step_dev_chain ;;
		sealing) step_manual_sealing ;;
		bad-input) step_bad_input ;;
		testnet) step_local_testnet ;;
		worker) step_worker ;;
		e2e) step_e2e ;;
		faults) step_faults ;;
		docker) step_docker ;;
		*) die "usage: scripts/test.sh [all | unit | chain | sealing | bad-input | testnet | worker | e2e | faults | docker …]" ;;
		esac
	done
	;;
esac
