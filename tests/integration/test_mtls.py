"""Client certificates: --client-ca / --client-cert required|optional / --crl."""
import ssl

import clients
import mqttwire as w
from harness import check, test


def _mtls_pair(ctx, mode):
    b = ctx.broker()
    m = ctx.mqtls("--client-ca", ctx.pki.client_ca, "--client-cert", mode, "--crl", ctx.pki.crl,
                  broker=b)
    return b, m


def _attempt(ctx, m, cert):
    """TLS connect presenting cert (or none), send a CONNECT, read the reply.
    Returns ('connack', code) or ('refused', why). With TLS 1.3 a refused
    client certificate shows up on the first read, not in the handshake."""
    try:
        s = ctx.tls_connect(m, ctx.client_context(cert=cert))
        s.sendall(w.connect(4, client_id="mtls"))
        t, _, body = w.Reader(s).read(5)
    except (ssl.SSLError, w.Closed, ConnectionError) as e:
        return "refused", repr(e)
    check(t == w.CONNACK, "first packet type %d, want CONNACK" % t)
    return "connack", w.connack_code(body)


def _accepted(ctx, m, b, cert):
    r = _attempt(ctx, m, cert)
    check(r == ("connack", 0), "want CONNACK 0, got %r" % (r,))
    check(b.clients() == ["mtls"], "broker clients %r, want ['mtls']" % b.clients())


def _refused(ctx, m, b, cert, log_reason=None):
    r = _attempt(ctx, m, cert)
    check(r[0] == "refused", "want refusal, got %r" % (r,))
    c = m.wait_close(1)[0]
    check(c.get("reason") == "handshake_failed", "close reason %r, want handshake_failed: %r"
          % (c.get("reason"), c))
    if log_reason:
        lines = m.wait_log("verify failed")
        check(any(log_reason in l for l in lines),
              "no 'verify failed' line naming %r: %r" % (log_reason, lines))
    check(b.connections() == [], "broker was contacted: %r" % b.connections())


@test
def mtls_required_accepts_a_good_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "required")
    _accepted(ctx, m, b, ctx.pki.client_good)


@test
def mtls_required_refuses_a_client_without_certificate(ctx):
    b, m = _mtls_pair(ctx, "required")
    _refused(ctx, m, b, None)


@test
def mtls_required_refuses_an_untrusted_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "required")
    _refused(ctx, m, b, ctx.pki.client_untrusted, "unable to get local issuer certificate")


@test
def mtls_required_refuses_an_expired_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "required")
    _refused(ctx, m, b, ctx.pki.client_expired, "certificate has expired")


@test
def mtls_required_refuses_a_revoked_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "required")
    _refused(ctx, m, b, ctx.pki.client_revoked, "certificate revoked")


@test
def mtls_optional_accepts_a_client_without_certificate(ctx):
    b, m = _mtls_pair(ctx, "optional")
    _accepted(ctx, m, b, None)


@test
def mtls_optional_accepts_a_good_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "optional")
    _accepted(ctx, m, b, ctx.pki.client_good)


@test
def mtls_optional_refuses_an_untrusted_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "optional")
    _refused(ctx, m, b, ctx.pki.client_untrusted, "unable to get local issuer certificate")


@test
def mtls_optional_refuses_a_revoked_client_certificate(ctx):
    b, m = _mtls_pair(ctx, "optional")
    _refused(ctx, m, b, ctx.pki.client_revoked, "certificate revoked")


@test
def mtls_required_works_with_mosquitto_pub_cert_and_key(ctx):
    b, m = _mtls_pair(ctx, "required")
    cert, key = ctx.pki.client_good
    rc, out = clients.pub(ctx, m, "itest/mtls", 5, 1, extra=["--cert", cert, "--key", key])
    check(rc == 0, "mosquitto_pub with a good client cert failed rc=%d: %s" % (rc, out))
    rc, out = clients.pub(ctx, m, "itest/mtls", 5, 1)
    check(rc != 0, "mosquitto_pub without a client cert succeeded: %s" % out)


@test
def mtls_none_ignores_a_presented_client_certificate(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--client-cert", "none", broker=b)
    _accepted(ctx, m, b, ctx.pki.client_untrusted)
