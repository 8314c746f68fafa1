#!/usr/bin/python3
"""Writes the seed corpus for fuzz_connect: valid CONNECTs of MQTT 3.1,
3.1.1 and 5.0 with each optional field, and near misses that each break
one rule. Run from the repository root: /usr/bin/python3
tests/fuzz/make_connect_corpus.py (it rewrites tests/fuzz/corpus/connect/)."""

import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "connect")


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def binary(b):
    return struct.pack(">H", len(b)) + b


def s(text):
    return binary(text.encode())


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def p_u8(i, v):
    return bytes([i, v])


def p_u16(i, v):
    return bytes([i]) + struct.pack(">H", v)


def p_u32(i, v):
    return bytes([i]) + struct.pack(">I", v)


def p_str(i, text):
    return bytes([i]) + s(text)


def p_bin(i, b):
    return bytes([i]) + binary(b)


def p_pair(i, k, v):
    return bytes([i]) + s(k) + s(v)


def connect(name, level, flags, keepalive, rest, first=0x10):
    body = s(name) + bytes([level, flags]) + struct.pack(">H", keepalive) + rest
    return bytes([first]) + varint(len(body)) + body


V5_ALL = props(p_u32(0x11, 3600), p_u16(0x21, 20), p_u32(0x27, 65536),
               p_u16(0x22, 8), p_u8(0x19, 1), p_u8(0x17, 0),
               p_pair(0x26, "k", "v"), p_pair(0x26, "k", "w"),
               p_str(0x15, "PLAIN"), p_bin(0x16, b"\x00user\x00pw"))
WILL_ALL = props(p_u32(0x18, 10), p_u8(0x01, 1), p_u32(0x02, 60),
                 p_str(0x03, "text/plain"), p_str(0x08, "reply/t"),
                 p_bin(0x09, b"\x01\x02"), p_pair(0x26, "a", "b"))

SEEDS = {
    # valid
    "v31_minimal": connect("MQIsdp", 3, 0x02, 60, s("mosq-1")),
    "v31_full": connect("MQIsdp", 3, 0xee, 60,
                        s("paho123") + s("lwt") + s("bye") + s("u") + s("p")),
    "v311_minimal": connect("MQTT", 4, 0x02, 60, s("c")),
    "v311_empty_id": connect("MQTT", 4, 0x02, 0, s("")),
    "v311_user_pass": connect("MQTT", 4, 0xc2, 30, s("dev") + s("alice") + binary(b"\xff\x00s3cret")),
    "v311_will_qos2": connect("MQTT", 4, 0x36, 60, s("dev") + s("status/dev") + binary(b"\x00offline")),
    "v311_long_id": connect("MQTT", 4, 0x02, 60, s("x" * 200)),
    "v5_minimal": connect("MQTT", 5, 0x02, 60, props() + s("c5")),
    "v5_all_props": connect("MQTT", 5, 0xc2, 60, V5_ALL + s("c5") + s("u") + s("p")),
    "v5_will_all_props": connect("MQTT", 5, 0x2e, 60,
                                 props() + s("c5") + WILL_ALL + s("w/t") + s("gone \u2620")),
    "v5_password_only": connect("MQTT", 5, 0x40, 60, props() + s("") + s("token")),
    "v5_everything": connect("MQTT", 5, 0xf6, 60,
                             V5_ALL + s("c5") + WILL_ALL + s("w") + s("x") + s("u") + s("p")),
    # near misses, one broken rule each
    "bad_fixed_flags": connect("MQTT", 4, 0x02, 60, s("c"), first=0x11),
    "bad_not_connect": connect("MQTT", 4, 0x02, 60, s("c"), first=0x30),
    "bad_reserved_flag": connect("MQTT", 4, 0x03, 60, s("c")),
    "bad_will_qos3": connect("MQTT", 4, 0x1e, 60, s("c") + s("t") + s("m")),
    "bad_will_retain_no_will": connect("MQTT", 4, 0x22, 60, s("c")),
    "bad_pass_no_user": connect("MQTT", 4, 0x42, 60, s("c") + s("p")),
    "bad_empty_id_no_clean": connect("MQTT", 4, 0x00, 60, s("")),
    "bad_level": connect("MQTT", 6, 0x02, 60, s("c")),
    "bad_name": connect("MQIsdp", 4, 0x02, 60, s("c")),
    "bad_utf8_id": connect("MQTT", 4, 0x02, 60, binary(b"\xed\xa0\x80")),
    "bad_wildcard_will": connect("MQTT", 4, 0x06, 60, s("c") + s("a/#") + s("m")),
    "bad_trailing": connect("MQTT", 4, 0x02, 60, s("c") + s("extra")),
    "bad_v5_dup_session": connect("MQTT", 5, 0x02, 60,
                                  props(p_u32(0x11, 1), p_u32(0x11, 1)) + s("c")),
    "bad_v5_recv_max_0": connect("MQTT", 5, 0x02, 60, props(p_u16(0x21, 0)) + s("c")),
    "bad_v5_auth_data_only": connect("MQTT", 5, 0x02, 60, props(p_bin(0x16, b"x")) + s("c")),
    "bad_v5_will_prop_in_connect": connect("MQTT", 5, 0x02, 60, props(p_u32(0x18, 1)) + s("c")),
    "bad_v5_payload_not_utf8": connect("MQTT", 5, 0x06, 60,
                                       props() + s("c") + props(p_u8(0x01, 1)) + s("t") + binary(b"\xff")),
    "bad_nonminimal_length": b"\x10\x8d\x00" + connect("MQTT", 4, 0x02, 60, s("c"))[2:],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
