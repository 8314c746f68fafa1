"""What passes through a session intact: wills and their properties, every
v5 CONNECT property, credentials (never logged), and clean close propagation
in both directions."""
import socket
import subprocess
import threading
import time

import mqttwire as w
from harness import check, test, wait_until


def _connack(ctx, m, data, **kw):
    s = ctx.tls_connect(m, **kw)
    s.sendall(data)
    r = w.Reader(s)
    t, _, body = r.read(5)
    check(t == w.CONNACK, "want CONNACK, got type %d" % t)
    return s, r, body


def _subscriber(ctx, m, topic, version=5, client_id="watcher"):
    s, r, body = _connack(ctx, m, w.connect(version, client_id=client_id))
    check(w.connack_code(body) == 0, "watcher CONNACK %r" % body)
    s.sendall(w.subscribe(1, topic, 1, version))
    check(r.read(5)[0] == w.SUBACK, "watcher got no SUBACK")
    return s, r


def _vanish(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def _str_prop(pid, v):
    return bytes([pid]) + w.utf8(v)


@test
def v311_will_is_published_when_the_client_vanishes(ctx):
    b, m = ctx.pair()
    ws, wr = _subscriber(ctx, m, "itest/will", 4)
    s, r, body = _connack(ctx, m, w.connect(4, client_id="mortal", will=("itest/will", "bye"),
                                            will_qos=1))
    check(body == b"\x00\x00", "CONNACK %r" % body)
    _vanish(s)
    t, f, pb = wr.read(5)
    check(t == w.PUBLISH and w.publish_fields(f, pb) == ("itest/will", b"bye"),
          "want the will, got %d %r" % (t, pb))


@test
def v5_connect_with_every_property_and_a_will_with_properties_passes_intact(ctx):
    b, m = ctx.pair()
    ws, wr = _subscriber(ctx, m, "itest/will5")
    props = (b"\x11\x00\x00\x00\x3c"            # session expiry 60
             b"\x21\x00\x0a"                    # receive maximum 10
             b"\x27\x00\x10\x00\x00"            # maximum packet size 1 MiB
             b"\x22\x00\x05"                    # topic alias maximum 5
             b"\x19\x01"                        # request response information
             b"\x17\x01"                        # request problem information
             + b"\x26" + w.utf8("k1") + w.utf8("v1")
             + b"\x26" + w.utf8("k1") + w.utf8("v2"))   # user properties may repeat
    will_props = (b"\x18\x00\x00\x00\x00"     # will delay 0
                  b"\x01\x01"                 # payload format: UTF-8
                  b"\x02\x00\x00\x00\x78"     # message expiry 120
                  + _str_prop(0x03, "text/plain")
                  + _str_prop(0x08, "itest/reply")
                  + b"\x09" + w.utf8(b"\x00\x01corr")
                  + b"\x26" + w.utf8("wk") + w.utf8("wv"))
    data = w.connect(5, client_id="props", properties=props, will=("itest/will5", "gone"),
                     will_properties=will_props, will_qos=1, username="user",
                     password="pw")
    s, r, body = _connack(ctx, m, data)
    check(w.connack_code(body) == 0, "CONNACK %r" % body)
    _vanish(s)
    t, f, pb = wr.read(5)
    check(t == w.PUBLISH, "want the will, got type %d" % t)
    check(w.publish_fields(f, pb, 5) == ("itest/will5", b"gone"), "will %r" % pb)
    got = w.publish_properties(f, pb)
    for want in (_str_prop(0x03, "text/plain"), _str_prop(0x08, "itest/reply"),
                 b"\x09" + w.utf8(b"\x00\x01corr"), b"\x01\x01",
                 b"\x26" + w.utf8("wk") + w.utf8("wv")):
        check(want in got, "will property %r lost; got %r" % (want, got))


def _auth_pair(ctx):
    pwfile = ctx.dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "alice", "s3cret-Pa55"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    b = ctx.broker(extra="password_file %s\n" % pwfile)
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    b.restart()
    return b, ctx.mqtls("--log-level", "debug", broker=b)


@test
def credentials_reach_the_broker_and_are_never_logged(ctx):
    b, m = _auth_pair(ctx)
    # mosquitto 2.0.11 answers a v5 bad password with 0x87 rather than 0x86.
    for version, bad_code in ((4, (0x05,)), (5, (0x86, 0x87))):
        s, r, body = _connack(ctx, m, w.connect(version, client_id="alice%d" % version,
                                                username="alice", password="s3cret-Pa55"))
        check(w.connack_code(body) == 0, "v%d good password: CONNACK %r" % (version, body))
        s.sendall(w.disconnect())
        s, r, body = _connack(ctx, m, w.connect(version, client_id="mallory%d" % version,
                                                username="alice", password="wrong-Pa55"))
        check(w.connack_code(body) in bad_code, "v%d bad password: CONNACK %r, want %r"
              % (version, body, bad_code))
        s, r, body = _connack(ctx, m, w.connect(version, client_id="anon%d" % version))
        check(w.connack_code(body) in (0x05, 0x87), "v%d anonymous: CONNACK %r"
              % (version, body))
    m.wait_close(6)
    log = m.log()
    check("s3cret" not in log and "wrong-Pa55" not in log, "a password appears in the mqtls log")


@test
def client_close_notify_ends_the_upstream_session(ctx):
    b, m = ctx.pair()
    s, r, body = _connack(ctx, m, w.connect(4, client_id="notifier"))
    s.unwrap()            # close_notify, TCP stays open
    wait_until(lambda: "Client notifier closed its connection" in b.log()
               or "Client notifier disconnected" in b.log(), 5,
               "the broker to see the session end after the client's close_notify")
    c = m.wait_close(1)[0]
    check(c.get("reason") == "client_closed", "close reason %r" % c.get("reason"))


@test
def data_sent_right_before_client_close_is_delivered(ctx):
    b, m = ctx.pair()
    ws, wr = _subscriber(ctx, m, "itest/last-words", 4)
    s, r, body = _connack(ctx, m, w.connect(4, client_id="hasty"))
    big = bytes(range(256)) * 8192          # 2 MiB: more than any one buffer
    s.sendall(w.publish("itest/last-words", big) + w.disconnect())
    s.close()
    t, f, pb = wr.read(10)
    check(t == w.PUBLISH and w.publish_fields(f, pb)[1] == big,
          "the last publish was lost or damaged")


class _ScriptedBroker:
    """A one-shot upstream on 127.0.0.1 that answers CONNECT with CONNACK, then
    writes `then` and closes at once: a broker that talks and hangs up, which
    mosquitto cannot be made to do on cue."""

    def __init__(self, then):
        self.then = then
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.error = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            self.ls.settimeout(10)
            c, _ = self.ls.accept()
            c.settimeout(10)
            r = w.Reader(c)
            t, _, _ = r.read(10)
            if t != w.CONNECT:
                raise AssertionError("scripted broker got type %d first" % t)
            c.sendall(w.packet(w.CONNACK, 0, b"\x00\x00\x00") + self.then)
            c.close()
        except Exception as e:   # reported by the test
            self.error = e
        finally:
            self.ls.close()


@test
def broker_output_is_flushed_before_a_clean_tls_close(ctx):
    big = bytes(range(256)) * 4096          # 1 MiB, then a v5 DISCONNECT 0x8E, then close
    sb = _ScriptedBroker(w.publish("itest/parting", big, version=5) +
                         w.packet(w.DISCONNECT, 0, b"\x8e\x00"))
    m = ctx.mqtls(upstream="127.0.0.1:%d" % sb.port)
    s, r, body = _connack(ctx, m, w.connect(5, client_id="listener"), strict_eof=True)
    check(body == b"\x00\x00\x00", "CONNACK %r" % body)
    seen = r.expect_closed(10)
    check(sb.error is None, "scripted broker: %r" % sb.error)
    check([t for t, _, _ in seen] == [w.PUBLISH, w.DISCONNECT], "client saw types %r"
          % [t for t, _, _ in seen])
    check(w.publish_fields(seen[0][1], seen[0][2], 5)[1] == big, "the 1 MiB publish differs")
    check(seen[1][2][:1] == b"\x8e", "DISCONNECT reason %r" % seen[1][2])
    check(r.closed_how == "EOF", "connection ended without close_notify: %s" % r.closed_how)
    c = m.wait_close(1)[0]
    check(c.get("reason") == "broker_closed", "close reason %r" % c.get("reason"))


@test
def broker_death_ends_the_client_with_close_notify(ctx):
    b, m = ctx.pair()
    s, r, body = _connack(ctx, m, w.connect(4, client_id="orphan"), strict_eof=True)
    b.kill()
    check(r.expect_closed(5) == [], "packets after the broker died")
    check(r.closed_how == "EOF", "connection ended without close_notify: %s" % r.closed_how)


@test
def keepalive_ping_passes_through(ctx):
    b, m = ctx.pair()
    s, r, body = _connack(ctx, m, w.connect(5, client_id="pinger", keepalive=5))
    for _ in range(3):
        s.sendall(w.pingreq())
        check(r.read(5)[0] == w.PINGRESP, "no PINGRESP")


@test
def log_level_error_writes_no_per_connection_lines(ctx):
    b, m = ctx.pair("--log-level", "error")
    s, r, body = _connack(ctx, m, w.connect(4, client_id="quiet"))
    s.sendall(w.disconnect())
    r.expect_closed(5)
    wait_until(lambda: "Client quiet disconnected" in b.log(), 5, "the broker to see DISCONNECT")
    time.sleep(0.2)
    check(m.close_lines() == [], "close lines at --log-level error: %r" % m.close_lines())
    check(m.log().strip() == "", "output at --log-level error: %r" % m.log()[:500])


@test
def tls_1_2_renegotiation_is_refused(ctx):
    b, m = ctx.pair()
    p = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (m.host, m.port),
                        "-tls1_2", "-CAfile", ctx.pki.ca],
                       input=b"R\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    out = p.stdout.decode(errors="replace")
    check("RENEGOTIATING" in out, "s_client did not try to renegotiate: %s" % out[-1000:])
    check("no renegotiation" in out, "renegotiation was not refused: %s" % out[-1000:])
