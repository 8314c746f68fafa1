#!/bin/sh
# certbot deploy hook: after a renewal, check the new certificate and key, then
# ask mqtls to reload them (SIGHUP). mqtls is never restarted, so no connection
# drops: new connections get the new certificate, live ones keep theirs.
#
# Install (certbot runs every executable in this directory as root after each
# successful renewal, with RENEWED_LINEAGE=/etc/letsencrypt/live/NAME):
#   install -m 0755 deploy/certbot/mqtls-reload.sh /etc/letsencrypt/renewal-hooks/deploy/
# Run by hand (validates, then reloads) the same way, without RENEWED_LINEAGE.
#
# Environment, all optional:
#   MQTLS_CONFIG   config to take the cert and key paths from [/etc/mqtls/mqtls.conf]
#   MQTLS_CERT     certificate chain mqtls serves (default: `cert` in MQTLS_CONFIG,
#                  else $RENEWED_LINEAGE/fullchain.pem)
#   MQTLS_KEY      its private key (default: `key` in MQTLS_CONFIG, else
#                  $RENEWED_LINEAGE/privkey.pem)
#   MQTLS_PID      signal this process
#   MQTLS_PIDFILE  signal the process whose id is in this file
#   MQTLS_UNIT     systemd unit to reload [mqtls.service]
# Without MQTLS_PID or MQTLS_PIDFILE: `systemctl reload MQTLS_UNIT` when that
# unit is active, else SIGHUP to every process named mqtls.
#
# A lineage mqtls does not serve is left alone (exit 0). A certificate that is
# expired, not yet valid, not signed by the rest of its chain, or does not
# match the key is reported and nothing is signalled (exit 1).
set -eu

log() { echo "mqtls-reload: $*" >&2; }
die() { log "$*"; exit 1; }

# Last `KEY value` line of the config wins, as in mqtls itself.
conf_value() {
	[ -r "$conf" ] || return 0
	sed -n "s/^[[:space:]]*$1[[:space:]]\{1,\}//p" "$conf" | tail -n 1 | sed 's/[[:space:]]*$//'
}

conf=${MQTLS_CONFIG:-/etc/mqtls/mqtls.conf}
lineage=${RENEWED_LINEAGE:-}
unit=${MQTLS_UNIT:-mqtls.service}

cert=${MQTLS_CERT:-$(conf_value cert)}
key=${MQTLS_KEY:-$(conf_value key)}
if [ -z "$cert" ] || [ -z "$key" ]; then
	[ -n "$lineage" ] || die "no certificate: set MQTLS_CERT/MQTLS_KEY or cert/key in $conf"
	cert=${cert:-$lineage/fullchain.pem}
	key=${key:-$lineage/privkey.pem}
fi

if [ -n "$lineage" ]; then
	cert_dir=$(readlink -f "$(dirname "$cert")" || true)
	if [ "$cert_dir" != "$(readlink -f "$lineage" || true)" ]; then
		log "renewed $lineage is not the certificate mqtls serves ($cert): nothing to do"
		exit 0
	fi
fi

[ -r "$cert" ] || die "cannot read certificate $cert"
[ -r "$key" ] || die "cannot read key $key"
command -v openssl >/dev/null 2>&1 || die "openssl not found: cannot check the new certificate"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Leaf first, the rest of the chain after it.
awk -v leaf="$tmp/leaf.pem" -v chain="$tmp/chain.pem" '
	/-----BEGIN CERTIFICATE-----/ { n++ }
	n == 1 { print > leaf }
	n > 1 { print > chain }
' "$cert"
[ -s "$tmp/leaf.pem" ] || die "$cert holds no PEM certificate"

openssl x509 -in "$tmp/leaf.pem" -noout -checkend 0 >/dev/null 2>&1 ||
	die "$cert: certificate has expired or cannot be parsed"
# The rest of the chain (or the leaf itself when alone) is the trust anchor:
# this checks the leaf's and the intermediates' validity dates and that the
# intermediate signed the leaf, not the path to a root.
anchor="$tmp/chain.pem"
[ -s "$anchor" ] || anchor="$tmp/leaf.pem"
if ! out=$(openssl verify -partial_chain -CAfile "$anchor" "$tmp/leaf.pem" 2>&1); then
	die "$cert: $(printf '%s\n' "$out" | grep -m 1 'error' || printf '%s' "$out")"
fi
openssl x509 -in "$tmp/leaf.pem" -noout -pubkey >"$tmp/cert.pub" 2>/dev/null ||
	die "$cert: cannot read the public key"
openssl pkey -in "$key" -pubout -passin pass: >"$tmp/key.pub" 2>/dev/null ||
	die "$key: cannot read the private key (unencrypted PEM expected)"
cmp -s "$tmp/cert.pub" "$tmp/key.pub" || die "$key does not match the certificate in $cert"

serial=$(openssl x509 -in "$tmp/leaf.pem" -noout -serial | sed 's/^serial=//')
enddate=$(openssl x509 -in "$tmp/leaf.pem" -noout -enddate | sed 's/^notAfter=//')

# Only a live mqtls process gets SIGHUP: a stale pid may belong to anything.
signal_pid() {
	case $1 in '' | *[!0-9]*) die "not a process id: '$1'" ;; esac
	[ "$(cat "/proc/$1/comm" 2>/dev/null || true)" = mqtls ] || die "process $1 is not mqtls"
	kill -HUP "$1" || die "cannot signal mqtls process $1"
	log "certificate serial $serial (valid until $enddate): SIGHUP sent to mqtls pid $1"
}

if [ -n "${MQTLS_PID:-}" ]; then
	signal_pid "$MQTLS_PID"
elif [ -n "${MQTLS_PIDFILE:-}" ]; then
	[ -r "$MQTLS_PIDFILE" ] || die "cannot read $MQTLS_PIDFILE"
	signal_pid "$(head -n 1 "$MQTLS_PIDFILE" | tr -d '[:space:]')"
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
	# reload, never restart: the unit's ExecReload sends SIGHUP.
	systemctl reload "$unit" || die "systemctl reload $unit failed"
	log "certificate serial $serial (valid until $enddate): reloaded $unit"
else
	pids=$(pidof mqtls 2>/dev/null || true)
	if [ -z "$pids" ]; then
		log "no running mqtls: the new certificate is used at its next start"
		exit 0
	fi
	for pid in $pids; do
		signal_pid "$pid"
	done
fi
