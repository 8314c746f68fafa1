#!/usr/bin/env bash
# `make demo`: a throwaway CA and server certificate, a plain mosquitto as the
# "legacy broker" on loopback, mqtls in front of it, one TLS round trip with
# real clients, then mqtls in the foreground until Ctrl-C.
#   tests/demo.sh --once   stop after the round trip (used by `make test`)
set -u
cd "$(dirname "$0")/.."
ONCE=0; [ "${1:-}" = "--once" ] && ONCE=1
D=build/demo
mkdir -p "$D"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping mqtls and the broker"; exit 0' INT TERM

say() { printf '\033[1m%s\033[0m\n' "$*"; }
[ -t 1 ] || say() { printf '%s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. A development CA and a server certificate for localhost (EC P-256).
if [ ! -f "$D/server.pem" ] || ! openssl x509 -checkend 86400 -noout -in "$D/server.pem" >/dev/null 2>&1; then
	openssl ecparam -name prime256v1 -genkey -noout -out "$D/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$D/ca.key" -subj "/CN=mqtls demo CA" -days 30 -out "$D/ca.pem" 2>/dev/null
	openssl ecparam -name prime256v1 -genkey -noout -out "$D/server.key" 2>/dev/null
	openssl req -new -key "$D/server.key" -subj "/CN=localhost" -out "$D/server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' > "$D/server.ext"
	openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
		-days 30 -extfile "$D/server.ext" -out "$D/server.pem" 2>/dev/null || die "cannot create certificates"
fi
say "1. dev CA and server certificate in $D/ (ca.pem, server.pem, server.key)"

# 2. The legacy broker: plain MQTT, loopback only.
BPORT=$(free_port)
cat > "$D/mosquitto.conf" <<CONF
listener $BPORT 127.0.0.1
allow_anonymous true
log_dest stdout
log_type all
CONF
: > "$D/broker.log"
# Logs go to stdout: as root, mosquitto drops to its own user, which may not write here.
stdbuf -oL mosquitto -c "$D/mosquitto.conf" > "$D/broker.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -q "Opening ipv4 listen socket on port $BPORT" "$D/broker.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listen socket on port $BPORT" "$D/broker.log" || die "mosquitto did not start (see $D/broker.log)"
say "2. legacy broker: mosquitto, plain MQTT on 127.0.0.1:$BPORT (no TLS configured)"

# 3. mqtls in front of it.
rm -f "$D/ready"
./build/mqtls --listen 127.0.0.1:0 --cert "$D/server.pem" --key "$D/server.key" \
	--upstream "127.0.0.1:$BPORT" --ready-file "$D/ready" --log-level info > "$D/mqtls.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do [ -f "$D/ready" ] && break; sleep 0.1; done
[ -f "$D/ready" ] || { cat "$D/mqtls.log"; die "mqtls did not start"; }
PORT=$(sed -n '1s/.*://p' "$D/ready")
say "3. mqtls: TLS on 127.0.0.1:$PORT -> 127.0.0.1:$BPORT"

# 4. A round trip through TLS with the real mosquitto clients.
MSG="hello through mqtls $(date +%s)"
timeout 10 mosquitto_sub --cafile "$D/ca.pem" -h localhost -p "$PORT" -t demo/hello -C 1 -i demo-sub > "$D/sub.out" 2>&1 &
SUB=$!
for _ in $(seq 50); do grep -q "demo-sub" "$D/broker.log" && break; sleep 0.1; done
timeout 10 mosquitto_pub --cafile "$D/ca.pem" -h localhost -p "$PORT" -t demo/hello -q 1 -m "$MSG" -i demo-pub
wait $SUB
got=$(cat "$D/sub.out")
[ "$got" = "$MSG" ] || { cat "$D/mqtls.log"; die "round trip failed: got '$got'"; }
sleep 0.2
line=$(grep 'client_id="demo-pub"' "$D/mqtls.log" | tail -1)
tlsv=$(echo "$line" | sed -n 's/.* tls=\([^ ]*\).*/\1/p')
cipher=$(echo "$line" | sed -n 's/.* cipher=\([^ ]*\).*/\1/p')
say "4. proven:"
echo "   - mosquitto_sub received \"$got\" published by mosquitto_pub, both over TLS"
echo "   - TLS version $tlsv, cipher $cipher, server certificate verified against $D/ca.pem"
echo "   - the broker saw plain MQTT from loopback only:"
grep -E "New client connected from 127\.0\.0\.1" "$D/broker.log" | sed 's/^[0-9]*: /       broker: /' | tail -2
if echo | timeout 5 openssl s_client -connect "127.0.0.1:$BPORT" -brief > /dev/null 2>&1; then
	echo "   - WARNING: the broker port answered TLS"
else
	echo "   - a TLS handshake against the broker port itself fails: it speaks no TLS"
fi
[ "$ONCE" = 1 ] && { echo "demo: ok"; exit 0; }

echo
say "mqtls is running; its log follows. Try it from another terminal:"
echo "   mosquitto_sub --cafile $PWD/$D/ca.pem -h localhost -p $PORT -t 'demo/#' -v"
echo "   mosquitto_pub --cafile $PWD/$D/ca.pem -h localhost -p $PORT -t demo/hello -m 'hi'"
echo "Press Ctrl-C to stop mqtls and the broker."
echo
tail -n +1 -f "$D/mqtls.log" & PIDS+=($!)
wait "${PIDS[1]}"
