#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_session (tests/fuzz/corpus/session/).

Each file is a script for tests/fuzz/fuzz_session.c: two options bytes, then
operations (see the comment at the top of that file for the format).
Run from anywhere: python3 tests/fuzz/make_session_corpus.py
"""
import base64
import hashlib
import hmac
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "session")

# First options byte.
AUTH_NONE, AUTH_PASSWORD, AUTH_CERT_JWT, AUTH_DELAY = 0, 1, 2, 3
TLS12 = 1 << 2
LAZY = 1 << 3
NO_BROKER = 1 << 4
BIG_BUFS = 1 << 5
TCP_CLIENT = 1 << 6
TCP_BROKER = 1 << 7
# Second options byte: the client certificate (sent when asked, mode 2),
# the daemon's default limits, a broker whose accept queue is full.
NO_CERT, CERT_DEVICE, CERT_CONTROL_CHARS, CERT_UNKNOWN_CA = range(4)
DEFAULT_LIMITS = 1 << 2
BROKER_QUEUE_FULL = 1 << 3
TWO_BROKERS = 1 << 4    # an unreachable broker first, then the chosen one
WS_CLIENT = 1 << 5      # the client comes in on the --ws-listen listener

NOSTEP = 0x10
(C_SEND, C_HOLD, C_RELEASE, C_RAW, B_SEND, C_BULK, B_BULK, C_PAUSE, B_PAUSE,
 C_NOTIFY, C_SHUT, C_CLOSE, B_SHUT, B_CLOSE, ADVANCE, CTRL) = range(16)
CTRL_KEYUPDATE, CTRL_STOP, CTRL_STEP, CTRL_CONNECT = range(4)
# ADVANCE steps: 1 ms, 1 s, 2.1 s, 5.1 s, 10.1 s, 31 s, 61 s, 100 years.
T_1MS, T_1S, T_2S, T_5S, T_10S, T_31S, T_61S, T_FOREVER = range(8)

JWT_SECRET = b"fuzz-session-hmac-secret-0123456789abcdef"   # as written by the harness


def hdr(opts, cert=NO_CERT):
    return bytes([opts, cert])


def length(n):
    return bytes([n]) if n < 0xFF else b"\xff" + struct.pack(">H", n)


def op(code, data=None, arg=None, nostep=False):
    b = bytes([code | (NOSTEP if nostep else 0)])
    if arg is not None:
        b += bytes([arg])
    if data is not None:
        b += length(len(data)) + data
    return b


def release(n=0, nostep=False):
    return bytes([C_RELEASE | (NOSTEP if nostep else 0)]) + length(n)


def varint(n):
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def packet_header(first, remaining):
    return bytes([first]) + varint(remaining)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack(">H", len(x)) + x


def connect(version=4, client_id="c1", user=None, password=None, keepalive=60, props=b""):
    flags = 0x02
    if user is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = s("MQTT") + bytes([version, flags]) + struct.pack(">H", keepalive)
    if version == 5:
        body += varint(len(props)) + props
    body += s(client_id)
    if user is not None:
        body += s(user)
    if password is not None:
        body += s(password)
    return packet(0x10, body)


def connack(version=4):
    return packet(0x20, b"\x00\x00" + (b"\x00" if version == 5 else b""))


def publish(topic, payload, version=4, qos=0, pid=1):
    body = s(topic) + (struct.pack(">H", pid) if qos else b"")
    if version == 5:
        body += b"\x00"
    return packet(0x30 | (qos << 1), body + payload)


def subscribe(topic, version=4, pid=1):
    body = struct.pack(">H", pid) + (b"\x00" if version == 5 else b"") + s(topic) + b"\x00"
    return packet(0x82, body)


def ws_request(path="/mqtt"):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: mqtt\r\n\r\n" % path).encode()


def ws_frame(opcode, payload, fin=True, mask=b"\x5a\x01\xc3\x7e"):
    """A masked client frame."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def jwt(sub="alice", exp=4102444800):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=")
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = b64(json.dumps({"sub": sub, "exp": exp}, separators=(",", ":")).encode())
    sig = b64(hmac.new(JWT_SECRET, head + b"." + claims, hashlib.sha256).digest())
    return head + b"." + claims + b"." + sig


SEEDS = {
    # A 3.1.1 session: CONNECT, CONNACK, PUBLISH both ways, clean close.
    "v311_publish_both_ways": hdr(AUTH_NONE)
        + op(C_SEND, connect())
        + op(B_SEND, connack())
        + op(C_SEND, subscribe("t/#"))
        + op(B_SEND, packet(0x90, b"\x00\x01\x00"))
        + op(C_SEND, publish("t/a", b"hello"))
        + op(B_SEND, publish("t/a", b"hello"))
        + op(C_SEND, packet(0xE0, b"")),
    # MQTT 5 with properties, then the broker closes.
    "v5_connect_forward": hdr(AUTH_NONE)
        + op(C_SEND, connect(5, "c5", props=b"\x11\x00\x00\x00\x3c"))
        + op(B_SEND, connack(5))
        + op(C_SEND, publish("x", b"payload", 5, qos=1))
        + op(B_SEND, packet(0x40, b"\x00\x01"))
        + op(B_CLOSE),
    # MQTT 5 and the worker stops: DISCONNECT 0x8B between broker packets.
    "v5_shutdown_mid_packet": hdr(AUTH_NONE)
        + op(C_SEND, connect(5, "c5"))
        + op(B_SEND, connack(5))
        + op(B_SEND, publish("long/topic", b"A" * 200, 5)[:60])
        + op(CTRL, arg=CTRL_STOP)
        + op(B_SEND, publish("long/topic", b"A" * 200, 5)[60:])
        + op(ADVANCE, arg=T_5S),
    # The CONNECT cut across three TLS records, each written on its own.
    "connect_split_records": hdr(AUTH_NONE)
        + op(C_SEND, connect()[:3])
        + op(C_SEND, connect()[3:9])
        + op(C_SEND, connect()[9:] + publish("a", b"b"))
        + op(B_SEND, connack()),
    # One TLS record delivered a byte at a time, then the rest at once.
    "record_dribbled": hdr(AUTH_NONE)
        + op(C_HOLD, connect())
        + release(1) + release(1) + release(1) + release(2) + release(7)
        + release(0),
    # Garbage instead of a CONNECT: refused.
    "garbage_instead_of_connect": hdr(AUTH_NONE)
        + op(C_SEND, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    # CONNECT larger than --max-connect-size (512): CONNACK 0x95 for 5.0.
    "connect_too_large_v5": hdr(AUTH_NONE)
        + op(C_SEND, connect(5, "x" * 600)),
    # Broker closes in the middle of a packet it was sending.
    "broker_closes_mid_packet": hdr(AUTH_NONE)
        + op(C_SEND, connect())
        + op(B_SEND, connack() + publish("t", b"0123456789")[:7])
        + op(B_CLOSE),
    # After the handshake, three bytes of a TLS record and nothing more;
    # time passes (connect timeout), then the client leaves.
    "partial_record_then_close": hdr(AUTH_NONE)
        + op(C_RAW, b"\x17\x03\x03")
        + op(CTRL, arg=CTRL_STEP)
        + op(ADVANCE, arg=T_10S)
        + op(C_CLOSE),
    # Raw garbage after a good session start: TLS error, alert, close.
    "tls_garbage_forwarding": hdr(AUTH_NONE)
        + op(C_SEND, connect())
        + op(B_SEND, connack())
        + op(C_RAW, b"\x17\x03\x03\x00\x20" + b"\x00" * 32),
    # Client half-close (TCP FIN without close_notify) while data is pending.
    "client_shut_with_pending": hdr(AUTH_NONE)
        + op(C_SEND, connect())
        + op(C_PAUSE)
        + op(B_BULK, b"\x30\x05\x00\x01tab", arg=63)
        + op(C_SHUT),
    # Backpressure both ways: broker and client stop reading, bulk traffic.
    "backpressure_both_ways": hdr(AUTH_NONE)
        + op(C_SEND, connect())
        + op(B_SEND, connack())
        + op(B_PAUSE) + op(C_PAUSE)
        + op(C_BULK, publish("t", b"p" * 100), arg=255)
        + op(B_BULK, publish("t", b"q" * 100), arg=255)
        + op(C_PAUSE) + op(B_PAUSE) + op(CTRL, arg=CTRL_STEP),
    # TLS 1.2, CONNECT riding with the handshake's last flight.
    "tls12_connect_with_finished": hdr(AUTH_NONE | TLS12 | LAZY)
        + op(C_SEND, connect(), nostep=True)
        + op(B_SEND, connack()),
    # Garbage in place of a ClientHello; and a ClientHello that never ends.
    "garbage_handshake": hdr(AUTH_NONE | LAZY)
        + op(C_RAW, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 16),
    "stalled_hello_timeout": hdr(AUTH_NONE | LAZY)
        + op(C_RAW, b"\x16\x03\x01\x02\x00")
        + op(ADVANCE, arg=T_2S)
        + op(ADVANCE, arg=T_10S),
    # Broker unreachable: CONNACK 3 (server unavailable).
    "broker_unreachable": hdr(AUTH_NONE | NO_BROKER) + op(C_SEND, connect()),
    # Password auth: anonymous without user or password (allowed in mode 1).
    "auth_anonymous_v5": hdr(AUTH_PASSWORD)
        + op(C_SEND, connect(5, "anon"))
        + op(B_SEND, connack(5)),
    # JWT (HS256) with broker credentials injected, then the token expires.
    "auth_jwt_inject_expire_v5": hdr(AUTH_CERT_JWT)
        + op(C_SEND, connect(5, "c5", "ignored", jwt().decode()))
        + op(B_SEND, connack(5))
        + op(B_SEND, publish("t", b"y" * 30, 5)[:10])
        + op(ADVANCE, arg=T_FOREVER)
        + op(B_SEND, publish("t", b"y" * 30, 5)[10:]),
    # Mode 3: a slow hash checked on the pool, right password, then traffic.
    "auth_pool_ok": hdr(AUTH_DELAY)
        + op(C_SEND, connect(4, "c1", "slow", "slowpw"))
        + op(B_SEND, connack())
        + op(C_SEND, publish("t", b"after pool")),
    # Mode 3: wrong password on the pool; the refusal waits for its delay.
    "auth_pool_wrong_v5": hdr(AUTH_DELAY)
        + op(C_SEND, connect(5, "c5", "slow", "nope"))
        + op(ADVANCE, arg=T_1MS)
        + op(ADVANCE, arg=T_1S),
    # Mode 3: the client leaves in the same loop turn as its CONNECT, while
    # its check is on the pool.
    "auth_pool_client_gone": hdr(AUTH_DELAY)
        + op(C_SEND, connect(4, "c1", "slow", "slowpw"), nostep=True)
        + op(C_CLOSE),
    # The broker on TCP: the connect is still in progress when it returns.
    "tcp_broker": hdr(AUTH_NONE | TCP_BROKER)
        + op(C_SEND, connect())
        + op(B_SEND, connack())
        + op(C_SEND, publish("t", b"over tcp")),
    # The client over TCP through the worker's listener; it resets.
    "tcp_client_reset": hdr(AUTH_PASSWORD | TCP_CLIENT)
        + op(C_SEND, connect(4, "c1", "u", "p"))
        + op(C_PAUSE)
        + op(B_BULK, publish("t", b"d" * 50), arg=100)
        + op(C_CLOSE),
    # MQTT 5 with the default 256 KB --max-buffer, the client not reading:
    # 40 KB of packets, one write blocked, then a whole packet and the start
    # of one more wait behind it when the worker stops. The DISCONNECT goes
    # after the whole packet and the partial one is cut.
    "v5_shutdown_cuts_partial_packet": hdr(AUTH_NONE, DEFAULT_LIMITS)
        + op(C_SEND, connect(5, "c5"))
        + op(B_SEND, connack(5))
        + op(C_PAUSE)
        + op(B_BULK, publish("t", b"w" * 249, 5), arg=155)
        + op(B_SEND, publish("t", b"whole", 5) + publish("t", b"partial" * 10, 5)[:20])
        + op(CTRL, arg=CTRL_STOP)
        + op(C_PAUSE),
    # KeyUpdate while the proxy cannot write to the client (its reply waits).
    "tls13_key_update_blocked": hdr(AUTH_NONE)
        + op(C_SEND, connect())
        + op(B_SEND, connack())
        + op(C_PAUSE)
        + op(B_BULK, publish("t", b"k" * 100), arg=120)
        + op(CTRL, arg=CTRL_KEYUPDATE)
        + op(C_SEND, publish("k", b"after update"))
        + op(C_PAUSE),
    # The broker does not answer the connect: broker_timeout, CONNACK 3.
    "broker_connect_pending": hdr(AUTH_NONE, BROKER_QUEUE_FULL)
        + op(C_SEND, connect())
        + op(ADVANCE, arg=T_5S),
    # With the default 64 KB --max-connect-size, a 40 KB CONNECT spans
    # buffer blocks before it is parsed.
    "connect_spanning_blocks": hdr(AUTH_NONE, DEFAULT_LIMITS)
        + op(C_SEND, packet_header(0x10, 10 + 2 + 156 * 256)
             + s("MQTT") + bytes([4, 2]) + struct.pack(">H", 60) + struct.pack(">H", 156 * 256))
        + op(C_BULK, b"x", arg=155)
        + op(B_SEND, connack()),
    # Two brokers, the first unreachable: the hub fails over in the same turn.
    "two_brokers_failover": hdr(AUTH_NONE, TWO_BROKERS)
        + op(C_SEND, connect())
        + op(B_SEND, connack())
        + op(C_SEND, publish("t", b"via the second broker")),
    # The same over TCP with 5.0, the second broker's connect in progress.
    "two_brokers_failover_tcp_v5": hdr(AUTH_NONE | TCP_BROKER, TWO_BROKERS)
        + op(C_SEND, connect(5, "c5"))
        + op(B_SEND, connack(5))
        + op(B_SEND, publish("t", b"from the broker", version=5)),
    # The second broker does not answer either: one --upstream-timeout, then
    # the client is refused (broker_timeout).
    "two_brokers_second_silent": hdr(AUTH_NONE, TWO_BROKERS | BROKER_QUEUE_FULL)
        + op(C_SEND, connect())
        + op(ADVANCE, arg=T_5S),
    # A client certificate names the user: its CN is injected.
    "cert_identity": hdr(AUTH_CERT_JWT, CERT_DEVICE)
        + op(C_SEND, connect(4, "c1"))
        + op(B_SEND, connack())
        + op(C_SEND, publish("t", b"from device-1")),
    # A CN with a control character and a quote: refused, never injected.
    "cert_identity_control_chars_v5": hdr(AUTH_CERT_JWT, CERT_CONTROL_CHARS)
        + op(C_SEND, connect(5, "c5")),
    # A certificate from an unknown CA: the handshake fails.
    "cert_unknown_ca": hdr(AUTH_CERT_JWT, CERT_UNKNOWN_CA)
        + op(C_SEND, connect()),
    # WebSockets: the upgrade and the CONNECT in one record, a PUBLISH in
    # two fragments with a ping between them, a broker PUBLISH framed back,
    # then the client's close.
    "ws_round_trip": hdr(AUTH_NONE, WS_CLIENT)
        + op(C_SEND, ws_request() + ws_frame(2, connect()))
        + op(B_SEND, connack())
        + op(C_SEND, ws_frame(2, publish("t", b"over wss")[:5], fin=False) + ws_frame(9, b"ping")
             + ws_frame(0, publish("t", b"over wss")[5:]))
        + op(B_SEND, publish("t", b"to the browser"))
        + op(C_SEND, ws_frame(8, struct.pack(">H", 1000))),
    # A client that stops reading, a drain: the framed DISCONNECT after the
    # whole packet, then close 1001.
    "ws_v5_shutdown_behind_a_burst": hdr(AUTH_NONE, WS_CLIENT | DEFAULT_LIMITS)
        + op(C_SEND, ws_request() + ws_frame(2, connect(5, "c5")))
        + op(B_SEND, connack(5))
        + op(C_PAUSE)
        + op(B_BULK, publish("t", b"w" * 249, 5), arg=155)
        + op(B_SEND, publish("t", b"whole", 5) + publish("t", b"partial" * 10, 5)[:20])
        + op(CTRL, arg=CTRL_STOP)
        + op(C_PAUSE),
    # A password client over wss (the CONNECT from CTRL), refused or admitted.
    "ws_password_connect": hdr(AUTH_PASSWORD, WS_CLIENT)
        + op(CTRL, arg=CTRL_CONNECT)
        + op(B_SEND, connack()),
    # The request cut short: the upgrade timeout.
    "ws_request_cut_short": hdr(AUTH_NONE, WS_CLIENT)
        + op(C_SEND, ws_request()[:30])
        + op(ADVANCE, arg=T_5S),
    # A wrong path (404), and a text frame after a good upgrade (1003).
    "ws_bad_path": hdr(AUTH_NONE, WS_CLIENT)
        + op(C_SEND, ws_request("/other")),
    "ws_text_frame": hdr(AUTH_NONE, WS_CLIENT)
        + op(C_SEND, ws_request())
        + op(C_SEND, ws_frame(1, b"hello")),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.unlink(os.path.join(OUT, name))
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
