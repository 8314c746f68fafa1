"""Topic ACLs at the edge (--acl-file, --acl-deny, a token's `acl` claim):
real clients (paho-mqtt 3.1.1 and 5, mosquitto_pub) through mqtls to a real
mosquitto. What a denied filter or message did NOT do is always proven by
ordering: a later message that was allowed arrives, and the denied one had
not arrived before it (one publisher, one broker: delivery is in order)."""
import re
import signal
import struct
import threading
import time
import urllib.request

import auth_env as A
import auth_jwt as J
import clients
import mqttwire as w
from harness import check, test, wait_until

import paho.mqtt.client as mqtt

PUBREC = 5

ACL = """# general section: clients without a username
topic read public/#
topic write public/in

user alice
topic readwrite alice/#
topic deny alice/secret
topic read shared/#

# everyone
pattern readwrite dev/%u/%c/#
"""


class Client:
    """A paho client (3.1.1 or 5) whose SUBACK codes, acknowledged publishes
    and received messages can be waited for."""

    def __init__(self, ctx, host, port, client_id, version=4, username=None, password=None,
                 tls=True):
        self.v5 = version == 5
        self.c = mqtt.Client(client_id=client_id,
                             protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311)
        if tls:
            self.c.tls_set(ca_certs=str(ctx.pki.ca))
        if username is not None:
            self.c.username_pw_set(username, password)
        self.cv = threading.Condition()
        self.rc = None
        self.subacks, self.acked, self.msgs = {}, set(), []
        self.disconnected = None
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        if self.v5:
            self.c.connect(host, port, keepalive=30, clean_start=True)
        else:
            self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        ctx.note_socket(self)
        self._wait(lambda: self.rc is not None, "CONNACK")
        check(self.rc == 0, "CONNACK rc=%s" % self.rc)

    def _note(self, fn):
        with self.cv:
            fn()
            self.cv.notify_all()

    def _on_connect(self, cl, ud, flags, rc, props=None):
        self._note(lambda: setattr(self, "rc", rc if isinstance(rc, int) else rc.value))

    def _on_subscribe(self, cl, ud, mid, granted, props=None):
        codes = [g if isinstance(g, int) else g.value for g in granted]
        self._note(lambda: self.subacks.__setitem__(mid, codes))

    def _on_publish(self, cl, ud, mid):
        self._note(lambda: self.acked.add(mid))

    def _on_message(self, cl, ud, msg):
        self._note(lambda: self.msgs.append((msg.topic, bytes(msg.payload))))

    def _on_disconnect(self, cl, ud, rc, props=None):
        self._note(lambda: setattr(self, "disconnected", rc if isinstance(rc, int) else rc.value))

    def _wait(self, pred, what, timeout=5):
        with self.cv:
            check(self.cv.wait_for(pred, timeout), "%s within %ss" % (what, timeout))

    def subscribe(self, *topics, qos=1):
        """SUBSCRIBE to all topics in one packet; returns the SUBACK codes."""
        rc, mid = self.c.subscribe([(t, qos) for t in topics])
        check(rc == 0, "subscribe rc=%s" % rc)
        self._wait(lambda: mid in self.subacks, "SUBACK %d" % mid)
        return self.subacks[mid]

    def publish(self, topic, payload, qos=1):
        """Publishes and waits for its PUBACK (qos 1) or for it to be sent."""
        info = self.c.publish(topic, payload, qos=qos)
        self._wait(lambda: info.mid in self.acked, "PUBACK for %s" % topic)

    def wait_msg(self, topic, payload, timeout=5):
        """Waits for a message; returns everything received up to it."""
        self._wait(lambda: (topic, payload) in self.msgs, "message %s %r" % (topic, payload),
                   timeout)
        with self.cv:
            return list(self.msgs[:self.msgs.index((topic, payload)) + 1])

    def kill(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def acl_pair(ctx, text=ACL, *args):
    b = ctx.broker()
    f = ctx.dir / "acl"
    f.write_text(text)
    return b, ctx.mqtls("--acl-file", f, *args, broker=b), f


def watcher(ctx, b, topic="#"):
    """A subscriber straight at the broker, past mqtls: sees what the broker got."""
    wt = Client(ctx, "127.0.0.1", b.port, "watcher", tls=False)
    wt.subscribe(topic)
    return wt


def denial_logged(m, topic):
    lines = m.wait_log("topic=\"%s\"" % topic)
    check("reason=acl_denied" in lines[0], "denial line: %s" % lines[0])
    return lines[0]


@test
def acl_user_section_mixed_subscribe_v311(ctx):
    b, m, _ = acl_pair(ctx)
    alice = Client(ctx, m.host, m.port, "c1", username="alice")
    # allowed, denied by a deny line, not granted at all, read-only grant
    codes = alice.subscribe("alice/x", "alice/secret", "other/#", "shared/a")
    check(codes == [1, 0x80, 0x80, 1], "SUBACK codes %s" % codes)
    line = denial_logged(m, "other/#")
    check('user="alice"' in line and 'client_id="c1"' in line and "packet=subscribe" in line, line)
    # The broker sends on what it has: the denied filters were never
    # subscribed, the allowed ones were.
    direct = Client(ctx, "127.0.0.1", b.port, "direct", tls=False)
    direct.publish("other/t", b"must not arrive")
    direct.publish("alice/secret", b"must not arrive either")
    direct.publish("shared/a", b"read grant")
    direct.publish("alice/x", b"last")
    got = alice.wait_msg("alice/x", b"last")
    check(got == [("shared/a", b"read grant"), ("alice/x", b"last")], "received %s" % got)
    # read-only: a publish to shared/a is dropped, but acknowledged (3.1.1)
    wt = watcher(ctx, b)
    alice.publish("shared/a", b"denied write")
    # QoS 2: mqtls answers PUBREC, the client's PUBREL goes on to the
    # broker, whose PUBCOMP for an id it never saw completes the flow
    alice.publish("shared/a", b"denied write, qos 2", qos=2)
    alice.publish("alice/y", b"allowed write")
    got = wt.wait_msg("alice/y", b"allowed write")
    check(got == [("alice/y", b"allowed write")], "denied publishes reached the broker: %s" % got)


@test
def acl_patterns_user_and_client_id(ctx):
    b, m, _ = acl_pair(ctx)
    wt = watcher(ctx, b)
    bob = Client(ctx, m.host, m.port, "dev42", username="bob")
    bob.publish("dev/bob/dev99/t", b"other client id")     # %c does not match
    bob.publish("dev/alice/dev42/t", b"other user")        # %u does not match
    bob.publish("dev/bob/dev42/t", b"own")
    got = wt.wait_msg("dev/bob/dev42/t", b"own")
    check(got == [("dev/bob/dev42/t", b"own")], "the broker got %s" % got)
    denial_logged(m, "dev/bob/dev99/t")
    # an anonymous client gets no %u pattern
    anon = Client(ctx, m.host, m.port, "dev42")
    codes = anon.subscribe("dev/bob/dev42/#", "public/#")
    check(codes == [0x80, 1], "anonymous SUBACK %s" % codes)


@test
def acl_general_section_for_anonymous_mosquitto_pub(ctx):
    b, m, _ = acl_pair(ctx)
    wt = watcher(ctx, b)
    sub = clients.Sub(ctx, m, "public/#", version=4, qos=1, count=1)
    sub.wait_subscribed()
    # mosquitto_pub QoS 1: it returns once the PUBACK came, from mqtls for
    # the denied one (3.1.1 has no reason code to say so)
    clients.pub(ctx, m, "private/x", qos=1, message="denied")
    clients.pub(ctx, m, "public/in", qos=1, message="allowed")
    got = wt.wait_msg("public/in", b"allowed")
    check(got == [("public/in", b"allowed")], "the broker got %s" % got)
    rc, msgs = sub.result()
    check(rc == 0 and msgs == [b"allowed"], "anonymous subscriber: rc=%s %r" % (rc, msgs))
    # a username gets its user section, not the general one: a user
    # without a section may do nothing
    carol = Client(ctx, m.host, m.port, "carol1", username="carol")
    check(carol.subscribe("public/#") == [0x80], "carol has no section")


@test
def acl_all_denied_subscribe_never_reaches_broker(ctx):
    b, m, _ = acl_pair(ctx)
    alice = Client(ctx, m.host, m.port, "alldenied", username="alice")
    check(alice.subscribe("x/1", "alice/secret") == [0x80, 0x80], "all denied")
    check(alice.subscribe("alice/ok") == [1], "then allowed")
    # The broker logs each SUBSCRIBE it gets; the allowed one (answered
    # after) is there, the denied one never was.
    wait_until(lambda: re.search(r"alice/ok", b.log()), 5, "the allowed SUBSCRIBE at the broker")
    n = len(re.findall(r"Received SUBSCRIBE from alldenied", b.log()))
    check(n == 1, "the broker received %d SUBSCRIBEs from the client" % n)
    check("x/1" not in b.log(), "the denied filter reached the broker")


def _tls_raw(ctx, m, version, cid, username=None):
    s = ctx.tls_connect(m)
    s.sendall(w.connect(version=version, client_id=cid, username=username))
    r = w.Reader(s)
    t, _, body = r.read()
    check(t == w.CONNACK and w.connack_code(body) == 0, "CONNACK %s %r" % (t, body))
    return s, r


def _publish_v5(topic, payload, qos, mid, alias=None):
    props = b"" if alias is None else bytes([0x23]) + struct.pack(">H", alias)
    body = w.utf8(topic) + (struct.pack(">H", mid) if qos else b"") + w.props(props) + payload
    return w.packet(w.PUBLISH, qos << 1, body)


@test
def acl_denied_qos1_publish_v5_gets_puback_0x87(ctx):
    b, m, _ = acl_pair(ctx)
    wt = watcher(ctx, b)
    s, r = _tls_raw(ctx, m, 5, "v5pub", username="alice")
    s.sendall(_publish_v5("alice/secret", b"no", 1, 7))
    t, _, body = r.read()
    check(t == w.PUBACK and body[:3] == b"\x00\x07\x87", "PUBACK %s %r" % (t, body))
    # QoS 2: PUBREC 0x87 ends the flow (5.0 4.3.3)
    s.sendall(_publish_v5("other/t", b"no", 2, 8))
    t, _, body = r.read()
    check(t == PUBREC and body[:3] == b"\x00\x08\x87", "PUBREC %s %r" % (t, body))
    # Topic alias: set on an allowed topic, then used with an empty topic;
    # a denied topic's alias stays denied when used alone
    s.sendall(_publish_v5("alice/secret", b"no", 1, 9, alias=2))
    s.sendall(_publish_v5("", b"no again", 1, 10, alias=2))
    s.sendall(_publish_v5("alice/ok", b"yes", 1, 11, alias=1))
    s.sendall(_publish_v5("", b"yes again", 1, 12, alias=1))
    acks = {}
    while len(acks) < 4:
        t, _, body = r.read()
        check(t == w.PUBACK, "expected PUBACK, got %s" % t)
        acks[struct.unpack(">H", body[:2])[0]] = body[2] if len(body) > 2 else 0
    check(acks[9] == 0x87 and acks[10] == 0x87, "alias denials %s" % acks)
    check(acks[11] == 0 and acks[12] == 0, "alias grants %s" % acks)
    got = wt.wait_msg("alice/ok", b"yes again")
    check(got == [("alice/ok", b"yes"), ("alice/ok", b"yes again")], "the broker got %s" % got)
    # mosquitto_pub 5.0 says what it got: PUBACK with reason 135 (0x87)
    rc, out = clients.pub(ctx, m, "alice/secret", version=5, qos=1, message="mp",
                          extra=["-d", "-u", "alice", "-i", "mp5"])
    check(re.search(r"received PUBACK \(Mid: \d+, RC:135\)", out), "mosquitto_pub: rc=%s %s" % (rc, out))
    rc, out = clients.pub(ctx, m, "alice/mp", version=5, qos=1, message="mp ok",
                          extra=["-d", "-u", "alice", "-i", "mp5"])
    check(rc == 0 and re.search(r"received PUBACK \(Mid: \d+, RC:0\)", out), "mosquitto_pub: %s" % out)
    got = wt.wait_msg("alice/mp", b"mp ok")
    check(("alice/secret", b"mp") not in got, "the broker got %s" % got)
    # paho 5: SUBACK reason codes 0x87 at the denied positions
    p5 = Client(ctx, m.host, m.port, "v5sub", version=5, username="alice")
    codes = p5.subscribe("nope/#", "alice/z", "alice/secret", "$share/g/alice/w", "$share/g/nope")
    check(codes == [0x87, 1, 0x87, 1, 0x87], "5.0 SUBACK %s" % codes)
    # the shared subscription that was allowed is real
    direct = Client(ctx, "127.0.0.1", b.port, "direct5", tls=False)
    direct.publish("alice/w", b"to the group")
    p5.wait_msg("alice/w", b"to the group")


@test
def acl_deny_disconnect(ctx):
    b, m, _ = acl_pair(ctx, ACL, "--acl-deny", "disconnect")
    wt = watcher(ctx, b)
    s, r = _tls_raw(ctx, m, 5, "v5dis", username="alice")
    s.sendall(_publish_v5("alice/ok", b"first", 1, 1) + _publish_v5("alice/secret", b"no", 1, 2) +
              _publish_v5("alice/ok", b"after", 1, 3))
    seen = r.expect_closed()
    types = [t for t, _, _ in seen]
    check(types and types[-1] == w.DISCONNECT and seen[-1][2][:1] == b"\x87",
          "packets before the close: %s" % seen)
    check(m.wait_close()[0]["reason"] == "acl_denied", "close reason")
    # 3.1.1: just closed
    s3, r3 = _tls_raw(ctx, m, 4, "v3dis", username="alice")
    s3.sendall(w.subscribe(1, "alice/secret", 1))
    seen = r3.expect_closed()
    check(all(t != w.SUBACK for t, _, _ in seen), "3.1.1 got %s" % seen)
    # the allowed publish before the denied one did reach the broker, the
    # one after it did not: a later allowed publish comes first
    p = Client(ctx, m.host, m.port, "later", username="alice")
    p.publish("alice/last", b"last")
    got = wt.wait_msg("alice/last", b"last")
    check(("alice/ok", b"first") in got and ("alice/ok", b"after") not in got, "broker got %s" % got)


@test
def acl_metrics_count_decisions(ctx):
    b = ctx.broker()
    f = ctx.dir / "acl"
    f.write_text(ACL)
    mport = clients_free_port()
    m = ctx.mqtls("--acl-file", f, "--metrics", "127.0.0.1:%d" % mport, broker=b)
    alice = Client(ctx, m.host, m.port, "met", username="alice")
    alice.subscribe("alice/a", "nope")
    alice.publish("nope", b"x")
    alice.publish("alice/a", b"y")
    alice.wait_msg("alice/a", b"y")
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()

    def val(packet, result):
        mm = re.search(r'mqtls_acl_decisions_total\{packet="%s",result="%s"\} (\d+)' % (packet, result),
                       text)
        return int(mm.group(1)) if mm else None
    check(val("subscribe", "allowed") == 1 and val("subscribe", "denied") == 1, text)
    check(val("publish", "allowed") == 1 and val("publish", "denied") == 1, text)
    # two allowed QoS 1 publishes awaited their PUBACKs, far below the ring
    check(re.search(r"^mqtls_acl_ack_untracked_total 0$", text, re.M), text)


def clients_free_port():
    from harness import free_port
    return free_port()


@test
def acl_reload_applies_to_new_connections(ctx):
    b, m, f = acl_pair(ctx)
    wt = watcher(ctx, b)
    old = Client(ctx, m.host, m.port, "old", username="alice")
    f.write_text(ACL.replace("topic readwrite alice/#", "topic readwrite alice/#\ntopic deny alice/x"))
    m.send(signal.SIGHUP)
    m.wait_log("reloaded the configuration")
    new = Client(ctx, m.host, m.port, "new", username="alice")
    new.publish("alice/x", b"denied now")
    new.publish("alice/y", b"still allowed")
    got = wt.wait_msg("alice/y", b"still allowed")
    check(("alice/x", b"denied now") not in got, "the new rules did not apply: %s" % got)
    # a live session keeps the rules it started with
    old.publish("alice/x", b"old session")
    wt.wait_msg("alice/x", b"old session")
    # a broken file is refused and the running rules stay
    f.write_text("frobnicate a/b\n")
    m.send(signal.SIGHUP)
    m.wait_log("reload failed")
    newer = Client(ctx, m.host, m.port, "newer", username="alice")
    check(newer.subscribe("alice/x", "alice/q") == [0x80, 1], "rules after a failed reload")


@test
def acl_bad_file_is_refused_at_start(ctx):
    f = ctx.dir / "acl"
    f.write_text("topic read ok/#\nfrobnicate a/b\n")
    rc, out, err = ctx.run_mqtls("--cert", ctx.pki.server_cert, "--key", ctx.pki.server_key,
                                 "--upstream", "127.0.0.1:1", "--acl-file", f)
    check(rc == 2 and "--acl-file" in err and ":2:" in err, "rc=%s err=%s" % (rc, err))


@test
def acl_jwt_claim(ctx):
    """A token's `acl` claim grants what it lists (%u is the token's
    subject); the broker's own ACL lets the user write id/<user>/#."""
    b = A.auth_broker(ctx)
    k = J.key("ec256")
    m = A.auth_mqtls(ctx, b, "--jwt-keys", J.keys_file(ctx, k), "--auth-fail-delay", "0")
    watch = A.Watcher(ctx, b, count=2)
    tok = J.token("ES256", k, payload=J.claims(
        sub="device-7", acl={"pub": ["id/%u/ok/#"], "sub": ["id/%u/cmd"]}))
    dev = Client(ctx, m.host, m.port, "dev-7", username="x", password=tok)
    check(dev.subscribe("id/device-7/cmd", "id/device-7/other") == [1, 0x80], "claim subs")
    dev.publish("id/device-7/no/1", b"denied by the claim")
    dev.publish("id/device-7/ok/1", b"granted")
    dev.publish("id/device-7/ok/2", b"granted too")
    msgs = watch.messages()
    check(msgs == ["id/device-7/ok/1 granted", "id/device-7/ok/2 granted too"],
          "the broker got %s" % msgs)
    # a token without the claim, and no --acl-file: no ACL at all
    tok2 = J.token("ES256", k, payload=J.claims(sub="device-7"))
    plain = Client(ctx, m.host, m.port, "dev-7b", username="x", password=tok2)
    check(plain.subscribe("id/device-7/other") == [1], "no claim, no ACL")
    # a malformed claim refuses the token
    tok3 = J.token("ES256", k, payload=J.claims(sub="device-7", acl={"pub": "id/#"}))
    c = mqtt.Client(client_id="dev-7c", protocol=mqtt.MQTTv311)
    c.tls_set(ca_certs=str(ctx.pki.ca))
    c.username_pw_set("x", tok3)
    res = {}
    ev = threading.Event()
    c.on_connect = lambda cl, ud, fl, rc, p=None: (res.__setitem__("rc", rc), ev.set())
    c.connect(m.host, m.port)
    c.loop_start()
    try:
        check(ev.wait(5) and res["rc"] == 4, "bad claim CONNACK %s" % res)
    finally:
        c.loop_stop()


@test
def acl_large_publishes_stream_through_the_filter(ctx):
    """A 1 MiB denied PUBLISH is cut out as it streams by; a 1 MiB allowed
    one arrives byte for byte, and so does what follows both."""
    b, m, _ = acl_pair(ctx)
    wt = watcher(ctx, b)
    alice = Client(ctx, m.host, m.port, "big", username="alice")
    big = bytes(range(256)) * 4096
    alice.publish("alice/secret", big)
    alice.publish("alice/big", big[::-1])
    alice.publish("alice/after", b"after", qos=0)
    got = wt.wait_msg("alice/after", b"after", timeout=15)
    check([t for t, _ in got] == ["alice/big", "alice/after"], "the broker got %s" % [t for t, _ in got])
    check(got[0][1] == big[::-1], "the allowed 1 MiB message changed on the way")


@test
def without_an_acl_the_stream_is_not_parsed(ctx):
    """No --acl-file, no claim: a PUBLISH mqtls would refuse with an ACL
    (QoS 3) goes to the broker untouched, and it is the broker that ends the
    session; with an ACL mqtls refuses it itself (5.0 DISCONNECT 0x81)."""
    b, m = ctx.pair()
    s, r = _tls_raw(ctx, m, 5, "opaque")
    bad = _publish_v5("x/y", b"q3", 1, 5)
    s.sendall(bytes([bad[0] | 0x06]) + bad[1:])
    r.expect_closed()
    check(m.wait_close()[0]["reason"] == "broker_closed", "close %s" % m.close_lines())
    b2, m2, _ = acl_pair(ctx)
    s, r = _tls_raw(ctx, m2, 5, "parsed", username="alice")
    s.sendall(bytes([bad[0] | 0x06]) + bad[1:])
    seen = r.expect_closed()
    check(seen and seen[-1][0] == w.DISCONNECT and seen[-1][2][:1] == b"\x81", "got %s" % seen)
    check(m2.wait_close()[0]["reason"] == "protocol_error", "close %s" % m2.close_lines())


def _acks_in_order(ctx, m, version, qos):
    """An allowed 1 MiB PUBLISH (id 1) and a denied one (id 2) back to back:
    the broker's ack for 1 reaches the client before mqtls's own for 2
    (MQTT-4.6.0-2), though mqtls could answer 2 long before the broker has
    all of 1."""
    s, r = _tls_raw(ctx, m, version, "order%d%d" % (version, qos), username="alice")
    big = bytes(range(256)) * 4096
    s.sendall(w.publish("alice/big", big, qos=qos, mid=1, version=version) +
              w.publish("alice/secret", b"no", qos=qos, mid=2, version=version))
    want = w.PUBACK if qos == 1 else PUBREC
    got = []
    for _ in range(2):
        t, _, body = r.read(timeout=15)
        check(t == want, "expected %s, got %s %r" % (want, t, body))
        got.append((struct.unpack(">H", body[:2])[0], body[2] if len(body) > 2 else 0))
    # 5.0: the broker's success (0, or no reason at all), mqtls's 0x87;
    # 3.1.1 carries no reason
    deny = 0x87 if version == 5 else 0
    check(got == [(1, 0), (2, deny)], "acks in this order: %s" % got)
    s.close()


@test
def acl_denial_ack_waits_for_earlier_broker_ack(ctx):
    b, m, _ = acl_pair(ctx)
    wt = watcher(ctx, b)
    _acks_in_order(ctx, m, 5, 1)
    _acks_in_order(ctx, m, 5, 2)
    _acks_in_order(ctx, m, 4, 1)
    got = wt.wait_msg("alice/big", bytes(range(256)) * 4096, timeout=15)
    check(all(t == "alice/big" for t, _ in got), "the broker got %s" % [t for t, _ in got])
