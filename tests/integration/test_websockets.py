"""MQTT over secure WebSockets (--ws-listen, --ws-path): real clients (paho,
asyncio-mqtt, MQTT.js) round trip through mqtls to a real mosquitto; a
hand-written client (wsclient.py) sends what real clients never do:
fragmented and split frames, pings, closes, and every hostile upgrade,
each answered before the broker is contacted. mosquitto_pub/sub cannot
speak WebSockets, so they do not appear here."""
import os
import shutil
import subprocess
import threading
import urllib.request

import mqttwire as w
from harness import HERE, check, parse_kv, test, wait_until
from wsclient import WsConn, frame, upgrade_request, ws_addr

BIN, CONT, TEXT, CLOSE, PING, PONG = 0x2, 0x0, 0x1, 0x8, 0x9, 0xa


def ws_pair(ctx, *extra, **kw):
    b = ctx.broker()
    m = ctx.mqtls("--ws-listen", "127.0.0.1:0", *extra, broker=b, **kw)
    return b, m


def close_line(m, reason, timeout=5):
    """The close line with |reason| (waits for it)."""
    def find():
        for l in m.close_lines():
            if l.get("reason") == reason:
                return l
        return None
    return wait_until(find, timeout, "a close line with reason=%s" % reason)


def paho_ws(ctx, m, topic, payload, client_id="paho-ws", path="/mqtt", username=None,
            password=None, protocol=None):
    """paho over wss: ("refused", rc) or ("ok", payload received back)."""
    import paho.mqtt.client as mqtt
    c = mqtt.Client(client_id=client_id, protocol=protocol or mqtt.MQTTv311,
                    transport="websockets")
    c.ws_set_options(path=path)
    c.tls_set(ca_certs=ctx.pki.ca)
    if username:
        c.username_pw_set(username, password)
    got = {}
    ev_conn, ev_sub, ev_msg = threading.Event(), threading.Event(), threading.Event()

    def on_connect(cl, ud, flags, rc, props=None):
        got["rc"] = getattr(rc, "value", rc)
        ev_conn.set()

    def on_message(cl, ud, msg):
        got["msg"] = msg.payload
        ev_msg.set()

    c.on_connect, c.on_message = on_connect, on_message
    c.on_subscribe = lambda *a: ev_sub.set()
    host, port = ws_addr(m)
    c.connect(host, port, keepalive=30)
    c.loop_start()
    try:
        check(ev_conn.wait(8), "paho/wss: no CONNACK within 8s")
        if got["rc"] != 0:
            return "refused", got["rc"]
        c.subscribe(topic, qos=1)
        check(ev_sub.wait(5), "paho/wss: no SUBACK within 5s")
        c.publish(topic, payload, qos=1)
        check(ev_msg.wait(8), "paho/wss: own message not received within 8s")
        c.disconnect()
    finally:
        c.loop_stop()
    return "ok", got["msg"]


@test
def websockets_paho_round_trips_small_and_multi_frame_messages(ctx):
    b, m = ws_pair(ctx)
    got = paho_ws(ctx, m, "itest/ws", b"over wss")
    check(got == ("ok", b"over wss"), "paho got %r" % (got,))
    # 300 KB: many TLS records and frames each way, over --max-buffer's quarter.
    big = os.urandom(300 * 1024)
    got = paho_ws(ctx, m, "itest/ws/big", big, client_id="paho-ws-big")
    check(got[0] == "ok" and got[1] == big, "the 300 KB message came back altered (%d bytes)"
          % len(got[1] or b""))
    l = close_line(m, "client_closed")
    check(l.get("transport") == "ws", "close line without transport=ws: %r" % l)
    check(["paho-ws", "paho-ws-big"] == sorted(b.clients()), "broker saw %r" % b.clients())


@test
def websockets_paho_v5_asyncio_mqtt_and_mqttjs_round_trip(ctx):
    import paho.mqtt.client as mqtt
    from asyncio_mqtt import Client, TLSParameters
    import asyncio
    b, m = ws_pair(ctx)
    got = paho_ws(ctx, m, "itest/ws/v5", b"paho v5 over wss", client_id="paho-ws-v5",
                  protocol=mqtt.MQTTv5)
    check(got == ("ok", b"paho v5 over wss"), "paho v5 got %r" % (got,))
    host, port = ws_addr(m)

    async def aio():
        async with Client(host, port, client_id="aio-ws", transport="websockets",
                          websocket_path="/mqtt",
                          tls_params=TLSParameters(ca_certs=ctx.pki.ca)) as c:
            async with c.messages() as messages:
                await c.subscribe("itest/ws/aio", qos=1)
                await c.publish("itest/ws/aio", b"asyncio-mqtt over wss", qos=1)
                async for msg in messages:
                    return msg.payload
    got = asyncio.run(asyncio.wait_for(aio(), 10))
    check(got == b"asyncio-mqtt over wss", "asyncio-mqtt got %r" % (got,))
    # MQTT.js (the same script the TCP tests use) with a wss:// URL.
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
    r = subprocess.run(["/usr/bin/node", str(HERE / "mqttjs_client.js"),
                        "wss://%s:%d/mqtt" % (host, port), str(ctx.pki.ca), "4"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=15, env=env)
    out = r.stdout.decode(errors="replace")
    check(r.returncode == 0 and "GOT itest/mqttjs from mqtt.js" in out,
          "MQTT.js over wss rc=%d: %s" % (r.returncode, out))
    r = subprocess.run(["/usr/bin/node", str(HERE / "mqttjs_client.js"),
                        "wss://%s:%d/mqtt" % (host, port), str(ctx.pki.ca), "5"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=15, env=env)
    out = r.stdout.decode(errors="replace")
    check(r.returncode == 0 and "GOT itest/mqttjs from mqtt.js" in out,
          "MQTT.js 5.0 over wss rc=%d: %s" % (r.returncode, out))
    check(sorted(b.clients()) == ["aio-ws", "mqttjs-itest", "mqttjs-itest", "paho-ws-v5"],
          "broker saw %r" % b.clients())


def _raw_session(ctx, m, client_id):
    """An upgraded raw connection that sent CONNECT and got CONNACK 0."""
    c = WsConn(ctx, m)
    fields = c.upgrade()
    check(fields.get("sec-websocket-protocol") == "mqtt", "subprotocol answered: %r" % fields)
    c.send(frame(BIN, w.connect(client_id=client_id)))
    (t, _, body), = c.read_mqtt()
    check(t == 2 and w.connack_code(body) == 0, "CONNACK %r" % ((t, body),))
    return c


@test
def websockets_fragmented_frames_across_tls_records_carry_mqtt_and_pings_are_answered(ctx):
    b, m = ws_pair(ctx)
    c = _raw_session(ctx, m, "raw-ws")
    # SUBSCRIBE and the first half of a PUBLISH in one frame, the rest of
    # the PUBLISH in a message of four fragments with a ping between two of
    # them (control frames may interleave, RFC 6455 5.4), all of it sent in
    # TLS records of 7 bytes: headers, masks and payloads cut everywhere.
    payload = os.urandom(70000)     # a 64-bit frame length for the big fragment
    pub = w.publish("itest/raw", payload, qos=0)
    sub = w.subscribe(1, "itest/raw", qos=0)
    half = len(pub) // 2
    stream = frame(BIN, sub + pub[:10])
    stream += frame(BIN, pub[10:half], fin=False)
    stream += frame(CONT, pub[half:half + 5], fin=False)
    stream += frame(PING, b"are you there")
    stream += frame(CONT, b"", fin=False)
    stream += frame(CONT, pub[half + 5:], fin=True)
    c.send(stream[:len(frame(BIN, sub + pub[:10]))])
    (t, _, _), = c.read_mqtt()
    check(t == 9, "expected a SUBACK first, got type %d" % t)
    c.send_records(stream[len(frame(BIN, sub + pub[:10])):], 7)
    # The pong comes before the broker's copy of the message.
    fin, op, data = c.read_frame()
    check((fin, op, data) == (True, PONG, b"are you there"), "expected the pong, got %r"
          % ((fin, op, data[:40]),))
    (t, flags, body), = c.read_mqtt()
    topic_len = int.from_bytes(body[:2], "big")
    check(t == 3 and body[2:2 + topic_len] == b"itest/raw" and body[2 + topic_len:] == payload,
          "the message came back altered (type %d, %d bytes)" % (t, len(body)))
    # A pong from the client needs no answer; a ping right after it does.
    c.send(frame(PONG, b"unsolicited") + frame(PING, b"2"))
    check(c.read_frame() == (True, PONG, b"2"), "second ping not answered")
    c.send(frame(BIN, w.disconnect()) + frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"))
    check(c.read_frame() == (True, CLOSE, (1000).to_bytes(2, "big")),
          "the close was not echoed with 1000")
    check(c.s.recv(10) == b"", "mqtls did not close after the close handshake")
    l = close_line(m, "ws_closed")
    check(l.get("client_id") == "raw-ws" and l.get("transport") == "ws", "close line %r" % l)
    # in= counts the MQTT bytes, not the HTTP request nor the frame headers.
    mqtt_in = len(w.connect(client_id="raw-ws")) + len(sub) + len(pub) + len(w.disconnect())
    check(l.get("in") == str(mqtt_in), "in=%s, not the %d MQTT bytes sent" % (l.get("in"), mqtt_in))


@test
def websockets_refusal_connack_and_broker_close_end_with_a_close_frame(ctx):
    # A CONNACK refusal and a broker that goes away
    # both reach the client as MQTT first, then a close frame 1000.
    b, m = ws_pair(ctx)
    c = WsConn(ctx, m)
    c.upgrade()
    # [MQTT-3.1.3-8]: an empty client id without clean session: code 2.
    c.send(frame(BIN, w.connect(client_id="", clean=False)))
    (t, _, body), = c.read_mqtt()
    check(t == 2 and w.connack_code(body) == 2, "expected CONNACK 2, got %r" % ((t, body),))
    check(c.read_frame() == (True, CLOSE, (1000).to_bytes(2, "big")), "no close frame after the CONNACK")
    check(c.s.recv(10) == b"", "mqtls did not close")
    c2 = _raw_session(ctx, m, "raw-ws-2")
    b.stop()
    check(c2.read_frame() == (True, CLOSE, (1000).to_bytes(2, "big")),
          "no close frame when the broker went away")
    close_line(m, "broker_closed")


def _metrics(port):
    """{'name{labels}': value} scraped from /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out, text


def _refused(ctx, m, request):
    """Send |request| raw; returns (status, fields) of the answer, after
    which mqtls must close the connection."""
    c = WsConn(ctx, m)
    c.send(request)
    status, fields = c.http_answer()
    check(c.s.recv(10) == b"", "mqtls did not close after answering %d" % status)
    c.close()
    return status, fields


@test
def websockets_hostile_upgrades_are_refused_before_the_broker(ctx):
    from harness import free_port
    mport = free_port()
    b, m = ws_pair(ctx, "--metrics", "127.0.0.1:%d" % mport)
    key_ok = upgrade_request()[0]
    cases = [
        # (request, status, close reason, metric result, header it must carry)
        (upgrade_request(path="/other")[0], 404, "ws_bad_path", "bad_path", None),
        (upgrade_request(path="/mqtt/x")[0], 404, "ws_bad_path", "bad_path", None),
        (upgrade_request(protocol=None)[0], 400, "ws_bad_request", "bad_request", None),
        (upgrade_request(protocol="wamp, chat")[0], 400, "ws_bad_request", "bad_request", None),
        (b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "ws_bad_request", "bad_request", None),
        (b"POST /mqtt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400, "ws_bad_request",
         "bad_request", None),
        (upgrade_request(key="c2hvcnQ=")[0], 400, "ws_bad_request", "bad_request", None),
        (upgrade_request(version="8")[0], 400, "ws_bad_version", "bad_version",
         ("sec-websocket-version", "13")),
        (upgrade_request(version=None)[0], 400, "ws_bad_version", "bad_version",
         ("sec-websocket-version", "13")),
        (upgrade_request(extra="X-Filler: %s\r\n" % ("a" * 9000))[0], 431, "ws_header_too_large",
         "too_large", None),
    ]
    for req, status, reason, _, header in cases:
        got, fields = _refused(ctx, m, req)
        check(got == status, "%r... answered %d, not %d" % (req[:60], got, status))
        if header:
            check(fields.get(header[0]) == header[1], "answer %d lacks %s: %s (%r)"
                  % (got, header[0], header[1], fields))
        check("sec-websocket-accept" not in fields, "a refusal carried an accept key")
    # A text frame, an unmasked frame and a frame longer than any MQTT
    # packet, each right after a good upgrade: a close frame with 1003,
    # 1002 and 1009, then the connection ends.
    frames = [(frame(TEXT, b"hello"), 1003, "ws_text_frame"),
              (frame(BIN, w.connect(client_id="unmasked"), mask=False), 1002, "ws_protocol_error"),
              (b"\x82\xff" + (1 << 40).to_bytes(8, "big") + os.urandom(4), 1009, "ws_frame_too_big"),
              (frame(BIN, b"\x10", rsv=0x40), 1002, "ws_protocol_error")]
    for data, code, reason in frames:
        c = WsConn(ctx, m)
        c.upgrade()
        c.send(data)
        got = c.read_frame()
        check(got[:2] == (True, CLOSE) and got[2][:2] == code.to_bytes(2, "big"),
              "%r... got %r, not a close %d" % (data[:12], got, code))
        check(c.s.recv(10) == b"", "mqtls did not close after close %d" % code)
        c.close()
    # Then a good client: the broker's first and only connection is its.
    got = paho_ws(ctx, m, "itest/ws/after", b"still fine", client_id="after-hostile")
    check(got == ("ok", b"still fine"), "paho after the hostile ones got %r" % (got,))
    check(b.clients() == ["after-hostile"], "the broker saw %r" % b.clients())
    check(len(b.connections()) == 1, "the broker was contacted %d times" % len(b.connections()))
    lines = m.close_lines()
    for _, _, reason, _, _ in cases:
        check(any(l.get("reason") == reason and l.get("state") == "ws_upgrade" for l in lines),
              "no close line with reason=%s state=ws_upgrade" % reason)
    for _, _, reason in frames:
        check(any(l.get("reason") == reason and l.get("state") == "await_connect" for l in lines),
              "no close line with reason=%s state=await_connect" % reason)
    check(m.lines("refuse ") and any("reason=ws_text_frame" in l and "MQTT-6.0.0-1" in l
                                     for l in m.lines("refuse ")),
          "no refusal line naming [MQTT-6.0.0-1] for the text frame")
    v, text = _metrics(mport)
    want = {}
    for _, _, _, result, _ in cases:
        want[result] = want.get(result, 0) + 1
    want["ok"] = len(frames) + 1
    for result, n in want.items():
        got = v.get('mqtls_ws_upgrades_total{result="%s"}' % result)
        check(got == n, "mqtls_ws_upgrades_total{result=%s} is %r, not %d" % (result, got, n))
    check(v.get('mqtls_closed_total{reason="ws_text_frame"}') == 1, "ws_text_frame not counted")
    n = len(cases) + len(frames) + 1
    check(v.get('mqtls_connections_total{listener="wss://127.0.0.1:0"}') == n and
          v.get('mqtls_connections_total{listener="127.0.0.1:0"}') == 0,
          "connections by listener: %r (want %d on the wss one)"
          % ({k: x for k, x in v.items() if "connections_total" in k}, n))
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        check(r.returncode == 0, "promtool check metrics: %s" % r.stdout.decode())


@test
def websockets_upgrade_must_complete_within_the_hello_timeout(ctx):
    import time
    b, m = ws_pair(ctx, "--hello-timeout", "1")
    c = WsConn(ctx, m)
    t0 = time.monotonic()
    c.send(upgrade_request()[0][:40])     # a request that never ends
    check(c.s.recv(10) == b"", "mqtls answered an unfinished request")
    took = time.monotonic() - t0
    check(0.8 <= took <= 3, "closed after %.2fs, not about --hello-timeout 1" % took)
    l = close_line(m, "ws_upgrade_timeout")
    check(l.get("state") == "ws_upgrade", "close line %r" % l)
    got = paho_ws(ctx, m, "itest/ws/t", b"in time", client_id="in-time")
    check(got == ("ok", b"in time") and b.clients() == ["in-time"], "after the timeout: %r %r"
          % (got, b.clients()))


@test
def websockets_password_auth_admits_alice_and_refuses_a_wrong_password_with_4(ctx):
    import auth_env as A
    b, m = A.password_pair(ctx, "--ws-listen", "127.0.0.1:0")
    got = paho_ws(ctx, m, "id/alice/ws", b"alice over wss", client_id="ws-alice",
                  username="alice", password=A.PASSWORDS["alice"])
    check(got == ("ok", b"alice over wss"), "alice got %r" % (got,))
    check(A.broker_user_of(b, "ws-alice") == "alice", "the broker did not see alice")
    got = paho_ws(ctx, m, "id/alice/ws", b"x", client_id="ws-wrong", username="alice",
                  password=A.WRONG_PW)
    check(got == ("refused", 4), "a wrong password over wss got %r" % (got,))
    l = close_line(m, "bad_credentials")
    check(l.get("transport") == "ws" and l.get("client_id") == "ws-wrong", "close line %r" % l)
    check("ws-wrong" not in b.clients(), "the refused client reached the broker")


@test
def websockets_bad_flags_are_one_line_errors_naming_the_flag(ctx):
    base = ["--cert", ctx.pki.server_cert, "--key", ctx.pki.server_key, "--upstream", "127.0.0.1:1"]
    for extra, needle in [
            (["--ws-listen", "127.0.0.1:0", "--ws-path", "mqtt"], "--ws-path mqtt"),
            (["--ws-listen", "127.0.0.1:0", "--ws-path", "/mqtt?x=1"], "--ws-path /mqtt?x=1"),
            (["--ws-listen", "nowhere:port"], "--ws-listen"),
            (sum([["--ws-listen", "127.0.0.1:0"] for _ in range(8)], []), "at most 8 listeners")]:
        rc, out, err = ctx.run_mqtls(*(base + extra))
        lines = err.strip().splitlines()
        check(rc == 2 and len(lines) == 1 and needle in lines[0],
              "%r: rc=%d, stderr %r" % (extra, rc, err))


@test
def websockets_a_slow_reader_gets_every_broker_byte_in_order_through_blocked_writes(ctx):
    # 4 MB from the broker towards a client with a 4 KB receive window that
    # does not read at first: mqtls's frame writes block (WANT_WRITE) and
    # are retried, --max-buffer holds the broker back; every message must
    # then arrive whole and in order.
    import paho.mqtt.client as mqtt
    b, m = ws_pair(ctx)
    c = WsConn(ctx, m, rcvbuf=4096, timeout=15)
    c.upgrade()
    c.send(frame(BIN, w.connect(client_id="slow-ws")))
    (t, _, body), = c.read_mqtt()
    check(t == 2 and w.connack_code(body) == 0, "CONNACK %r" % ((t, body),))
    c.send(frame(BIN, w.subscribe(1, "itest/slow", qos=0)))
    (t, _, _), = c.read_mqtt()
    check(t == 9, "expected a SUBACK, got type %d" % t)
    msgs = [os.urandom(100 * 1024 + i) for i in range(40)]
    p = mqtt.Client(client_id="direct-pub")
    p.connect("127.0.0.1", b.port)
    p.loop_start()
    try:
        infos = [p.publish("itest/slow", x, qos=1) for x in msgs]
        for i in infos:
            i.wait_for_publish(10)
        # The broker took them all; the client has read nothing since its
        # SUBACK, so most of the 4 MB waits in mosquitto, mqtls and the kernel.
        got = c.read_mqtt(len(msgs))
    finally:
        p.loop_stop()
        p.disconnect()
    for i, (t, _, body) in enumerate(got):
        tl = int.from_bytes(body[:2], "big")
        check(t == 3 and body[2 + tl:] == msgs[i], "message %d came back altered" % i)


@test
def websockets_subprotocol_mqtt_is_preferred_and_a_query_string_is_ignored(ctx):
    b, m = ws_pair(ctx, "--ws-path", "/broker/mqtt")
    for i, (path, offered, chosen) in enumerate([("/broker/mqtt", "mqttv3.1", "mqttv3.1"),
                                                 ("/broker/mqtt?token=abc", "mqttv3.1, mqtt", "mqtt"),
                                                 ("/broker/mqtt", "chat,mqtt", "mqtt")]):
        c = WsConn(ctx, m)
        fields = c.upgrade(path=path, protocol=offered)
        check(fields.get("sec-websocket-protocol") == chosen,
              "offered %r on %s, answered %r" % (offered, path, fields))
        c.send(frame(BIN, w.connect(client_id="sp-%d" % i)))
        (t, _, body), = c.read_mqtt()
        check(t == 2 and w.connack_code(body) == 0, "CONNACK %r" % ((t, body),))
        c.close()
    got = paho_ws(ctx, m, "itest/sp", b"on another path", client_id="paho-path", path="/broker/mqtt")
    check(got == ("ok", b"on another path"), "paho on --ws-path /broker/mqtt got %r" % (got,))


@test
def websockets_stalled_upgrades_are_all_closed_at_the_timeout_while_others_connect(ctx):
    # 100 clients finish TLS and send 2 KB of a request head that never
    # ends: a good client still gets through at once, and every stalled
    # one is closed at --hello-timeout (1 s), counted as timeout.
    import time
    from harness import free_port
    mport = free_port()
    b, m = ws_pair(ctx, "--hello-timeout", "1", "--metrics", "127.0.0.1:%d" % mport)
    partial = upgrade_request(extra="X-Pad: %s\r\n" % ("p" * 2000))[0][:2100]
    rss0 = m.rss_kb()
    stalled = []
    for _ in range(100):
        c = WsConn(ctx, m)
        c.send(partial)
        stalled.append(c)
    rss1 = m.rss_kb()
    t0 = time.monotonic()
    got = paho_ws(ctx, m, "itest/ws/live", b"not stalled", client_id="live")
    took = time.monotonic() - t0
    check(got == ("ok", b"not stalled") and took < 2, "the good client got %r in %.2fs" % (got, took))
    for c in stalled:
        check(c.s.recv(10) == b"", "a stalled upgrade was answered")
    lines = [l for l in m.wait_close(101) if l.get("reason") == "ws_upgrade_timeout"]
    check(len(lines) == 100, "%d stalled upgrades closed at the timeout, not 100" % len(lines))
    v, _ = _metrics(mport)
    check(v.get('mqtls_ws_upgrades_total{result="timeout"}') == 100, "timeouts counted: %r"
          % v.get('mqtls_ws_upgrades_total{result="timeout"}'))
    check(b.clients() == ["live"], "the broker saw %r" % b.clients())
    ctx.notes.append("100 stalled upgrades: RSS %d -> %d KB (%.1f KB each while held)"
                     % (rss0, rss1, (rss1 - rss0) / 100.0))
