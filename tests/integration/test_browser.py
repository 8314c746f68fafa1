"""MQTT over secure WebSockets from a real browser: headless Chromium runs
MQTT.js's browser bundle against mqtls's --ws-listen (wss://localhost,
trusting the test CA through NSS), mqtls carries it to a plain TCP
mosquitto, and a paho client on the broker's TCP side talks with the page.
The page's DOM is read over the DevTools protocol and a screenshot is kept
in build/test-logs/ws-browser.png."""
import hashlib
import json
import secrets
import threading

from browser import Chromium, MQTTJS_BUNDLE, PageServer, nss_home, require_chromium
from harness import REPO, Fail, check, free_port, test, wait_until

SCREENSHOT = REPO / "build" / "test-logs" / "ws-browser.png"

# The page connects to ?ws=URL with client id chromium-NONCE (MQTT ?v=4 or 5),
# subscribes to its topics, publishes one short message to itself and one of
# BIG bytes (byte i = (31 i + 7) mod 256) for the TCP side, and shows in the
# DOM (and in window.mqttState) what comes back; a large message from the TCP
# side is shown as its length and SHA-256.
BIG = 150000
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>mqtls: MQTT over wss</title>
<style>
body { font: 15px sans-serif; margin: 24px; }
dt { font-weight: bold; margin-top: 8px; }
dd { font-family: monospace; margin-left: 16px; }
</style></head>
<body>
<h2>MQTT.js in Chromium &rarr; wss &rarr; mqtls &rarr; TCP &rarr; mosquitto</h2>
<dl>
<dt>broker URL</dt><dd id="url">-</dd>
<dt>status</dt><dd id="status">loading</dd>
<dt>the page's own publish, back from the broker</dt><dd id="echo">-</dd>
<dt>published by a paho client on the broker's TCP side</dt><dd id="tcp">-</dd>
<dt>a large message from the TCP side: bytes, SHA-256</dt><dd id="big">-</dd>
<dt>error</dt><dd id="error">-</dd>
</dl>
<script src="/mqtt.min.js"></script>
<script>
const q = new URLSearchParams(location.search);
const url = q.get("ws"), nonce = q.get("nonce"), version = Number(q.get("v") || 4);
const state = window.mqttState = { status: "loading", echo: null, tcp: null, big: null, error: null };
function show(k, v) { state[k] = v; document.getElementById(k).textContent = v; }
show("url", url);
try {
  const c = window.mqttClient = mqtt.connect(url, {
    clientId: "chromium-" + nonce, protocolVersion: version, reconnectPeriod: 0, connectTimeout: 10000 });
  c.on("connect", () => {
    show("status", "connected");
    c.subscribe(["browser/echo/" + nonce, "browser/tcp/" + nonce, "browser/big/" + nonce], { qos: 1 }, (err) => {
      if (err) { show("error", "subscribe: " + err); return; }
      show("status", "subscribed");
      c.publish("browser/echo/" + nonce, "echo " + nonce + " from chromium", { qos: 1 });
      const big = new Uint8Array(Number(q.get("big")));
      for (let i = 0; i < big.length; i++) big[i] = (31 * i + 7) & 255;
      c.publish("browser/up/" + nonce, big, { qos: 1 });
    });
  });
  c.on("message", (topic, payload) => {
    if (topic.startsWith("browser/big/")) {
      crypto.subtle.digest("SHA-256", payload).then((d) => show("big", payload.length + " " +
        Array.from(new Uint8Array(d)).map((b) => b.toString(16).padStart(2, "0")).join("")));
      return;
    }
    show(topic.startsWith("browser/echo/") ? "echo" : "tcp", payload.toString());
  });
  c.on("error", (e) => show("error", String(e)));
  c.on("close", () => { if (state.status !== "ended") show("status", "closed"); });
} catch (e) {
  show("error", String(e));
}
</script>
</body></html>
"""


class TcpPeer:
    """paho on the broker's plain TCP listener: subscribes to the page's echo
    topic and publishes to the page."""

    def __init__(self, ctx, broker, nonce):
        import paho.mqtt.client as mqtt
        self.got = []
        self.ev_conn, self.ev_sub = threading.Event(), threading.Event()
        self.c = mqtt.Client(client_id="tcp-" + nonce, protocol=mqtt.MQTTv311)
        self.c.on_connect = lambda cl, ud, flags, rc: self.ev_conn.set()
        self.c.on_subscribe = lambda cl, ud, mid, granted: self.ev_sub.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", broker.port, keepalive=30)
        self.c.loop_start()
        ctx._procs.append(self)
        check(self.ev_conn.wait(5), "paho: no CONNACK from the broker within 5 s")
        self.c.subscribe([("browser/echo/" + nonce, 1), ("browser/up/" + nonce, 1)])
        check(self.ev_sub.wait(5), "paho: no SUBACK from the broker within 5 s")

    def _on_message(self, cl, ud, msg):
        self.got.append((msg.topic, msg.payload))

    def kill(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def _page_wait(br, pred, timeout, what):
    """Waits until pred(window.mqttState) holds; on timeout the failure shows
    the page's state and console."""
    last = {}

    def probe():
        last["state"] = br.evaluate("JSON.stringify(window.mqttState || null)")
        s = json.loads(last["state"]) if last["state"] else None
        return s is not None and pred(s)
    try:
        wait_until(probe, timeout, what, interval=0.05)
    except Fail as e:
        raise Fail("%s; page state %s; console: %s" % (e, last.get("state"), br.console[-10:]))


def _round_trip(ctx, version, screenshot=None):
    """The page (MQTT |version|) and a paho client on the broker's TCP side
    exchange short and BIG-byte messages both ways through mqtls's wss
    listener; mqtls's close line for the page's session says transport=ws."""
    require_chromium()
    b = ctx.broker()
    ws_port = free_port()
    m = ctx.mqtls("--ws-listen", "127.0.0.1:%d" % ws_port, broker=b)
    nonce = secrets.token_hex(6)
    tcp = TcpPeer(ctx, b, nonce)
    pages = PageServer({"/": ("text/html; charset=utf-8", PAGE),
                        "/mqtt.min.js": ("text/javascript", MQTTJS_BUNDLE.read_bytes())})
    ctx._procs.append(pages)
    br = Chromium(ctx, nss_home(ctx, ctx.pki.ca))
    br.navigate(pages.url("/?ws=wss://localhost:%d/mqtt&nonce=%s&v=%d&big=%d" % (ws_port, nonce, version, BIG)))

    # The page's publish reaches the TCP client and comes back to the page.
    _page_wait(br, lambda s: s["echo"] is not None or s["error"] is not None, 20,
               "the page's own message back over wss")
    state = json.loads(br.evaluate("JSON.stringify(window.mqttState)"))
    check(state["echo"] == "echo %s from chromium" % nonce and state["error"] is None,
          "page state %r" % state)
    wait_until(lambda: len(tcp.got) >= 2, 10, "the page's two messages at the TCP client")
    got = dict(tcp.got)
    check(got.get("browser/echo/" + nonce) == ("echo %s from chromium" % nonce).encode(),
          "the TCP client got %r" % [(t, p[:40]) for t, p in tcp.got])
    # Many TLS records and (from mqtls to the broker) no frames: whole and in order.
    check(got.get("browser/up/" + nonce) == bytes((31 * i + 7) & 255 for i in range(BIG)),
          "the page's %d-byte message reached the TCP client as %r bytes" %
          (BIG, len(got.get("browser/up/" + nonce) or b"")))

    # A large message from the TCP side spans many frames from mqtls (one per
    # TLS record); MQTT.js must see it whole.
    big = secrets.token_bytes(BIG)
    tcp.c.publish("browser/big/" + nonce, big, qos=1)
    want = "%d %s" % (BIG, hashlib.sha256(big).hexdigest())
    _page_wait(br, lambda s: s["big"] is not None, 10, "the TCP client's large message in the page")
    state = json.loads(br.evaluate("JSON.stringify(window.mqttState)"))
    check(state["big"] == want, "the page got %r, want %r" % (state["big"], want))

    # A message from the TCP side shows in the page.
    from_tcp = "from paho over TCP %s" % secrets.token_hex(4)
    tcp.c.publish("browser/tcp/" + nonce, from_tcp.encode(), qos=1)
    _page_wait(br, lambda s: s["tcp"] == from_tcp, 10, "the TCP client's message in the page")
    if screenshot:
        br.screenshot(screenshot)
        ctx.notes.append("screenshot: %s" % screenshot.relative_to(REPO))

    # mqtls carried it: the broker saw the page's client connect from
    # mqtls, and mqtls logs the session when the page hangs up.
    check("chromium-" + nonce in b.clients(), "the broker saw no client chromium-%s: %r"
          % (nonce, b.clients()))
    br.evaluate("window.mqttState.status = 'ended'; window.mqttClient.end(); true")
    closes = wait_until(lambda: [c for c in m.close_lines() if c.get("client_id") == "chromium-" + nonce],
                        10, "mqtls's close line for the page's session")
    c = closes[0]
    check(c.get("transport") == "ws" and c.get("mqtt") == str(version) and int(c.get("in", 0)) > 0 and
          int(c.get("out", 0)) > 0, "close line %r" % c)


@test(timeout=60)
def chromium_speaks_mqtt_over_wss_through_mqtls_with_a_tcp_client(ctx):
    _round_trip(ctx, 4, SCREENSHOT)


@test(timeout=60)
def chromium_speaks_mqtt_5_over_wss_through_mqtls(ctx):
    _round_trip(ctx, 5)
