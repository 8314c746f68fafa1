#!/usr/bin/env bash
# Integration test of mqtls-bench: a real mosquitto (plain, loopback) with
# build/mqtls in front of it, and short bounded runs of every scenario,
# checked from the --json reports. Prints TAP ("ok N - name").
#   bash bench/tests/run.sh
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/build/mqtls-bench
MQTLS=$ROOT/build/mqtls
PY=/usr/bin/python3
T=$(mktemp -d /tmp/mqtls-bench-test.XXXXXX)
PIDS=()
n=0 failed=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
	[ -n "${2:-}" ] && sed 's/^/#   /' "$2" | tail -25
	echo "#   mqtls log:"; tail -5 "$T/mqtls.log" | sed 's/^/#   /'
	echo "#   broker log:"; tail -5 "$T/mosquitto.log" | sed 's/^/#   /'
}

# wait_for SECONDS CMD...: polls CMD every 50 ms, bounded.
wait_for() {
	local deadline=$(( $(date +%s) + $1 )); shift
	until "$@"; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# check NAME JSON PYTHON-EXPRESSION: the expression sees the report as `r`.
check() {
	local name=$1 json=$2 expr=$3 log
	log=${json%.json}.log
	if [ -f "$json" ] && $PY -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$json"; then
		ok "$name"
	else
		not_ok "$name" "$log"
	fi
}

# bench NAME ARGS...: one bounded run, report in $T/NAME.json, output in $T/NAME.log.
bench() {
	local name=$1; shift
	timeout 60 "$BENCH" "$@" -q --json "$T/$name.json" > "$T/$name.log" 2>&1
}

echo "1..18"
if [ ! -x "$BENCH" ] || [ ! -x "$MQTLS" ]; then
	echo "Bail out! build/mqtls and build/mqtls-bench are needed (make all)"
	exit 1
fi

# Test PKI: an ECDSA P-256 CA and server certificate, and a second CA that
# signed nothing we serve.
(
	cd "$T" || exit 1
	for k in ca other server; do openssl ecparam -name prime256v1 -genkey -noout -out $k.key; done
	openssl req -x509 -new -key ca.key -subj /CN=bench-test-ca -days 2 -out ca.pem
	openssl req -x509 -new -key other.key -subj /CN=other-ca -days 2 -out other.pem
	openssl req -new -key server.key -subj /CN=localhost -out server.csr
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile ext -out server.pem
) > "$T/pki.log" 2>&1 || { echo "Bail out! openssl could not make the test PKI"; cat "$T/pki.log"; exit 1; }

BPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$T/mosquitto.conf" <<CONF
listener $BPORT 127.0.0.1
allow_anonymous true
max_connections -1
max_queued_messages 0
max_inflight_messages 0
set_tcp_nodelay true
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
log_type subscribe
CONF
# Line-buffered, so the readiness line shows up at once.
stdbuf -oL mosquitto -c "$T/mosquitto.conf" > "$T/mosquitto.log" 2>&1 &
PIDS+=($!)
if ! wait_for 10 grep -q "listen socket on port $BPORT" "$T/mosquitto.log"; then
	echo "Bail out! mosquitto did not start"; cat "$T/mosquitto.log"; exit 1
fi
"$MQTLS" --listen 127.0.0.1:0 --cert "$T/server.pem" --key "$T/server.key" \
	--upstream "127.0.0.1:$BPORT" --ready-file "$T/ready" --log-level warn > "$T/mqtls.log" 2>&1 &
PIDS+=($!)
if ! wait_for 10 test -s "$T/ready"; then
	echo "Bail out! mqtls did not start"; cat "$T/mqtls.log"; exit 1
fi
PORT=$(head -1 "$T/ready"); PORT=${PORT##*:}
TLS=(--port "$PORT" --cafile "$T/ca.pem" --sni localhost)

bench conn311 conn "${TLS[@]}" --count 200 --concurrency 100 --mqtt 3.1.1
check "conn: 200 TLS connections with MQTT 3.1.1 all reach CONNACK" "$T/conn311.json" \
	'r["connected"] == 200 and r["failed"] == 0 and r["latency"]["tls_handshake"]["count"] == 200'

bench conn5 conn "${TLS[@]}" --count 200 --concurrency 50 --mqtt 5 --churn --tls-resume
check "conn: 200 churning MQTT 5 connections resume TLS sessions" "$T/conn5.json" \
	'r["connected"] == 200 and r["failed"] == 0 and r["tls_resumed"] > 0'

bench wrongca conn --port "$PORT" --cafile "$T/other.pem" --sni localhost --count 5 --timeout 5
check "conn: a server certificate from another CA is counted as tls_verify" "$T/wrongca.json" \
	'r["connected"] == 0 and r["errors"]["tls_verify"] == 5'

bench idle idle "${TLS[@]}" --count 50 --keepalive 1 --duration 2.5
check "idle: 50 clients stay connected and every one gets PINGRESPs" "$T/idle.json" \
	'r["connected"] == 50 and r["failed"] == 0 and r["pings"] >= 100'

for q in 0 1 2; do
	bench pubsub$q pubsub "${TLS[@]}" --count 4 --qos $q --messages 2000 --payload 200 --threads 2
	check "pubsub QoS $q: 8000 messages through mqtls with no loss and no duplicates" "$T/pubsub$q.json" \
		'r["failed"] == 0 and r["messages"]["published"] == 8000 and r["messages"]["received"] == 8000 and r["messages"]["lost"] == 0 and r["messages"]["duplicates"] == 0 and r["latency"]["end_to_end"]["count"] == 8000'
done

bench pubsub_plain pubsub --no-tls --port "$BPORT" --count 2 --qos 1 --messages 500 --msg-rate 1000 --payload 64 --mqtt 5
check "pubsub over plain MQTT 5 at a set rate keeps order" "$T/pubsub_plain.json" \
	'r["messages"]["lost"] == 0 and r["messages"]["reordered"] == 0 and r["messages"]["publish_s"] >= 0.4'

# sub + pub: a separate subscriber sees what a separate publisher sends,
# and SIGINT ends the subscriber with its summary.
timeout 30 "$BENCH" sub "${TLS[@]}" --count 2 -i subs- --topic 'split/#' --qos 1 --duration 20 -q \
	--json "$T/sub.json" > "$T/sub.log" 2>&1 &
SUB=$!
PIDS+=($SUB)
# Ready once the broker logged both subscriptions.
wait_for 10 test "$(grep -c 'subs-[01] 1 split/#' "$T/mosquitto.log")" -ge 2
bench pub pub "${TLS[@]}" --count 2 -i pubs- --topic 'split/%i' --qos 1 --messages 100
# Every subscriber has everything once it has read the last sequence number:
# the pub run ends only after its QoS 1 acks, and mosquitto forwards first.
sleep 0.5
kill -INT $SUB
wait_for 10 test -s "$T/sub.json"
check "pub: two publishers get every QoS 1 message acknowledged" "$T/pub.json" \
	'r["messages"]["published"] == 200 and r["messages"]["acknowledged"] == 200 and r["failed"] == 0'
check "sub: SIGINT ends the run with a report of every message received" "$T/sub.json" \
	'r["interrupted"] and r["messages"]["received"] == 400 and r["failed"] == 0'

# start_mqtls NAME ARGS...: one more mqtls in front of the broker, with
# extra options; its port goes in $APORT, its log in $T/NAME.log. Refusals
# are what the tests expect, so they pass --auth-fail-delay 10 (ms).
start_mqtls() {
	local name=$1; shift
	"$MQTLS" --listen 127.0.0.1:0 --cert "$T/server.pem" --key "$T/server.key" \
		--upstream "127.0.0.1:$BPORT" --ready-file "$T/$name.ready" --log-level warn "$@" \
		> "$T/$name.log" 2>&1 &
	PIDS+=($!)
	wait_for 10 test -s "$T/$name.ready" || return 1
	APORT=$(head -1 "$T/$name.ready"); APORT=${APORT##*:}
}

# JWT: mqtls checks HS256 tokens against a secret file; mqtls-bench mints
# one per client from the same file, or from another secret.
head -c 48 /dev/urandom | base64 > "$T/jwt.secret"
head -c 48 /dev/urandom | base64 > "$T/jwt-wrong.secret"
if start_mqtls mqtls-jwt --jwt-keys "$T/jwt.secret" --auth-fail-delay 10; then
	bench jwt conn --port "$APORT" --cafile "$T/ca.pem" --sni localhost --count 50 \
		--jwt-key "$T/jwt.secret"
	check "conn --jwt-key: 50 clients with minted HS256 tokens are admitted" "$T/jwt.json" \
		'r["connected"] == 50 and r["failed"] == 0 and r["jwt_minted"] == 50'
	bench jwt_wrong conn --port "$APORT" --cafile "$T/ca.pem" --sni localhost --count 5 \
		--jwt-key "$T/jwt-wrong.secret"
	check "conn --jwt-key: tokens from the wrong key are refused with CONNACK code 4" "$T/jwt_wrong.json" \
		'r["connected"] == 0 and r["errors"]["connack_refused"] == 5 and r["errors"]["connack_codes"] == {"4": 5}'
else
	not_ok "mqtls with --jwt-keys starts" "$T/mqtls-jwt.log"
	not_ok "(skipped) wrong JWT key"
fi

# mTLS: a directory of three client certificates whose CNs are the client
# ids, used round-robin; mqtls requires the id to match the certificate.
mkdir -p "$T/clients"
(
	cd "$T/clients" || exit 1
	for i in 0 1 2; do
		openssl ecparam -name prime256v1 -genkey -noout -out bench-$i.key
		openssl req -new -key bench-$i.key -subj /CN=bench-$i -out bench-$i.csr
		openssl x509 -req -in bench-$i.csr -CA ../ca.pem -CAkey ../ca.key -CAcreateserial \
			-days 2 -out bench-$i.pem
		rm bench-$i.csr
	done
) > "$T/clients.log" 2>&1 || not_ok "openssl makes three client certificates" "$T/clients.log"
if start_mqtls mqtls-mtls --client-ca "$T/ca.pem" --client-cert required \
	--identity-as-username cn --require-clientid-match --auth-fail-delay 10; then
	bench mtls conn --port "$APORT" --cafile "$T/ca.pem" --sni localhost --count 3 \
		-i bench- --cert "$T/clients" --key "$T/clients"
	check "conn --cert DIR: three client certificates are used round-robin" "$T/mtls.json" \
		'r["connected"] == 3 and r["failed"] == 0'
	bench mtls_shift conn --port "$APORT" --cafile "$T/ca.pem" --sni localhost --count 3 \
		-i other- --cert "$T/clients" --key "$T/clients"
	check "conn --cert DIR: client ids that do not match the certificates are refused" "$T/mtls_shift.json" \
		'r["connected"] == 0 and r["errors"]["connack_refused"] == 3'
else
	not_ok "mqtls with --client-cert required starts" "$T/mqtls-mtls.log"
	not_ok "(skipped) client id mismatch"
fi

# MQTT over secure WebSockets (--ws): mqtls-bench upgrades after TLS and
# frames its writes; mqtls unframes them for the broker.
WSPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if start_mqtls mqtls-ws --ws-listen "127.0.0.1:$WSPORT"; then
	WSS=(--port "$WSPORT" --cafile "$T/ca.pem" --sni localhost --ws /mqtt)
	bench ws_conn conn "${WSS[@]}" --count 100 --concurrency 50 --churn
	check "conn --ws: 100 wss clients upgrade and reach CONNACK" "$T/ws_conn.json" \
		'r["connected"] == 100 and r["failed"] == 0 and r["latency"]["ws_upgrade"]["count"] == 100'
	bench ws_pubsub pubsub "${WSS[@]}" --count 2 --qos 1 --messages 200 --payload 70000
	check "pubsub --ws: 70 KB QoS 1 messages in 64-bit-length frames arrive whole" "$T/ws_pubsub.json" \
		'r["failed"] == 0 and r["messages"]["received"] == 400 and r["messages"]["lost"] == 0 and r["messages"]["duplicates"] == 0'
	bench ws_idle idle "${WSS[@]}" --count 20 --keepalive 1 --duration 2.5
	check "idle --ws: PINGREQ and PINGRESP in frames keep 20 wss clients connected" "$T/ws_idle.json" \
		'r["connected"] == 20 and r["failed"] == 0 and r["pings"] >= 40'
	bench ws_path conn --port "$WSPORT" --cafile "$T/ca.pem" --sni localhost --ws /other --count 3 --timeout 5
	check "conn --ws: an upgrade on another path is refused (counted as protocol)" "$T/ws_path.json" \
		'r["connected"] == 0 and r["errors"]["protocol"] == 3'
else
	not_ok "mqtls with --ws-listen starts" "$T/mqtls-ws.log"
	for t in pubsub idle path; do not_ok "(skipped) --ws $t"; done
fi

[ "$failed" -eq 0 ]
