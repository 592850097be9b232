# apt_install PACKAGE…: installs the Debian packages that are missing (with sudo when not root),
# for the scripts that set a machine up: `source scripts/apt.sh`. The caller defines `log`, and
# SUDO (empty as root, else "sudo").

apt_install() {
	local missing=()
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "apt: installing ${missing[*]}"
		${SUDO:-} apt-get update -q
		DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
}
