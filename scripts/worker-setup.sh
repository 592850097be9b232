#!/usr/bin/env bash
# Creates the Python venv the GPU worker builds against: torch==2.13.0 (the libtorch tch 0.26
# expects) plus numpy for the Python side of the benchmarks. Idempotent: a second run only checks.
# Downloads only from PyPI and Debian's packages.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
cd "$AGORA_ROOT"

log() { printf '\033[1;34m[worker-setup]\033[0m %s\n' "$*"; }

# The English corpus language models are prepared from (`agora-worker prepare-text`): the prose
# of Python's documentation, 7.4 MB, PSF licence, which the repository does not carry.
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
apt_install python3.11-doc

TORCH_VERSION="2.13.0"
PY_PACKAGES=("torch==$TORCH_VERSION" "numpy")

python_bin="${PYTHON:-python3}"
if [ ! -x "$AGORA_VENV/bin/python" ]; then
	log "creating venv at $AGORA_VENV"
	"$python_bin" -m venv "$AGORA_VENV"
fi

installed_torch="$("$AGORA_VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [ "$installed_torch" != "$TORCH_VERSION" ] || ! "$AGORA_VENV/bin/python" -c 'import numpy' 2>/dev/null; then
	log "installing ${PY_PACKAGES[*]} (large download the first time)"
	nice -n 19 "$AGORA_VENV/bin/python" -m pip install --quiet "${PY_PACKAGES[@]}"
fi
log "torch $("$AGORA_VENV/bin/python" -c 'import torch; print(torch.__version__)') ready in $AGORA_VENV"
