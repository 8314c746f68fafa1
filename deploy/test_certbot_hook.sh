#!/bin/sh
# Runs deploy/certbot/mqtls-reload.sh against a real mqtls: a certbot-style
# lineage (archive/ files, live/ symlinks) is renewed in place, the hook is run
# as certbot would run it (RENEWED_LINEAGE set, MQTLS_PID naming our mqtls),
# and openssl s_client checks that new connections get the new certificate
# while a TLS connection opened before the renewal stays open and usable.
# Bad renewals (key not matching, expired) must be refused without a signal,
# and mqtls, which notices the changed files itself, must keep the old pair.
# Output is TAP. Needs build/mqtls (make build/mqtls) and openssl; uses
# mosquitto as the broker when installed, else an unused port.
#   sh deploy/test_certbot_hook.sh
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
MQTLS=$ROOT/build/mqtls
HOOK=$ROOT/deploy/certbot/mqtls-reload.sh

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # check "name" command...: one TAP line for the command's status
	name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
diag() { sed 's/^/# /' "$@"; }
alive() { kill -0 "$1" 2>/dev/null; }

if [ ! -x "$MQTLS" ] || ! command -v openssl >/dev/null 2>&1; then
	echo "1..0 # SKIP needs build/mqtls and openssl"
	exit 0
fi

T=$(mktemp -d /tmp/mqtls-hook-test.XXXXXX)
mqtls_pid="" broker_pid="" held_pid=""
cleanup() {
	exec 3>&- 2>/dev/null
	for p in $held_pid $mqtls_pid $broker_pid; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# A held connection that died must fail its test, not kill this script.
trap '' PIPE

# --- a test CA and certbot-style lineage ---------------------------------

LIVE=$T/letsencrypt/live/mqtt.test
ARCHIVE=$T/letsencrypt/archive/mqtt.test
mkdir -p "$LIVE" "$ARCHIVE" "$T/ca/newcerts"
: >"$T/ca/index.txt"
echo 1000 >"$T/ca/serial"
cat >"$T/ca/ca.cnf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
dir = $T/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
default_md = sha256
policy = any_cn
unique_subject = no
copy_extensions = copy
[any_cn]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/ca/ca.key" -out "$T/ca/ca.pem" -days 2 -subj /CN=mqtls-test-ca \
	-config "$T/ca/ca.cnf" -extensions v3_ca 2>"$T/openssl.err" ||
	{ echo "Bail out! cannot create the test CA"; diag "$T/openssl.err"; exit 1; }

# issue NAME SERIAL [STARTDATE ENDDATE]: a localhost leaf + key, fullchain = leaf + CA
issue() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/$1.key" -out "$T/$1.csr" -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost" 2>>"$T/openssl.err" || return 1
	name=$1
	echo "$2" >"$T/ca/serial"
	if [ $# -ge 4 ]; then
		set -- -startdate "$3" -enddate "$4"
	else
		set -- -days 2
	fi
	openssl ca -batch -notext -config "$T/ca/ca.cnf" -cert "$T/ca/ca.pem" -keyfile "$T/ca/ca.key" \
		-in "$T/$name.csr" -out "$T/$name.pem" "$@" 2>>"$T/openssl.err" || return 1
	cat "$T/$name.pem" "$T/ca/ca.pem" >"$T/$name.fullchain.pem"
}

# install_version N NAME [KEYNAME]: what certbot does on renewal: new archive
# files, then the live/ symlinks point at them.
install_version() {
	cp "$T/$2.fullchain.pem" "$ARCHIVE/fullchain$1.pem"
	cp "$T/${3:-$2}.key" "$ARCHIVE/privkey$1.pem"
	ln -sfn "../../archive/mqtt.test/fullchain$1.pem" "$LIVE/fullchain.pem"
	ln -sfn "../../archive/mqtt.test/privkey$1.pem" "$LIVE/privkey.pem"
}

if ! { issue old 1A1A && issue new 2B2B && issue expired 3C3C 20200101000000Z 20200102000000Z &&
	issue future 4D4D 20990101000000Z 20990102000000Z; }; then
	echo "Bail out! cannot issue test certificates"
	diag "$T/openssl.err"
	exit 1
fi
install_version 1 old

# --- broker and mqtls ------------------------------------------------------

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo 18830
}
bport=$(free_port)
if command -v mosquitto >/dev/null 2>&1; then
	mosquitto -p "$bport" >"$T/broker.log" 2>&1 &
	broker_pid=$!
	expect_connack="20 02 00 00"
else
	expect_connack="20 02 00 03" # mqtls answers "server unavailable" itself
fi

cat >"$T/mqtls.conf" <<EOF
listen 127.0.0.1:0
cert $LIVE/fullchain.pem
key $LIVE/privkey.pem
upstream 127.0.0.1:$bport
workers 1
EOF
"$MQTLS" --config "$T/mqtls.conf" --ready-file "$T/ready" 2>"$T/mqtls.log" &
mqtls_pid=$!

i=0
while [ ! -s "$T/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if [ ! -s "$T/ready" ]; then
	not_ok "mqtls starts and writes its ready file"
	diag "$T/mqtls.log"
	exit 1
fi
ok "mqtls starts and writes its ready file"
addr=$(head -n 1 "$T/ready")

# serial_of_new_connection: the serial a fresh TLS client is shown.
serial_of_new_connection() {
	openssl s_client -connect "$addr" -servername localhost -CAfile "$T/ca/ca.pem" \
		</dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}
# Successful reloads. mqtls also watches the files it loaded and reloads by
# itself a second after they change, so a refused renewal is still tried (and
# refused) by mqtls: the checks below look at what is served and at what the
# hook did, not at whether a reload happened.
mqtls_reloads() { grep -c -E 'info reloaded (the configuration|certificates)' "$T/mqtls.log"; }
# still_old: after the watcher's quiet time, new connections get the first certificate.
still_old() { sleep 1.5; [ "$(serial_of_new_connection)" = 1A1A ]; }

s=$(serial_of_new_connection)
check "a new connection gets the first certificate (serial $s)" [ "$s" = 1A1A ]

# --- a TLS connection held open across the renewal --------------------------

mkfifo "$T/held.in"
openssl s_client -connect "$addr" -servername localhost -CAfile "$T/ca/ca.pem" \
	<"$T/held.in" >"$T/held.out" 2>"$T/held.err" &
held_pid=$!
exec 3>"$T/held.in"
i=0
while ! grep -q 'END CERTIFICATE' "$T/held.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
s=$(openssl x509 -in "$T/held.out" -noout -serial 2>/dev/null | sed 's/^serial=//')
check "a connection opened before the renewal uses the first certificate (serial $s)" [ "$s" = 1A1A ]

# --- renewals the hook must refuse --------------------------------------------

run_hook() {
	RENEWED_LINEAGE=$LIVE RENEWED_DOMAINS=localhost MQTLS_CONFIG=$T/mqtls.conf \
		MQTLS_PID=$mqtls_pid sh "$HOOK" >"$T/hook.out" 2>&1
}

install_version 2 new old
if ! run_hook && grep -q 'does not match' "$T/hook.out"; then
	ok "the hook refuses a certificate whose key does not match"
else
	not_ok "the hook refuses a certificate whose key does not match"
	diag "$T/hook.out"
fi
check "a refused renewal sends no SIGHUP" [ "$(grep -c 'SIGHUP sent' "$T/hook.out")" -eq 0 ]
check "mqtls keeps serving the first certificate (its own reload of the bad pair fails)" still_old

install_version 3 expired
if ! run_hook && grep -q 'expired' "$T/hook.out"; then
	ok "the hook refuses an expired certificate"
else
	not_ok "the hook refuses an expired certificate"
	diag "$T/hook.out"
fi
check "still no SIGHUP" [ "$(grep -c 'SIGHUP sent' "$T/hook.out")" -eq 0 ]
check "mqtls still serves the first certificate" still_old

install_version 4 future
if ! run_hook && grep -q 'not yet valid' "$T/hook.out"; then
	ok "the hook refuses a certificate that is not yet valid"
else
	not_ok "the hook refuses a certificate that is not yet valid"
	diag "$T/hook.out"
fi

# A renewal of some other lineage on the same host is not ours.
mkdir -p "$T/letsencrypt/live/other.test"
if RENEWED_LINEAGE=$T/letsencrypt/live/other.test MQTLS_CONFIG=$T/mqtls.conf MQTLS_PID=$mqtls_pid \
	sh "$HOOK" >"$T/hook.out" 2>&1 && grep -q 'nothing to do' "$T/hook.out" && ! grep -q 'SIGHUP sent' "$T/hook.out"; then
	ok "the hook ignores a lineage mqtls does not serve"
else
	not_ok "the hook ignores a lineage mqtls does not serve"
	diag "$T/hook.out"
fi

# A pid that is not mqtls is never signalled.
sleep 60 &
bystander=$!
if MQTLS_CERT=$T/new.fullchain.pem MQTLS_KEY=$T/new.key MQTLS_PID=$bystander sh "$HOOK" >"$T/hook.out" 2>&1 ||
	! grep -q 'is not mqtls' "$T/hook.out" || ! alive "$bystander"; then
	not_ok "the hook refuses to signal a process that is not mqtls"
	diag "$T/hook.out"
else
	ok "the hook refuses to signal a process that is not mqtls"
fi
kill "$bystander" 2>/dev/null

# --- the real renewal ----------------------------------------------------------

install_version 5 new
if run_hook; then
	ok "the hook accepts the renewed certificate and signals mqtls"
else
	not_ok "the hook accepts the renewed certificate and signals mqtls"
	diag "$T/hook.out"
fi
i=0
while [ "$(mqtls_reloads)" -eq 0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
check "mqtls reloads the renewed certificate" [ "$(mqtls_reloads)" -ge 1 ]
check "mqtls was reloaded, not restarted (same process)" alive "$mqtls_pid"

s=$(serial_of_new_connection)
check "a new connection gets the renewed certificate (serial $s)" [ "$s" = 2B2B ]

check "the connection opened before the renewal is still open" alive "$held_pid"
# MQTT 3.1.1 CONNECT, empty client id, clean session, keepalive 60.
printf '\020\014\000\004MQTT\004\002\000\074\000\000' >&3 2>/dev/null
i=0
got=""
while [ $i -lt 100 ]; do
	got=$(od -An -v -tx1 "$T/held.out" | tr -s ' \n' '  ')
	case $got in *" $expect_connack"*) break ;; esac
	sleep 0.05
	i=$((i + 1))
done
case $got in
*" $expect_connack"*) ok "the old connection still carries MQTT after the renewal (CONNACK received)" ;;
*)
	not_ok "the old connection still carries MQTT after the renewal (CONNACK received)"
	diag "$T/held.err"
	;;
esac

# The hook's own paths: systemd absent here, so a pidfile run must work too.
echo "$mqtls_pid" >"$T/mqtls.pid"
sleep 1.5 # the watcher's reload of the renewal is over
before=$(mqtls_reloads)
failed_before=$(grep -c 'reload failed' "$T/mqtls.log")
if RENEWED_LINEAGE=$LIVE MQTLS_CONFIG=$T/mqtls.conf MQTLS_PIDFILE=$T/mqtls.pid sh "$HOOK" >"$T/hook.out" 2>&1; then
	i=0
	while [ "$(mqtls_reloads)" -le "$before" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	check "the hook signals the pid in MQTLS_PIDFILE" [ "$(mqtls_reloads)" -eq $((before + 1)) ]
else
	not_ok "the hook signals the pid in MQTLS_PIDFILE"
	diag "$T/hook.out"
fi

# Several cert/key pairs (SNI): the pair in the renewed lineage is checked,
# whatever its place; the others are not this renewal's business.
cat >"$T/pairs.conf" <<EOF
cert $LIVE/fullchain.pem
key $LIVE/privkey.pem
cert $T/old.fullchain.pem
key $T/old.key
EOF
if RENEWED_LINEAGE=$LIVE MQTLS_CONFIG=$T/pairs.conf MQTLS_PID=$mqtls_pid sh "$HOOK" >"$T/hook.out" 2>&1 &&
	grep -q 'certificate serial 2B2B .*SIGHUP sent' "$T/hook.out"; then
	ok "with several pairs the hook checks the renewed lineage's pair and signals mqtls"
else
	not_ok "with several pairs the hook checks the renewed lineage's pair and signals mqtls"
	diag "$T/hook.out"
fi
if ! MQTLS_CERT="$T/old.fullchain.pem,$LIVE/fullchain.pem" MQTLS_KEY="$T/old.key,$T/old.key" \
	RENEWED_LINEAGE=$LIVE MQTLS_PID=$mqtls_pid sh "$HOOK" >"$T/hook.out" 2>&1 &&
	grep -q "old.key does not match the certificate in $LIVE/fullchain.pem" "$T/hook.out" &&
	! grep -q 'SIGHUP sent' "$T/hook.out"; then
	ok "the hook refuses the lineage's pair when its key is another pair's"
else
	not_ok "the hook refuses the lineage's pair when its key is another pair's"
	diag "$T/hook.out"
fi
if ! MQTLS_CERT="$T/old.fullchain.pem $LIVE/fullchain.pem" MQTLS_KEY="$LIVE/privkey.pem" \
	MQTLS_PID=$mqtls_pid sh "$HOOK" >"$T/hook.out" 2>&1 &&
	grep -q 'cert and key come in pairs: 2 cert but 1 key' "$T/hook.out"; then
	ok "the hook refuses unpaired certificates and keys"
else
	not_ok "the hook refuses unpaired certificates and keys"
	diag "$T/hook.out"
fi

exec 3>&-
kill -TERM "$mqtls_pid" 2>/dev/null
wait "$mqtls_pid"
rc=$?
mqtls_pid=""
check "mqtls exits 0 on SIGTERM after the reloads" [ "$rc" -eq 0 ]
if [ "$(grep -c 'reload failed' "$T/mqtls.log")" -ne "$failed_before" ]; then
	not_ok "mqtls logged no failed reload after the good renewal"
	diag "$T/mqtls.log"
else
	ok "mqtls logged no failed reload after the good renewal"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
