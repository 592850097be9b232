#!/usr/bin/env bash
# stage.sh BINARY DIR: copies BINARY without its debug information into DIR, and every shared
# library it loads from outside the base system (for the worker: libtorch and the few CUDA
# runtime libraries libtorch_cpu links, from the torch wheel) into DIR/lib. Used by
# scripts/docker.sh (injected binaries) and docker/Dockerfile (built from source) alike, so
# that both routes package the same files.
set -euo pipefail
bin=$1 dir=$2
[ -x "$bin" ] || {
	echo "stage.sh: no executable at $bin" >&2
	exit 1
}
mkdir -p "$dir/lib"
objcopy --strip-debug "$bin" "$dir/$(basename "$bin")"
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
	case "$(readlink -f "$lib")" in
	/lib/* | /usr/lib/*) ;;
	*) cp -L "$lib" "$dir/lib/" ;;
	esac
done
if ldd "$bin" | grep -q 'not found'; then
	echo "stage.sh: $bin needs libraries this machine lacks:" >&2
	ldd "$bin" | grep 'not found' >&2
	exit 1
fi
