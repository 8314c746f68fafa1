"""Drivers for the real MQTT clients the tests use against mqtls:
mosquitto_pub/mosquitto_sub, paho-mqtt, asyncio-mqtt and MQTT.js."""
import asyncio
import os
import subprocess
import threading
import time

from harness import HERE, Fail, check

VERSIONS = {3: "mqttv31", 4: "mqttv311", 5: "mqttv5"}


def tls_args(ctx, proxy, cafile=None):
    return ["-h", proxy.host, "-p", str(proxy.port), "--cafile", cafile or ctx.pki.ca]


class Sub:
    """A running mosquitto_sub whose stdout is collected in the background.
    Messages are printed with a length-prefixed frame so binary payloads
    can be compared byte for byte."""

    MARK = b"<<mqtls-msg "

    def __init__(self, ctx, proxy, topic, version=4, qos=0, count=1, extra=(), timeout=10):
        argv = ["stdbuf", "-o0", "mosquitto_sub", "-d", "-N", "-V", VERSIONS[version], "-q", str(qos),
                "-t", topic, "-C", str(count), "-W", str(timeout),
                "-F", self.MARK.decode() + "%l>>%p"] + tls_args(ctx, proxy) + list(extra)
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        ctx.note_socket(_Killer(self.p))
        self.out = bytearray()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        while True:
            b = self.p.stdout.read1(1 << 16)
            if not b:
                return
            with self.lock:
                self.out += b

    def text(self):
        with self.lock:
            return bytes(self.out)

    def wait_subscribed(self, timeout=5):
        deadline = time.monotonic() + timeout
        while b"Subscribed (mid" not in self.text():
            if self.p.poll() is not None and not self.t.is_alive():
                raise Fail("mosquitto_sub exited before subscribing:\n%s"
                           % self.text().decode(errors="replace"))
            if time.monotonic() > deadline:
                raise Fail("mosquitto_sub not subscribed within %ss:\n%s"
                           % (timeout, self.text().decode(errors="replace")))
            time.sleep(0.01)

    def result(self, timeout=15):
        """Wait for exit; returns (rc, [payload bytes...])."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise Fail("mosquitto_sub did not finish in %ss:\n%s"
                       % (timeout, self.text()[-2000:].decode(errors="replace")))
        self.t.join(5)
        data = self.text()
        msgs = []
        i = 0
        while True:
            i = data.find(self.MARK, i)
            if i < 0:
                break
            j = data.index(b">>", i)
            n = int(data[i + len(self.MARK):j])
            msgs.append(data[j + 2:j + 2 + n])
            i = j + 2 + n
        return rc, msgs


class _Killer:
    def __init__(self, p):
        self.p = p

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def pub(ctx, proxy, topic, version=4, qos=0, message=None, file=None, retain=False,
        extra=(), cafile=None, timeout=15):
    """Run mosquitto_pub to completion; returns (rc, output)."""
    argv = ["mosquitto_pub", "-V", VERSIONS[version], "-q", str(qos), "-t", topic] + \
        tls_args(ctx, proxy, cafile)
    argv += ["-f", file] if file else ["-m", message if message is not None else "hello"]
    if retain:
        argv.append("-r")
    argv += list(extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


def pub_sub_round_trip(ctx, proxy, version, qos, payload, retain=False):
    """Subscribe, publish payload, and check the subscriber got exactly it."""
    topic = "itest/%s/v%d/q%d" % (ctx.name[:20], version, qos)
    f = ctx.dir / "payload.bin"
    f.write_bytes(payload)
    if retain:
        rc, out = pub(ctx, proxy, topic, version, qos, file=str(f), retain=True)
        check(rc == 0, "mosquitto_pub failed rc=%d: %s" % (rc, out))
        s = Sub(ctx, proxy, topic, version, qos)
    else:
        s = Sub(ctx, proxy, topic, version, qos)
        s.wait_subscribed()
        rc, out = pub(ctx, proxy, topic, version, qos, file=str(f))
        check(rc == 0, "mosquitto_pub failed rc=%d: %s" % (rc, out))
    rc, msgs = s.result()
    check(rc == 0, "mosquitto_sub rc=%d: %s" % (rc, s.text()[-2000:]))
    check(len(msgs) == 1, "expected 1 message, got %d" % len(msgs))
    check(msgs[0] == payload, "payload differs: got %d bytes, sent %d (first diff at %s)"
          % (len(msgs[0]), len(payload), _first_diff(msgs[0], payload)))


def _first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# -- paho-mqtt -------------------------------------------------------------

def paho_round_trip(ctx, proxy, configure_tls, protocol=None, client_id="paho-itest"):
    """Connect a paho client, subscribe, publish to itself, receive.
    configure_tls(client) sets up TLS; returns the received payload."""
    import paho.mqtt.client as mqtt
    protocol = protocol or mqtt.MQTTv311
    c = mqtt.Client(client_id=client_id, protocol=protocol)
    configure_tls(c)
    got = {}
    ev_conn, ev_sub, ev_msg = threading.Event(), threading.Event(), threading.Event()

    def on_connect(cl, ud, flags, rc, props=None):
        got["rc"] = rc
        ev_conn.set()

    def on_subscribe(cl, ud, mid, granted, props=None):
        ev_sub.set()

    def on_message(cl, ud, msg):
        got["msg"] = msg.payload
        ev_msg.set()

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(proxy.host, proxy.port, keepalive=30)
    c.loop_start()
    try:
        check(ev_conn.wait(5), "paho: no CONNACK within 5s")
        check(got["rc"] == 0, "paho: CONNACK rc=%s" % got["rc"])
        c.subscribe("itest/paho", qos=1)
        check(ev_sub.wait(5), "paho: no SUBACK within 5s")
        c.publish("itest/paho", b"from paho", qos=1)
        check(ev_msg.wait(5), "paho: own message not received within 5s")
        c.disconnect()
    finally:
        c.loop_stop()
    return got["msg"]


# -- asyncio-mqtt ---------------------------------------------------------

def asyncio_round_trip(proxy, **client_kw):
    """asyncio_mqtt Client: subscribe, publish, receive; returns the payload."""
    from asyncio_mqtt import Client

    async def go():
        async with Client(proxy.host, proxy.port, client_id="aio-itest", **client_kw) as c:
            async with c.messages() as messages:
                await c.subscribe("itest/aio", qos=1)
                await c.publish("itest/aio", b"from asyncio-mqtt", qos=1)
                async for m in messages:
                    return m.payload

    return asyncio.run(asyncio.wait_for(go(), 10))


# -- MQTT.js ----------------------------------------------------------------

def mqttjs_round_trip(ctx, proxy, cafile=None, version=4, timeout=15):
    """Run mqttjs_client.js; returns (rc, output)."""
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
    argv = ["/usr/bin/node", str(HERE / "mqttjs_client.js"),
            "mqtts://%s:%d" % (proxy.host, proxy.port), cafile or ctx.pki.ca, str(version)]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, env=env)
    return r.returncode, r.stdout.decode(errors="replace")
