"""TLS on the last hop (--upstream-tls): mqtls in front of mosquitto's own TLS
listener, with real clients. Round trips by address (IP SAN) and by name
(SNI), large messages both ways, a broker that requires client certificates,
and every way the broker's TLS can fail (wrong CA, wrong name, no client
certificate): the client gets CONNACK server unavailable, the log says
reason=broker_tls with the verification error, the metric moves. Also the
configuration errors, a reload of --upstream-ca, and --send-proxy-v2 in
clear before the ClientHello with close_notify at the end."""
import json
import socket
import ssl
import struct
import threading
import urllib.request
from pathlib import Path

import clients
import mqttwire as w
from harness import check, free_port, test, wait_until


def _tls_broker(ctx, require_cert=False, cert=None, key=None):
    """mosquitto with its plain listener (for readiness) and a TLS listener on
    127.0.0.1 (the test PKI's server chain, or |cert| and |key|); returns
    (broker, tls_port)."""
    port = free_port()
    cafile = ctx.dir / "broker-ca.pem"
    # The server chain is the test PKI's; clients are checked against the client CA.
    cafile.write_bytes(Path(ctx.pki.ca).read_bytes() + Path(ctx.pki.client_ca).read_bytes())
    extra = ("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %s\n"
             % (port, cafile, cert or ctx.pki.server_cert, key or ctx.pki.server_key,
                "true" if require_cert else "false"))
    return ctx.broker(extra=extra), port


def _proxy(ctx, port, *extra, host="127.0.0.1", metrics=None):
    args = ["--upstream-tls", "--upstream-ca", ctx.pki.ca] + list(extra)
    if metrics:
        args += ["--metrics", "127.0.0.1:%d" % metrics]
    return ctx.mqtls(*args, upstream="%s:%d" % (host, port))


def _broker_saw_tls(b, port, n=1):
    """The broker accepted n connections on its TLS port (which speaks only TLS)."""
    return wait_until(lambda: b.log().count("on port %d." % port) >= n, 5,
                      "%d connection(s) on the broker's TLS port" % n)


def _metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def _refused(ctx, m, version, client_id="refused"):
    """CONNECT; returns the CONNACK code of the one packet before the close."""
    s = ctx.tls_connect(m)
    s.sendall(w.connect(version, client_id=client_id))
    seen = w.Reader(s).expect_closed(10)
    check(len(seen) == 1 and seen[0][0] == w.CONNACK,
          "want exactly one CONNACK then close, got %r" % seen)
    return w.connack_code(seen[0][2])


def _check_tls_failure(m, error_text):
    line = m.wait_log("reason=broker_tls error=")[0]
    check(error_text in line, "the log line lacks %r: %s" % (error_text, line))
    c = m.wait_close(1)[0]
    check(c.get("reason") == "broker_tls", "close reason %r, want broker_tls: %r"
          % (c.get("reason"), c))


# -- round trips -----------------------------------------------------------

@test
def upstream_tls_round_trip_by_address_checks_the_ip_san(ctx):
    b, port = _tls_broker(ctx)
    m = _proxy(ctx, port)
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"over TLS on both hops")
    _broker_saw_tls(b, port, 2)


@test
def upstream_tls_round_trip_by_name_sends_sni_v5(ctx):
    b, port = _tls_broker(ctx)
    m = _proxy(ctx, port, host="localhost")
    clients.pub_sub_round_trip(ctx, m, 5, 1, b"by name")
    _broker_saw_tls(b, port, 2)


@test
def upstream_tls_carries_1_mib_messages_both_ways_intact(ctx):
    b, port = _tls_broker(ctx)
    # A small buffer: backpressure across both TLS sides, many times over.
    m = _proxy(ctx, port, "--max-buffer", "65536")
    payload = bytes((i * 7 + i // 251) & 0xFF for i in range(1 << 20))
    clients.pub_sub_round_trip(ctx, m, 4, 1, payload)
    clients.pub_sub_round_trip(ctx, m, 5, 0, payload[::-1])


@test
def upstream_tls_with_a_client_certificate_is_accepted_by_a_broker_that_requires_one(ctx):
    b, port = _tls_broker(ctx, require_cert=True)
    cert, key = ctx.pki.client_good
    m = _proxy(ctx, port, "--upstream-cert", cert, "--upstream-key", key)
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"mutual")
    _broker_saw_tls(b, port, 2)


# -- failures: what the client sees, the log line, the metric --------------

@test
def wrong_upstream_ca_gives_connack_3_and_0x88_a_log_line_and_the_tls_metric(ctx):
    b, port = _tls_broker(ctx)
    mport = free_port()
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.other_ca, "--metrics",
                  "127.0.0.1:%d" % mport, upstream="127.0.0.1:%d" % port)
    check(_refused(ctx, m, 4) == 3, "MQTT 3.1.1 client did not get CONNACK 3")
    _check_tls_failure(m, "certificate verify failed: unable to get local issuer certificate")
    check(_refused(ctx, m, 5) == 0x88, "MQTT 5 client did not get CONNACK 0x88")
    wait_until(lambda: _metric(mport, 'mqtls_broker_connect_errors_total{reason="tls"}') == 2, 5,
               "mqtls_broker_connect_errors_total{reason=\"tls\"} to be 2")
    check(_metric(mport, 'mqtls_broker_connect_errors_total{reason="unreachable"}') == 0,
          "a TLS failure was counted as unreachable")


@test
def the_broker_tls_line_has_its_fields_in_json(ctx):
    b, port = _tls_broker(ctx)
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.other_ca, "--log-format", "json",
                  upstream="127.0.0.1:%d" % port)
    check(_refused(ctx, m, 4) == 3, "MQTT 3.1.1 client did not get CONNACK 3")
    line = m.wait_log('"reason":"broker_tls"')[0]
    ev = json.loads(line)
    check(ev.get("event") == "broker" and ev.get("level") == "warn" and ev.get("broker") == "127.0.0.1:%d" % port
          and ev.get("tls_name") == "127.0.0.1"
          and ev.get("error") == "certificate verify failed: unable to get local issuer certificate",
          "fields of %r" % ev)


@test
def wrong_upstream_sni_is_refused_as_a_hostname_mismatch(ctx):
    b, port = _tls_broker(ctx)
    m = _proxy(ctx, port, "--upstream-sni", "broker.wrong.example")
    check(_refused(ctx, m, 5) == 0x88, "MQTT 5 client did not get CONNACK 0x88")
    _check_tls_failure(m, "certificate verify failed: Hostname mismatch")
    check(b.clients() == [], "the broker saw a CONNECT: %r" % b.clients())


@test
def an_expired_broker_certificate_is_refused(ctx):
    b, port = _tls_broker(ctx, cert=ctx.pki.server_expired_cert, key=ctx.pki.server_expired_key)
    m = _proxy(ctx, port)
    check(_refused(ctx, m, 5) == 0x88, "MQTT 5 client did not get CONNACK 0x88")
    _check_tls_failure(m, "certificate verify failed: certificate has expired")


@test
def a_broker_certificate_made_for_clients_only_is_refused(ctx):
    # A trusted chain, but the leaf's extended key usage is clientAuth only.
    cert, key = ctx.pki.client_good
    b, port = _tls_broker(ctx, cert=cert, key=key)
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.client_ca, upstream="127.0.0.1:%d" % port)
    check(_refused(ctx, m, 4) == 3, "MQTT 3.1.1 client did not get CONNACK 3")
    _check_tls_failure(m, "certificate verify failed: unsupported certificate purpose")


@test
def a_broker_requiring_a_client_certificate_refuses_mqtls_without_one(ctx):
    # TLS 1.3: the broker checks the certificate after mqtls's side of the
    # handshake is done, so the refusal arrives as the first broker bytes.
    b, port = _tls_broker(ctx, require_cert=True)
    m = _proxy(ctx, port)
    check(_refused(ctx, m, 4) == 3, "MQTT 3.1.1 client did not get CONNACK 3")
    _check_tls_failure(m, "CERTIFICATE_REQUIRED")
    check(b.clients() == [], "the broker saw a CONNECT: %r" % b.clients())


@test
def a_plain_broker_behind_upstream_tls_is_a_tls_failure_not_a_hang(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.ca, "--upstream-timeout", "3", broker=b)
    check(_refused(ctx, m, 4) == 3, "MQTT 3.1.1 client did not get CONNACK 3")
    _check_tls_failure(m, "error=")
    line = m.lines("reason=broker_tls error=")[0]
    check("certificate verify" not in line, "no certificate was ever seen: %s" % line)


@test
def a_broker_whose_tls_fails_is_passed_over_for_the_next_one(ctx):
    plain = ctx.broker()     # speaks no TLS: the handshake with it fails
    b, port = _tls_broker(ctx)
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.ca, "--upstream", "localhost:%d" % port,
                  upstream=plain.upstream)
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"second broker")
    _broker_saw_tls(b, port, 2)
    line = m.wait_log("reason=broker_tls error=")[0]
    check(plain.upstream in line, "the failure line does not name the first broker: %s" % line)
    check(all(c.get("reason") != "broker_tls" for c in m.close_lines()),
          "a client was refused although the second broker took it: %r" % m.close_lines())


# -- configuration ---------------------------------------------------------

def _config_error(ctx, *args):
    rc, out, err = ctx.run_mqtls("--listen", "127.0.0.1:0", "--cert", ctx.pki.server_cert, "--key",
                                 ctx.pki.server_key, *args)
    check(rc == 2, "exit code %d, want 2 (stderr %r)" % (rc, err))
    lines = err.strip().splitlines()
    check(len(lines) == 1, "want one line on stderr, got %r" % err)
    return lines[0]


@test
def upstream_tls_configuration_errors_are_one_line_and_exit_2(ctx):
    up = ["--upstream", "127.0.0.1:1883"]
    good_cert, good_key = ctx.pki.client_good
    missing = str(ctx.dir / "no-such-ca.pem")
    cases = [
        (up + ["--upstream-tls", "--upstream-ca", missing], "--upstream-ca %s" % missing),
        (up + ["--upstream-tls", "--upstream-cert", good_cert], "--upstream-cert and --upstream-key"),
        (up + ["--upstream-tls", "--upstream-key", good_key], "--upstream-cert and --upstream-key"),
        (up + ["--upstream-tls", "--upstream-cert", good_cert, "--upstream-key", ctx.pki.server_key],
         "--upstream-key %s: does not match" % ctx.pki.server_key),
        (up + ["--upstream-ca", ctx.pki.ca], "--upstream-ca needs --upstream-tls"),
        (up + ["--upstream-tls", "--upstream-ca", ctx.pki.server_key], "--upstream-ca"),
        (["--upstream", "unix:%s" % (ctx.dir / "b.sock"), "--upstream-tls"], "--upstream-sni"),
    ]
    for args, want in cases:
        line = _config_error(ctx, *args)
        check(want in line, "for %r: %r lacks %r" % (args, line, want))


@test
def a_unix_socket_broker_with_upstream_sni_is_verified_by_that_name(ctx):
    # mosquitto cannot serve TLS on a unix socket: the name reaches the
    # verification, which the broker's certificate fails (it has no such name).
    path = ctx.dir / "tls.sock"
    stub = socket.socket(socket.AF_UNIX)
    stub.bind(str(path))
    stub.listen(4)
    ctx.note_socket(stub)

    def serve():
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(ctx.pki.server_cert, ctx.pki.server_key)
        c, _ = stub.accept()
        try:
            sctx.wrap_socket(c, server_side=True).recv(1)
        except (ssl.SSLError, OSError):
            pass
    threading.Thread(target=serve, daemon=True).start()
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.ca, "--upstream-sni", "mqtt.internal",
                  upstream="unix:%s" % path)
    check(_refused(ctx, m, 4) == 3, "MQTT 3.1.1 client did not get CONNACK 3")
    _check_tls_failure(m, "Hostname mismatch")


@test
def a_reload_rebuilds_the_upstream_context_from_the_new_ca_file(ctx):
    b, port = _tls_broker(ctx)
    ca = ctx.dir / "upstream-ca.pem"
    ca.write_bytes(Path(ctx.pki.other_ca).read_bytes())
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ca, upstream="127.0.0.1:%d" % port)
    check(_refused(ctx, m, 4) == 3, "the wrong CA did not refuse")
    tmp = ctx.dir / "upstream-ca.pem.new"
    tmp.write_bytes(Path(ctx.pki.ca).read_bytes())
    tmp.rename(ca)      # as a renewal does: the watcher reloads
    m.wait_log("reloaded the configuration", timeout=10)
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"after the reload")


# -- PROXY v2 and close_notify ---------------------------------------------

class _TLSStubBroker:
    """Reads a PROXY v2 header in clear, then a TLS handshake, a CONNECT;
    answers CONNACK 0 and waits for the end: a clean one (close_notify)
    reads as b"", a bare TCP close raises."""

    def __init__(self, ctx):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.sctx.load_cert_chain(ctx.pki.server_cert, ctx.pki.server_key)
        self.header = None
        self.sni = None
        self.connect_type = None
        self.end = None
        ctx.note_socket(self.sock)
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def _read(c, n):
        out = b""
        while len(out) < n:
            chunk = c.recv(n - len(out))
            if not chunk:
                raise EOFError("closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return out

    def _run(self):
        try:
            c, _ = self.sock.accept()
            c.settimeout(10)
            head = self._read(c, 16)
            self.header = head + self._read(c, struct.unpack(">H", head[14:16])[0])

            def on_sni(sslobj, name, _ctx):
                self.sni = name
            self.sctx.sni_callback = on_sni
            t = self.sctx.wrap_socket(c, server_side=True, suppress_ragged_eofs=False)
            hdr = self._read(t, 2)
            self.connect_type = hdr[0] >> 4
            self._read(t, hdr[1])
            t.sendall(b"\x20\x02\x00\x00")
            try:
                rest = t.recv(4096)
                while rest:      # the client's DISCONNECT, then the end
                    rest = t.recv(4096)
                self.end = "close_notify"
            except ssl.SSLEOFError:
                self.end = "no close_notify"
        except Exception as e:      # reported by the test
            self.end = "error: %r" % e


@test
def send_proxy_v2_goes_in_clear_before_the_tls_handshake_and_close_sends_close_notify(ctx):
    stub = _TLSStubBroker(ctx)
    m = ctx.mqtls("--send-proxy-v2", "--upstream-tls", "--upstream-ca", ctx.pki.ca,
                  upstream="localhost:%d" % stub.port)
    s = ctx.tls_connect(m)
    s.sendall(w.connect(4, client_id="pp2tls"))
    t, _, body = w.Reader(s).read(5)
    check(t == w.CONNACK and w.connack_code(body) == 0, "CONNACK from the stub %r %r" % (t, body))
    check(stub.header[:12] == b"\r\n\r\n\x00\r\nQUIT\n", "no PROXY v2 signature: %r" % stub.header[:16])
    check(stub.sni == "localhost", "SNI %r, want localhost" % stub.sni)
    check(stub.connect_type == 1, "the first packet inside TLS is type %r" % stub.connect_type)
    s.sendall(w.disconnect())
    s.close()
    wait_until(lambda: stub.end, 5, "the stub to see the end")
    check(stub.end == "close_notify", "the broker side ended with %s" % stub.end)


class _ResumingStubBroker:
    """A TLS broker (Python's OpenSSL, TLS 1.3 tickets on) that answers every
    CONNECT with CONNACK 0 and records, per connection, whether the client
    resumed a session."""

    def __init__(self, ctx):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.sctx.load_cert_chain(ctx.pki.server_cert, ctx.pki.server_key)
        self.reused = []
        ctx.note_socket(self.sock)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.settimeout(10)
                t = self.sctx.wrap_socket(c, server_side=True)
                hdr = _TLSStubBroker._read(t, 2)
                _TLSStubBroker._read(t, hdr[1])
                self.reused.append(t.session_reused)
                t.sendall(b"\x20\x02\x00\x00")
                while t.recv(4096):
                    pass
            except (OSError, EOFError, ssl.SSLError):
                pass


@test
def the_second_connection_to_the_broker_resumes_the_tls_session(ctx):
    stub = _ResumingStubBroker(ctx)
    m = ctx.mqtls("--upstream-tls", "--upstream-ca", ctx.pki.ca, upstream="localhost:%d" % stub.port)
    for i in range(2):
        s = ctx.tls_connect(m)
        s.sendall(w.connect(4, client_id="resume%d" % i))
        t, _, body = w.Reader(s).read(5)
        check(t == w.CONNACK and w.connack_code(body) == 0, "CONNACK %r %r" % (t, body))
        s.sendall(w.disconnect())
        s.close()
        m.wait_close(i + 1)
    check(stub.reused == [False, True], "sessions reused per connection: %r" % stub.reused)
