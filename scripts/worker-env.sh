# Environment for building and running the GPU worker (gpu-worker/): `source scripts/worker-env.sh`.
# It only sets variables; scripts/worker-setup.sh creates the venv they point at.
#
# tch links against the libtorch that ships inside the `torch` Python wheel (LIBTORCH_USE_PYTORCH=1),
# so there is one libtorch on the machine, shared by the Rust worker and the Python benchmark.

AGORA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AGORA_ROOT

# Outside the work tree and shared by every clone (like the cargo target directories): the
# torch wheel is 4.7 GiB with its CUDA libraries, too big to download again per clone.
export AGORA_VENV="${AGORA_VENV:-$HOME/.cache/agora-venv}"
# The worker is its own cargo workspace; its own target directory keeps its builds from waiting
# on the node's cargo lock (so a CARGO_TARGET_DIR from scripts/env.sh is not reused here).
export AGORA_WORKER_TARGET_DIR="${AGORA_WORKER_TARGET_DIR:-$HOME/.cache/agora-worker-target}"
export CARGO_TARGET_DIR="$AGORA_WORKER_TARGET_DIR"

export LIBTORCH_USE_PYTORCH=1
# torch-sys asks this python where torch lives.
export PATH="$AGORA_VENV/bin:$PATH"

if [ -x "$AGORA_VENV/bin/python" ]; then
	_agora_torch_lib="$("$AGORA_VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.util, os
spec = importlib.util.find_spec("torch")
print(os.path.join(os.path.dirname(spec.origin), "lib") if spec else "")
PY
)"
	if [ -n "$_agora_torch_lib" ]; then
		# The worker binary and its tests load libtorch*.so from the wheel at run time.
		export LD_LIBRARY_PATH="$_agora_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	fi
	unset _agora_torch_lib
fi
