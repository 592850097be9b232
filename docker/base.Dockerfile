# agora-base: the base of Agora's images, from Debian's packages only. scripts/docker.sh builds
# ROOTFS with debootstrap (minbase) and imports it; this brings it up to date with the security
# suite and adds what both images need at run time.
ARG ROOTFS=agora-rootfs:bookworm
FROM ${ROOTFS}
ARG MIRROR=http://deb.debian.org/debian
# curl for the node's health check; everything else the binaries load is in minbase or is
# copied in with them.
RUN printf '%s\n' \
		"deb $MIRROR bookworm main" \
		"deb $MIRROR bookworm-updates main" \
		"deb ${MIRROR%/debian}/debian-security bookworm-security main" >/etc/apt/sources.list \
	&& apt-get update -q \
	&& DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -q \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates curl \
	&& apt-get clean \
	&& rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
	&& useradd --create-home --uid 1000 --user-group --home-dir /home/agora agora \
	&& install -d -o agora -g agora /data
ENV LANG=C.UTF-8
CMD ["/bin/bash"]
