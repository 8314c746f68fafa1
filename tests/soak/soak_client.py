#!/usr/bin/python3
"""One process of the soak's MQTT-over-TLS clients (driven by soak.py).

It holds PAIRS publisher/subscriber pairs (2*PAIRS TLS connections) with one
hand-written epoll loop over non-blocking ssl sockets: asyncio's SSL transport
costs several times more CPU per handshake and per record, and the whole soak
(9,000 clients, mqtls and mosquitto) shares two cores.

Pair i: subscriber "<run>-s<i>" (clean session 0) holds a QoS 1 subscription
to "soak/<run>/<i>"; publisher "<run>-p<i>" (clean session 0) publishes QoS 1
messages "<i>:<seq>" there. A publisher keeps every message until its PUBACK
arrives and, after a reconnect, sends the unacknowledged ones again with DUP
set before anything new (MQTT 3.1.1 §4.4). A message created while the
publisher is offline waits in its queue (a device buffering readings).
Client g (over all processes) connects from its own loopback address
127.10.a.b (--addresses), as distinct devices would.

Every client reconnects after any failure or close with exponential backoff
and full jitter: uniform(0, min(CAP, BASE * 2^(failures-1))). Clients reuse
their TLS session (ticket) as devices do, unless --no-resume.

Protocol with soak.py -- stdin, one command a line:
  publish          start publishing (each publisher every uniform(IMIN, IMAX) s)
  epoch N          connections that get CONNACK from now on belong to epoch N
  stop             stop creating messages (those in flight still complete)
  report           print one "report" JSON line with the full accounting
  quit             close every socket and exit
stdout: a "status" JSON line every second, then the "report" on request.
"""
import argparse
import heapq
import json
import os
import random
import resource
import select
import socket
import ssl
import struct
import sys
import time

IDLE, TCP, TLS, CONNACK, SUBACK, UP = range(6)
STATE_NAMES = ["idle", "tcp", "tls", "connack", "suback", "up"]
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT

KEEPALIVE = 60          # seconds, in CONNECT
PING_AFTER = 30         # send PINGREQ after this long without sending
PING_TIMEOUT = 30       # close if no PINGRESP within this
CONNECT_TIMEOUT = 30    # TCP + TLS + CONNACK (+ SUBACK) must complete within this
IP_BIND_ADDRESS_NO_PORT = 24


def enc_len(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def mqtt_str(s):
    return struct.pack(">H", len(s)) + s


def connect_pkt(cid):
    body = mqtt_str(b"MQTT") + bytes([4, 0x00]) + struct.pack(">H", KEEPALIVE) + mqtt_str(cid)
    return b"\x10" + enc_len(len(body)) + body


def publish_pkt(topic, pid, payload, dup):
    body = mqtt_str(topic) + struct.pack(">H", pid) + payload
    return bytes([0x32 | (0x08 if dup else 0)]) + enc_len(len(body)) + body


def subscribe_pkt(pid, topic):
    body = struct.pack(">H", pid) + mqtt_str(topic) + b"\x01"
    return b"\x82" + enc_len(len(body)) + body


PINGREQ = b"\xc0\x00"


class Pair:
    __slots__ = ("idx", "topic", "created", "acked", "ack_time", "received", "dups",
                 "undelivered", "foreign")

    def __init__(self, idx, topic):
        self.idx = idx
        self.topic = topic
        self.created = 0          # messages 1..created exist
        self.acked = set()
        self.ack_time = {}        # seq -> monotonic time of its first PUBACK
        self.received = {}        # seq -> times delivered
        self.dups = 0
        self.undelivered = 0      # acked and not yet delivered
        self.foreign = []         # payloads that are not a message of this pair


class Client:
    __slots__ = ("loop", "pair", "pub", "cid", "state", "sock", "fd", "mask", "inbuf",
                 "outbuf", "fails", "epoch", "session", "deadline", "last_tx", "ping_at",
                 "subscribed", "inflight", "queue", "timer_gen", "conns", "src",
                 "hs_done")

    def __init__(self, loop, pair, pub, cid, src):
        self.src = src
        self.hs_done = 0.0        # when our side of the TLS handshake completed
        self.loop = loop
        self.pair = pair
        self.pub = pub
        self.cid = cid
        self.state = IDLE
        self.sock = None
        self.fd = -1
        self.mask = 0
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.fails = 0
        self.epoch = -1
        self.session = None
        self.deadline = 0.0
        self.last_tx = 0.0
        self.ping_at = 0.0
        self.subscribed = False   # the broker has (or had) our subscription
        self.inflight = {}        # publisher: packet id -> seq, sent and not acked
        self.queue = []           # publisher: seqs created while offline
        self.timer_gen = 0
        self.conns = 0            # successful CONNACKs


class Loop:
    def __init__(self, args):
        self.args = args
        self.ep = select.epoll()
        self.fds = {}
        self.timers = []
        self.tseq = 0
        self.epoch = 0
        self.publishing = False
        self.stopped = False
        self.quitting = False
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(args.ca)
        self.addr = (args.host, args.port)
        self.c = {"attempts": 0, "connacks_ok": 0, "refused": {}, "tcp_fail": 0,
                  "tls_fail": 0, "closed_by_peer": 0, "timeouts": 0, "resumed": 0,
                  "sent": 0, "resent": 0, "sessions_lost": 0, "ping_timeouts": 0,
                  "suback_fail": 0}
        self.pairs = []
        self.clients = []
        run = args.run.encode()
        for i in range(args.first, args.first + args.pairs):
            p = Pair(i, b"soak/%s/%d" % (run, i))
            self.pairs.append(p)
            self.clients.append(Client(self, p, False, b"%s-s%d" % (run, i), self.source(2 * i)))
            self.clients.append(Client(self, p, True, b"%s-p%d" % (run, i), self.source(2 * i + 1)))
        self.stdin_buf = b""
        os.set_blocking(0, False)
        self.ep.register(0, EPOLLIN)

    def source(self, g):
        """The source address of client g (0-based over all processes): one of
        --addresses loopback addresses 127.10.a.b, or the default (None)."""
        if not self.args.addresses:
            return None
        k = g % self.args.addresses
        return "127.10.%d.%d" % (k // 254, k % 254 + 1)

    # ---- timers -------------------------------------------------------------
    def at(self, when, fn, cl, gen=None):
        self.tseq += 1
        heapq.heappush(self.timers, (when, self.tseq, fn, cl, gen))

    # ---- connection life ----------------------------------------------------
    def start(self, cl):
        cl.timer_gen += 1
        self.c["attempts"] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if cl.src:
            # A device's own address: the port is chosen at connect time.
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((cl.src, 0))
        err = s.connect_ex(self.addr)
        cl.sock = s
        cl.fd = s.fileno()
        cl.state = TCP
        cl.deadline = time.monotonic() + CONNECT_TIMEOUT
        cl.inbuf.clear()
        cl.outbuf.clear()
        self.fds[cl.fd] = cl
        cl.mask = EPOLLOUT
        self.ep.register(cl.fd, EPOLLOUT)
        if err not in (0, 115):   # EINPROGRESS
            self.fail(cl, "tcp_fail")

    def want(self, cl, mask):
        if cl.mask != mask:
            cl.mask = mask
            self.ep.modify(cl.fd, mask)

    def close(self, cl):
        if cl.sock is None:
            return
        try:
            self.ep.unregister(cl.fd)
        except OSError:
            pass
        self.fds.pop(cl.fd, None)
        try:
            cl.sock.close()
        except OSError:
            pass
        cl.sock = None
        cl.fd = -1
        cl.state = IDLE
        cl.timer_gen += 1

    def fail(self, cl, why):
        """Close and schedule a reconnect with backoff and full jitter."""
        if why:
            self.c[why] = self.c.get(why, 0) + 1
        if cl.state == CONNACK and why == "closed_by_peer":
            # Our handshake was complete (in TLS 1.3 the client finishes
            # first) and the CONNECT sent, and the server closed without a
            # CONNACK: how long after our Finished did that happen?
            w = time.monotonic() - cl.hs_done
            k = "closed_before_connack_%s" % ("lt0.25s" if w < 0.25 else "lt0.5s" if w < 0.5
                                              else "lt1s" if w < 1 else "ge1s")
            self.c[k] = self.c.get(k, 0) + 1
        self.close(cl)
        cl.fails += 1
        a = self.args
        delay = random.uniform(0, min(a.backoff_cap, a.backoff_base * 2 ** min(cl.fails - 1, 20)))
        self.at(time.monotonic() + delay, self.reconnect, cl, cl.timer_gen)

    def reconnect(self, cl):
        if cl.state == IDLE and not self.quitting:
            self.start(cl)

    def send(self, cl, data):
        if cl.sock is None:
            return
        cl.outbuf += data
        cl.last_tx = time.monotonic()
        self.flush(cl)

    def flush(self, cl):
        while cl.outbuf:
            try:
                n = cl.sock.send(cl.outbuf)
            except ssl.SSLWantWriteError:
                self.want(cl, EPOLLIN | EPOLLOUT)
                return True
            except ssl.SSLWantReadError:
                self.want(cl, EPOLLIN)
                return True
            except (OSError, ssl.SSLError):
                self.fail(cl, "closed_by_peer")
                return False
            del cl.outbuf[:n]
        if cl.state >= CONNACK:
            self.want(cl, EPOLLIN)
        return True

    def on_event(self, cl, ev):
        if cl.state == TCP:
            err = cl.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(cl, "tcp_fail")
                return
            fd = cl.fd
            try:
                cl.sock = self.ctx.wrap_socket(cl.sock, server_hostname="localhost",
                                               do_handshake_on_connect=False,
                                               session=None if self.args.no_resume
                                               else cl.session)
            except (OSError, ssl.SSLError):
                self.fail(cl, "tls_fail")
                return
            assert cl.sock.fileno() == fd
            cl.state = TLS
        if cl.state == TLS:
            try:
                cl.sock.do_handshake()
            except ssl.SSLWantReadError:
                self.want(cl, EPOLLIN)
                return
            except ssl.SSLWantWriteError:
                self.want(cl, EPOLLOUT)
                return
            except (OSError, ssl.SSLError, ValueError):
                self.fail(cl, "tls_fail")
                return
            if cl.sock.session_reused:
                self.c["resumed"] += 1
            cl.hs_done = time.monotonic()
            cl.state = CONNACK
            self.want(cl, EPOLLIN)
            self.send(cl, connect_pkt(cl.cid))
            return
        if ev & EPOLLOUT and cl.outbuf:
            if not self.flush(cl):
                return
        if ev & (EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            self.read(cl)

    def read(self, cl):
        while True:
            try:
                data = cl.sock.recv(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLWantWriteError:
                self.want(cl, EPOLLIN | EPOLLOUT)
                break
            except (OSError, ssl.SSLError):
                self.fail(cl, "closed_by_peer")
                return
            if not data:
                self.fail(cl, "closed_by_peer")
                return
            cl.inbuf += data
            if not self.parse(cl):
                return

    def parse(self, cl):
        buf = cl.inbuf
        while len(buf) >= 2:
            n, mult, i = 0, 1, 1
            while True:
                if i >= len(buf):
                    return True
                b = buf[i]
                n += (b & 0x7f) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if len(buf) < i + n:
                return True
            kind, flags, body = buf[0] >> 4, buf[0] & 15, bytes(buf[i:i + n])
            del buf[:i + n]
            if not self.packet(cl, kind, flags, body) or cl.sock is None:
                return False
        return True

    def packet(self, cl, kind, flags, body):
        now = time.monotonic()
        if kind == 2:                       # CONNACK
            if cl.state != CONNACK or len(body) < 2:
                self.fail(cl, "protocol")
                return False
            rc = body[1]
            if rc != 0:
                r = self.c["refused"]
                r[str(rc)] = r.get(str(rc), 0) + 1
                self.fail(cl, None)
                return False
            self.c["connacks_ok"] += 1
            cl.conns += 1
            cl.fails = 0
            cl.epoch = self.epoch
            cl.ping_at = 0.0
            s = cl.sock.session
            if s is not None and s.has_ticket:
                cl.session = s
            present = body[0] & 1
            if cl.pub:
                cl.state = UP
                for pid in sorted(cl.inflight, key=cl.inflight.get):
                    self.c["resent"] += 1
                    cl.outbuf += publish_pkt(cl.pair.topic, pid,
                                             b"%d:%d" % (cl.pair.idx, cl.inflight[pid]), True)
                q, cl.queue = cl.queue, []
                for seq in q:
                    self.publish(cl, seq, flush=False)
                self.send(cl, b"")
            else:
                if present and cl.subscribed:
                    cl.state = UP
                else:
                    if cl.subscribed:
                        self.c["sessions_lost"] += 1
                    cl.state = SUBACK
                    self.send(cl, subscribe_pkt(1, cl.pair.topic))
            return True
        if kind == 9:                       # SUBACK
            if cl.state != SUBACK or len(body) < 3 or body[2] != 1:
                self.fail(cl, "suback_fail")
                return False
            cl.subscribed = True
            cl.state = UP
            return True
        if kind == 3:                       # PUBLISH to a subscriber
            tl = struct.unpack_from(">H", body)[0]
            topic = body[2:2 + tl]
            qos = (flags >> 1) & 3
            off = 2 + tl
            pid = None
            if qos:
                pid = struct.unpack_from(">H", body, off)[0]
                off += 2
            payload = body[off:]
            p = cl.pair
            try:
                idx, seq = payload.split(b":")
                idx, seq = int(idx), int(seq)
            except ValueError:
                idx = seq = -1
            if topic != p.topic or idx != p.idx or not 1 <= seq <= p.created or qos != 1:
                if len(p.foreign) < 20:
                    p.foreign.append([topic.decode(errors="replace"), qos,
                                      payload.decode(errors="replace")])
            else:
                n = p.received.get(seq, 0)
                p.received[seq] = n + 1
                if n:
                    p.dups += 1
                elif seq in p.acked:
                    p.undelivered -= 1
            if pid is not None:
                self.send(cl, b"\x40\x02" + struct.pack(">H", pid))
            return cl.sock is not None
        if kind == 4:                       # PUBACK to a publisher
            pid = struct.unpack_from(">H", body)[0]
            seq = cl.inflight.pop(pid, None)
            if seq is not None:
                p = cl.pair
                if seq not in p.acked:
                    p.acked.add(seq)
                    p.ack_time[seq] = now
                    if seq not in p.received:
                        p.undelivered += 1
            return True
        if kind == 13:                      # PINGRESP
            cl.ping_at = 0.0
            return True
        self.fail(cl, "protocol")
        return False

    # ---- publishing ---------------------------------------------------------
    def publish(self, cl, seq, flush=True):
        pid = seq % 65535 + 1
        cl.inflight[pid] = seq
        self.c["sent"] += 1
        data = publish_pkt(cl.pair.topic, pid, b"%d:%d" % (cl.pair.idx, seq), False)
        if flush:
            self.send(cl, data)
        else:
            cl.outbuf += data

    def tick_publish(self, cl):
        if self.stopped:
            return
        p = cl.pair
        p.created += 1
        if cl.state == UP:
            self.publish(cl, p.created)
        else:
            cl.queue.append(p.created)
        a = self.args
        self.at(time.monotonic() + random.uniform(a.interval_min, a.interval_max),
                self.tick_publish, cl)

    # ---- control ------------------------------------------------------------
    def command(self, line):
        w = line.split()
        if not w:
            return
        if w[0] == "publish" and not self.publishing:
            self.publishing = True
            now = time.monotonic()
            for cl in self.clients:
                if cl.pub:
                    self.at(now + random.uniform(0, self.args.interval_max), self.tick_publish, cl)
        elif w[0] == "epoch":
            self.epoch = int(w[1])
        elif w[0] == "stop":
            self.stopped = True
        elif w[0] == "report":
            self.emit(self.report())
        elif w[0] == "quit":
            self.quitting = True

    def status(self):
        st = [0] * 6
        up_epoch = stale = 0
        for cl in self.clients:
            st[cl.state] += 1
            if cl.state == UP:
                if cl.epoch == self.epoch:
                    up_epoch += 1
                else:
                    stale += 1
        created = acked = delivered = dups = undelivered = 0
        for p in self.pairs:
            created += p.created
            acked += len(p.acked)
            delivered += len(p.received)
            dups += p.dups
            undelivered += p.undelivered
        d = {"type": "status", "t": time.monotonic(), "clients": len(self.clients),
             "states": dict(zip(STATE_NAMES, st)), "up_epoch": up_epoch, "up_stale": stale,
             "epoch": self.epoch, "created": created, "acked": acked, "delivered": delivered,
             "dups": dups, "undelivered": undelivered,
             "queued": sum(len(cl.queue) + len(cl.inflight) for cl in self.clients if cl.pub),
             "cpu": sum(os.times()[:2])}
        d.update(self.c)
        return d

    def report(self):
        unacked, missing, foreign, early = [], [], [], []
        n_unacked = n_missing = n_foreign = 0
        for p in self.pairs:
            for seq in range(1, p.created + 1):
                if seq not in p.acked:
                    n_unacked += 1
                    if len(unacked) < 50:
                        unacked.append([p.idx, seq])
                elif seq not in p.received:
                    n_missing += 1
                    missing.append([p.idx, seq, p.ack_time[seq]])
            n_foreign += len(p.foreign)
            foreign += p.foreign[:5]
        d = self.status()
        d.update(type="report", unacked=unacked, n_unacked=n_unacked, missing=missing,
                 n_missing=n_missing, foreign=foreign[:50], n_foreign=n_foreign)
        return d

    def emit(self, d):
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()

    def housekeeping(self, now):
        for cl in self.clients:
            if cl.state == IDLE:
                continue
            if cl.state != UP:
                if now > cl.deadline:
                    self.fail(cl, "timeouts")
                continue
            if cl.ping_at and now - cl.ping_at > PING_TIMEOUT:
                self.fail(cl, "ping_timeouts")
            elif not cl.ping_at and now - cl.last_tx > PING_AFTER:
                cl.ping_at = now
                self.send(cl, PINGREQ)

    def run(self):
        now = time.monotonic()
        ramp = self.args.ramp
        for cl in self.clients:
            self.at(now + random.uniform(0, ramp), self.reconnect, cl, cl.timer_gen)
        next_tick = now + 1
        while not self.quitting:
            now = time.monotonic()
            timeout = next_tick - now
            if self.timers and self.timers[0][0] - now < timeout:
                timeout = self.timers[0][0] - now
            for fd, ev in self.ep.poll(max(timeout, 0), 512):
                if fd == 0:
                    try:
                        chunk = os.read(0, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        self.quitting = True
                        break
                    self.stdin_buf += chunk
                    while b"\n" in self.stdin_buf:
                        line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
                        self.command(line.decode())
                    continue
                cl = self.fds.get(fd)
                if cl is not None:
                    self.on_event(cl, ev)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn, cl, gen = heapq.heappop(self.timers)
                if gen is None or gen == cl.timer_gen:
                    fn(cl)
            if now >= next_tick:
                next_tick = now + 1
                self.housekeeping(now)
                self.emit(self.status())
        for cl in self.clients:
            self.close(cl)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--pairs", type=int, required=True)
    ap.add_argument("--ramp", type=float, default=10.0)
    ap.add_argument("--interval-min", type=float, default=10.0)
    ap.add_argument("--interval-max", type=float, default=30.0)
    ap.add_argument("--backoff-base", type=float, default=1.0)
    ap.add_argument("--backoff-cap", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-resume", action="store_true", help="full TLS handshake every time")
    ap.add_argument("--addresses", type=int, default=0,
                    help="spread clients over this many source addresses (0: kernel's choice)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    random.seed(args.seed)
    Loop(args).run()


if __name__ == "__main__":
    main()
