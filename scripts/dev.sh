#!/usr/bin/env bash
# The main job, one command: set up the machine if needed, build agora-node and run a
# one-validator development chain that Polkadot.js Apps can open. Ctrl-C stops it.
#
#   scripts/dev.sh [extra agora-node arguments, e.g. --sealing manual]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AGORA_ROOT"

bash scripts/setup.sh
printf '\033[1;34m[dev]\033[0m building agora-node (the first build takes a while)\n'
cargo build -p agora-node

cat <<MSG

  Agora dev chain: RPC ws://127.0.0.1:9944
  Polkadot.js Apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A9944#/explorer
  Dev accounts (//Alice … //Ferdie) hold 1,000,000 AGR each. Ctrl-C stops the chain.

MSG
exec "$AGORA_NODE_BIN" --dev --rpc-port 9944 "$@"
