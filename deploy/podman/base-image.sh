#!/bin/sh
# Makes the debian:12-slim base image locally when podman does not have it:
# no image registry is reachable from the test machines, only Debian's
# archive. mmdebstrap builds a minbase bookworm from the host's own apt
# sources, so apt-get inside `podman build` reaches the same archive, and
# `podman import` tags it with the name the Dockerfile uses. Like the official
# slim image: merged /usr, no docs, man pages or locales, and the same apt
# settings (no package caches left in a layer, no translations). Done once per
# machine: an existing image is reused (remove it to rebuild:
# podman rmi docker.io/library/debian:12-slim).
#   sh deploy/podman/base-image.sh
# BASE_APT_SOURCES names another sources file (deb822 or one-line format).
set -eu
cd "$(dirname "$0")/../.." || exit 1
# shellcheck disable=SC1091 # checked on its own
. deploy/podman/env.sh

if podman image exists "$MQTLS_BASE_IMAGE"; then
	echo "base image $MQTLS_BASE_IMAGE: present (created $(podman image inspect --format '{{.Created}}' "$MQTLS_BASE_IMAGE" | cut -d. -f1))"
	exit 0
fi

sources=${BASE_APT_SOURCES:-}
if [ -z "$sources" ]; then
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		if [ -s "$f" ]; then sources=$f; break; fi
	done
fi
[ -n "$sources" ] || { echo "base-image.sh: no apt sources file found (set BASE_APT_SOURCES)" >&2; exit 1; }
command -v mmdebstrap >/dev/null 2>&1 || { echo "base-image.sh: mmdebstrap not installed (make deps)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/mqtls-base.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# The apt settings of the official images: no package caches left in a layer
# (a Dockerfile's `rm -rf /var/lib/apt/lists/*` then leaves nothing behind), no
# translations.
cat >"$tmp/docker-clean" <<'EOT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOT
echo 'Acquire::Languages "none";' >"$tmp/docker-no-languages"
start=$(date +%s)
echo "base image $MQTLS_BASE_IMAGE: building with mmdebstrap from $sources"
# shellcheck disable=SC2016 # "$1" in a hook is the chroot, for mmdebstrap's shell
mmdebstrap --variant=minbase --mode=auto --quiet \
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--customize-hook="copy-in $tmp/docker-clean $tmp/docker-no-languages /etc/apt/apt.conf.d" \
	--customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
	bookworm "$tmp/rootfs.tar" "$sources"
podman import --quiet --change 'CMD ["bash"]' \
	--message "debian bookworm minbase made by mmdebstrap (deploy/podman/base-image.sh)" \
	"$tmp/rootfs.tar" "$MQTLS_BASE_IMAGE" >/dev/null
echo "base image $MQTLS_BASE_IMAGE: made in $(($(date +%s) - start)) s, $(podman image inspect --format '{{.Size}}' "$MQTLS_BASE_IMAGE") bytes"
