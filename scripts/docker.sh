#!/usr/bin/env bash
# Agora's container images and its compose network, on a machine with nothing but Debian's
# packages (no public image registry is needed or used).
#
#   scripts/docker.sh images     build the images from the binaries this machine already built
#                                ("injected binaries", seconds): agora-node and agora-worker,
#                                on agora-base, a Debian bookworm image made here with
#                                debootstrap (a few minutes, once)
#   scripts/docker.sh release    build both images from source (docker/Dockerfile, multi-stage,
#                                release profile; an hour or more on a 2-core machine)
#   scripts/docker.sh up         start the compose network (docker/compose.yaml): 4 validator
#                                nodes, a data provider, 3 workers and 2 AI validators
#   scripts/docker.sh down       stop it and delete its volumes
#   scripts/docker.sh status     its containers, their health, each node's best/finalized block
#   scripts/docker.sh check      images, up, then check blocks, finality and registered workers
#                                with @polkadot/api (tests/js/network.test.js); down (CI)
#   scripts/docker.sh job        images, up, a training job submitted through compose, the
#                                end-to-end @polkadot/api check (tests/js/e2e.test.js); down
#
# The engine: Debian's docker.io and docker-compose are installed if missing, and dockerd is
# started if none runs, without a bridge or iptables rules (every container here uses host
# networking, so nothing leaves the loopback interface); a dockerd this script started is
# stopped when it ends. Environment: AGORA_PROFILE (debug or release: which build the images
# package; default debug), AGORA_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT"

PROFILE="${AGORA_PROFILE:-debug}"
MIRROR="${AGORA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
BASE_IMAGE="agora-base:$SUITE"
WORKER_TARGET="${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}"
CACHE="$HOME/.cache/agora-docker"
COMPOSE_FILE="$AGORA_ROOT/docker/compose.yaml"
PROJECT=agora
TAG="$(git -C "$AGORA_ROOT" rev-parse --short HEAD 2>/dev/null || echo local)"

log() { printf '\033[1;36m[docker]\033[0m %s\n' "$*"; }
die() {
	printf '\033[1;31m[docker] error:\033[0m %s\n' "$*" >&2
	exit 1
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

STARTED_DOCKERD=""
stop_engine() {
	if [ -n "$STARTED_DOCKERD" ] && kill -0 "$STARTED_DOCKERD" 2>/dev/null; then
		$SUDO kill -TERM "$STARTED_DOCKERD" 2>/dev/null || true
		for _ in $(seq 1 30); do
			kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
			sleep 1
		done
	fi
}

ensure_engine() {
	command -v apt-get >/dev/null || die "this script supports Debian/Ubuntu (apt-get) only"
	apt_install docker.io docker-compose debootstrap curl jq
	if docker info >/dev/null 2>&1; then
		return 0
	fi
	mkdir -p "$CACHE"
	log "starting dockerd (no bridge, no iptables; log $CACHE/dockerd.log)"
	$SUDO dockerd --bridge=none --iptables=false --ip6tables=false >"$CACHE/dockerd.log" 2>&1 &
	STARTED_DOCKERD=$!
	trap stop_engine EXIT
	local deadline=$((SECONDS + 60))
	until docker info >/dev/null 2>&1; do
		kill -0 "$STARTED_DOCKERD" 2>/dev/null || die "dockerd exited; see $CACHE/dockerd.log"
		[ $SECONDS -lt $deadline ] || die "dockerd did not answer in 60 s; see $CACHE/dockerd.log"
		sleep 1
	done
}

# agora-base: Debian's minimal system from debootstrap, imported as an image, then brought up
# to date with the security suite and given the `agora` user. The root file system is kept in
# the cache so that a machine whose engine lost its images imports it again in seconds.
build_base() {
	if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
		return 0
	fi
	local rootfs_tar="$CACHE/rootfs-$SUITE.tar"
	if [ ! -f "$rootfs_tar" ]; then
		local root
		root="$(mktemp -d -t agora-rootfs.XXXXXX)"
		log "debootstrap $SUITE (minbase) from $MIRROR"
		local started=$SECONDS
		$SUDO debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
			die "debootstrap failed; see $CACHE/debootstrap.log"
		$SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
		$SUDO tar -C "$root" --numeric-owner -cf "$rootfs_tar.tmp" .
		$SUDO rm -rf "$root"
		mv "$rootfs_tar.tmp" "$rootfs_tar"
		log "root file system ready in $((SECONDS - started)) s"
	fi
	docker import --change 'CMD ["/bin/bash"]' "$rootfs_tar" "agora-rootfs:$SUITE" >/dev/null
	docker build --network host --quiet -t "$BASE_IMAGE" \
		--build-arg ROOTFS="agora-rootfs:$SUITE" --build-arg MIRROR="$MIRROR" \
		-f docker/base.Dockerfile docker >/dev/null
	docker rmi "agora-rootfs:$SUITE" >/dev/null
	log "$BASE_IMAGE built"
}

# package <dir>: the runtime images from staged build contexts <dir>/node and <dir>/worker.
package() {
	for image in node worker; do
		docker build --network host --quiet -t "agora-$image:latest" -t "agora-$image:$TAG" \
			--build-arg BASE="$BASE_IMAGE" -f "docker/$image.Dockerfile" "$1/$image" >/dev/null
	done
	rm -rf "$1"
	log "image sizes:"
	docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
		grep -E "^agora-(base|node|worker):($SUITE|$TAG) " | sed 's/^/  /' || true
}

build_images() {
	build_base
	local context
	context="$(mktemp -d -t agora-image.XXXXXX)"
	local started=$SECONDS
	docker/stage.sh "$CARGO_TARGET_DIR/$PROFILE/agora-node" "$context/node"
	docker/stage.sh "$WORKER_TARGET/$PROFILE/agora-worker" "$context/worker"
	cp -r gpu-worker/jobs "$context/worker/jobs"
	cp gpu-worker/data/digits.csv.gz "$context/worker/"
	package "$context"
	log "agora-node:$TAG and agora-worker:$TAG ($PROFILE binaries) built in $((SECONDS - started)) s"
}

# Both binaries built from source in release mode inside the engine (docker/Dockerfile), then
# packaged like the injected ones.
build_release() {
	build_base
	local started=$SECONDS context
	rm -rf docker/build-ca
	mkdir -p docker/build-ca
	touch docker/build-ca/.keep
	cp /usr/local/share/ca-certificates/*.crt docker/build-ca/ 2>/dev/null || true
	log "building both binaries from source (docker/Dockerfile; log $CACHE/release.log)"
	docker build --network host -t "agora-binaries:$TAG" --build-arg BASE="$BASE_IMAGE" \
		--target binaries -f docker/Dockerfile . >"$CACHE/release.log" 2>&1 ||
		die "building from source failed; see $CACHE/release.log"
	log "built from source in $((SECONDS - started)) s"
	context="$(mktemp -d -t agora-image.XXXXXX)"
	docker run --rm --network none "agora-binaries:$TAG" | tar -C "$context" -x
	package "$context"
	log "release images built in $((SECONDS - started)) s"
}

compose() { docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

# rpc <port> <method> [params json]
rpc() {
	curl -sf --max-time 5 -H 'Content-Type: application/json' \
		-d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":${3:-[]}}" "http://127.0.0.1:$1"
}

finalized_number() {
	local hash
	hash=$(rpc "$1" chain_getFinalizedHead | jq -r '.result') || return 1
	rpc "$1" chain_getHeader "[\"$hash\"]" | jq -r '.result.number' | xargs printf '%d\n'
}

NODE_PORTS=(9944 9945 9946 9947)
NODE_NAMES=(alice bob charlie dave)
AI_SERVICES=(worker-charlie worker-dave worker-eve validator-ferdie validator-bob)

up() {
	for port in "${NODE_PORTS[@]}"; do
		! rpc "$port" system_health >/dev/null 2>&1 || die "something already serves RPC on port $port"
	done
	log "starting the compose network"
	compose up -d || {
		compose logs --no-color --tail 30 >&2
		die "the compose network did not start"
	}
	log "waiting for finality to advance"
	local deadline=$((SECONDS + 180))
	until [ "$(finalized_number 9944 2>/dev/null || echo 0)" -ge 2 ]; do
		[ $SECONDS -lt $deadline ] || {
			compose logs --tail 20 >&2
			die "no block finalized in 180 s"
		}
		sleep 2
	done
	log "waiting for the data provider and the 5 AI participants to register"
	deadline=$((SECONDS + 180))
	for service in "${AI_SERVICES[@]}"; do
		until compose logs --no-color "$service" 2>/dev/null | grep -q 'registered'; do
			[ $SECONDS -lt $deadline ] || {
				compose logs --tail 30 publish "$service" >&2
				die "$service did not register in 180 s"
			}
			sleep 2
		done
	done
	status
}

down() {
	log "stopping the compose network and deleting its volumes"
	compose --profile submit down --volumes --timeout 20
}

status() {
	docker ps --filter "label=com.docker.compose.project=$PROJECT" \
		--format '  {{.Names}}\t{{.Status}}' | sort
	for i in "${!NODE_PORTS[@]}"; do
		local header best finalized
		if header=$(rpc "${NODE_PORTS[$i]}" chain_getHeader 2>/dev/null); then
			best="#$(printf '%d' "$(jq -r '.result.number' <<<"$header")")"
			finalized="#$(finalized_number "${NODE_PORTS[$i]}" || echo "?")"
		else
			best="not answering"
			finalized="-"
		fi
		printf '  %-8s rpc %s  best %s  finalized %s\n' "${NODE_NAMES[$i]}" "${NODE_PORTS[$i]}" "$best" "$finalized"
	done
}

# The network's health from a third-party client: blocks and finality advance on every node,
# the 4 validators author, and the workers' and AI validators' registrations are on chain.
check() {
	(cd tests/js && AGORA_NETWORK_PORTS="${NODE_PORTS[*]}" npm test --silent -- network.test.js)
	log "waiting for the health checks of all ${#NODE_NAMES[@]} nodes and ${#AI_SERVICES[@]} AI daemons to pass"
	local deadline=$((SECONDS + 120)) expected=$((${#NODE_NAMES[@]} + ${#AI_SERVICES[@]})) healthy
	while :; do
		healthy=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --filter health=healthy -q | wc -l)
		[ "$healthy" -lt "$expected" ] || break
		[ $SECONDS -lt $deadline ] || {
			status >&2
			die "$healthy of $expected containers healthy after 120 s"
		}
		sleep 3
	done
	status
	log "PASS: $expected containers healthy; blocks, finality and registrations checked"
}

# A whole job through compose: the `submit` service creates it, follows it, downloads the final
# model over libp2p into $out and evaluates it; then the end-to-end check reads the chain.
run_job() {
	local out
	out="$(mktemp -d -t agora-compose-job.XXXXXX)"
	$SUDO chown 1000:1000 "$out"
	log "Alice submits the digits job through compose (model in $out)"
	local started=$SECONDS
	AGORA_JOB_OUT="$out" compose --profile submit run --rm submit | tee "$out/submit.log"
	local job
	job=$(sed -n 's/^job \([0-9]*\) created$/\1/p' "$out/submit.log" | head -1)
	[ -n "$job" ] || die "the submit service did not create a job"
	log "job $job finished in $((SECONDS - started)) s; checking it with @polkadot/api"
	(cd tests/js && AGORA_WS=ws://127.0.0.1:9944 AGORA_E2E_JOB="$job" \
		AGORA_E2E_MODEL="$out/final-model.safetensors" AGORA_E2E_CHEATER=none \
		npm test --silent -- e2e.test.js)
}

with_network() {
	ensure_engine
	build_images
	trap 'down; stop_engine' EXIT
	up
	"$@"
}

case "${1:-}" in
images)
	ensure_engine
	build_images
	;;
release)
	ensure_engine
	build_release
	;;
up)
	ensure_engine
	up
	# The engine must outlive this script for the network to keep running.
	STARTED_DOCKERD=""
	;;
down)
	ensure_engine
	down
	;;
status)
	ensure_engine
	status
	;;
check) with_network check ;;
job) with_network run_job ;;
*)
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
