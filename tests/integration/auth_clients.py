"""paho-mqtt and asyncio-mqtt sessions for the authentication tests. Each
publishes to id/<user>/... and subscribes to it, so the broker's ACL (see
auth_env) proves which user the broker believed it was talking to."""
import asyncio
import threading

from harness import check


def _rc(rc):
    return getattr(rc, "value", rc)


def paho_session(m, user, configure, protocol=None, client_id="paho-auth"):
    """Connect a paho client configured by configure(client) (TLS, username,
    password...). Returns ("refused", code) when the CONNACK refuses, else
    ("ok", payload it received on id/<user>/paho after publishing there)."""
    import paho.mqtt.client as mqtt
    protocol = protocol or mqtt.MQTTv311
    c = mqtt.Client(client_id=client_id, protocol=protocol)
    configure(c)
    got = {}
    ev_conn, ev_sub, ev_msg = threading.Event(), threading.Event(), threading.Event()

    def on_connect(cl, ud, flags, rc, props=None):
        got["rc"] = _rc(rc)
        ev_conn.set()

    def on_subscribe(cl, ud, mid, granted, props=None):
        got["granted"] = [_rc(g) for g in granted]
        ev_sub.set()

    def on_message(cl, ud, msg):
        got["msg"] = msg.payload
        ev_msg.set()

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(m.host, m.port, keepalive=30)
    c.loop_start()
    try:
        check(ev_conn.wait(8), "paho: no CONNACK within 8s")
        if got["rc"] != 0:
            return "refused", got["rc"]
        topic = "id/%s/paho" % user
        c.subscribe(topic, qos=1)
        check(ev_sub.wait(5), "paho: no SUBACK within 5s")
        check(got["granted"] and got["granted"][0] in (0, 1),
              "paho: the broker refused the subscription to %s (granted %r): not seen as %r"
              % (topic, got["granted"], user))
        c.publish(topic, b"paho as " + user.encode(), qos=1)
        check(ev_msg.wait(5), "paho: own message on %s not received within 5s" % topic)
        c.disconnect()
    finally:
        c.loop_stop()
    return "ok", got["msg"]


def asyncio_session(m, user, client_id="aio-auth", **client_kw):
    """asyncio_mqtt Client: ("refused", rc) or ("ok", payload received on
    id/<user>/aio after publishing there)."""
    from asyncio_mqtt import Client, MqttCodeError

    async def go():
        topic = "id/%s/aio" % user
        async with Client(m.host, m.port, client_id=client_id, **client_kw) as c:
            async with c.messages() as messages:
                granted = await c.subscribe(topic, qos=1)
                g = [_rc(x) for x in granted]
                check(g and g[0] in (0, 1), "asyncio-mqtt: the broker refused the "
                      "subscription to %s (granted %r): not seen as %r" % (topic, g, user))
                await c.publish(topic, b"aio as " + user.encode(), qos=1)
                async for msg in messages:
                    return msg.payload

    try:
        return "ok", asyncio.run(asyncio.wait_for(go(), 10))
    except MqttCodeError as e:
        return "refused", _rc(e.rc)
