"""Real MQTT clients, unchanged, talking TLS to mqtls in front of a plain mosquitto."""
import os
import ssl

import clients
from harness import check, test


def _round_trip(ctx, version, qos, size=32, retain=False):
    b, m = ctx.pair()
    payload = os.urandom(size)
    clients.pub_sub_round_trip(ctx, m, version, qos, payload, retain=retain)
    # Both clients went through mqtls and ended with a DISCONNECT.
    closes = m.wait_close(2)
    for c in closes:
        # After a DISCONNECT both ends close at once: either may be seen first.
        check(c.get("reason") in ("client_closed", "broker_closed"),
              "close reason %r after DISCONNECT: %r" % (c.get("reason"), c))
        check(c.get("mqtt") == str(version), "close line mqtt=%r, want %d"
              % (c.get("mqtt"), version))
        check(c.get("tls") in ("TLSv1.2", "TLSv1.3"), "close line tls=%r" % c.get("tls"))
    check(len(b.clients()) == 2, "broker saw %d clients, want 2" % len(b.clients()))


@test
def mosquitto_pub_and_sub_round_trip_v311_qos0(ctx):
    _round_trip(ctx, 4, 0)


@test
def mosquitto_pub_and_sub_round_trip_v311_qos1(ctx):
    _round_trip(ctx, 4, 1)


@test
def mosquitto_pub_and_sub_round_trip_v311_qos2(ctx):
    _round_trip(ctx, 4, 2)


@test
def mosquitto_pub_and_sub_round_trip_v5_qos0(ctx):
    _round_trip(ctx, 5, 0)


@test
def mosquitto_pub_and_sub_round_trip_v5_qos1(ctx):
    _round_trip(ctx, 5, 1)


@test
def mosquitto_pub_and_sub_round_trip_v5_qos2(ctx):
    _round_trip(ctx, 5, 2)


@test
def mosquitto_pub_and_sub_round_trip_v31(ctx):
    _round_trip(ctx, 3, 1)


@test
def retained_message_reaches_a_later_subscriber_v311(ctx):
    _round_trip(ctx, 4, 1, retain=True)


@test
def retained_message_reaches_a_later_subscriber_v5(ctx):
    _round_trip(ctx, 5, 1, retain=True)


@test
def one_mib_payload_arrives_byte_for_byte_v311(ctx):
    _round_trip(ctx, 4, 1, size=1 << 20)


@test
def one_mib_payload_arrives_byte_for_byte_v5(ctx):
    _round_trip(ctx, 5, 2, size=1 << 20)


@test
def close_line_reports_peer_tls_cipher_client_id_and_bytes(ctx):
    b, m = ctx.pair()
    rc, out = clients.pub(ctx, m, "itest/close", 4, 1, message="x" * 100,
                          extra=["-i", "close-line-client"])
    check(rc == 0, "mosquitto_pub rc=%d: %s" % (rc, out))
    c = m.wait_close(1)[0]
    check(c.get("client_id") == "close-line-client", "client_id=%r" % c.get("client_id"))
    check(c.get("peer", "").startswith("127.0.0.1:"), "peer=%r" % c.get("peer"))
    check(c.get("tls") == "TLSv1.3", "tls=%r (mosquitto_pub negotiates 1.3)" % c.get("tls"))
    check(c.get("cipher", "").startswith("TLS_"), "cipher=%r" % c.get("cipher"))
    check(int(c.get("in", 0)) > 100, "in=%r, want > 100 (the payload)" % c.get("in"))
    check(int(c.get("out", 0)) >= 4, "out=%r, want >= 4 (the CONNACK)" % c.get("out"))
    check(c.get("reason") in ("client_closed", "broker_closed"), "reason=%r" % c.get("reason"))
    check(int(c.get("ms", -1)) >= 0, "ms=%r" % c.get("ms"))


@test
def paho_with_tls_set_context_round_trips(ctx):
    b, m = ctx.pair()
    sslctx = ssl.create_default_context(cafile=ctx.pki.ca)
    got = clients.paho_round_trip(ctx, m, lambda c: c.tls_set_context(sslctx))
    check(got == b"from paho", "paho got %r" % got)


@test
def paho_with_tls_set_ca_certs_round_trips(ctx):
    b, m = ctx.pair()
    got = clients.paho_round_trip(ctx, m, lambda c: c.tls_set(ca_certs=ctx.pki.ca))
    check(got == b"from paho", "paho got %r" % got)


@test
def paho_mqtt_v5_round_trips(ctx):
    import paho.mqtt.client as mqtt
    b, m = ctx.pair()
    got = clients.paho_round_trip(ctx, m, lambda c: c.tls_set(ca_certs=ctx.pki.ca),
                                  protocol=mqtt.MQTTv5)
    check(got == b"from paho", "paho got %r" % got)


@test
def asyncio_mqtt_with_tls_context_round_trips(ctx):
    b, m = ctx.pair()
    got = clients.asyncio_round_trip(
        m, tls_context=ssl.create_default_context(cafile=ctx.pki.ca))
    check(got == b"from asyncio-mqtt", "asyncio-mqtt got %r" % got)


@test
def asyncio_mqtt_with_tls_params_round_trips(ctx):
    from asyncio_mqtt import TLSParameters
    b, m = ctx.pair()
    got = clients.asyncio_round_trip(m, tls_params=TLSParameters(ca_certs=ctx.pki.ca))
    check(got == b"from asyncio-mqtt", "asyncio-mqtt got %r" % got)


@test
def mqttjs_over_mqtts_round_trips(ctx):
    b, m = ctx.pair()
    rc, out = clients.mqttjs_round_trip(ctx, m)
    check(rc == 0 and "GOT itest/mqttjs from mqtt.js" in out, "MQTT.js rc=%d: %s" % (rc, out))


@test
def mqttjs_v5_over_mqtts_round_trips(ctx):
    b, m = ctx.pair()
    rc, out = clients.mqttjs_round_trip(ctx, m, version=5)
    check(rc == 0 and "GOT itest/mqttjs from mqtt.js" in out, "MQTT.js rc=%d: %s" % (rc, out))


@test
def rsa_server_certificate_with_pkcs1_key_serves_clients(ctx):
    b = ctx.broker()
    m = ctx.mqtls(broker=b, cert=ctx.pki.server_rsa_cert, key=ctx.pki.server_rsa_key_pkcs1)
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"rsa")


@test
def rsa_server_certificate_with_pkcs8_key_serves_clients(ctx):
    b = ctx.broker()
    m = ctx.mqtls(broker=b, cert=ctx.pki.server_rsa_cert, key=ctx.pki.server_rsa_key)
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"rsa")


@test
def ec_server_key_in_sec1_form_serves_clients(ctx):
    b = ctx.broker()
    m = ctx.mqtls(broker=b, key=ctx.pki.server_key_sec1)
    clients.pub_sub_round_trip(ctx, m, 5, 1, b"sec1")
