#!/bin/sh
# Installs the Debian packages mqtls needs to build, test and benchmark, and
# does nothing when all of them are present. Called by `make deps`.
set -e

PKGS="gcc make clang libclang-rt-14-dev pkg-config
android-libboringssl-dev libevent-dev libcmocka-dev libjansson-dev libargon2-dev
openssl mosquitto mosquitto-clients python3 python3-paho-mqtt python3-asyncio-mqtt node-mqtt
sslscan testssl.sh procps python3-yaml shellcheck
haproxy nginx-light libnginx-mod-stream stunnel4 gnuplot-nox"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "make deps: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "make deps: need root (or sudo) to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "make deps: done"
