#!/bin/sh
# Installs the Debian packages mqtls needs to build, test, benchmark and
# deploy-test (podman and the rest for deploy/test_live.sh), and two npm
# packages; does nothing when all of them are present. Called by `make deps`.
set -e

PKGS="gcc make clang libclang-rt-14-dev pkg-config
android-libboringssl-dev libevent-dev libcmocka-dev libjansson-dev libargon2-dev
openssl mosquitto mosquitto-clients python3 python3-paho-mqtt python3-asyncio-mqtt node-mqtt
sslscan testssl.sh procps python3-yaml shellcheck prometheus curl
haproxy nginx-light libnginx-mod-stream stunnel4 gnuplot-nox
podman runc buildah catatonit netavark aardvark-dns iptables podman-compose mmdebstrap
pebble certbot
chromium libnss3-tools fonts-dejavu-core"
# npm packages, installed globally: deploy/kubernetes/validate.py checks the
# Kubernetes manifests against kubernetes-types with the TypeScript compiler.
NPM_PKGS="typescript@5.9.3 kubernetes-types@1.30.0"
# npm packages installed into build/npm: the browser test of wss
# (tests/integration/test_browser.py) loads MQTT.js's browser bundle
# dist/mqtt.min.js, which Debian's node-mqtt does not ship.
NPM_LOCAL_PKGS="mqtt@5.16.0"
NPM_LOCAL_DIR="$(cd "$(dirname "$0")/.." && pwd)/build/npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# npm comes with the machine's Node.js; Debian's when there is none.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"

SUDO=""
if [ -n "$missing" ]; then
	echo "make deps: installing$missing"
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "make deps: need root (or sudo) to install:$missing" >&2; exit 1; }
		SUDO=sudo
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
	echo "make deps: done"
fi

npm_missing=""
npm_root=$(npm root -g)
for spec in $NPM_PKGS; do
	name=${spec%@*}
	have=$(node -p "require('$npm_root/$name/package.json').version" 2>/dev/null || true)
	[ "$have" = "${spec##*@}" ] || npm_missing="$npm_missing $spec"
done
if [ -n "$npm_missing" ]; then
	echo "make deps: npm install -g$npm_missing"
	[ "$(id -u)" = 0 ] || SUDO=sudo
	# shellcheck disable=SC2086
	$SUDO npm install -g --no-audit --no-fund --loglevel=error $npm_missing >/dev/null
fi

npm_missing=""
for spec in $NPM_LOCAL_PKGS; do
	name=${spec%@*}
	have=$(node -p "require('$NPM_LOCAL_DIR/node_modules/$name/package.json').version" 2>/dev/null || true)
	[ "$have" = "${spec##*@}" ] || npm_missing="$npm_missing $spec"
done
if [ -n "$npm_missing" ]; then
	echo "make deps: npm install --prefix build/npm$npm_missing"
	mkdir -p "$NPM_LOCAL_DIR"
	# shellcheck disable=SC2086
	npm install --prefix "$NPM_LOCAL_DIR" --no-audit --no-fund --loglevel=error $npm_missing >/dev/null
fi
