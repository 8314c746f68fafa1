"""TLS versions, suites, groups, ALPN, trust and the handshake timeout."""
import socket
import ssl
import subprocess
import time

import clients
import mqttwire as w
from harness import check, test


def _connack_ok(ctx, m, s):
    s.sendall(w.connect(4, client_id="tls"))
    t, _, body = w.Reader(s).read(5)
    check((t, w.connack_code(body)) == (w.CONNACK, 0), "want CONNACK 0, got %d %r" % (t, body))


def _handshake_refused(ctx, m, sslctx, b):
    try:
        s = ctx.tls_connect(m, sslctx)
    except ssl.SSLError as e:
        err = e
    else:
        # A TLS 1.3 server may only object after the client's Finished.
        try:
            s.sendall(w.connect(4))
            w.Reader(s).read(3)
            raise AssertionError("handshake succeeded and CONNACK came back")
        except (ssl.SSLError, w.Closed) as e:
            err = e
    c = m.wait_close(1)[0]
    check(c.get("reason") == "handshake_failed", "close reason %r, want handshake_failed: %r"
          % (c.get("reason"), c))
    check(b.connections() == [], "broker was contacted: %r" % b.connections())
    return err


@test
def client_trusting_another_ca_fails_to_connect(ctx):
    b, m = ctx.pair()
    err = _handshake_refused(ctx, m, ctx.client_context(cafile=ctx.pki.other_ca), b)
    check(isinstance(err, ssl.SSLCertVerificationError), "want a verify error, got %r" % err)
    rc, out = clients.pub(ctx, m, "itest/x", 4, 0, cafile=ctx.pki.other_ca)
    check(rc != 0, "mosquitto_pub trusting another CA succeeded: %s" % out)


@test
def tls_1_1_client_is_refused(ctx):
    b, m = ctx.pair()
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(ctx.pki.ca)
    c.set_ciphers("DEFAULT:@SECLEVEL=0")   # let the client really offer TLS 1.1
    c.minimum_version = ssl.TLSVersion.TLSv1_1
    c.maximum_version = ssl.TLSVersion.TLSv1_1
    err = _handshake_refused(ctx, m, c, b)
    check("PROTOCOL_VERSION" in str(err).upper() or "VERSION" in str(err).upper(),
          "want a protocol version alert, got %r" % err)


@test
def tls_1_2_client_succeeds_with_an_aead_forward_secret_suite(ctx):
    b, m = ctx.pair()
    s = ctx.tls_connect(m, ctx.client_context(maxv=ssl.TLSVersion.TLSv1_2))
    check(s.version() == "TLSv1.2", "negotiated %s" % s.version())
    name = s.cipher()[0]
    check(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name),
          "TLS 1.2 suite %s is not ECDHE + AEAD" % name)
    _connack_ok(ctx, m, s)
    s.sendall(w.disconnect())
    c = m.wait_close(1)[0]
    check(c.get("tls") == "TLSv1.2", "close line tls=%r" % c.get("tls"))


@test
def tls_1_3_client_succeeds(ctx):
    b, m = ctx.pair()
    s = ctx.tls_connect(m, ctx.client_context(minv=ssl.TLSVersion.TLSv1_3))
    check(s.version() == "TLSv1.3", "negotiated %s" % s.version())
    _connack_ok(ctx, m, s)


@test
def tls_1_2_cbc_only_client_is_refused(ctx):
    b, m = ctx.pair()
    c = ctx.client_context(maxv=ssl.TLSVersion.TLSv1_2)
    c.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")
    _handshake_refused(ctx, m, c, b)


@test
def tls_1_2_static_rsa_key_exchange_is_refused(ctx):
    b = ctx.broker()
    m = ctx.mqtls(broker=b, cert=ctx.pki.server_rsa_cert, key=ctx.pki.server_rsa_key)
    c = ctx.client_context(maxv=ssl.TLSVersion.TLSv1_2)
    c.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384")
    _handshake_refused(ctx, m, c, b)


def _s_client(m, ca, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (m.host, m.port),
                        "-CAfile", ca, "-verify_return_error", "-brief", *args],
                       input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return r.returncode, r.stdout.decode(errors="replace")


@test
def x25519_and_p256_key_exchange_groups_are_accepted(ctx):
    b = ctx.broker()
    ec = ctx.mqtls(broker=b)
    rsa = ctx.mqtls(broker=b, cert=ctx.pki.server_rsa_cert, key=ctx.pki.server_rsa_key)
    # In TLS 1.2 the groups a client offers also bound the curve of an ECDSA
    # certificate, so TLS 1.2 with X25519 alone is tried against the RSA chain.
    cases = [(ec, "X25519", "-tls1_3", "X25519"), (ec, "P-256", "-tls1_3", "prime256v1"),
             (ec, "P-256", "-tls1_2", "prime256v1"), (rsa, "X25519", "-tls1_2", "X25519"),
             (rsa, "P-256", "-tls1_2", "prime256v1")]
    for m, group, ver, shown in cases:
        rc, out = _s_client(m, ctx.pki.ca, "-groups", group, ver)
        check(rc == 0 and "Verification: OK" in out and shown in out,
              "s_client %s %s failed rc=%d: %s" % (group, ver, rc, out))


@test
def p384_only_client_is_refused(ctx):
    b, m = ctx.pair()
    rc, out = _s_client(m, ctx.pki.ca, "-groups", "P-384:P-521", "-tls1_3")
    check(rc != 0 and "CONNECTION ESTABLISHED" not in out,
          "s_client with only P-384/P-521 connected: %s" % out)
    c = m.wait_close(1)[0]
    check(c.get("reason") == "handshake_failed", "close reason %r" % c.get("reason"))


@test
def alpn_mqtt_is_negotiated_when_offered(ctx):
    b, m = ctx.pair()
    s = ctx.tls_connect(m, ctx.client_context(alpn=["mqtt"]))
    check(s.selected_alpn_protocol() == "mqtt", "ALPN %r" % s.selected_alpn_protocol())
    _connack_ok(ctx, m, s)
    rc, out = clients.pub(ctx, m, "itest/alpn", 4, 1, extra=["--tls-alpn", "mqtt"])
    check(rc == 0, "mosquitto_pub --tls-alpn mqtt failed: %s" % out)


@test
def client_without_alpn_is_served(ctx):
    b, m = ctx.pair()
    s = ctx.tls_connect(m)
    check(s.selected_alpn_protocol() is None, "ALPN %r" % s.selected_alpn_protocol())
    _connack_ok(ctx, m, s)


def _stall_after(ctx, m, first_bytes):
    """Sends first_bytes, then nothing; returns (seconds until mqtls closed, its close line)."""
    s = socket.create_connection((m.host, m.port), timeout=8)
    ctx.note_socket(s)
    t0 = time.monotonic()
    s.sendall(first_bytes)
    data = b""
    try:
        while True:    # a ServerHello may come first; read to the close
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - t0, m.wait_close(1)[0]


def _client_hello():
    """The bytes of a real TLS 1.3 ClientHello (from Python's ssl over memory BIOs)."""
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = c.wrap_bio(inc, out, server_side=False, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


@test
def stalled_hello_is_closed_at_the_hello_timeout(ctx):
    b, m = ctx.pair("--handshake-timeout", "4", "--hello-timeout", "1")
    took, c = _stall_after(ctx, m, b"\x16\x03\x01")    # the start of a record, then nothing
    check(0.8 <= took <= 2.5, "closed after %.2fs, want about 1s" % took)
    check(c.get("reason") == "hello_timeout" and c.get("state") == "handshake",
          "close line %r, want state=handshake reason=hello_timeout" % c)


@test
def stalled_handshake_after_the_hello_is_closed_at_the_handshake_timeout(ctx):
    # The ClientHello is complete, so the short deadline no longer applies:
    # the rest of the handshake has what is left of --handshake-timeout.
    b, m = ctx.pair("--handshake-timeout", "2", "--hello-timeout", "1")
    took, c = _stall_after(ctx, m, _client_hello())
    check(1.7 <= took <= 3.5, "closed after %.2fs, want about 2s" % took)
    check(c.get("reason") == "handshake_timeout" and c.get("state") == "handshake",
          "close line %r, want state=handshake reason=handshake_timeout" % c)


@test
def server_presents_the_full_chain(ctx):
    b, m = ctx.pair()
    rc, out = _s_client(m, ctx.pki.ca, "-showcerts")
    check(rc == 0, "s_client failed: %s" % out)
    # The client trusts only the root, so verification succeeding proves the
    # intermediate was sent.
    check("Verification: OK" in out, "chain did not verify: %s" % out)


@test
def nagle_client_gets_its_connack_without_waiting_for_a_delayed_ack(ctx):
    # Python's sockets leave Nagle on, like many embedded TCP stacks: the
    # CONNECT behind TLS 1.3's Finished waits for that Finished to be
    # acknowledged. mqtls acknowledges at once (TCP_QUICKACK); otherwise the
    # server's delayed ACK (about 40 ms) shows in every connect.
    b, m = ctx.pair()
    sslctx = ctx.client_context(minv=ssl.TLSVersion.TLSv1_3)
    took = []
    for i in range(9):
        raw = socket.create_connection((m.host, m.port), timeout=5)
        check(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0, "Nagle is off")
        s = ctx.note_socket(sslctx.wrap_socket(raw, server_hostname=m.host))
        t0 = time.monotonic()
        s.sendall(w.connect(4, client_id="nagle-%d" % i))
        t, _, body = w.Reader(s).read(5)
        took.append(time.monotonic() - t0)
        check(t == w.CONNACK and w.connack_code(body) == 0, "want CONNACK 0, got %d %r" % (t, body))
        s.close()
    took.sort()
    ctx.notes.append("CONNECT -> CONNACK with Nagle on: median %.1f ms, max %.1f ms"
                     % (took[4] * 1e3, took[-1] * 1e3))
    check(took[4] < 0.02, "median CONNECT -> CONNACK %.1f ms with Nagle on (a delayed ACK is ~40 ms)"
          % (took[4] * 1e3))
