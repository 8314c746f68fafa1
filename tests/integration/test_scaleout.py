"""Behind a load balancer and in front of brokers that want to know who the
client is: PROXY protocol headers in (--accept-proxy, with a real HAProxy
sending them) and out (--send-proxy-v2, read by a broker stub field by field)."""
import socket
import struct
import threading
import time

import mqttwire as w
from harness import Proc, check, free_port, test, wait_until

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _haproxy(ctx, m, send="send-proxy-v2"):
    """HAProxy (mode tcp) in front of mqtls m; returns its port."""
    port = free_port()
    conf = ctx.dir / "haproxy.cfg"
    conf.write_text(
        "global\n  maxconn 200\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
        "frontend fe\n  bind 127.0.0.1:%d\n  default_backend be\n"
        "backend be\n  server m1 %s:%d %s\n" % (port, m.host, m.port, send))
    Proc(ctx, "haproxy", ["haproxy", "-db", "-f", conf], ctx.dir / "haproxy.log")
    wait_until(lambda: _listening(port), 5, "haproxy to listen")
    return port


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _connect_via(ctx, port, src, version=4, client_id="c"):
    """TLS from source address src to 127.0.0.1:port, one CONNECT: the CONNACK code or None."""
    raw = socket.socket()
    raw.bind((src, 0))
    raw.settimeout(5)
    raw.connect(("127.0.0.1", port))
    s = ctx.note_socket(ctx.client_context().wrap_socket(raw, server_hostname="localhost"))
    s.sendall(w.connect(version, client_id=client_id))
    try:
        t, _, body = w.Reader(s).read(5)
    except w.Closed:
        return s, None
    check(t == w.CONNACK, "want CONNACK, got type %d" % t)
    return s, w.connack_code(body)


@test(timeout=40)
def haproxy_send_proxy_v2_gives_mqtls_the_client_address_for_logs_and_limits(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--accept-proxy", "--max-conn-per-ip", "1", broker=b)
    hp = _haproxy(ctx, m)
    s1, c1 = _connect_via(ctx, hp, "127.0.0.2", client_id="via-lb-1")
    check(c1 == 0, "first client through HAProxy: CONNACK %r" % c1)
    # The limit counts 127.0.0.2, not HAProxy's own address.
    s2, c2 = _connect_via(ctx, hp, "127.0.0.2", version=5, client_id="via-lb-2")
    check(c2 == 0x97, "second client from 127.0.0.2: CONNACK %r, want 0x97 (per-address limit)" % c2)
    s3, c3 = _connect_via(ctx, hp, "127.0.0.3", client_id="via-lb-3")
    check(c3 == 0, "a client from 127.0.0.3: CONNACK %r" % c3)
    s1.close()
    # (HAProxy's own probe of its port shows up as one more close line.)
    closes = wait_until(lambda: (lambda c: c if {"via-lb-1", "via-lb-2"} <= {x.get("client_id") for x in c}
                                 else None)(m.close_lines()), 5, "the close lines of both clients")
    peers = {c.get("client_id"): c.get("peer", "") for c in closes}
    check(peers.get("via-lb-1", "").startswith("127.0.0.2:"), "close line peer %r, want 127.0.0.2" % peers)
    check(peers.get("via-lb-2", "").startswith("127.0.0.2:"), "close line peer %r, want 127.0.0.2" % peers)


@test(timeout=30)
def haproxy_send_proxy_v1_works_too(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--accept-proxy", broker=b)
    hp = _haproxy(ctx, m, send="send-proxy")
    s, c = _connect_via(ctx, hp, "127.0.0.4", client_id="via-v1")
    check(c == 0, "CONNACK %r through HAProxy with a v1 header" % c)
    s.close()
    c = wait_until(lambda: [x for x in m.close_lines() if x.get("client_id") == "via-v1"], 5,
                   "the client's close line")[0]
    check(c.get("peer", "").startswith("127.0.0.4:"), "close line %r, want peer 127.0.0.4" % c)


@test
def accept_proxy_closes_a_client_without_a_header_and_the_broker_never_hears(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--accept-proxy", broker=b)
    raw = socket.create_connection((m.host, m.port), timeout=5)
    ctx.note_socket(raw)
    raw.sendall(b"\x16\x03\x01\x02\x00" + b"\x01" * 100)     # a TLS record, no header
    raw.settimeout(5)
    try:
        data = raw.recv(100)
    except ConnectionResetError:
        data = b""
    check(data == b"", "want a close, got %r" % data)
    c = m.wait_close(1)[0]
    check(c.get("reason") == "proxy_header_invalid" and c.get("state") == "proxy_header",
          "close line %r" % c)
    check(b.clients() == [], "the broker saw %r" % b.clients())


@test
def accept_proxy_stalled_header_is_closed_at_the_hello_timeout(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--accept-proxy", "--hello-timeout", "1", broker=b)
    raw = socket.create_connection((m.host, m.port), timeout=5)
    ctx.note_socket(raw)
    t0 = time.monotonic()
    raw.sendall(b"PROXY TCP4 192.0.2.1 ")
    raw.settimeout(5)
    try:
        raw.recv(100)
    except ConnectionResetError:
        pass
    took = time.monotonic() - t0
    c = m.wait_close(1)[0]
    check(c.get("reason") == "proxy_header_timeout" and 0.8 <= took <= 2.5,
          "after %.1fs: %r (want proxy_header_timeout after ~1 s)" % (took, c))


class _StubBroker:
    """Accepts one connection, reads a PROXY v2 header and a CONNECT, answers
    CONNACK 0; keeps the header's fields for the test."""

    def __init__(self, ctx):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.fields = None
        self.error = None
        ctx.note_socket(self.sock)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _read(self, c, n):
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
            sig, ver_cmd, fam, length = head[:12], head[12], head[13], struct.unpack(">H", head[14:16])[0]
            body = self._read(c, length)
            f = {"sig": sig, "ver_cmd": ver_cmd, "fam": fam}
            src, dst, sport, dport = struct.unpack(">4s4sHH", body[:12])
            f.update(src=socket.inet_ntoa(src), dst=socket.inet_ntoa(dst), sport=sport, dport=dport)
            tlvs, i = {}, 12
            while i < len(body):
                t, n = body[i], struct.unpack(">H", body[i + 1:i + 3])[0]
                tlvs[t] = body[i + 3:i + 3 + n]
                i += 3 + n
            f["tlvs"] = tlvs
            ssl = tlvs.get(0x20)
            if ssl:
                f["ssl_client"], f["ssl_verify"] = ssl[0], struct.unpack(">I", ssl[1:5])[0]
                sub, j = {}, 5
                while j < len(ssl):
                    t, n = ssl[j], struct.unpack(">H", ssl[j + 1:j + 3])[0]
                    sub[t] = ssl[j + 3:j + 3 + n]
                    j += 3 + n
                f["ssl_sub"] = sub
            # Then the CONNECT, as the client sent it.
            hdr = self._read(c, 2)
            rest = hdr[1]
            f["connect_type"] = hdr[0] >> 4
            self._read(c, rest)
            c.sendall(b"\x20\x02\x00\x00")
            self.fields = f
            self.conn = c
        except Exception as e:      # reported by the test
            self.error = repr(e)


@test(timeout=30)
def send_proxy_v2_tells_the_broker_the_client_address_and_tls_field_by_field(ctx):
    stub = _StubBroker(ctx)
    cert = ctx.pki.client_good
    m = ctx.mqtls("--send-proxy-v2", "--client-ca", ctx.pki.client_ca, "--client-cert", "optional",
                  upstream="127.0.0.1:%d" % stub.port)
    raw = socket.socket()
    raw.bind(("127.0.0.5", 0))
    raw.settimeout(5)
    raw.connect((m.host, m.port))
    s = ctx.note_socket(ctx.client_context(cert=cert).wrap_socket(raw, server_hostname="localhost"))
    s.sendall(w.connect(4, client_id="pp2"))
    t, _, body = w.Reader(s).read(5)
    check(t == w.CONNACK and w.connack_code(body) == 0, "CONNACK from the stub %r %r" % (t, body))
    wait_until(lambda: stub.fields or stub.error, 5, "the stub to read the header")
    check(stub.error is None, "stub: %s" % stub.error)
    f = stub.fields
    check(f["sig"] == V2_SIG and f["ver_cmd"] == 0x21 and f["fam"] == 0x11, "header start %r" % f)
    check(f["src"] == "127.0.0.5" and f["sport"] == s.getsockname()[1], "source %r" % f)
    check(f["dst"] == "127.0.0.1" and f["dport"] == m.port, "destination %r" % f)
    check(f.get("ssl_client") == 0x03 and f.get("ssl_verify") == 0,
          "PP2_TYPE_SSL client=%r verify=%r, want 0x03 (SSL, certificate) and 0" % (f.get("ssl_client"),
                                                                                    f.get("ssl_verify")))
    check(f["ssl_sub"].get(0x21) == b"TLSv1.3", "SSL version TLV %r" % f["ssl_sub"])
    check(f["ssl_sub"].get(0x22) == b"good-client", "SSL CN TLV %r" % f["ssl_sub"])
    check(f["connect_type"] == w.CONNECT, "the CONNECT follows the header")


# -- shared session ticket keys (--ticket-keys) ------------------------------------------

def _ticket_key_file(path, *keys):
    import base64
    path.write_text("".join(base64.b64encode(k).decode() + "\n" for k in keys))
    return path


def _session_from(ctx, m, sslctx, client_id):
    """A full handshake and CONNECT/CONNACK with m; returns the TLS session
    (TLS 1.3 tickets arrive after the handshake, so after the CONNACK)."""
    s = ctx.tls_connect(m, sslctx)
    s.sendall(w.connect(4, client_id=client_id))
    t, _, _ = w.Reader(s).read(5)
    check(t == w.CONNACK, "no CONNACK")
    sess = s.session
    s.close()
    return sess


def _resumes(ctx, m, sslctx, sess, client_id):
    raw = socket.create_connection((m.host, m.port), timeout=5)
    s = ctx.note_socket(sslctx.wrap_socket(raw, server_hostname="localhost", session=sess))
    s.sendall(w.connect(4, client_id=client_id))
    t, _, _ = w.Reader(s).read(5)
    check(t == w.CONNACK, "no CONNACK on the second replica")
    reused = s.session_reused
    s.close()
    return reused


@test(timeout=40)
def replicas_sharing_ticket_keys_resume_each_others_sessions(ctx):
    import os
    import ssl
    keys = _ticket_key_file(ctx.dir / "ticket.keys", os.urandom(48), os.urandom(80))
    other = _ticket_key_file(ctx.dir / "other.keys", os.urandom(48))
    b = ctx.broker()
    a = ctx.mqtls("--ticket-keys", keys, broker=b)
    r = ctx.mqtls("--ticket-keys", keys, broker=b)
    stranger = ctx.mqtls("--ticket-keys", other, broker=b)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = ctx.client_context(minv=version, maxv=version)
        sess = _session_from(ctx, a, c, "first")
        check(sess is not None, "no session from replica a (%s)" % version)
        check(_resumes(ctx, r, c, sess, "second"), "%s: replica b did not resume a's session" % version)
        sess = _session_from(ctx, a, c, "first-again")
        check(not _resumes(ctx, stranger, c, sess, "third"),
              "%s: a replica with other keys resumed the session" % version)
    ctx.notes.append("resumed on the other replica with TLS 1.2 and 1.3; refused by other keys")


@test(timeout=40)
def ticket_key_rotation_keeps_old_tickets_valid_and_bad_files_are_refused(ctx):
    import os
    import ssl
    old, new = os.urandom(48), os.urandom(48)
    keys = _ticket_key_file(ctx.dir / "ticket.keys", old)
    b = ctx.broker()
    m = ctx.mqtls("--ticket-keys", keys, broker=b)
    c = ctx.client_context(minv=ssl.TLSVersion.TLSv1_3)
    sess = _session_from(ctx, m, c, "before")
    # Rotation: the new key goes on top; the old one still decrypts.
    tmp = ctx.dir / "ticket.keys.tmp"
    _ticket_key_file(tmp, new, old)
    os.rename(tmp, keys)
    m.wait_log("reloaded", 10)
    check(_resumes(ctx, m, c, sess, "after"), "a ticket from the old key no longer resumes")
    # A broken file is a one-line startup error naming it and the line.
    bad = ctx.dir / "bad.keys"
    bad.write_text("not base64 !!\n")
    rc, out, err = ctx.run_mqtls("--listen", "127.0.0.1:0", "--cert", ctx.pki.server_cert, "--key",
                                 ctx.pki.server_key, "--upstream", b.upstream, "--ticket-keys", bad)
    check(rc == 2 and len(err.strip().splitlines()) == 1 and "bad.keys:1" in err,
          "rc %d, stderr %r" % (rc, err))
