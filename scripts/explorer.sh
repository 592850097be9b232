#!/usr/bin/env bash
# Agora Explorer: a web page that follows a node live (network, jobs and their round timeline,
# training curves, verification and slashes, participants, governance).
#
#   scripts/explorer.sh [--rpc ws://127.0.0.1:9944] [--port 8080] [--host 127.0.0.1]
#
# Installs its npm packages and builds it (explorer/dist) when needed, then serves it; open
# http://127.0.0.1:8080/ (another node: the page's "node" field, or ?rpc=ws://… in the address).
# With the worker built, the page's "download" link fetches a finalized job's model from the
# workers over libp2p, checked against the chain.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT/explorer"

if [ ! -d node_modules/@polkadot/api ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
# Rebuild when any source is newer than the build.
if [ ! -f dist/index.html ] || [ -n "$(find index.html src vite.config.js package-lock.json -newer dist/index.html -print -quit)" ]; then
	npx vite build --logLevel error
fi

worker_bin="${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}/debug/agora-worker"
extra=()
[ -x "$worker_bin" ] && extra+=(--worker-bin "$worker_bin")
exec node serve.js "${extra[@]}" "$@"
