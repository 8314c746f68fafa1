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
#   MQTLS_CERT     certificate chain(s) mqtls serves, separated by commas as
#                  mqtls reads them (default: every `cert` line in MQTLS_CONFIG,
#                  else $RENEWED_LINEAGE/fullchain.pem)
#   MQTLS_KEY      their private keys, in the same order (default: every `key`
#                  line in MQTLS_CONFIG, else $RENEWED_LINEAGE/privkey.pem)
#   MQTLS_PID      signal this process
#   MQTLS_PIDFILE  signal the process whose id is in this file
#   MQTLS_UNIT     systemd unit to reload [mqtls.service]
# Without MQTLS_PID or MQTLS_PIDFILE: `systemctl reload MQTLS_UNIT` when that
# unit is active, else SIGHUP to every process named mqtls.
#
# With several cert/key pairs (SNI), the pairs whose certificate is in the
# renewed lineage are checked; without RENEWED_LINEAGE, all of them.
# A lineage mqtls does not serve is left alone (exit 0). A certificate that is
# expired, not yet valid, not signed by the rest of its chain, or does not
# match the key is reported and nothing is signalled (exit 1).
set -eu

log() { echo "mqtls-reload: $*" >&2; }
die() { log "$*"; exit 1; }

# Every `KEY value` line of the config, one value per line: cert and key
# repeat in pairs, the n-th key belonging to the n-th cert, as in mqtls.
conf_values() {
	[ -r "$conf" ] || return 0
	sed -n "s/^[[:space:]]*$1[[:space:]]\{1,\}//p" "$conf" | sed 's/[[:space:]]*$//'
}

# A list from the environment, split where mqtls splits it: commas, blanks.
env_values() { printf '%s\n' "$1" | awk -F '[, \t]+' '{ for (i = 1; i <= NF; i++) if ($i != "") print $i }'; }

count() { printf '%s\n' "$1" | sed '/^$/d' | wc -l | tr -d ' '; }
nth() { printf '%s\n' "$1" | sed -n "$2p"; }

conf=${MQTLS_CONFIG:-/etc/mqtls/mqtls.conf}
lineage=${RENEWED_LINEAGE:-}
unit=${MQTLS_UNIT:-mqtls.service}

if [ -n "${MQTLS_CERT:-}" ]; then certs=$(env_values "$MQTLS_CERT"); else certs=$(conf_values cert); fi
if [ -n "${MQTLS_KEY:-}" ]; then keys=$(env_values "$MQTLS_KEY"); else keys=$(conf_values key); fi
if [ -z "$certs" ] || [ -z "$keys" ]; then
	[ -n "$lineage" ] || die "no certificate: set MQTLS_CERT/MQTLS_KEY or cert/key in $conf"
	certs=${certs:-$lineage/fullchain.pem}
	keys=${keys:-$lineage/privkey.pem}
fi
[ "$(count "$certs")" -eq "$(count "$keys")" ] ||
	die "cert and key come in pairs: $(count "$certs") cert but $(count "$keys") key"

tmp=""
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT

# check_pair CERT KEY: dies naming the file unless the pair is fit to serve;
# sets serial and enddate.
check_pair() {
	cert=$1 key=$2
	if [ -z "$tmp" ]; then
		command -v openssl >/dev/null 2>&1 || die "openssl not found: cannot check the new certificate"
		tmp=$(mktemp -d)
	fi
	rm -f "$tmp"/*
	[ -r "$cert" ] || die "cannot read certificate $cert"
	[ -r "$key" ] || die "cannot read key $key"

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
}

# The pairs of the renewed lineage (all of them when run by hand).
checked=0 i=1
while [ $i -le "$(count "$certs")" ]; do
	c=$(nth "$certs" $i)
	if [ -z "$lineage" ] ||
		[ "$(readlink -f "$(dirname "$c")" || true)" = "$(readlink -f "$lineage" || true)" ]; then
		check_pair "$c" "$(nth "$keys" $i)"
		checked=$((checked + 1))
	fi
	i=$((i + 1))
done
if [ $checked -eq 0 ]; then
	log "renewed $lineage is not a certificate mqtls serves ($(printf '%s\n' "$certs" | tr '\n' ' ' | sed 's/ $//')): nothing to do"
	exit 0
fi

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
