"""Hand-built MQTT packets and a packet reader, for tests that need exact bytes.

Only what the tests use: CONNECT (3.1, 3.1.1, 5.0), SUBSCRIBE, PUBLISH,
PINGREQ, DISCONNECT; reading splits the stream into (type, flags, body).
"""
import select
import ssl
import struct
import time

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = \
    1, 2, 3, 4, 8, 9, 12, 13, 14


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def props(raw=b""):
    """A v5 property block from already-encoded properties."""
    return varint(len(raw)) + raw


def connect(version=4, client_id="", clean=True, keepalive=30, flags=None, proto_name=None,
            properties=b"", username=None, password=None, will=None, level=None,
            will_properties=b"", will_qos=0, will_retain=False):
    """CONNECT packet. version 3 -> MQIsdp/3, 4 -> MQTT/4, 5 -> MQTT/5.
    flags overrides the computed connect flags byte (for malformed packets);
    level overrides the protocol level byte."""
    if proto_name is None:
        proto_name = "MQIsdp" if version == 3 else "MQTT"
    f = 0x02 if clean else 0
    payload = utf8(client_id)
    if will is not None:
        topic, msg = will
        f |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        if version == 5:
            payload += props(will_properties)
        payload += utf8(topic) + utf8(msg)
    if username is not None:
        f |= 0x80
        payload += utf8(username)
    if password is not None:
        f |= 0x40
        payload += utf8(password)
    if flags is not None:
        f = flags
    vh = utf8(proto_name) + bytes([version if level is None else level, f]) + \
        struct.pack(">H", keepalive)
    if version == 5:
        vh += props(properties)
    return packet(CONNECT, 0, vh + payload)


def subscribe(mid, topic, qos=0, version=4):
    body = struct.pack(">H", mid)
    if version == 5:
        body += props()
    body += utf8(topic) + bytes([qos])
    return packet(SUBSCRIBE, 2, body)


def publish(topic, payload, qos=0, mid=1, retain=False, version=4):
    body = utf8(topic)
    if qos:
        body += struct.pack(">H", mid)
    if version == 5:
        body += props()
    body += payload
    return packet(PUBLISH, (qos << 1) | (1 if retain else 0), body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect():
    return packet(DISCONNECT, 0, b"")


class Closed(Exception):
    """The peer closed the connection (EOF or TLS alert/reset)."""


class Reader:
    """Reads whole MQTT packets from a (TLS) socket with a deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.closed_how = None   # "EOF" (clean, after close_notify if TLS) or the error

    def _fill(self, deadline):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            pass
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no data from peer in time")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise TimeoutError("no data from peer in time")
        try:
            data = self.sock.recv(1 << 16)
        except ssl.SSLWantReadError:
            return
        except (ssl.SSLError, ConnectionError, OSError) as e:
            self.closed_how = repr(e)
            raise Closed(repr(e))
        if not data:
            self.closed_how = "EOF"
            raise Closed("EOF")
        self.buf += data

    def read(self, timeout=5.0):
        """Next packet as (type, flags, body). Raises Closed or TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._parse()
            if p is not None:
                return p
            self._fill(deadline)

    def _parse(self):
        if len(self.buf) < 2:
            return None
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        h = self.buf[0]
        body = bytes(self.buf[i:i + n])
        del self.buf[:i + n]
        return h >> 4, h & 0x0F, body

    def expect_closed(self, timeout=5.0):
        """Wait for the peer to close; returns the list of packets seen before."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen.append(self.read(max(0.0, deadline - time.monotonic())))
            except Closed:
                return seen


def connack_code(body):
    """Return code (3.1.1) or reason code (5.0) of a CONNACK body."""
    return body[1]


def publish_properties(flags, body):
    """Raw property bytes of a v5 PUBLISH."""
    tlen = struct.unpack(">H", body[:2])[0]
    i = 2 + tlen + (2 if (flags >> 1) & 3 else 0)
    n, mult = 0, 1
    while True:
        b = body[i]
        i += 1
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return body[i:i + n]


def publish_fields(flags, body, version=4):
    tlen = struct.unpack(">H", body[:2])[0]
    topic = body[2:2 + tlen].decode()
    i = 2 + tlen
    if (flags >> 1) & 3:
        i += 2
    if version == 5:
        n, mult = 0, 1
        while True:
            b = body[i]
            i += 1
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        i += n
    return topic, body[i:]
