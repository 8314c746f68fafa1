#!/bin/sh
# Runs the deploy files for real, with podman instead of Docker and a
# Kubernetes cluster, and pebble (Let's Encrypt's test ACME server) instead of
# Let's Encrypt. TAP output; `make test` runs it (suite deploy-live).
#   sh deploy/test_live.sh [image] [compose] [kube] [acme]    (default: all four)
# image    make image (deploy/podman/image.sh), then the image with host
#          networking in front of a mosquitto on loopback: TLS round trip,
#          podman healthcheck (/healthz), /readyz, SIGHUP and the file watcher
#          serving new certificates to new connections while held ones go on,
#          SIGTERM: /readyz 503, drain, exit 0
# compose  docker-compose.yml with podman-compose: broker on the internal network
#          only, both healthy, round trip from the host on 8883, down
# kube     kubernetes/sidecar.yaml with podman kube play: its probes, round trip
#          to 8883, the Secret's files rewritten as the kubelet does, the new
#          certificate served (mqtls's file watcher), held connections go on
# acme     pebble + certbot (real http-01 validation of `localhost`): mqtls in
#          the image serves the Let's Encrypt-style lineage to a client trusting
#          pebble's root; `certbot renew --force-renewal` runs
#          certbot/mqtls-reload.sh; new connections get the new serial while a
#          connection opened before keeps publishing
# What podman 4.3 cannot run as written is adapted in a copy (deploy/podman/
# adapt.py prints each change as a "# adapted:" line); the files stay as users
# get them. The broker image eclipse-mosquitto:2 is built locally from
# Debian's mosquitto when absent (deploy/podman/eclipse-mosquitto-standin.Containerfile).
# Needs root (rootful podman), `make deps` and build/mqtls (for nothing but the
# ACME part's fallback when podman cannot run). Parts that need podman are
# skipped, with the reason, only when podman cannot start a container at all.
set -u
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
PARTS=${*:-image compose kube acme}

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { sed 's/^/# /' "$@"; }
# check NAME COMMAND...: one TAP line for the command's status.
check() {
	_c_name=$1
	shift
	if "$@"; then ok "$_c_name"; else not_ok "$_c_name"; fi
}
now() { date +%s.%N | cut -c1-14; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_free() { "$PY" -c 'import socket, sys; s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1])))' "$1" 2>/dev/null; }
# wait_until SECONDS COMMAND...: polls every 0.2 s.
wait_until() {
	_w_end=$(($(date +%s) + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$_w_end" ] && return 1
		sleep 0.2
	done
}

# One run at a time per machine: the compose file and the pod publish the
# host's 8883, and podman names the pod's volumes after the manifest.
exec 9>/tmp/mqtls-deploy-live.lock
if ! flock -n 9; then
	echo "# another deploy/test_live.sh runs on this machine: waiting for it"
	flock -w 1200 9 || { echo "Bail out! the other run did not end within 20 minutes"; exit 1; }
fi

T=$(mktemp -d /tmp/mqtls-live.XXXXXX)
chmod 0755 "$T"
TAG=mqtls-live-$$
pids=""
containers=""
cleanup_cmds=""
cleanup() {
	exec 4>&- 5>&- 2>/dev/null
	for p in $pids; do kill "$p" 2>/dev/null; done
	for c in $containers; do podman rm -f -t 2 "$c" >/dev/null 2>&1; done
	eval "$cleanup_cmds"
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
trap '' PIPE

# --- certificates: a test CA and leaves with known serials ---------------------

mkdir -p "$T/ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca/ca.key" \
	-out "$T/ca/ca.pem" -days 2 -subj /CN=mqtls-live-test-ca \
	-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
	2>"$T/openssl.err" || { echo "Bail out! cannot make a test CA"; diag "$T/openssl.err"; exit 1; }
# issue NAME SERIAL: $T/NAME.fullchain.pem (leaf + CA) and $T/NAME.key for localhost.
issue() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.csr" -subj /CN=localhost 2>>"$T/openssl.err" &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:false\nextendedKeyUsage=serverAuth\n' >"$T/$1.ext" &&
		openssl x509 -req -in "$T/$1.csr" -CA "$T/ca/ca.pem" -CAkey "$T/ca/ca.key" -set_serial "0x$2" \
			-days 2 -extfile "$T/$1.ext" -out "$T/$1.pem" 2>>"$T/openssl.err" &&
		cat "$T/$1.pem" "$T/ca/ca.pem" >"$T/$1.fullchain.pem"
}
if ! { issue first 1A1A01 && issue second 2B2B02 && issue third 3C3C03; }; then
	echo "Bail out! cannot issue test certificates"
	diag "$T/openssl.err"
	exit 1
fi

# serial HOST:PORT CAFILE: the serial of the certificate a new TLS client is shown
# (empty when the chain does not verify against CAFILE for the name localhost).
serial() {
	openssl s_client -connect "$1" -servername localhost -CAfile "$2" -verify_return_error \
		-verify_hostname localhost </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null |
		sed 's/^serial=//'
}
serial_is() { [ "$(serial "$1" "$2")" = "$3" ]; }

# roundtrip PORT CAFILE LABEL: publish until a subscriber, both over TLS to
# localhost:PORT trusting CAFILE, receives the message. Its output is kept in
# $T/rt.LABEL for the diagnostics.
roundtrip() {
	_rt_msg="round trip $3 $$ $(date +%s)"
	mosquitto_sub -h localhost -p "$1" --cafile "$2" -t "mqtls-live/$3" -C 1 -W 15 -v \
		>"$T/rt.$3" 2>"$T/rt.$3.err" &
	_rt_sub=$!
	_rt_i=0
	while kill -0 "$_rt_sub" 2>/dev/null && [ $_rt_i -lt 40 ]; do
		mosquitto_pub -h localhost -p "$1" --cafile "$2" -t "mqtls-live/$3" -m "$_rt_msg" \
			2>>"$T/rt.$3.err"
		sleep 0.3
		_rt_i=$((_rt_i + 1))
	done
	wait "$_rt_sub"
	grep -qxF "mqtls-live/$3 $_rt_msg" "$T/rt.$3"
}

# held_open PORT CAFILE LABEL: a subscriber and a line-by-line publisher (one
# connection each, -d logs every CONNECT) opened now and kept across a reload.
held_open() {
	stdbuf -oL mosquitto_sub -d -h localhost -p "$1" --cafile "$2" -t "mqtls-live/held/$3" -v -i "held-sub-$3" \
		>"$T/held-sub.$3" 2>&1 &
	pids="$pids $!"
	rm -f "$T/held-fifo.$3"
	mkfifo "$T/held-fifo.$3"
	stdbuf -oL mosquitto_pub -d -l -h localhost -p "$1" --cafile "$2" -t "mqtls-live/held/$3" -i "held-pub-$3" \
		<"$T/held-fifo.$3" >"$T/held-pub.$3" 2>&1 &
	pids="$pids $!"
	exec 4>"$T/held-fifo.$3"
	wait_until 10 grep -q 'received SUBACK' "$T/held-sub.$3" &&
		wait_until 10 grep -q 'received CONNACK' "$T/held-pub.$3"
}
# held_send LABEL TEXT: publish TEXT on the held publisher; true once the held
# subscriber has it.
held_send() {
	echo "$2" >&4 && wait_until 10 grep -qxF "mqtls-live/held/$1 $2" "$T/held-sub.$1"
}
# held_intact LABEL: each held client connected exactly once (no reconnect).
held_intact() {
	[ "$(grep -c 'sending CONNECT' "$T/held-sub.$1")" -eq 1 ] &&
		[ "$(grep -c 'sending CONNECT' "$T/held-pub.$1")" -eq 1 ]
}
held_close() { exec 4>&-; }

# http_get HOST:PORT PATH: "CODE BODY" of a plain HTTP GET (the metrics endpoint).
http_get() {
	"$PY" -c 'import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://%s%s" % (sys.argv[1], sys.argv[2]), timeout=3)
    print(r.status, r.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())
except OSError as e:
    print(0, e)' "$1" "$2"
}
http_is() { [ "$(http_get "$1" "$2" | cut -d' ' -f1)" = "$3" ]; }
# reloads LOG: how many reloads mqtls logged.
reloads() { grep -c -E 'info reloaded (the configuration|certificates)' "$1"; }

# A mosquitto on loopback for the parts that put mqtls in front of a host broker.
BROKER_PORT=""
host_broker() {
	[ -n "$BROKER_PORT" ] && return 0
	BROKER_PORT=$(free_port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$BROKER_PORT" >"$T/mosquitto.conf"
	mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
	pids="$pids $!"
	# shellcheck disable=SC2016 # $SYS is an MQTT topic
	wait_until 10 mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -t '$SYS/broker/version' -C 1 -W 1
}

# --- podman --------------------------------------------------------------------

# shellcheck disable=SC1091 # checked on its own
. deploy/podman/env.sh
PODMAN_OK=no
PODMAN_WHY=""
if [ "$(id -u)" != 0 ]; then
	PODMAN_WHY="not root (the tests use rootful podman)"
elif ! command -v podman >/dev/null 2>&1; then
	PODMAN_WHY="podman not installed (make deps)"
elif ! podman info >"$T/podman-info.log" 2>&1; then
	PODMAN_WHY="podman info fails: $(grep -m 1 -i error "$T/podman-info.log")"
else
	PODMAN_OK=yes
fi
echo "# podman: ${PODMAN_WHY:-$(podman --version), $(podman info --format '{{.Host.OCIRuntime.Name}}, {{.Host.NetworkBackend}}, cgroups {{.Host.CgroupsVersion}}' 2>/dev/null)}; CONTAINERS_CONF=$CONTAINERS_CONF"

BASE_READY=no
# podman_base: the base image exists (made once per machine) and a container
# runs on it; otherwise PODMAN_OK=no with the reason.
podman_base() {
	[ "$PODMAN_OK" = yes ] || return 1
	[ "$BASE_READY" = yes ] && return 0
	_b_start=$(now)
	if ! sh deploy/podman/base-image.sh >"$T/base.log" 2>&1; then
		not_ok "the debian:12-slim base image is made locally with mmdebstrap"
		diag "$T/base.log"
		PODMAN_OK=no
		PODMAN_WHY="no base image"
		return 1
	fi
	echo "# $(tail -n 1 "$T/base.log") ($(elapsed "$_b_start") s)"
	if ! podman run --rm --network none "$MQTLS_BASE_IMAGE" true >"$T/run.log" 2>&1; then
		PODMAN_OK=no
		PODMAN_WHY="podman cannot start a container: $(grep -v 'level=' "$T/run.log" | head -n 1)"
		return 1
	fi
	BASE_READY=yes
}

# broker_image: eclipse-mosquitto:2, the broker image the compose file and the
# manifest name; a local stand-in from Debian's mosquitto when absent.
BROKER_IMAGE=docker.io/library/eclipse-mosquitto:2
broker_image() {
	podman image exists "$BROKER_IMAGE" && return 0
	_b_start=$(now)
	if podman build --pull=never --layers -f deploy/podman/eclipse-mosquitto-standin.Containerfile \
		-t "$BROKER_IMAGE" deploy/podman >"$T/standin.log" 2>&1; then
		echo "# built the stand-in $BROKER_IMAGE from Debian's mosquitto ($(elapsed "$_b_start") s)"
	else
		diag "$T/standin.log"
		return 1
	fi
}

# container_pid NAME: mqtls's pid on the host.
container_pid() { podman inspect --format '{{.State.Pid}}' "$1" 2>/dev/null; }
healthy() { podman healthcheck run "$1" >/dev/null 2>&1; }
# logs_clean LOG: no error lines (podman's own systemd-timer noise is not ours).
mqtls_log_errors() { grep -v 'level=' "$1" | grep -E ' (error|warn) ' || true; }

# ==============================================================================
part_image() {
	echo "# --- image: make image, then the container with host networking"
	_p_start=$(now)
	if ! podman_base; then
		skip "the image part" "$PODMAN_WHY"
		return
	fi
	_s=$(now)
	if sh deploy/podman/image.sh "$MQTLS_IMAGE" >"$T/image.log" 2>&1; then
		ok "make image builds $MQTLS_IMAGE from deploy/Dockerfile ($(elapsed "$_s") s)"
	else
		not_ok "make image builds $MQTLS_IMAGE from deploy/Dockerfile"
		tail -n 30 "$T/image.log" | diag
		return
	fi
	size=$(podman image inspect --format '{{.Size}}' "$MQTLS_IMAGE")
	base=$(podman image inspect --format '{{.Size}}' "$MQTLS_BASE_IMAGE")
	echo "# image size: $size bytes ($((size / 1048576)) MiB; debian:12-slim base $((base / 1048576)) MiB, mqtls and its libraries $(((size - base) / 1024)) KiB)"
	cfg=$(podman image inspect --format '{{.Config.User}} {{json .Config.Healthcheck}}' "$MQTLS_IMAGE")
	echo "# image user and health check: $cfg"
	case $cfg in
	"10001:10001 "*/healthz*) ok "the image runs as uid 10001 and keeps its HEALTHCHECK on /healthz (docker format)" ;;
	*) not_ok "the image runs as uid 10001 and keeps its HEALTHCHECK on /healthz (docker format)" ;;
	esac
	if podman run --rm --network none --entrypoint sh "$MQTLS_IMAGE" -c \
		'! dpkg -l | grep -E "^ii +(gcc|make|libc6-dev|[^ ]*-dev)[ :]"' >"$T/dev.log" 2>&1; then
		ok "the runtime image holds no compiler or -dev package"
	else
		not_ok "the runtime image holds no compiler or -dev package"
		diag "$T/dev.log"
	fi

	if ! host_broker; then
		not_ok "a mosquitto on loopback for the image"
		diag "$T/mosquitto.log"
		return
	fi
	mkdir -p "$T/img-certs"
	cp "$T/first.fullchain.pem" "$T/img-certs/fullchain.pem"
	cp "$T/first.key" "$T/img-certs/privkey.pem"
	chown 10001 "$T/img-certs/privkey.pem"
	chmod 0600 "$T/img-certs/privkey.pem"
	port=$(free_port)
	maddr=127.0.0.1:$(free_port)
	name=$TAG-image
	containers="$containers $name"
	_s=$(now)
	# As deploy/README.md's `docker run`, with the host's network instead of -p
	# (so the metrics endpoint moves off 9883 with MQTLS_METRICS, which the
	# health check reads too) and a 3 s drain instead of 30.
	if ! podman run -d --name "$name" --network host -v "$T/img-certs:/etc/mqtls/tls:ro" \
		-e "MQTLS_METRICS=$maddr" "$MQTLS_IMAGE" --config /etc/mqtls/mqtls.conf \
		--listen "127.0.0.1:$port" --upstream "127.0.0.1:$BROKER_PORT" --workers 2 \
		--drain-timeout 3 >"$T/img-run.log" 2>&1; then
		not_ok "the image starts with host networking"
		grep -v 'level=' "$T/img-run.log" | diag
		return
	fi
	if wait_until 15 healthy "$name"; then
		ok "podman healthcheck run: healthy, i.e. /healthz answered 200 ($(elapsed "$_s") s after podman run)"
	else
		not_ok "podman healthcheck run: healthy"
		podman logs "$name" 2>&1 | grep -v 'level=' | diag
		return
	fi
	r=$(http_get "$maddr" /readyz)
	check "/readyz: $r" [ "${r%% *}" = 200 ]
	_s=$(now)
	if roundtrip "$port" "$T/ca/ca.pem" image; then
		ok "TLS round trip through the container with mosquitto_pub/sub ($(elapsed "$_s") s)"
		echo "# mosquitto_sub -h localhost -p $port --cafile ca.pem -t mqtls-live/image -v printed:"
		diag "$T/rt.image"
	else
		not_ok "TLS round trip through the container with mosquitto_pub/sub"
		diag "$T/rt.image.err"
	fi
	check "a new connection is served the first certificate (serial 1A1A01)" \
		serial_is "127.0.0.1:$port" "$T/ca/ca.pem" 1A1A01
	check "a subscriber and a publisher are connected before the reloads" \
		held_open "$port" "$T/ca/ca.pem" image
	held_send image before-reload >/dev/null

	# The signal reaches mqtls through podman: a reload with nothing changed.
	podman logs "$name" >"$T/img-container.log" 2>&1
	r0=$(reloads "$T/img-container.log")
	podman kill --signal HUP "$name" >/dev/null
	if wait_until 5 sh -c "[ \$(podman logs '$name' 2>&1 | grep -c -E 'info reloaded (the configuration|certificates)') -gt $r0 ]"; then
		ok "podman kill --signal HUP makes mqtls reload"
	else
		not_ok "podman kill --signal HUP makes mqtls reload"
		podman logs "$name" 2>&1 | grep -v 'level=' | tail -n 5 | diag
	fi
	# replace_certs NAME: new files under the mounted directory, renamed over the
	# old ones (a new inode, as cp -L or certbot do).
	replace_certs() {
		cp "$T/$1.fullchain.pem" "$T/img-certs/fullchain.pem.new"
		cp "$T/$1.key" "$T/img-certs/privkey.pem.new"
		chown 10001 "$T/img-certs/privkey.pem.new"
		chmod 0600 "$T/img-certs/privkey.pem.new"
		mv "$T/img-certs/fullchain.pem.new" "$T/img-certs/fullchain.pem"
		mv "$T/img-certs/privkey.pem.new" "$T/img-certs/privkey.pem"
	}
	# mqtls also watches the files it loaded and reloads 1 s after they stop
	# changing; SIGHUP right after the replacement is served sooner than that.
	replace_certs second
	_s=$(now)
	podman kill --signal HUP "$name" >/dev/null
	if wait_until 10 serial_is "127.0.0.1:$port" "$T/ca/ca.pem" 2B2B02; then
		ok "certificate files replaced + podman kill --signal HUP: a new connection is served serial 2B2B02 ($(elapsed "$_s") s)"
	else
		not_ok "certificate files replaced + podman kill --signal HUP: a new connection is served serial 2B2B02"
		podman logs "$name" 2>&1 | grep -v 'level=' | tail -n 5 | diag
	fi
	sleep 2 # let the watcher's own reload of that change pass
	replace_certs third
	_s=$(now)
	if wait_until 10 serial_is "127.0.0.1:$port" "$T/ca/ca.pem" 3C3C03; then
		ok "certificate files replaced, no signal: mqtls's file watcher serves serial 3C3C03 ($(elapsed "$_s") s)"
	else
		not_ok "certificate files replaced, no signal: mqtls's file watcher serves serial 3C3C03"
		podman logs "$name" 2>&1 | grep -v 'level=' | tail -n 5 | diag
	fi
	if held_send image after-reload && held_intact image; then
		ok "the connections opened before the reloads still carry messages (no reconnect)"
	else
		not_ok "the connections opened before the reloads still carry messages (no reconnect)"
		diag "$T/held-sub.image" "$T/held-pub.image"
	fi
	check "the container is still the same process (reloaded, not restarted)" \
		[ "$(podman inspect --format '{{.RestartCount}} {{.State.Status}}' "$name")" = "0 running" ]

	# SIGTERM with the held connections open: /readyz turns 503 at once, the
	# sessions may go on for the drain time (3 s here), then mqtls closes them
	# and exits 0.
	_s=$(now)
	podman kill --signal TERM "$name" >/dev/null
	wait_until 3 http_is "$maddr" /readyz 503
	r=$(http_get "$maddr" /readyz)
	check "during the drain /readyz answers: $r" [ "$r" = "503 draining" ]
	if held_send image during-drain; then
		ok "during the drain the open connections still carry messages"
	else
		not_ok "during the drain the open connections still carry messages"
	fi
	rc=$(timeout 20 podman wait "$name" 2>/dev/null)
	t=$(elapsed "$_s")
	if [ "$rc" = 0 ] && awk -v t="$t" 'BEGIN { exit !(t >= 2.5 && t <= 6) }'; then
		ok "SIGTERM with live connections: exit status 0 after $t s (--drain-timeout 3)"
	else
		not_ok "SIGTERM with live connections: exit status 0 after the drain time, 3 s (status ${rc:-?} after $t s)"
	fi
	held_close
	podman logs "$name" >"$T/img-container.log" 2>&1
	errs=$(mqtls_log_errors "$T/img-container.log")
	if [ -z "$errs" ] && [ "$(reloads "$T/img-container.log")" -ge 3 ] &&
		! grep -q 'reload failed' "$T/img-container.log"; then
		ok "the container log has the reloads, no failed one, no error or warning"
	else
		not_ok "the container log has the reloads, no failed one, no error or warning"
	fi
	echo "# container log:"
	grep -v 'level=' "$T/img-container.log" | diag
	echo "# image part: $(elapsed "$_p_start") s"
}

# ==============================================================================
part_compose() {
	echo "# --- compose: deploy/docker-compose.yml with podman-compose"
	_p_start=$(now)
	if ! podman_base; then
		skip "the compose part" "$PODMAN_WHY"
		return
	fi
	if ! command -v podman-compose >/dev/null 2>&1; then
		not_ok "podman-compose is installed (make deps)"
		return
	fi
	if ! podman image exists "$MQTLS_IMAGE" && ! sh deploy/podman/image.sh "$MQTLS_IMAGE" >"$T/image.log" 2>&1; then
		not_ok "make image for the compose file"
		tail -n 20 "$T/image.log" | diag
		return
	fi
	if ! broker_image; then
		not_ok "the broker image $BROKER_IMAGE (stand-in built from Debian's mosquitto)"
		return
	fi
	if ! port_free 8883; then
		not_ok "port 8883 is free for the compose file's published port"
		return
	fi
	d=$T/compose/deploy
	mkdir -p "$d/certs"
	cp -r deploy/mosquitto "$d/"
	cp "$T/first.fullchain.pem" "$d/certs/fullchain.pem"
	cp "$T/first.key" "$d/certs/privkey.pem"
	chown 10001 "$d/certs/privkey.pem"   # as deploy/README.md says
	chmod 0600 "$d/certs/privkey.pem"
	"$PY" deploy/podman/adapt.py compose deploy/docker-compose.yml "$d/docker-compose.yml" \
		"$MQTLS_NOFILE" "$MQTLS_NPROC" || { not_ok "adapt docker-compose.yml for podman-compose"; return; }
	project=$TAG
	pc() { (cd "$d" && podman-compose -p "$project" -f docker-compose.yml "$@"); }
	cleanup_cmds="$cleanup_cmds
(cd '$d' && podman-compose -p '$project' -f docker-compose.yml down) >/dev/null 2>&1; podman network rm -f ${project}_broker ${project}_public >/dev/null 2>&1; podman volume rm -f ${project}_mosquitto-data >/dev/null 2>&1"
	_s=$(now)
	if pc up -d >"$T/compose-up.log" 2>&1 && [ "$(podman ps --filter "label=io.podman.compose.project=$project" -q | wc -l)" -eq 2 ]; then
		ok "podman-compose up -d starts mosquitto and mqtls ($(elapsed "$_s") s)"
	else
		not_ok "podman-compose up -d starts mosquitto and mqtls"
		grep -v 'level=' "$T/compose-up.log" | tail -n 20 | diag
		return
	fi
	mosq=${project}_mosquitto_1
	mqtls=${project}_mqtls_1
	ports=$(podman port "$mosq" 2>&1)
	nets=$(podman inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$mosq")
	internal=yes
	for net in $nets; do
		[ "$(podman network inspect --format '{{.Internal}}' "$net")" = true ] || internal=no
	done
	if [ -z "$ports" ] && [ -n "$nets" ] && [ "$internal" = yes ]; then
		ok "the broker publishes no port and is only on internal networks ($nets)"
	else
		not_ok "the broker publishes no port and is only on internal networks (ports: '$ports', networks: $nets)"
	fi
	if port_free 1883 && ! mosquitto_sub -h 127.0.0.1 -p 1883 -t x -C 1 -W 2 >/dev/null 2>&1; then
		ok "plain MQTT on the host's 1883 does not answer"
	else
		skip "plain MQTT on the host's 1883 does not answer" "something else listens on 1883 here"
	fi
	if wait_until 20 healthy "$mosq"; then
		ok "the broker's compose healthcheck passes (mosquitto_sub inside the container)"
	else
		not_ok "the broker's compose healthcheck passes (mosquitto_sub inside the container)"
		podman logs "$mosq" 2>&1 | grep -v 'level=' | tail -n 10 | diag
	fi
	if wait_until 20 healthy "$mqtls"; then
		ok "mqtls is healthy (the image's HEALTHCHECK)"
	else
		not_ok "mqtls is healthy (the image's HEALTHCHECK)"
		podman logs "$mqtls" 2>&1 | grep -v 'level=' | tail -n 10 | diag
	fi
	_s=$(now)
	if roundtrip 8883 "$T/ca/ca.pem" compose; then
		ok "TLS round trip from the host to localhost:8883, through mqtls to mosquitto by name ($(elapsed "$_s") s)"
		diag "$T/rt.compose"
	else
		not_ok "TLS round trip from the host to localhost:8883, through mqtls to mosquitto by name"
		diag "$T/rt.compose.err"
		podman logs "$mqtls" 2>&1 | grep -v 'level=' | tail -n 10 | diag
	fi
	_s=$(now)
	if pc stop >"$T/compose-stop.log" 2>&1 &&
		[ "$(podman inspect --format '{{.State.ExitCode}}' "$mqtls")" = 0 ] &&
		podman logs "$mqtls" 2>&1 | grep -q 'info signal 15'; then
		ok "podman-compose stop: mqtls exits 0 on SIGTERM ($(elapsed "$_s") s for both)"
	else
		not_ok "podman-compose stop: mqtls exits 0 on SIGTERM"
		grep -v 'level=' "$T/compose-stop.log" | tail -n 10 | diag
		podman logs "$mqtls" 2>&1 | grep -v 'level=' | tail -n 5 | diag
	fi
	_s=$(now)
	if pc down >"$T/compose-down.log" 2>&1 && [ -z "$(podman ps -a --filter "label=io.podman.compose.project=$project" -q)" ]; then
		ok "podman-compose down removes both containers ($(elapsed "$_s") s)"
	else
		not_ok "podman-compose down removes both containers"
		grep -v 'level=' "$T/compose-down.log" | tail -n 10 | diag
	fi
	echo "# compose part: $(elapsed "$_p_start") s"
}

# ==============================================================================
# rotate_secret DIR CERT KEY: what the kubelet does to a Secret volume: a new
# timestamped directory, ..data swapped to it with a rename, tls.crt/tls.key
# symlinks into ..data; modes from the manifest (defaultMode 0440, fsGroup 10001).
rotate_secret() {
	_v="..$(date +%Y_%m_%d_%H_%M_%S.%N)"
	mkdir "$1/$_v" && cp "$2" "$1/$_v/tls.crt" && cp "$3" "$1/$_v/tls.key" &&
		chgrp 10001 "$1/$_v/tls.crt" "$1/$_v/tls.key" && chmod 0440 "$1/$_v/tls.crt" "$1/$_v/tls.key" &&
		ln -s "$_v" "$1/..data_tmp" && mv -T "$1/..data_tmp" "$1/..data" &&
		for _f in tls.crt tls.key; do
			[ -L "$1/$_f" ] && continue
			ln -s "..data/$_f" "$1/$_f.tmp" && mv -T "$1/$_f.tmp" "$1/$_f" || return 1
		done
}

part_kube() {
	echo "# --- kube: deploy/kubernetes/sidecar.yaml with podman kube play"
	_p_start=$(now)
	if ! podman_base; then
		skip "the Kubernetes part" "$PODMAN_WHY"
		return
	fi
	manifest=deploy/kubernetes/sidecar.yaml
	image=$(sed -n 's/^ *image: \(.*mqtls.*\)$/\1/p' "$manifest" | head -n 1)
	if ! podman image exists "$MQTLS_IMAGE" && ! sh deploy/podman/image.sh "$MQTLS_IMAGE" >"$T/image.log" 2>&1; then
		not_ok "make image for the manifest"
		tail -n 20 "$T/image.log" | diag
		return
	fi
	if ! broker_image; then
		not_ok "the broker image $BROKER_IMAGE (stand-in built from Debian's mosquitto)"
		return
	fi
	if ! port_free 8883; then
		not_ok "port 8883 is free for the pod's published port"
		return
	fi
	# The manifest's image name, as a registry would serve it.
	podman tag "$MQTLS_IMAGE" "$image"
	cleanup_cmds="$cleanup_cmds
podman untag '$image' >/dev/null 2>&1"
	"$PY" deploy/podman/adapt.py kube "$manifest" "$T/play.yaml" "$T/configmaps" ||
		{ not_ok "adapt sidecar.yaml for podman kube play"; return; }
	secret=$(sed -n 's/^ *secretName: //p' "$manifest" | head -n 1)
	vols=$("$PY" -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        for v in d["spec"]["template"]["spec"]["volumes"]:
            print(v["configMap"]["name"] if "configMap" in v else v["secret"]["secretName"] if "secret" in v else v["name"])
' "$T/play.yaml")
	# Leftovers of an interrupted run (podman names volumes after the manifest's).
	podman kube down "$T/play.yaml" >/dev/null 2>&1
	for v in $vols; do podman volume rm -f "$v" >/dev/null 2>&1; done
	podman secret rm "$secret" >/dev/null 2>&1
	cleanup_cmds="$cleanup_cmds
podman kube down '$T/play.yaml' >/dev/null 2>&1; for v in $(echo "$vols" | tr '\n' ' '); do podman volume rm -f \$v >/dev/null 2>&1; done; podman secret rm '$secret' >/dev/null 2>&1"
	if ! { "$PY" deploy/podman/adapt.py secret "$secret" "$T/first.fullchain.pem" "$T/first.key" "$T/secret.yaml" &&
		podman secret create "$secret" "$T/secret.yaml" >/dev/null; }; then
		not_ok "podman secret create $secret"
		return
	fi
	_s=$(now)
	if podman kube play "$T/play.yaml" >"$T/play.log" 2>&1; then
		pod=$(podman pod ps --format '{{.Name}}' --filter name=mqtt | head -n 1)
		ok "podman kube play runs the Deployment (pod $pod: $(podman ps --filter "pod=$pod" --format '{{.Names}}' | tr '\n' ' ')) ($(elapsed "$_s") s)"
	else
		not_ok "podman kube play runs the Deployment"
		grep -v 'level=' "$T/play.log" | tail -n 20 | diag
		return
	fi
	mqtls=$pod-mqtls
	running=0
	for c in "$pod-broker" "$mqtls"; do
		[ "$(podman inspect --format '{{.State.Status}}' "$c" 2>/dev/null)" = running ] && running=$((running + 1))
	done
	check "the broker and mqtls containers run ($running of 2)" [ "$running" -eq 2 ]
	# kube play keeps no image HEALTHCHECK and runs no probe: run the
	# manifest's probes as the kubelet would, until they pass.
	wait_until 20 "$PY" deploy/podman/adapt.py probes "$manifest" "$pod"
	"$PY" deploy/podman/adapt.py probes "$manifest" "$pod" >"$T/probes.log" 2>&1
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		*) echo "# $line" ;;
		esac
	done <"$T/probes.log"
	grep -q '^ok - ' "$T/probes.log" || not_ok "the manifest's readiness probes ran"
	_s=$(now)
	if roundtrip 8883 "$T/ca/ca.pem" kube; then
		ok "TLS round trip from the host to the published 8883, to the broker on the pod's 127.0.0.1:1883 ($(elapsed "$_s") s)"
		diag "$T/rt.kube"
	else
		not_ok "TLS round trip from the host to the published 8883"
		diag "$T/rt.kube.err"
		podman logs "$mqtls" 2>&1 | grep -v 'level=' | tail -n 10 | diag
	fi
	# podman publishes every containerPort of the pod; a cluster publishes
	# what the Service names (8883). Plain MQTT must be in neither.
	published=$(podman port "$mqtls" 2>/dev/null | tr '\n' ' ')
	case $published in
	*1883/*) not_ok "the broker's plain 1883 is not published (published: $published)" ;;
	*8883/*) ok "the broker's plain 1883 is not published (published: $published)" ;;
	*) not_ok "the broker's plain 1883 is not published (published: '$published')" ;;
	esac
	check "a new connection is served the Secret's certificate (serial 1A1A01)" \
		serial_is "127.0.0.1:8883" "$T/ca/ca.pem" 1A1A01
	check "a subscriber and a publisher are connected before the Secret changes" \
		held_open 8883 "$T/ca/ca.pem" kube
	held_send kube before-rotation >/dev/null

	mp=$(podman volume inspect --format '{{.Mountpoint}}' "$secret")
	_s=$(now)
	# First the layout the kubelet would have made at the start (same files),
	# then the rotation: one rename swaps both files.
	if rotate_secret "$mp" "$T/first.fullchain.pem" "$T/first.key" &&
		rotate_secret "$mp" "$T/second.fullchain.pem" "$T/second.key"; then
		ok "the Secret's files are rewritten as the kubelet does (..data swapped by rename)"
	else
		not_ok "the Secret's files are rewritten as the kubelet does"
	fi
	# mqtls watches the files it loaded (through the ..data symlink).
	if wait_until 30 serial_is "127.0.0.1:8883" "$T/ca/ca.pem" 2B2B02; then
		ok "mqtls's file watcher serves the new certificate (serial 2B2B02, $(elapsed "$_s") s after the rewrite)"
	else
		not_ok "mqtls's file watcher serves the new certificate (serial 2B2B02)"
	fi
	podman logs "$mqtls" >"$T/kube-mqtls.log" 2>&1
	grep -E 'file changed|reload' "$T/kube-mqtls.log" | diag
	if held_send kube after-rotation && held_intact kube; then
		ok "the connections opened before the rotation still carry messages (no reconnect)"
	else
		not_ok "the connections opened before the rotation still carry messages (no reconnect)"
		diag "$T/held-sub.kube" "$T/held-pub.kube"
	fi
	held_close
	errs=$(mqtls_log_errors "$T/kube-mqtls.log")
	if [ -z "$errs" ] && [ "$(reloads "$T/kube-mqtls.log")" -ge 1 ] && ! grep -q 'reload failed' "$T/kube-mqtls.log"; then
		ok "mqtls reloaded, no failed reload, no error or warning"
	else
		not_ok "mqtls reloaded, no failed reload, no error or warning"
		grep -v 'level=' "$T/kube-mqtls.log" | diag
	fi
	_s=$(now)
	if podman kube down "$T/play.yaml" >"$T/down.log" 2>&1; then
		ok "podman kube down ($(elapsed "$_s") s)"
	else
		not_ok "podman kube down"
		grep -v 'level=' "$T/down.log" | diag
	fi
	echo "# kube part: $(elapsed "$_p_start") s"
}

# ==============================================================================
part_acme() {
	echo "# --- acme: pebble, certbot, mqtls, the deploy hook"
	_p_start=$(now)
	for tool in pebble certbot; do
		if ! command -v $tool >/dev/null 2>&1; then
			not_ok "$tool is installed (make deps)"
			return
		fi
	done
	a=$T/acme
	mkdir -p "$a"
	# pebble's own HTTPS certificate, trusted by certbot through REQUESTS_CA_BUNDLE.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$a/api.key" \
		-out "$a/api.pem" -days 2 -subj /CN=pebble-api -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
		2>>"$T/openssl.err"
	api=$(free_port) mgmt=$(free_port) http=$(free_port)
	cat >"$a/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$api", "managementListenAddress": "127.0.0.1:$mgmt",
  "certificate": "$a/api.pem", "privateKey": "$a/api.key", "httpPort": $http, "tlsPort": $(free_port),
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
	# Real http-01 validation: pebble fetches the challenge from certbot's
	# standalone server on localhost:$http. No random waits, no nonce rejects.
	PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$a/pebble.json" >"$a/pebble.log" 2>&1 &
	pids="$pids $!"
	if ! wait_until 15 grep -q 'ACME directory available' "$a/pebble.log"; then
		not_ok "pebble starts on loopback"
		diag "$a/pebble.log"
		return
	fi
	"$PY" -c 'import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
sys.stdout.write(urllib.request.urlopen(sys.argv[1], context=ctx).read().decode())' \
		"https://127.0.0.1:$mgmt/roots/0" "$a/api.pem" >"$a/root.pem" 2>"$a/root.err"
	if openssl x509 -in "$a/root.pem" -noout 2>/dev/null; then
		ok "pebble runs on loopback; its root: $(openssl x509 -in "$a/root.pem" -noout -subject | sed 's/^subject=//')"
	else
		not_ok "pebble's root certificate can be fetched"
		diag "$a/root.err"
		return
	fi
	le=$a/letsencrypt
	cb() {
		REQUESTS_CA_BUNDLE=$a/api.pem certbot --non-interactive --config-dir "$le" \
			--work-dir "$a/work" --logs-dir "$a/logs" "$@"
	}
	_s=$(now)
	if cb certonly --standalone --agree-tos --register-unsafely-without-email \
		--server "https://127.0.0.1:$api/dir" --http-01-port "$http" --http-01-address 127.0.0.1 \
		--key-type ecdsa -d localhost >"$a/certonly.log" 2>&1 && [ -s "$le/live/localhost/fullchain.pem" ]; then
		s1=$(openssl x509 -in "$le/live/localhost/cert.pem" -noout -serial | sed 's/^serial=//')
		ok "certbot certonly --standalone gets a certificate for localhost from pebble (serial $s1, $(elapsed "$_s") s)"
		grep -E 'Attempting to validate|set VALID' "$a/pebble.log" | sort -u -k3 | head -n 2 | diag
	else
		not_ok "certbot certonly --standalone gets a certificate for localhost from pebble"
		tail -n 20 "$a/certonly.log" | diag
		tail -n 10 "$a/pebble.log" | diag
		return
	fi
	# The hook, installed as deploy/README.md says.
	mkdir -p "$le/renewal-hooks/deploy"
	install -m 0755 deploy/certbot/mqtls-reload.sh "$le/renewal-hooks/deploy/"

	host_broker || { not_ok "a mosquitto on loopback"; return; }
	port=$(free_port)
	if [ "$PODMAN_OK" = yes ] && podman_base && { podman image exists "$MQTLS_IMAGE" ||
		sh deploy/podman/image.sh "$MQTLS_IMAGE" >"$T/image.log" 2>&1; }; then
		# mqtls in the image (uid 10001) reading /etc/letsencrypt: give its group
		# the key once, as deploy/systemd/mqtls.service's header says; certbot
		# keeps the group and mode on renewal.
		chgrp 10001 "$le/live" "$le/archive" && chmod 0710 "$le/live" "$le/archive" &&
			chgrp 10001 "$le/archive/localhost/privkey1.pem" && chmod 0640 "$le/archive/localhost/privkey1.pem"
		name=$TAG-acme
		containers="$containers $name"
		podman run -d --name "$name" --network host -v "$le:/etc/letsencrypt:ro" "$MQTLS_IMAGE" \
			--config /etc/mqtls/mqtls.conf --listen "127.0.0.1:$port" --upstream "127.0.0.1:$BROKER_PORT" \
			--cert /etc/letsencrypt/live/localhost/fullchain.pem \
			--key /etc/letsencrypt/live/localhost/privkey.pem --workers 2 >"$a/run.log" 2>&1
		wait_until 15 healthy "$name"
		pid=$(container_pid "$name")
		where="in the image, /etc/letsencrypt mounted read-only"
		mqtls_log() { podman logs "$name" 2>&1 | grep -v 'level='; }
	else
		echo "# podman unavailable ($PODMAN_WHY): mqtls runs from build/mqtls"
		build/mqtls --listen "127.0.0.1:$port" --upstream "127.0.0.1:$BROKER_PORT" \
			--cert "$le/live/localhost/fullchain.pem" --key "$le/live/localhost/privkey.pem" \
			--workers 2 --ready-file "$a/ready" 2>"$a/mqtls.log" &
		pid=$!
		pids="$pids $pid"
		wait_until 10 test -s "$a/ready"
		where="build/mqtls on the host"
		mqtls_log() { cat "$a/mqtls.log"; }
	fi
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mqtls ]; then
		ok "mqtls serves the certbot lineage ($where)"
	else
		not_ok "mqtls serves the certbot lineage ($where)"
		mqtls_log | diag
		grep -v 'level=' "$a/run.log" 2>/dev/null | diag
		return
	fi
	check "a client trusting only pebble's root verifies the served chain for localhost (serial $s1)" \
		serial_is "127.0.0.1:$port" "$a/root.pem" "$s1"
	if roundtrip "$port" "$a/root.pem" acme; then
		ok "TLS round trip with mosquitto_pub/sub trusting pebble's root"
		diag "$T/rt.acme"
	else
		not_ok "TLS round trip with mosquitto_pub/sub trusting pebble's root"
		diag "$T/rt.acme.err"
	fi
	check "a subscriber and a publisher are connected before the renewal" \
		held_open "$port" "$a/root.pem" acme
	held_send acme before-renewal >/dev/null

	_s=$(now)
	# certbot runs renewal-hooks/deploy/* with RENEWED_LINEAGE; the hook finds
	# mqtls by MQTLS_PID and checks the pair at the host's paths. Without a
	# terminal `certbot renew` first sleeps up to 8 minutes (spreading the load
	# on Let's Encrypt); the cron job and timer keep that, the test skips it.
	if MQTLS_CERT=$le/live/localhost/fullchain.pem MQTLS_KEY=$le/live/localhost/privkey.pem \
		MQTLS_CONFIG=/nonexistent MQTLS_PID=$pid \
		cb renew --force-renewal --no-random-sleep-on-renew >"$a/renew.log" 2>&1; then
		s2=$(openssl x509 -in "$le/live/localhost/cert.pem" -noout -serial | sed 's/^serial=//')
		ok "certbot renew --force-renewal gets a new certificate (serial $s2, $(elapsed "$_s") s)"
	else
		not_ok "certbot renew --force-renewal gets a new certificate"
		tail -n 20 "$a/renew.log" | diag
		return
	fi
	if grep -q "mqtls-reload: certificate serial $s2 .*SIGHUP sent to mqtls pid $pid" "$a/renew.log" "$a/logs/letsencrypt.log" 2>/dev/null; then
		ok "certbot ran the deploy hook, which checked the new pair and sent SIGHUP"
	else
		not_ok "certbot ran the deploy hook, which checked the new pair and sent SIGHUP"
		grep -i -E 'hook|mqtls' "$a/renew.log" "$a/logs/letsencrypt.log" | tail -n 10 | diag
	fi
	grep 'mqtls-reload' "$a/renew.log" | diag
	if wait_until 10 serial_is "127.0.0.1:$port" "$a/root.pem" "$s2"; then
		ok "a new connection is served the renewed certificate (serial $s2)"
	else
		not_ok "a new connection is served the renewed certificate (serial $s2)"
		mqtls_log | tail -n 5 | diag
	fi
	if held_send acme after-renewal && held_intact acme; then
		ok "the connections opened before the renewal keep publishing (no reconnect)"
	else
		not_ok "the connections opened before the renewal keep publishing (no reconnect)"
		diag "$T/held-sub.acme" "$T/held-pub.acme"
	fi
	held_close
	for k in "$le"/archive/localhost/privkey*.pem; do
		echo "# key $(stat -c '%n: owner %U, group %g, mode %a' "$k")"
	done
	mqtls_log >"$a/mqtls-all.log"
	errs=$(mqtls_log_errors "$a/mqtls-all.log")
	# The hook's SIGHUP and the watcher may each reload.
	if [ -z "$errs" ] && [ "$(reloads "$a/mqtls-all.log")" -ge 1 ] && ! grep -q 'reload failed' "$a/mqtls-all.log"; then
		ok "mqtls reloaded, no failed reload, no error or warning"
	else
		not_ok "mqtls reloaded, no failed reload, no error or warning"
		diag "$a/mqtls-all.log"
	fi
	echo "# acme part: $(elapsed "$_p_start") s"
}

start=$(now)
for part in $PARTS; do
	case $part in
	image) part_image ;;
	compose) part_compose ;;
	kube) part_kube ;;
	acme) part_acme ;;
	*) echo "Bail out! unknown part $part (image compose kube acme)"; exit 2 ;;
	esac
done
echo "# deploy-live: $(elapsed "$start") s"
echo "1..$n"
[ "$failed" -eq 0 ]
