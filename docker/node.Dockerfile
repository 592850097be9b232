# agora-node from a binary built outside the image ("injected", as polkadot-sdk's injected
# Dockerfiles do): scripts/docker.sh images puts the binary in the build context. The chain's
# database, keystore and network key live in the /data volume.
#
#   docker run -d --network host -v agora-data:/data agora-node --chain local --validator ...
ARG BASE=agora-base:bookworm
FROM ${BASE}
COPY agora-node /usr/local/bin/agora-node
USER agora
WORKDIR /data
VOLUME ["/data"]
EXPOSE 30333 9944 9615
# The RPC port the health check asks; set it with --rpc-port when that changes. Healthy means
# the node answers RPC: a node that is still syncing is alive, not broken.
ENV AGORA_RPC_PORT=9944
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
	CMD curl -sf --max-time 4 -H 'Content-Type: application/json' \
		-d '{"id":1,"jsonrpc":"2.0","method":"system_health","params":[]}' \
		"http://127.0.0.1:${AGORA_RPC_PORT}" >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/agora-node", "--base-path", "/data"]
CMD ["--dev"]
