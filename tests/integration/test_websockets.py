"""MQTT over secure WebSockets (--ws-listen, --ws-path): real clients (paho,
asyncio-mqtt, MQTT.js) round trip through mqtls to a real mosquitto; a
hand-written client (wsclient.py) sends what real clients never do:
fragmented and split frames, pings, closes, and every hostile upgrade,
each answered before the broker is contacted. mosquitto_pub/sub cannot
speak WebSockets, so they do not appear here."""
import os
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
