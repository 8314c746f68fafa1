#!/bin/sh
# `make image`: the mqtls runtime image from deploy/Dockerfile with podman,
# on a locally made debian:12-slim (deploy/podman/base-image.sh). The same
# Dockerfile builds with `docker build -f deploy/Dockerfile .` elsewhere.
#   sh deploy/podman/image.sh [TAG]        (default localhost/mqtls:0.1.0)
set -eu
cd "$(dirname "$0")/../.." || exit 1
[ $# -ge 1 ] && MQTLS_IMAGE=$1
# shellcheck disable=SC1091 # checked on its own
. deploy/podman/env.sh
command -v podman >/dev/null 2>&1 || { echo "image.sh: podman not installed (make deps)" >&2; exit 1; }

sh deploy/podman/base-image.sh
start=$(date +%s)
# --pull=never: the base exists locally and no registry is reachable.
# --layers: an unchanged build stage is reused from the last build.
podman build --pull=never --layers --format docker -f deploy/Dockerfile -t "$MQTLS_IMAGE" .
# Earlier builds' images, untagged by this one, and the build stage's compile
# layers (labelled mqtls-build; its apt-get layer has no label and stays cached).
for title in mqtls mqtls-build; do
	podman image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null
done
size=$(podman image inspect --format '{{.Size}}' "$MQTLS_IMAGE")
echo "image $MQTLS_IMAGE: built in $(($(date +%s) - start)) s, $size bytes ($((size / 1048576)) MiB)"
