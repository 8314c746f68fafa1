#!/bin/sh
# Offline checks of deploy/ (no docker engine or cluster needed). TAP output.
#   sh deploy/check.sh          (after `make build/mqtls`; without it the
#                               checks that run mqtls are skipped)
# Checks: shell syntax (sh -n, shellcheck when installed); the systemd unit
# with systemd-analyze verify and its offline security score; the compose and
# Kubernetes YAML (parse + shape, via Debian's /usr/bin/python3 and PyYAML);
# that every package the Dockerfile installs exists in apt and the runtime
# stage provides every library build/mqtls loads; that the Dockerfile's build
# stage compiles from only the sources it copies; that every mqtls option in a
# config, command line or unit exists in `mqtls --help`, and that mqtls itself
# accepts each config file; that the broker configs start a real mosquitto.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
PY=/usr/bin/python3
MQTLS=$ROOT/build/mqtls

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { sed 's/^/# /' "$@"; }
# check NAME LOG COMMAND...: one TAP line; on failure LOG (a file) is shown.
check() {
	name=$1 log=$2
	shift 2
	if "$@" >"$log" 2>&1; then ok "$name"; else not_ok "$name"; diag "$log"; fi
}

T=$(mktemp -d /tmp/mqtls-deploy-check.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- what the other checks read out of the files -----------------------------

if ! "$PY" deploy/check_files.py extract "$T" >"$T/extract.log" 2>&1; then
	not_ok "deploy/check_files.py reads the deploy files"
	diag "$T/extract.log"
fi

# --- shell scripts -----------------------------------------------------------

scripts="deploy/check.sh deploy/test_certbot_hook.sh deploy/certbot/mqtls-reload.sh deploy/test_live.sh
deploy/podman/env.sh deploy/podman/base-image.sh deploy/podman/image.sh"
for f in $scripts; do
	check "sh -n $(basename "$f")" "$T/sh.log" sh -n "$f"
done
if command -v shellcheck >/dev/null 2>&1; then
	for f in $scripts; do
		check "shellcheck $(basename "$f")" "$T/shellcheck.log" shellcheck -s sh "$f"
	done
else
	skip "shellcheck on the scripts" "shellcheck not installed"
fi
check "certbot hook is executable" "$T/x.log" test -x deploy/certbot/mqtls-reload.sh

# --- systemd ------------------------------------------------------------------

unit=deploy/systemd/mqtls.service
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants ExecStart's binary to exist: point it at this build.
	exe=$MQTLS
	[ -x "$exe" ] || exe=/bin/true
	mkdir -p "$T/unit"
	sed "s#/usr/local/bin/mqtls#$exe#" "$unit" >"$T/unit/mqtls.service"
	check "systemd-analyze verify mqtls.service" "$T/verify.log" \
		systemd-analyze verify "$T/unit/mqtls.service"
	if systemd-analyze security --offline=yes "$T/unit/mqtls.service" >"$T/security.log" 2>&1; then
		score=$(sed -n 's/.*Overall exposure level for mqtls.service: \([0-9.]*\).*/\1/p' "$T/security.log")
		if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
			ok "systemd-analyze security: exposure $score (at most 2.0)"
		else
			not_ok "systemd-analyze security: exposure ${score:-?} (at most 2.0)"
			grep '✗' "$T/security.log" | diag
		fi
	else
		skip "systemd-analyze security --offline" "not supported by this systemd"
	fi
else
	skip "systemd-analyze verify mqtls.service" "systemd-analyze not installed"
fi
missing=""
# shellcheck disable=SC2016 # $MAINPID is systemd's, not ours
for d in 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'LimitNOFILE=65536' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'ReadOnlyPaths=.*/etc/letsencrypt' \
	'ExecStart=.*--config /etc/mqtls/mqtls.conf' 'User=mqtls' 'CapabilityBoundingSet='; do
	grep -q "^$d" "$unit" || missing="$missing '$d'"
done
if [ -z "$missing" ]; then ok "mqtls.service has the required hardening and reload lines"; else
	not_ok "mqtls.service has the required hardening and reload lines"
	echo "# missing:$missing"
fi
# CAP_NET_BIND_SERVICE only when a configured port needs it.
low=$(sed -n 's/^listen .*:\([0-9]*\)$/\1/p' deploy/mqtls.conf.example | awk '$1 < 1024' | head -n 1)
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
if { [ -n "$low" ] && [ "$caps" = CAP_NET_BIND_SERVICE ]; } || { [ -z "$low" ] && [ -z "$caps" ]; }; then
	ok "mqtls.service capabilities fit the listen ports (bounding set: '${caps}')"
else
	not_ok "mqtls.service capabilities fit the listen ports (bounding set: '${caps}')"
fi

# --- YAML (compose, Kubernetes) ----------------------------------------------

if "$PY" -c 'import yaml' 2>/dev/null; then
	"$PY" deploy/check_files.py structure >"$T/structure.log" 2>&1
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		"skip - "*) echo "ok $((n += 1)) - ${line#skip - }" ;;
		*) echo "# $line" ;;
		esac
	done <"$T/structure.log"
	grep -q . "$T/structure.log" || not_ok "deploy/check_files.py structure ran"
else
	skip "docker-compose.yml and kubernetes/sidecar.yaml parse as YAML" \
		"python3-yaml not installed for /usr/bin/python3"
fi

# --- Kubernetes manifests against the API schema ------------------------------

# deploy/kubernetes/validate.py: every document typed against kubernetes-types
# by the TypeScript compiler (npm packages from `make deps`), offline.
k8s_validate() { "$PY" deploy/kubernetes/validate.py "$@"; }
k8s_validate deploy/kubernetes/*.yaml >"$T/k8s.log" 2>&1
rc=$?
if [ $rc -eq 2 ]; then
	skip "Kubernetes manifests match the Kubernetes API schema" "$(head -n 1 "$T/k8s.log")"
else
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done <"$T/k8s.log"
	[ $rc -eq 0 ] || grep -q '^not ok' "$T/k8s.log" || not_ok "validate.py ran (exit $rc)"
	# The checker must catch a mistake: each of these copies has one.
	for bad in 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/ readOnlyRootFileSystem' \
		's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/ terminationGracePeriodSecond' \
		's/containerPort: 8883/containerport: 8883/ containerport' \
		's/externalTrafficPolicy:/externalTraficPolicy:/ externalTraficPolicy' \
		's/replicas: 1/replicas: "1"/ string'; do
		expr=${bad% *} word=${bad##* }
		sed "$expr" deploy/kubernetes/sidecar.yaml >"$T/bad.yaml"
		if cmp -s deploy/kubernetes/sidecar.yaml "$T/bad.yaml"; then
			not_ok "negative test '$expr' changes sidecar.yaml"
		elif ! k8s_validate "$T/bad.yaml" >"$T/bad.log" 2>&1 && grep -q "^#.*$word" "$T/bad.log"; then
			ok "the schema check rejects sidecar.yaml with $expr"
		else
			not_ok "the schema check rejects sidecar.yaml with $expr"
			diag "$T/bad.log"
		fi
	done
fi

# --- Dockerfile ----------------------------------------------------------------

df=deploy/Dockerfile
froms=$(grep -c '^FROM debian:12-slim' "$df")
check "Dockerfile: both stages are debian:12-slim" "$T/df.log" [ "$froms" -eq 2 ]
tail_stage=$(awk '/^FROM /{s=""} {s = s $0 "\n"} END{printf "%s", s}' "$df")
if echo "$tail_stage" | grep -qE '^USER [1-9][0-9]*(:[0-9]+)?$' &&
	echo "$tail_stage" | grep -q '^EXPOSE 8883$' &&
	echo "$tail_stage" | grep -q '^ENTRYPOINT \["/usr/local/bin/mqtls"' &&
	echo "$tail_stage" | grep -q '^CMD \["--config", "/etc/mqtls/mqtls.conf"\]' &&
	echo "$tail_stage" | grep -q '^HEALTHCHECK'; then
	ok "Dockerfile: runtime stage runs mqtls as a numeric non-root user, exposes 8883, has a health check"
else
	not_ok "Dockerfile: runtime stage runs mqtls as a numeric non-root user, exposes 8883, has a health check"
fi
if [ -s "$T/dockerfile.packages" ]; then
	while read -r stage pkg; do
		cand=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
		if [ -n "$cand" ] && [ "$cand" != "(none)" ]; then
			ok "apt has $pkg ($stage stage; $cand)"
		else
			not_ok "apt has $pkg ($stage stage)"
		fi
	done <"$T/dockerfile.packages"
else
	not_ok "Dockerfile installs packages with apt-get"
fi
missing=""
while read -r src; do [ -e "$src" ] || missing="$missing $src"; done <"$T/dockerfile.copies"
if [ -s "$T/dockerfile.copies" ] && [ -z "$missing" ]; then ok "Dockerfile: every COPY source exists"; else
	not_ok "Dockerfile: every COPY source exists"
	echo "# missing:$missing"
fi

if [ -x "$MQTLS" ]; then
	# Each shared library mqtls loads must come from a runtime-stage package
	# or one they depend on (libc6 and the like come with them).
	# shellcheck disable=SC2046 # one word per package
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances $(sed -n 's/^runtime //p' "$T/dockerfile.packages") 2>/dev/null |
		sed -n 's/^\([a-z0-9][^ :<>]*\).*/\1/p' | sort -u >"$T/runtime.closure"
	missing=""
	for lib in $(ldd "$MQTLS" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
		pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
		[ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
		grep -qx "$pkg" "$T/runtime.closure" || missing="$missing $(basename "$lib")(${pkg:-?})"
	done
	if [ -z "$missing" ]; then ok "Dockerfile: the runtime stage provides every library build/mqtls loads"; else
		not_ok "Dockerfile: the runtime stage provides every library build/mqtls loads"
		echo "# not provided:$missing"
	fi
else
	skip "Dockerfile: the runtime stage provides every library build/mqtls loads" "no build/mqtls"
fi

# The build stage, minus apt-get: its COPY sources in an empty directory and its make line.
if [ "${CHECK_BUILD:-1}" = 1 ] && [ -s "$T/dockerfile.build.sh" ]; then
	mkdir -p "$T/src"
	while read -r src; do
		case $src in deploy/*) ;; *) cp -r "$src" "$T/src/" ;; esac
	done <"$T/dockerfile.copies"
	if (cd "$T/src" && sh -e "$T/dockerfile.build.sh") >"$T/build.log" 2>&1; then
		ok "Dockerfile: the build stage compiles mqtls from only the sources it copies"
	else
		not_ok "Dockerfile: the build stage compiles mqtls from only the sources it copies"
		tail -n 20 "$T/build.log" | diag
	fi
else
	skip "Dockerfile: the build stage compiles mqtls from only the sources it copies" "CHECK_BUILD=0"
fi

# --- mqtls options ----------------------------------------------------------------

if [ -x "$MQTLS" ]; then
	"$MQTLS" --help | sed -n 's/^  --\([a-z][a-z-]*\) .*/\1/p' >"$T/help.options"
	for f in "$T"/options.*; do
		[ -e "$f" ] || continue
		src=${f##*/options.}
		unknown=$(sort -u "$f" | grep -vxF -f "$T/help.options" | tr '\n' ' ')
		if [ -s "$f" ] && [ -z "$unknown" ]; then
			ok "mqtls options used in $src exist in mqtls --help ($(sort -u "$f" | wc -l))"
		else
			not_ok "mqtls options used in $src exist in mqtls --help"
			echo "# unknown: ${unknown:-none found}"
		fi
	done

	# mqtls itself must accept each config file. The flags replace what cannot
	# exist here (certificate, listen address, broker, the ticket-key Secret);
	# everything else is the file's.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/key.pem" \
		-out "$T/cert.pem" -days 1 -subj /CN=localhost >/dev/null 2>&1
	openssl rand 80 | base64 -w0 >"$T/ticket-keys" && echo >>"$T/ticket-keys"
	for conf in deploy/mqtls.conf.example deploy/docker/mqtls.conf "$T/conf.k8s-mqtls.conf" \
		"$T/conf.k8s-replicas-mqtls.conf"; do
		[ -e "$conf" ] || continue
		name=${conf#"$T"/conf.}
		rm -f "$T/ready"
		tickets=
		grep -q '^ticket-keys ' "$conf" && tickets="--ticket-keys $T/ticket-keys"
		# shellcheck disable=SC2086 # $tickets is empty or two words
		"$MQTLS" --config "$conf" --listen 127.0.0.1:0 --cert "$T/cert.pem" --key "$T/key.pem" \
			--upstream 127.0.0.1:1 $tickets --ready-file "$T/ready" >"$T/run.log" 2>&1 &
		pid=$!
		i=0
		while [ ! -s "$T/ready" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.05
			i=$((i + 1))
		done
		ready=no
		[ -s "$T/ready" ] && ready=yes
		kill -TERM "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		if [ "$ready" = yes ] && [ "$rc" -eq 0 ]; then
			ok "mqtls accepts every line of $name"
		else
			not_ok "mqtls accepts every line of $name (exit $rc)"
			diag "$T/run.log"
		fi
	done
else
	skip "mqtls options in the configs exist in mqtls --help" "no build/mqtls (make build/mqtls)"
fi

# --- broker configs ----------------------------------------------------------------

if command -v mosquitto >/dev/null 2>&1; then
	for conf in deploy/mosquitto/mosquitto.conf "$T/conf.k8s-mosquitto.conf"; do
		[ -e "$conf" ] || continue
		name=${conf#"$T"/conf.}
		port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		mkdir -p "$T/mosq-data"
		sed -e "s/^listener 1883 .*/listener $port 127.0.0.1/" \
			-e "s#^persistence_location .*#persistence_location $T/mosq-data/#" "$conf" >"$T/mosq.conf"
		mosquitto -c "$T/mosq.conf" >"$T/mosq.log" 2>&1 &
		pid=$!
		pids="$pids $pid"
		i=0
		# shellcheck disable=SC2016 # $SYS is an MQTT topic
		until mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1 ||
			[ $i -ge 20 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if [ $i -lt 20 ]; then ok "mosquitto runs with $name"; else
			not_ok "mosquitto runs with $name"
			diag "$T/mosq.log"
		fi
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
else
	skip "mosquitto runs with the broker configs" "mosquitto not installed"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
