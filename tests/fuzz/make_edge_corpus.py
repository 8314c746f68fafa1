#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_ws, fuzz_publish and fuzz_acl.

    python3 tests/fuzz/make_edge_corpus.py    (from the repository root)

Each seed is one file in tests/fuzz/corpus/<target>/; the first byte of a
ws or publish seed is the target's options byte (see the target's comment).
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
KEY = b"\x37\xfa\x21\x3d"


def varint(n):
    out = b""
    while True:
        b = n % 128
        n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def mqtt(first, body):
    return bytes([first]) + varint(len(body)) + body


def s(b):
    return struct.pack(">H", len(b)) + b


def wsframe(first, payload, masked=True):
    n = len(payload)
    mbit = 0x80 if masked else 0
    if n < 126:
        hdr = bytes([first, mbit | n])
    elif n <= 0xFFFF:
        hdr = bytes([first, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([first, mbit | 127]) + struct.pack(">Q", n)
    if not masked:
        return hdr + payload
    return hdr + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def request(path=b"/mqtt", proto=b"mqtt", version=b"13", extra=b""):
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: broker.example", b"Upgrade: websocket",
             b"Connection: Upgrade", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             b"Sec-WebSocket-Version: " + version, b"Origin: https://app.example"]
    if proto is not None:
        lines.append(b"Sec-WebSocket-Protocol: " + proto)
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


CONNECT = mqtt(0x10, s(b"MQTT") + b"\x04\x02\x00\x3c" + s(b"c1"))


def ws_seeds():
    return {
        "browser_connect_ping_close": b"\x80" + request() + wsframe(0x82, CONNECT) +
        wsframe(0x89, b"hi") + wsframe(0x88, b"\x03\xe8bye"),
        "mqttv31_subprotocol": b"\x10" + request(proto=b"mqttv3.1") + wsframe(0x82, b"\xc0\x00"),
        "wrong_path": b"\x00" + request(path=b"/ws"),
        "version_8": b"\x00" + request(version=b"8"),
        "no_subprotocol": b"\x00" + request(proto=None),
        "fragmented_with_ping": b"\x41" + wsframe(0x02, CONNECT[:5]) + wsframe(0x89, b"p") +
        wsframe(0x00, CONNECT[5:9]) + wsframe(0x8A, b"") + wsframe(0x80, CONNECT[9:]),
        "text_frame": b"\x20" + wsframe(0x81, b"hello"),
        "unmasked_frame": b"\x20" + wsframe(0x82, b"hello", masked=False),
        "length_16": b"\x90" + wsframe(0x82, bytes(range(200))) + wsframe(0x88, b""),
        "length_64_over_limit": b"\x01" + bytes([0x82, 0xFF]) + struct.pack(">Q", 65536) + KEY + b"abcd",
        "close_bad_code": b"\x30" + wsframe(0x88, b"\x03\xed"),
        "control_too_long": b"\x30" + bytes([0x89, 0xFE, 0x00, 0x7E]) + KEY,
        "crlf_missing": b"\x00GET /mqtt HTTP/1.1\nHost: h\n\n",
    }


def publish(flags, topic, pid=None, props=None, payload=b""):
    body = s(topic)
    if pid is not None:
        body += struct.pack(">H", pid)
    if props is not None:
        body += varint(len(props)) + props
    return mqtt(0x30 | flags, body + payload)


def subscribe(pid, filters, props=None, first=0x82):
    body = struct.pack(">H", pid)
    if props is not None:
        body += varint(len(props)) + props
    for f, o in filters:
        body += s(f) + (bytes([o]) if o is not None else b"")
    return mqtt(first, body)


def publish_seeds():
    v4 = 0x01  # opt % 3 == 1: level 4
    v5 = 0x02  # level 5
    return {
        "v311_mixed_stream": bytes([v4 | 0x40]) + publish(0, b"a/b", payload=b"hello") +
        publish(2, b"deny/x", 1, payload=b"x" * 20) + b"\x40\x02\x00\x01" +
        subscribe(2, [(b"a/#", 1), (b"$share/g/b/+", 0)]) + subscribe(3, [(b"a/#", None)], first=0xA2) +
        b"\xc0\x00\xe0\x00",
        "v5_mixed_stream": bytes([v5 | 0x70]) +
        publish(2, b"t", 5, b"\x23\x00\x01\x26" + s(b"k") + s(b"v"), b"pay") +
        publish(0, b"", None, b"\x23\x00\x01", b"x") +
        subscribe(4, [(b"a/+", 0x2D), (b"b", 0)], b"\x0b\x05") + b"\xe0\x00",
        "v311_subscribe_many": bytes([v4]) + subscribe(9, [(b"a", 0), (b"b/+", 1), (b"#", 2),
                                                           (b"$share/grp/c/#", 1), (b"d//e", 0)]),
        "v5_subscribe_options": bytes([v5]) + subscribe(7, [(b"x/#", 0x1E), (b"$share/s/y", 0x01)], b""),
        "v5_unsubscribe": bytes([v5]) + subscribe(7, [(b"x/#", None), (b"y", None)], b"", first=0xA2),
        "v5_empty_topic_alias": bytes([v5]) + publish(0, b"", None, b"\x23\x00\x07", b"data"),
        "wildcard_topic": bytes([v4]) + publish(0, b"a/+", payload=b"x"),
        "long_topic_small_limit": bytes([v4 | 0x08 | 0x30]) + publish(2, b"t" * 60, 1, payload=b"x"),
        "bad_varint": bytes([v4]) + b"\x30\xff\xff\xff\xff\x01",
        "qos2_dup": bytes([v4 | 0x80]) + publish(0x0C, b"q/2", 77, payload=b"abc"),
        "v5_sub_id_in_publish": bytes([v5]) + publish(0, b"t", None, b"\x0b\x01"),
        "mqtt31_publish": bytes([0x00]) + publish(2, b"old/client", 3, payload=b"1"),
        "suback_v311": bytes([v4]) + mqtt(0x90, b"\x00\x09\x01\x80"),
        "suback_v5": bytes([v5]) + mqtt(0x90, b"\x00\x09\x04\x1f\x00\x01x\x00\x87"),
    }


def acl_seeds():
    return {
        "mosquitto_doc": b"# This affects access control for clients with no username.\n"
        b"topic read $SYS/#\n\n# This only affects clients with username \"roger\".\nuser roger\n"
        b"topic foo/bar\n\n# This affects all clients.\npattern write $SYS/broker/connection/%c/state\n",
        "full_file": b"topic read public/#\ntopic deny public/secret\n\nuser alice\ntopic readwrite alice/#\n"
        b"topic write cmd/+/set\nuser bob\ntopic read bob/#\npattern readwrite users/%u/%c/#\n"
        b"pattern deny users/%u/%c/private\n%%%\nalice\nphone\nusers/alice/phone/x\n",
        "bad_access": b"topic a\ntopic nope b\n",
        "access_without_topic": b"topic read\n",
        "crlf_and_spaces": b"user  carol \r\ntopic read  room 1/temp \r\n\t# comment\r\n",
        "dangerous_names": b"user a+b\ntopic x\npattern devices/%u/#\n%%%\na+b\nc\ndevices/a+b/x\n",
        "anonymous_check": b"topic #\npattern deny devices/%c/secret\n%%%\n-\n\ndevices//secret\n",
        "invalid_filter": b"pattern write x/%c#\n",
        "unknown_keyword": b"users bob\n",
    }


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("ws", ws_seeds())
    write("publish", publish_seeds())
    write("acl", acl_seeds())
