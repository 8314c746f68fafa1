"""Attackers and measuring clients for the hostile-load tests (test_hostile.py).

Attackers are raw sockets driven byte by byte: MemTLS runs the client side of
TLS in an ssl.SSLObject over memory BIOs, so a test holds the exact encrypted
bytes of a record (and can send a prefix of it), or the exact ClientHello.
Good clients connect from another loopback address (OTHER, 127.0.0.2) with
TCP_NODELAY and measure the time from connect() to their CONNACK.

Sizes: bounded by default (make test); MQTLS_STRESS=1 (make stress) scales
them up through scaled(). Under the ASan+UBSan binary (MQTLS_BIN containing
"asan") only time bounds widen, through bound().
"""
import errno
import os
import selectors
import socket
import ssl
import struct
import threading
import time

import mqttwire as w
from harness import MQTLS, Fail

ASAN = "asan" in str(MQTLS)
STRESS = os.environ.get("MQTLS_STRESS") == "1"
SLOW = 3.0 if ASAN else 1.0
OTHER = "127.0.0.2"

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
TLS_NAMES = {TLS12: "TLS1.2", TLS13: "TLS1.3"}


def bound(seconds):
    """A time bound, widened under the sanitizer build."""
    return seconds * SLOW


def scaled(default, stress):
    return stress if STRESS else default


def pct(values, p):
    """The p-th percentile (nearest rank) of values; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def ms(x):
    return "-" if x is None else "%.0f ms" % (x * 1000) if x >= 0.01 else "%.1f ms" % (x * 1000)


def sslctx(ctx, version=None, cert=None):
    """Client SSLContext trusting the suite's root, pinned to one TLS version."""
    c = ssl.create_default_context(cafile=ctx.pki.ca)
    if cert:
        c.load_cert_chain(*cert)
    if version:
        c.minimum_version = c.maximum_version = version
    return c


def tcp(host, port, src=None, timeout=5.0, nodelay=True):
    """Blocking TCP connection, optionally from source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if src:
            s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((host, port))
    except Exception:
        s.close()
        raise
    return s


def client_hello(c):
    """The exact bytes of a ClientHello this context sends (a fresh one per call)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = c.wrap_bio(inc, out, server_hostname="127.0.0.1")
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class MemTLS:
    """The client side of one TLS connection over a raw TCP socket, with the
    TLS engine in memory: seal() gives the encrypted bytes of application
    data without sending them."""

    def __init__(self, c, host, port, src=None, timeout=5.0):
        self.sock = tcp(host, port, src, timeout)
        self.port = self.sock.getsockname()[1]
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = c.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self.timeout = timeout

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _feed(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from mqtls in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError("no data from mqtls in time")
        except OSError as e:
            raise w.Closed(repr(e))
        if not data:
            self.inc.write_eof()
            raise w.Closed("EOF")
        self.inc.write(data)

    def handshake(self):
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._feed(deadline)
        self._flush()
        return self

    def version(self):
        return self.obj.version()

    def seal(self, data):
        """Encrypted record(s) carrying data, not sent."""
        self.obj.write(data)
        return self.out.read()

    def send(self, data):
        self.sock.sendall(self.seal(data))

    def recv(self, deadline):
        """Some decrypted bytes (b"" at a clean close)."""
        while True:
            try:
                return self.obj.read(1 << 16)
            except ssl.SSLWantReadError:
                self._feed(deadline)
            except ssl.SSLZeroReturnError:
                return b""

    def reader(self):
        return MemReader(self)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def kill(self):   # for ctx.note_socket
        self.close()


class MemReader(w.Reader):
    """mqttwire.Reader over a MemTLS."""

    def __init__(self, t):
        super().__init__(t.sock)
        self.t = t

    def _fill(self, deadline):
        try:
            data = self.t.recv(deadline)
        except (ssl.SSLError, OSError) as e:
            self.closed_how = repr(e)
            raise w.Closed(repr(e))
        if not data:
            self.closed_how = "EOF"
            raise w.Closed("EOF")
        self.buf += data


# -- good clients ------------------------------------------------------------

class Result:
    """What one good client got: code (CONNACK code, None without one),
    secs (connect() to CONNACK, or to the failure), error (text or None)."""

    def __init__(self, code=None, secs=None, error=None, port=None):
        self.code, self.secs, self.error, self.port = code, secs, error, port

    def ok(self, limit, code=0):
        return self.code == code and self.secs is not None and self.secs <= limit

    def __repr__(self):
        if self.error:
            return "<%s after %s>" % (self.error, ms(self.secs))
        return "<CONNACK %s in %s>" % (self.code, ms(self.secs))


def good_connect(ctx, m, src=OTHER, version=4, client_id="good", timeout=5.0, c=None,
                 keep=False, **kw):
    """TLS + CONNECT from src; returns Result (and the socket+reader when keep).
    The clock runs from connect() to the CONNACK."""
    c = c or sslctx(ctx)
    t0 = time.monotonic()
    s = None
    res = Result()
    try:
        raw = tcp(m.host, m.port, src, timeout)
        res.port = raw.getsockname()[1]
        raw.settimeout(max(0.05, timeout - (time.monotonic() - t0)))
        s = c.wrap_socket(raw, server_hostname=m.host)
        s.sendall(w.connect(version, client_id=client_id, **kw))
        r = w.Reader(s)
        t, _, body = r.read(max(0.05, timeout - (time.monotonic() - t0)))
        res.secs = time.monotonic() - t0
        if t != w.CONNACK:
            res.error = "packet type %d instead of CONNACK" % t
        else:
            res.code = w.connack_code(body)
    except (OSError, ssl.SSLError, w.Closed, TimeoutError) as e:
        res.secs = time.monotonic() - t0
        res.error = type(e).__name__ + (": %s" % e if str(e) else "")
        if s is None:
            try:
                raw.close()
            except Exception:
                pass
    if keep and res.error is None:
        ctx.note_socket(s)
        return res, s, r
    if s is not None:
        try:
            if res.code == 0:
                s.sendall(w.disconnect())
            s.close()
        except OSError:
            pass
    return (res, None, None) if keep else res


def good_clients(ctx, m, n, limit, src=OTHER, prefix="good", parallel=True, spacing=0.0,
                 timeout=None, **kw):
    """n good clients (in parallel threads, or one after another); returns [Result]."""
    timeout = timeout or max(limit + 1.0, 2.0)
    out = [None] * n

    def one(i):
        out[i] = good_connect(ctx, m, src, client_id="%s-%d" % (prefix, i), timeout=timeout,
                              **kw)
    if not parallel:
        for i in range(n):
            one(i)
            if spacing:
                time.sleep(spacing)
        return out
    ts = []
    for i in range(n):
        t = threading.Thread(target=one, args=(i,), daemon=True)
        t.start()
        ts.append(t)
        if spacing:
            time.sleep(spacing)
    for t in ts:
        t.join(timeout + 5)
    return [r or Result(error="thread did not finish") for r in out]


def summary(results, limit):
    ok = [r for r in results if r.ok(limit)]
    secs = [r.secs for r in results if r.secs is not None]
    return "%d/%d CONNACK 0 within %s (max %s)" % (len(ok), len(results), ms(limit),
                                                  ms(max(secs) if secs else None))


def close_lines_for(m, port):
    """Parsed close lines of the client on local port (127.0.0.1 or 127.0.0.2)."""
    return [c for c in m.close_lines() if c.get("peer", "").endswith(":%d" % port)]


# -- slow handshakes -----------------------------------------------------------

class SlowHellos:
    """n sockets from src, each sending a real ClientHello one byte per
    `period` seconds; a socket mqtls closes is reopened after `reopen` s, so
    the attack holds at n sockets. src: one source address or a list used
    round-robin. Runs in its own thread until stop()."""

    def __init__(self, host, port, hello, n, src="127.0.0.1", period=1.0, reopen=1.0):
        self.host, self.port, self.hello, self.n = host, port, hello, n
        self.srcs = [src] if isinstance(src, str) else list(src)
        self.period, self.reopen = period, reopen
        self.sel = selectors.DefaultSelector()
        self.socks = {}          # fd -> [sock, bytes sent, connected]
        self.pending = []        # reopen times
        self.opened = 0
        self.attempts = 0
        self.closed_by_peer = 0
        self.connect_errors = 0
        self.sent = 0
        self.max_open = 0
        self._stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        for _ in range(self.n):
            self._open()
        self.t.start()
        return self

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.bind((self.srcs[self.attempts % len(self.srcs)], 0))
            self.attempts += 1
            rc = s.connect_ex((self.host, self.port))
        except OSError:
            s.close()
            self.connect_errors += 1
            self.pending.append(time.monotonic() + self.reopen)
            return
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.connect_errors += 1
            self.pending.append(time.monotonic() + self.reopen)
            return
        self.socks[s.fileno()] = [s, 0, rc == 0]
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        self.opened += 1
        self.max_open = max(self.max_open, len(self.socks))

    def _drop(self, fd, by_peer):
        s = self.socks.pop(fd)[0]
        try:
            self.sel.unregister(s)
        except Exception:
            pass
        s.close()
        if by_peer:
            self.closed_by_peer += 1
        if not self._stop.is_set():
            self.pending.append(time.monotonic() + self.reopen)

    def _run(self):
        next_tick = time.monotonic()
        while not self._stop.is_set():
            for key, ev in self.sel.select(timeout=0.05):
                fd = key.fd
                if fd not in self.socks:
                    continue
                ent = self.socks[fd]
                if ev & selectors.EVENT_WRITE and not ent[2]:
                    err = ent[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self.connect_errors += 1
                        self._drop(fd, False)
                        continue
                    ent[2] = True
                    self.sel.modify(ent[0], selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    try:
                        data = ent[0].recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        self._drop(fd, True)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.period
                for fd, ent in list(self.socks.items()):
                    if not ent[2] or ent[1] >= len(self.hello) - 1:
                        continue   # never the last byte: the hello stays incomplete
                    try:
                        ent[0].send(self.hello[ent[1]:ent[1] + 1])
                        ent[1] += 1
                        self.sent += 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._drop(fd, True)
            due = [t for t in self.pending if t <= now]
            if due:
                self.pending = [t for t in self.pending if t > now]
                for _ in due:
                    self._open()

    def open_count(self):
        return len(self.socks)

    def stop(self):
        self._stop.set()
        self.t.join(5)
        for fd in list(self.socks):
            self._drop(fd, False)
        self.sel.close()

    def kill(self):   # for ctx.note_socket
        if not self._stop.is_set():
            self.stop()

    def figures(self):
        return ("%d sockets from %d address(es) (max %d open), %d opened in all, %d closed "
                "by mqtls, %d connect errors" % (self.n, len(self.srcs), self.max_open,
                                                 self.opened, self.closed_by_peer,
                                                 self.connect_errors))


# -- live pub/sub latency --------------------------------------------------------

class LatencyPair:
    """A subscriber and a publisher (QoS 0, one small message every `period`
    seconds with its send time in the payload), through mqtls (TLS) or straight
    to the broker (plain TCP). lat holds every message's delivery latency."""

    def __init__(self, ctx, host, port, tls, topic, period=0.01, tag="p"):
        self.ctx, self.period, self.topic = ctx, period, topic
        self.sub = self._conn(host, port, tls, "%s-sub" % tag)
        self.pub = self._conn(host, port, tls, "%s-pub" % tag)
        self.sub_r = w.Reader(self.sub)
        self.sub.sendall(w.subscribe(1, topic))
        t, _, _ = self.sub_r.read(5)
        if t != w.SUBACK:
            raise Fail("latency subscriber got packet type %d instead of SUBACK" % t)
        self.lat = []
        self.sent = 0
        self.errors = []
        self._stop = threading.Event()
        self._pub_stop = threading.Event()
        self._seq_seen = set()

    def _conn(self, host, port, tls, cid):
        s = tcp(host, port, None, 5)
        if tls:
            s = sslctx(self.ctx).wrap_socket(s, server_hostname=host)
        self.ctx.note_socket(s)
        # keepalive 0: the subscriber never sends, and a stress run lasts
        # longer than 1.5 keepalive periods.
        s.sendall(w.connect(4, client_id=cid, keepalive=0))
        t, _, body = w.Reader(s).read(5)
        if t != w.CONNACK or w.connack_code(body) != 0:
            raise Fail("latency client %s not admitted: type %d body %r" % (cid, t, body))
        s.settimeout(None)
        return s

    def _publisher(self):
        seq = 0
        nxt = time.monotonic()
        while not self._pub_stop.is_set():
            now = time.monotonic()
            if now < nxt:
                time.sleep(nxt - now)
            nxt += self.period
            seq += 1
            try:
                self.pub.sendall(w.publish(self.topic,
                                           struct.pack(">Qd", seq, time.monotonic())))
            except OSError as e:
                self.errors.append("publish: %r" % e)
                return
            self.sent = seq

    def _subscriber(self):
        while not self._stop.is_set():
            try:
                t, flags, body = self.sub_r.read(0.5)
            except TimeoutError:
                continue
            except w.Closed as e:
                if not self._stop.is_set():
                    self.errors.append("subscriber closed: %s" % e)
                return
            if t != w.PUBLISH:
                continue
            _, payload = w.publish_fields(flags, body)
            seq, sent = struct.unpack(">Qd", payload[:16])
            self.lat.append(time.monotonic() - sent)
            self._seq_seen.add(seq)

    def start(self):
        self.ts = [threading.Thread(target=f, daemon=True)
                   for f in (self._subscriber, self._publisher)]
        for t in self.ts:
            t.start()
        return self

    def mark(self):
        """Index into lat: measure only what arrives from now on."""
        return len(self.lat)

    def stop(self, drain=3.0):
        """Stop publishing, wait (up to drain s) until the last message
        arrived, then stop the subscriber."""
        self._pub_stop.set()
        self.ts[1].join(3)
        deadline = time.monotonic() + drain
        while self.received() < self.sent and time.monotonic() < deadline and \
                self.ts[0].is_alive():
            time.sleep(0.01)
        self._stop.set()
        self.ts[0].join(3)

    def received(self):
        return len(self._seq_seen)
