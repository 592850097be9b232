#!/usr/bin/env python3
"""Fetches the runtime metadata (V15, SCALE) from a running agora-node.

Usage: fetch-metadata.py [RPC_URL] OUTPUT_FILE

The worker's chain client (gpu-worker/src/chain) is generated from this file by subxt; CI
compares it with the metadata of the freshly built runtime, so a stale copy fails the build.
"""
import json
import sys
import urllib.request

METADATA_VERSION = 15


def rpc(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.load(response)
    if "error" in reply:
        sys.exit(f"error: {method}: {reply['error']}")
    return reply["result"]


def decode_compact(data):
    """Returns (value, length of the encoding) of a SCALE compact integer."""
    mode = data[0] & 3
    if mode == 0:
        return data[0] >> 2, 1
    if mode == 1:
        return int.from_bytes(data[:2], "little") >> 2, 2
    if mode == 2:
        return int.from_bytes(data[:4], "little") >> 2, 4
    length = (data[0] >> 2) + 4
    return int.from_bytes(data[1 : 1 + length], "little"), 1 + length


def main():
    args = sys.argv[1:]
    url, output = (args[0], args[1]) if len(args) == 2 else ("http://127.0.0.1:9944", args[0])
    version = METADATA_VERSION.to_bytes(4, "little").hex()
    result = bytes.fromhex(rpc(url, "state_call", ["Metadata_metadata_at_version", "0x" + version])[2:])
    # Option<OpaqueMetadata>: 0x01, then the metadata as a length-prefixed byte vector.
    if not result or result[0] != 1:
        sys.exit(f"error: the runtime does not provide metadata V{METADATA_VERSION}")
    length, prefix = decode_compact(result[1:])
    metadata = result[1 + prefix :]
    if len(metadata) != length:
        sys.exit("error: truncated metadata")
    with open(output, "wb") as file:
        file.write(metadata)


if __name__ == "__main__":
    main()
