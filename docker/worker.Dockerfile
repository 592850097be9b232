# agora-worker from a binary built outside the image ("injected"): scripts/docker.sh images puts
# the binary, the libtorch libraries it loads (from the torch wheel it was built against), the
# example job specs and the bundled digits data in the build context. The daemon's state (p2p
# key, blob store, submitted updates, verdicts) lives in the /data volume; prepared datasets in
# /dataset.
#
#   docker run -d --network host -v worker-state:/data -e AGORA_SURI=... agora-worker worker
ARG BASE=agora-base:bookworm
FROM ${BASE}
COPY lib/ /usr/local/lib/agora/
COPY agora-worker /usr/local/bin/agora-worker
COPY jobs/ /usr/share/agora/jobs/
COPY digits.csv.gz /usr/share/agora/data/
RUN install -d -o agora -g agora /dataset
ENV LD_LIBRARY_PATH=/usr/local/lib/agora \
	AGORA_DATA_DIR=/usr/share/agora/data \
	AGORA_STATE_DIR=/data \
	AGORA_P2P_PORT=30400
USER agora
WORKDIR /data
VOLUME ["/data", "/dataset"]
EXPOSE 30400
# A daemon (worker, validator) is healthy while its libp2p listener accepts connections; the
# one-shot commands (prepare-data, data publish, job ...) run with --no-healthcheck.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
	CMD bash -c 'exec 3<>"/dev/tcp/127.0.0.1/${AGORA_P2P_PORT}"' || exit 1
ENTRYPOINT ["/usr/local/bin/agora-worker"]
CMD ["--help"]
