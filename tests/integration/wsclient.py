"""A hand-written WebSocket client over TLS for the WebSocket tests: it
sends exactly the bytes a test asks for (any upgrade request, frames cut
and masked or not as it likes, split across TLS records) and reads back
the HTTP answer and the server's frames."""
import base64
import hashlib
import os
import socket
import struct


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_addr(m):
    """The (host, port) of mqtls's first --ws-listen listener: listeners are
    in the ready file --listen first, then --ws-listen."""
    return m.addrs[-1]


def upgrade_request(path="/mqtt", host="localhost", key=None, version="13", protocol="mqtt",
                    extra=""):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key]
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    if protocol is not None:
        lines.append("Sec-WebSocket-Protocol: %s" % protocol)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode(), key


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def split_packet(data):
    """((type, flags, body), rest) of the first whole MQTT packet, or None."""
    n, mult, i = 0, 1, 1
    while True:
        if i >= len(data):
            return None
        b = data[i]
        n += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            break
    if len(data) < i + n:
        return None
    return (data[0] >> 4, data[0] & 0x0F, bytes(data[i:i + n])), data[i + n:]


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One client frame (masked unless told otherwise)."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class WsConn:
    """A TLS socket to mqtls's WebSocket listener."""

    def __init__(self, ctx, m, timeout=5, rcvbuf=None):
        host, port = ws_addr(m)
        if rcvbuf is None:
            self.s = ctx.tls_connect(m, host=host, port=port, timeout=timeout)
        else:
            # A small receive window: mqtls's writes block soon (WANT_WRITE).
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            raw.settimeout(timeout)
            raw.connect((host, port))
            self.s = ctx.note_socket(ctx.client_context().wrap_socket(raw, server_hostname=host))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def send_records(self, data, cut):
        """data in TLS records of |cut| bytes each (one sendall per record)."""
        for i in range(0, len(data), cut):
            self.s.sendall(data[i:i + cut])

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def http_answer(self):
        """The response head: (status, {lowercase name: value})."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            fields[k.strip().lower()] = v.strip()
        return status, fields

    def upgrade(self, **kw):
        req, key = upgrade_request(**kw)
        self.send(req)
        status, fields = self.http_answer()
        if status != 101 or fields.get("sec-websocket-accept") != accept_of(key):
            raise AssertionError("upgrade answered %d %r" % (status, fields))
        return fields

    def read_frame(self):
        """(fin, opcode, payload) of the next server frame; the server must
        not mask (RFC 6455 5.1)."""
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n, off = b1 & 0x7f, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill()
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0f, payload

    def read_mqtt(self, n_packets=1):
        """MQTT packets carried in binary frames, across frame boundaries."""
        stream, out = b"", []
        while len(out) < n_packets:
            fin, op, payload = self.read_frame()
            if op != 2:
                raise AssertionError("expected a binary frame, got opcode %d" % op)
            stream += payload
            while True:
                pkt = split_packet(stream)
                if pkt is None:
                    break
                out.append(pkt[0])
                stream = pkt[1]
        return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
