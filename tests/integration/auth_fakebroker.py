"""A stand-in broker that records the exact CONNECT bytes mqtls sends
upstream and accepts every client, for byte-for-byte injection checks.
It answers CONNECT with a success CONNACK of the client's version and
PINGREQ with PINGRESP; everything else is read and ignored."""
import socket
import threading

import mqttwire as w
from harness import wait_until


class FakeBroker:
    def __init__(self, ctx):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.upstream = "127.0.0.1:%d" % self.port
        self.connects = []
        self.lock = threading.Lock()
        self.socks = []
        ctx.note_socket(self)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    @staticmethod
    def _read_packet(s, buf):
        """One whole packet's raw bytes from s (buf holds leftovers)."""
        while True:
            if len(buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(buf):
                    n += (buf[i] & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not buf[i - 1] & 0x80:
                        if len(buf) >= i + n:
                            raw = bytes(buf[:i + n])
                            del buf[:i + n]
                            return raw
                        break
            data = s.recv(65536)
            if not data:
                return None
            buf += data

    def _serve(self, s):
        buf = bytearray()
        try:
            raw = self._read_packet(s, buf)
            if raw is None:
                return
            with self.lock:
                self.connects.append(raw)
            # Protocol level: after the fixed header and the protocol name.
            i = 1
            while raw[i] & 0x80:
                i += 1
            i += 1
            name_len = (raw[i] << 8) | raw[i + 1]
            level = raw[i + 2 + name_len]
            s.sendall(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
            while True:
                p = self._read_packet(s, buf)
                if p is None or p[0] >> 4 == w.DISCONNECT:
                    return
                if p[0] >> 4 == w.PINGREQ:
                    s.sendall(b"\xd0\x00")
        except OSError:
            return
        finally:
            s.close()

    def wait_connects(self, n=1, timeout=5):
        """The first n CONNECT packets received (raw bytes, fixed header included)."""
        def got():
            with self.lock:
                return list(self.connects) if len(self.connects) >= n else None
        return wait_until(got, timeout, "%d CONNECT(s) at the stand-in broker" % n)

    def kill(self):
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass
