"""Session resumption with client certificates: a resumed session keeps the
client's identity (carried in the ticket), replicas sharing --ticket-keys
resume each other's mTLS sessions (behind a real HAProxy), and a ticket is
turned down when its certificate was revoked by a reloaded CRL or the
--client-ca contents changed (a full handshake follows, which checks the
certificate again)."""
import shutil
import signal
import socket
import ssl
import urllib.request

import mqttwire as w
from auth_fakebroker import FakeBroker
from harness import Proc, check, free_port, test, wait_until
from pki import PAST_START, _CA

VERSIONS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)


def _vname(v):
    return "TLS 1.2" if v == ssl.TLSVersion.TLSv1_2 else "TLS 1.3"


def _ticket_keys(path):
    import base64
    import os
    path.write_text(base64.b64encode(os.urandom(80)).decode() + "\n")
    return path


def _client(ctx, cert, version):
    return ctx.client_context(cert=tuple(map(str, cert)) if cert else None, minv=version, maxv=version)


def _mqtt(ctx, sslctx, host, port, client_id, session=None, src=None):
    """TLS (offering |session|) and CONNECT/CONNACK from address |src|:
    (session, reused). TLS 1.3 tickets come after the handshake, so the
    session is read after the CONNACK."""
    raw = socket.create_connection((host, port), timeout=5,
                                   source_address=(src, 0) if src else None)
    s = ctx.note_socket(sslctx.wrap_socket(raw, server_hostname="localhost", session=session))
    s.sendall(w.connect(4, client_id=client_id))
    t, _, body = w.Reader(s).read(5)
    check(t == w.CONNACK and w.connack_code(body) == 0, "%s: no CONNACK 0" % client_id)
    out = s.session, s.session_reused
    s.close()
    return out


def _refused(ctx, sslctx, m, client_id, session):
    """The attempt fails (in the handshake, or at the first read with TLS
    1.3); returns whether the client had offered its session."""
    raw = socket.create_connection((m.host, m.port), timeout=5)
    try:
        s = ctx.note_socket(sslctx.wrap_socket(raw, server_hostname="localhost", session=session))
        s.sendall(w.connect(4, client_id=client_id))
        w.Reader(s).read(5)
    except (ssl.SSLError, w.Closed, ConnectionError):
        return True
    return False


def _want(client_id, user=None):
    return w.connect(4, client_id=client_id, username=user)


def _reload(m):
    n = len(m.lines("reloaded"))
    m.send(signal.SIGHUP)
    wait_until(lambda: len(m.lines("reloaded")) > n, 5, "a reload line")
    check(not m.lines("reload failed"), "reload failed: %r" % m.lines("reload"))


def _metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    return dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))


@test(timeout=40)
def mtls_sessions_resume_with_the_identity_and_clients_without_certificate_resume_too(ctx):
    ca = _CA(ctx.dir, "ca", "resume test CA")
    dev = ca.issue(ctx.dir, "dev", "dev-cn-1", "ext_client")
    fb = FakeBroker(ctx)
    m = ctx.mqtls("--client-ca", ca.cert, "--client-cert", "optional", "--identity-as-username", "cn",
                  "--allow-anonymous", upstream=fb.upstream)
    want, n = [], 0
    for v in VERSIONS:
        for cert, user in ((dev, "dev-cn-1"), (None, None)):
            c = _client(ctx, cert, v)
            tag = "%s-%s" % ("cert" if cert else "anon", "12" if v == ssl.TLSVersion.TLSv1_2 else "13")
            sess, reused = _mqtt(ctx, c, m.host, m.port, tag + "-full")
            check(sess is not None and not reused, "%s: no session from the full handshake" % tag)
            _, reused = _mqtt(ctx, c, m.host, m.port, tag + "-resumed", sess)
            check(reused, "%s (%s): the session did not resume" % (tag, _vname(v)))
            want += [_want(tag + "-full", user), _want(tag + "-resumed", user)]
            n += 2
            got = fb.wait_connects(n)
            check(got == want, "%s: the broker got\n  %r\n want\n  %r" % (tag, got[-2:], want[-2:]))
    check(not m.lines("resume refused"), "refusals: %r" % m.lines("resume refused"))
    ctx.notes.append("TLS 1.2 and 1.3: resumed with the CN as username, and without certificate")


# The devices' address: HAProxy itself connects to the replicas from 127.0.0.1.
DEVICE = "127.0.0.7"


def _haproxy_roundrobin(ctx, replicas):
    """A real HAProxy in mode tcp, round robin over |replicas|, each server
    line with send-proxy-v2 (the replicas run with --accept-proxy)."""
    port = free_port()
    conf = ctx.dir / "haproxy.cfg"
    servers = "".join("  server m%d %s:%d send-proxy-v2\n" % (i, r.host, r.port)
                      for i, r in enumerate(replicas))
    conf.write_text(
        "global\n  maxconn 200\n  nbthread 1\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
        "frontend fe\n  bind 127.0.0.1:%d\n  default_backend be\n"
        "backend be\n  balance roundrobin\n%s" % (port, servers))
    Proc(ctx, "haproxy", ["haproxy", "-db", "-f", conf], ctx.dir / "haproxy.log")

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_until(listening, 5, "haproxy to listen")
    return port


@test(timeout=40)
def replicas_behind_haproxy_sharing_ticket_keys_resume_each_others_mtls_sessions(ctx):
    keys = _ticket_keys(ctx.dir / "ticket.keys")
    ca = _CA(ctx.dir, "ca", "replica test CA")
    dev = ca.issue(ctx.dir, "dev", "dev-cn-7", "ext_client")
    brokers = [FakeBroker(ctx), FakeBroker(ctx)]
    replicas = [ctx.mqtls("--accept-proxy", "--client-ca", ca.cert, "--client-cert", "optional",
                          "--identity-as-username", "cn", "--allow-anonymous", "--ticket-keys", keys,
                          upstream=fb.upstream) for fb in brokers]
    port = _haproxy_roundrobin(ctx, replicas)
    seen = lambda: [len(fb.connects) for fb in brokers]
    for v in VERSIONS:
        for cert, user in ((dev, "dev-cn-7"), (None, None)):
            tag = "%s, %s" % (_vname(v), "client certificate" if cert else "no certificate")
            c = _client(ctx, cert, v)
            before = seen()
            sess, _ = _mqtt(ctx, c, "127.0.0.1", port, "full", src=DEVICE)
            first = [a - b for a, b in zip(wait_until(
                lambda: seen() if sum(seen()) == sum(before) + 1 else None, 5, "the first CONNECT"),
                before)].index(1)
            _, reused = _mqtt(ctx, c, "127.0.0.1", port, "resumed", sess, src=DEVICE)
            after = [a - b for a, b in zip(wait_until(
                lambda: seen() if sum(seen()) == sum(before) + 2 else None, 5, "both CONNECTs"),
                before)]
            check(after[1 - first] == 1, "%s: both connections went to replica %d" % (tag, first))
            check(reused, "%s: replica %d did not resume replica %d's session" % (tag, 1 - first, first))
            check(brokers[1 - first].connects[-1] == _want("resumed", user),
                  "%s: the resumed CONNECT was %r" % (tag, brokers[1 - first].connects[-1]))
    # The PROXY header, not HAProxy's own connection (from 127.0.0.1),
    # named the client: every close line has the device's address.
    for r in replicas:
        peers = [c.get("peer", "") for c in r.close_lines() if c.get("client_id") in ("full", "resumed")]
        check(peers and all(p.startswith(DEVICE + ":") for p in peers), "peers logged: %r" % peers)
    ctx.notes.append("HAProxy (send-proxy-v2) round robin: each replica resumed the other's session, "
                     "TLS 1.2 and 1.3, with the CN and without a certificate")


@test(timeout=60)
def a_ticket_of_a_certificate_revoked_by_a_reloaded_crl_is_refused_others_still_resume(ctx):
    ca = _CA(ctx.dir, "ca", "revocation test CA")
    good = ca.issue(ctx.dir, "good", "good-1", "ext_client")
    doomed = ca.issue(ctx.dir, "doomed", "doomed-1", "ext_client")
    crl = ca.crl(ctx.dir / "crl.pem")
    mport = free_port()
    fb = FakeBroker(ctx)
    # No --ticket-keys: the process's own keys outlive the reload.
    m = ctx.mqtls("--client-ca", ca.cert, "--client-cert", "required", "--crl", crl,
                  "--identity-as-username", "cn", "--metrics", "127.0.0.1:%d" % mport,
                  upstream=fb.upstream)
    # A session resumes only with the client context that made it.
    cs = {(n, v): _client(ctx, c, v) for n, c in (("good", good), ("doomed", doomed)) for v in VERSIONS}
    sessions = {k: _mqtt(ctx, c, m.host, m.port, k[0] + "-full")[0] for k, c in cs.items()}
    ca.revoke(doomed[0])
    ca.crl(crl)
    _reload(m)
    for i, v in enumerate(VERSIONS):
        check(_refused(ctx, cs["doomed", v], m, "doomed-again", sessions["doomed", v]),
              "%s: the revoked certificate's session was admitted" % _vname(v))
        lines = wait_until(lambda: (lambda l: l if len(l) > i else None)(
            m.lines("resume refused")), 5, "a 'resume refused' line")
        check("reason=revoked" in lines[i], "refusal line %r" % lines[i])
        # Another client of the same CA still resumes, after the refusal.
        _, reused = _mqtt(ctx, cs["good", v], m.host, m.port, "good-again", sessions["good", v])
        check(reused, "%s: the good certificate's session no longer resumes" % _vname(v))
    got = fb.wait_connects(6)
    check([p for p in got if b"doomed-again" in p] == [], "the broker saw the revoked client")
    check(got[-1] == _want("good-again", "good-1"), "the resumed CONNECT was %r" % got[-1])
    check(len(m.lines("verify failed")) == 2, "the full handshakes that followed did not fail "
          "verification: %r" % m.lines("verify failed"))
    met = _metrics(mport)
    check(met.get('mqtls_resumptions_refused_total{reason="revoked"}') == "2",
          "metric: %r" % {k: v for k, v in met.items() if "resum" in k})
    ctx.notes.append("revoked: refused twice (TLS 1.2, 1.3) with reason=revoked; the other client resumed")


@test(timeout=40)
def a_changed_client_ca_file_turns_old_tickets_down(ctx):
    ca, other = _CA(ctx.dir, "ca", "first CA"), _CA(ctx.dir, "other", "second CA")
    dev = ca.issue(ctx.dir, "dev", "dev-cn-3", "ext_client")
    bundle = ctx.dir / "client-ca.pem"
    shutil.copy(str(ca.cert), str(bundle))
    fb = FakeBroker(ctx)
    m = ctx.mqtls("--client-ca", bundle, "--client-cert", "required", "--identity-as-username", "cn",
                  upstream=fb.upstream)
    cs = {v: _client(ctx, dev, v) for v in VERSIONS}
    sessions = {v: _mqtt(ctx, cs[v], m.host, m.port, "before")[0] for v in VERSIONS}
    # A second CA joins the bundle: the certificate is still trusted, but
    # sessions made under the old contents no longer resume.
    bundle.write_bytes(bundle.read_bytes() + other.cert.read_bytes())
    _reload(m)
    for i, v in enumerate(VERSIONS):
        _, reused = _mqtt(ctx, cs[v], m.host, m.port, "after", sessions[v])
        check(not reused, "%s: a session from before the CA change resumed" % _vname(v))
        lines = m.wait_log("resume refused")
        check(len(lines) == i + 1 and "reason=ca_changed" in lines[i], "refusal lines %r" % lines)
    got = fb.wait_connects(4)
    check(got[-1] == _want("after", "dev-cn-3"), "the full handshake's CONNECT was %r" % got[-1])
    ctx.notes.append("CA file changed: tickets turned down (reason=ca_changed), full handshakes admitted")


@test(timeout=40)
def a_ticket_of_a_certificate_expired_since_is_refused(ctx):
    import time
    ca = _CA(ctx.dir, "ca", "expiry test CA")
    end = time.time() + 3
    short = ca.issue(ctx.dir, "short", "short-1", "ext_client", start=PAST_START,
                     end=time.strftime("%Y%m%d%H%M%SZ", time.gmtime(end)))
    fb = FakeBroker(ctx)
    m = ctx.mqtls("--client-ca", ca.cert, "--client-cert", "required", "--identity-as-username", "cn",
                  upstream=fb.upstream)
    c = _client(ctx, short, ssl.TLSVersion.TLSv1_3)
    sess, _ = _mqtt(ctx, c, m.host, m.port, "before")
    # The refusal is judged on mqtls's clock, which passes notAfter too.
    wait_until(lambda: time.time() > end + 1, 6, "the certificate to expire")
    check(_refused(ctx, c, m, "after", sess), "the expired certificate's session was admitted")
    line = m.wait_log("resume refused")[0]
    check("reason=expired" in line, "refusal line %r" % line)
    check(len(fb.wait_connects(1)) == 1 and b"after" not in fb.connects[-1], "the broker saw the expired client")
    ctx.notes.append("expired since the ticket: refused with reason=expired")
