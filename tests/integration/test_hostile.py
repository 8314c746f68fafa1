"""Hostile load (DESIGN.md §8, issue 8): every attack that once hurt mqtls is
a test against the real binary with a real mosquitto, asserting what OTHER
clients still get: connect time, delivery latency against the direct broker,
memory, a prompt exit on SIGTERM, and the exact CONNACK and log reason the
attacker gets.

Bounded by default (make test); MQTLS_STRESS=1 (make stress) makes the
attacks bigger and longer. Against the ASan+UBSan build only time bounds
widen (x3), nothing is skipped. Each test prints its figures under its TAP
line; the figures before the fixes are in the commit message.
"""
import base64
import hashlib
import os
import select
import signal
import ssl
import subprocess
import threading
import time

import auth_env as A
import auth_jwt as J
import mqttwire as w
from harness import REPO, Fail, check, test, wait_until
from hostile import (ASAN, OTHER, STRESS, TLS12, TLS13, TLS_NAMES, LatencyPair, MemTLS,
                     SlowHellos, bound, client_hello, close_lines_for, good_clients,
                     good_connect, ms, pct, scaled, sslctx, summary, tcp)


def _direct_publisher(b, client_id="direct-pub"):
    """Plain MQTT connection straight to the broker (not through mqtls)."""
    s = tcp("127.0.0.1", b.port, None, 5)
    s.sendall(w.connect(4, client_id=client_id))
    t, _, body = w.Reader(s).read(5)
    check(t == w.CONNACK and w.connack_code(body) == 0, "direct publisher not admitted")
    return s


# -- 1. a partial TLS record -------------------------------------------------------
#
# A client completes the handshake, then sends only the first 1, 3 or 10 bytes
# of a TLS record and stops. Before the fix the read turn re-scheduled itself
# forever (bytes sat in the read-ahead, SSL_read said WANT_READ): the worker
# ran at 100% CPU, served no one and its timers stopped.

PARTIAL_SIZES = (1, 3, 10)


def _partial_case(ctx, b, nbytes, version, state):
    """One staller in `state` with nbytes of a record; returns (failures, note)."""
    m = ctx.mqtls("--workers", "1", "--connect-timeout", "2", broker=b)
    limit = bound(1.0)
    fails = []
    parts = []
    try:
        if state == "forwarding":
            res, sub, sub_r = good_connect(ctx, m, client_id="sub", keep=True)
            check(res.code == 0, "subscriber not admitted before the attack: %r" % res)
            sub.sendall(w.subscribe(1, "hostile/live"))
            t, _, _ = sub_r.read(5)
            check(t == w.SUBACK, "subscriber got type %d instead of SUBACK" % t)
        st = MemTLS(sslctx(ctx, version), m.host, m.port).handshake()
        ctx.note_socket(st)
        check(st.version() == {TLS12: "TLSv1.2", TLS13: "TLSv1.3"}[version],
              "staller negotiated %s" % st.version())
        if state == "forwarding":
            st.send(w.connect(4, client_id="staller"))
            t, _, body = st.reader().read(5)
            check(t == w.CONNACK and w.connack_code(body) == 0,
                  "staller not admitted: type %d body %r" % (t, body))
            rec = st.seal(w.publish("hostile/staller", b"x" * 40))
        else:
            rec = st.seal(w.connect(4, client_id="staller"))
        t_hs = time.monotonic()
        st.sock.sendall(rec[:nbytes])

        res = good_clients(ctx, m, 5, limit, prefix="good%d" % nbytes)
        parts.append("good " + summary(res, limit))
        if not all(r.ok(limit) for r in res):
            fails.append("new clients while the staller holds: %r" % res)

        if state == "forwarding":
            pub = _direct_publisher(b)
            t0 = time.monotonic()
            pub.sendall(w.publish("hostile/live", b"ping"))
            try:
                t, flags, body = sub_r.read(max(limit, 2.0))
                took = time.monotonic() - t0
                parts.append("subscriber got the publish in %s" % ms(took))
                if t != w.PUBLISH or took > limit:
                    fails.append("subscriber on the staller's worker: type %d after %s"
                                 % (t, ms(took)))
            except (TimeoutError, w.Closed) as e:
                parts.append("subscriber got nothing in %s" % ms(max(limit, 2.0)))
                fails.append("subscriber on the staller's worker got nothing: %s" % e)
            pub.close()
            # The staller leaves: its worker still notices.
            st.close()
            try:
                wait_until(lambda: close_lines_for(m, st.port), bound(2.0),
                           "the staller's close line")
            except Fail as e:
                fails.append(str(e))
        else:
            # --connect-timeout 2 must still fire for the staller.
            def timed_out():
                return [c for c in close_lines_for(m, st.port)
                        if c.get("state") == "await_connect" and
                        c.get("reason") == "connect_timeout"]
            try:
                wait_until(timed_out, 2 + bound(2.0) - (time.monotonic() - t_hs),
                           "close state=await_connect reason=connect_timeout of the staller")
                parts.append("staller closed by connect_timeout after %s"
                             % ms(time.monotonic() - t_hs))
            except Fail as e:
                parts.append("staller still open after %s" % ms(time.monotonic() - t_hs))
                fails.append(str(e))
    finally:
        m.kill()
    name = "%dB %s %s" % (nbytes, TLS_NAMES[version], state)
    return ["%s: %s" % (name, f) for f in fails], "%s: %s" % (name, "; ".join(parts))


def _partial_matrix(ctx, version, state):
    b = ctx.broker()
    fails = []
    for n in PARTIAL_SIZES:
        f, note = _partial_case(ctx, b, n, version, state)
        ctx.notes.append(note)
        fails += f
    check(not fails, "\n".join(fails))


@test(timeout=60)
def hostile_partial_record_await_connect_tls12(ctx):
    _partial_matrix(ctx, TLS12, "await_connect")


@test(timeout=60)
def hostile_partial_record_await_connect_tls13(ctx):
    _partial_matrix(ctx, TLS13, "await_connect")


@test(timeout=60)
def hostile_partial_record_forwarding_tls12(ctx):
    _partial_matrix(ctx, TLS12, "forwarding")


@test(timeout=60)
def hostile_partial_record_forwarding_tls13(ctx):
    _partial_matrix(ctx, TLS13, "forwarding")


@test(timeout=60)
def hostile_record_dribbled_one_byte_per_segment_still_connects(ctx):
    """A whole CONNECT record, one byte per TCP segment, 30 ms apart: CONNACK
    0 for it, and good clients meanwhile are not held up."""
    b = ctx.broker()
    limit = bound(1.0)
    fails = []
    for version in (TLS12, TLS13):
        m = ctx.mqtls("--workers", "1", "--connect-timeout", "10", broker=b)
        try:
            st = MemTLS(sslctx(ctx, version), m.host, m.port).handshake()
            ctx.note_socket(st)
            rec = st.seal(w.connect(4, client_id="dribble-" + "d" * 40, keepalive=30))
            goods = []
            gt = threading.Thread(target=lambda: goods.extend(
                good_clients(ctx, m, 3, limit, prefix="good", spacing=0.2)), daemon=True)
            t0 = time.monotonic()
            for i in range(len(rec)):
                st.sock.sendall(rec[i:i + 1])
                if i == 5:
                    gt.start()
                time.sleep(0.03)
            try:
                t, _, body = st.reader().read(bound(2.0))
                code = w.connack_code(body) if t == w.CONNACK else "type %d" % t
            except (TimeoutError, w.Closed) as e:
                code = repr(e)
            took = time.monotonic() - t0
            gt.join(10)
            ctx.notes.append("%s: %d-byte record in %d segments: %s after %s; good clients "
                             "during the dribble: %s" % (TLS_NAMES[version], len(rec),
                                                         len(rec), code, ms(took),
                                                         summary(goods, limit)))
            if code != 0:
                fails.append("%s: dribbled CONNECT got %r" % (TLS_NAMES[version], code))
            if len(goods) != 3 or not all(r.ok(limit) for r in goods):
                fails.append("%s: good clients during the dribble: %r"
                             % (TLS_NAMES[version], goods))
        finally:
            m.kill()
    check(not fails, "\n".join(fails))


# -- 2. a password storm ---------------------------------------------------------------
#
# Clients open TLS, send a CONNECT for a user whose hash costs 210,000 PBKDF2
# iterations (or an unknown user: the dummy hash costs the same) with a wrong
# password, and leave at once. Before the fix the auth pool queue had no
# bound: RSS reached 1.1 GB, the real user got CONNACK 3 for 400 s after the
# attack, and SIGTERM did not end the process.

ALICE = A.PASSWORDS["alice"]
PBKDF2_ITER = 210000


def _pbkdf2_entry(user, pw, iterations=PBKDF2_ITER):
    """A mosquitto 2.1 style $7$ line (PBKDF2-SHA512, 64-byte salt)."""
    salt = os.urandom(64)
    dk = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, iterations, 64)
    return "%s:$7$%d$%s$%s" % (user, iterations, base64.b64encode(salt).decode(),
                               base64.b64encode(dk).decode())


def _slow_password_pair(ctx, *args):
    """auth broker + mqtls --users with alice behind 210,000 PBKDF2 iterations."""
    b = A.auth_broker(ctx)
    f = ctx.dir / "users"
    f.write_text(_pbkdf2_entry("alice", ALICE) + "\n")
    return b, A.auth_mqtls(ctx, b, "--users", f, *args)


def _refuse_lines(m, reason):
    return [l for l in m.lines("refuse peer=") if ("reason=%s " % reason) in l + " "]


class AuthStorm:
    """Attackers from src: `closers` threads send a CONNECT with a wrong password
    (60 KB or 600 bytes, alice or an unknown user, 3.1.1 or 5) and close at
    once; `stayers` threads send bursts of `burst` such CONNECTs (600-byte
    passwords) on connections they keep, and record every answer as (version,
    password length, CONNACK code or None, seconds after its CONNECT)."""

    def __init__(self, ctx, m, closers=4, stayers=2, burst=16, src="127.0.0.1"):
        self.ctx, self.m, self.src, self.burst = ctx, m, src, burst
        self.nclosers, self.nstayers = closers, stayers
        self.ctxs = [sslctx(ctx, TLS12), sslctx(ctx, TLS13)]
        self.packets = []
        for pwlen in (60 * 1024, 600):
            for user in ("alice", "nobody"):
                for version in (4, 5):
                    self.packets.append((version, pwlen, w.connect(
                        version, client_id="", username=user, password=b"w" * pwlen)))
        self.sent = 0
        self.errors = 0
        self.answers = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.ts = []

    def _tls(self, i):
        raw = tcp(self.m.host, self.m.port, self.src, 3)
        raw.settimeout(3)
        return self.ctxs[i % 2].wrap_socket(raw, server_hostname=self.m.host)

    def _closer(self, k):
        i = k
        while not self.stop_ev.is_set():
            i += 1
            try:
                s = self._tls(i)
                s.sendall(self.packets[i % len(self.packets)][2])
                s.close()
                with self.lock:
                    self.sent += 1
            except (OSError, ssl.SSLError):
                with self.lock:
                    self.errors += 1
                time.sleep(0.01)

    def _stayer(self, k):
        """Bursts: `burst` TLS connections first, then their CONNECTs (600-byte
        wrong passwords) back to back, then every answer, timed as it arrives."""
        i = k * 7
        short = [p for p in self.packets if p[1] == 600]
        while not self.stop_ev.is_set():
            socks, pkts = [], []
            for _ in range(self.burst):
                i += 1
                version, pwlen, pkt = short[i % len(short)]
                try:
                    socks.append((version, self._tls(i)))
                    pkts.append(pkt)
                except (OSError, ssl.SSLError):
                    with self.lock:
                        self.errors += 1
            sent_at = []
            for (_, s), pkt in zip(socks, pkts):
                try:
                    s.sendall(pkt)
                except OSError:
                    pass
                sent_at.append(time.monotonic())
            got = _answers(socks, sent_at, 8.0, self.stop_ev)
            for _, s in socks:
                s.close()
            with self.lock:
                self.sent += len(socks)
                self.answers += [(v, 600, c, secs) for v, c, secs in got
                                 if c is not None or not self.stop_ev.is_set()]

    def start(self):
        self.stop_ev.clear()
        self.ts = [threading.Thread(target=self._closer, args=(k,), daemon=True)
                   for k in range(self.nclosers)]
        self.ts += [threading.Thread(target=self._stayer, args=(k,), daemon=True)
                    for k in range(self.nstayers)]
        for t in self.ts:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.ts:
            t.join(10)
        return time.monotonic()

    def kill(self):   # for ctx.note_socket
        self.stop()


class RssSampler:
    def __init__(self, m, period=0.1):
        self.m, self.period, self.max_kb, self.samples = m, period, 0, 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                self.max_kb = max(self.max_kb, self.m.rss_kb())
                self.samples += 1
            except (OSError, Fail):
                return
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.t.join(2)
        return self.max_kb


RSS_LIMIT_KB = 150 * 1024


@test(timeout=150 if STRESS else 60, alone=True)
def hostile_password_storm_keeps_memory_bounded_and_the_real_user_in(ctx):
    if ASAN:
        # ASan keeps up to 256 MB of freed memory in its quarantine, and this
        # storm frees a 60 KB CONNECT buffer per attacker: RSS would measure
        # the sanitizer, not mqtls. A 16 MB quarantine keeps the memory bound
        # meaningful (and use-after-free detection on); this test's own
        # process only, so the mqtls it starts inherits it.
        os.environ["ASAN_OPTIONS"] = ":".join(
            x for x in (os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16") if x)
    b, m = _slow_password_pair(ctx, "--workers", "2", "--drain-timeout", "2")
    storm_secs = scaled(10, 60)
    rss0 = m.rss_kb()
    rss = RssSampler(m)
    storm = AuthStorm(ctx, m, closers=4, stayers=2)
    ctx.note_socket(storm)
    fails = []
    t_start = time.monotonic()
    storm.start()
    # (b) during the storm, alice from another address gets in within 3 s.
    during = []
    k = 0
    while time.monotonic() - t_start < storm_secs:
        time.sleep(min(2.5, max(0.0, storm_secs - (time.monotonic() - t_start))))
        if time.monotonic() - t_start >= storm_secs - 0.5:
            break
        k += 1
        during.append(good_connect(ctx, m, OTHER, client_id="alice-during-%d" % k,
                                   username="alice", password=ALICE,
                                   timeout=bound(3.0) + 2))
    t_stop = storm.stop()
    max_kb = rss.stop()
    sent, errors = storm.sent, storm.errors
    storm_rate = sent / (t_stop - t_start)
    # (c) right after the attack, alice gets in within 1 s, from both addresses.
    after = [None, None]

    def login(i, src):
        after[i] = good_connect(ctx, m, src, client_id="alice-after-%d" % i,
                                username="alice", password=ALICE, timeout=bound(1.0) + 3)
    ths = [threading.Thread(target=login, args=(i, src), daemon=True)
           for i, src in enumerate(("127.0.0.1", OTHER))]
    for t in ths:
        t.start()
    for t in ths:
        t.join(20)
    busy_log = len(_refuse_lines(m, "server_busy"))
    answers = list(storm.answers)

    ctx.notes.append("storm %ds: %d attacker connections (%.0f/s), %d attacker errors; mqtls "
                     "RSS %d KB before, max %d KB during (%d samples)"
                     % (storm_secs, sent, storm_rate, errors, rss0, max_kb, rss.samples))
    ctx.notes.append("alice from %s during the storm: %s" % (OTHER, during))
    ctx.notes.append("alice right after the storm: from 127.0.0.1 %r, from %s %r"
                     % (after[0], OTHER, after[1]))
    # (a) memory
    if max_kb > RSS_LIMIT_KB:
        fails.append("RSS reached %d KB during the storm (limit %d KB)" % (max_kb, RSS_LIMIT_KB))
    # (b)
    if not during or not all(r.ok(bound(3.0)) for r in during):
        fails.append("alice from %s during the storm: %r (want CONNACK 0 within %s)"
                     % (OTHER, during, ms(bound(3.0))))
    # (c)
    for r, src in zip(after, ("127.0.0.1", OTHER)):
        if r is None or not r.ok(bound(1.0)):
            fails.append("alice from %s right after the storm: %r (want CONNACK 0 within %s)"
                         % (src, r, ms(bound(1.0))))
    # (e) refused for being over the limits: server busy, at once, the right code.
    busy = [(v, c, s) for v, _, c, s in answers if c in (3, 0x89)]
    wrong = [(v, c) for v, _, c, s in answers
             if c is not None and c not in ({4: (3, 4), 5: (0x89, 0x86)}[v])]
    slow_busy = [(v, c, round(s, 3)) for v, c, s in busy if s > bound(1.0)]
    unanswered = sum(1 for a in answers if a[2] is None)
    ctx.notes.append("stayers: %d answers, %d server busy (max %s after the CONNECT), %d "
                     "bad credentials, %d unanswered within 8 s; refuse reason=server_busy "
                     "lines: %d" % (len(answers), len(busy),
                                    ms(max((s for _, _, s in busy), default=None)),
                                    sum(1 for a in answers if a[2] in (4, 0x86)), unanswered,
                                    busy_log))
    if busy_log == 0:
        fails.append("no `refuse ... reason=server_busy` in the log during the storm")
    if wrong:
        fails.append("stayers got unexpected CONNACK codes (version, code): %r" % wrong[:10])
    if slow_busy:
        fails.append("server-busy refusals were not at once: %r" % slow_busy[:10])

    # (d) SIGTERM with attackers still coming: exit within the drain timeout (2 s)
    # plus the 5 s the last flush may take.
    storm.start()
    time.sleep(scaled(2, 5))
    t0 = time.monotonic()
    try:
        rc = m.stop(signal.SIGTERM, timeout=bound(10.0))
        took = time.monotonic() - t0
        ctx.notes.append("SIGTERM during a second storm: exit %s after %s" % (rc, ms(took)))
    except Fail as e:
        ctx.notes.append("SIGTERM during a second storm: %s" % e)
        fails.append(str(e))
    storm.stop()
    check(not fails, "\n".join(fails))


def _tls_then_connect_together(ctx, m, clients, version_of, limit):
    """Open TLS for every (src, username) in clients, then send all CONNECTs
    (600-byte wrong passwords) back to back; returns [(version, code, secs)]."""
    socks = []
    for i, (src, user) in enumerate(clients):
        raw = tcp(m.host, m.port, src, 5)
        s = sslctx(ctx).wrap_socket(raw, server_hostname=m.host)
        ctx.note_socket(s)
        socks.append((version_of(i), s, w.connect(version_of(i), client_id="lim-%d" % i,
                                                  username=user, password=b"w" * 600)))
    sent_at = []
    for v, s, pkt in socks:
        s.sendall(pkt)
        sent_at.append(time.monotonic())
    return _answers([(v, s) for v, s, _ in socks], sent_at, limit)


def _answers(socks, sent_at, limit, stop=None):
    """First packet on each of socks [(version, sslsock)], timed when it
    arrives (select over all): [(version, CONNACK code or None, secs or error)]."""
    out = [None] * len(socks)
    readers = [w.Reader(s) for _, s in socks]
    deadline = time.monotonic() + limit
    while any(o is None for o in out) and time.monotonic() < deadline and \
            not (stop and stop.is_set()):
        waiting = {s: i for i, (_, s) in enumerate(socks) if out[i] is None}
        ready = [s for s in waiting if s.pending()]
        if not ready:
            ready, _, _ = select.select(list(waiting), [], [],
                                        max(0.0, min(0.2, deadline - time.monotonic())))
        for s in ready:
            i = waiting[s]
            v = socks[i][0]
            try:
                t, _, body = readers[i].read(0.5)
                out[i] = (v, w.connack_code(body) if t == w.CONNACK else -t,
                          time.monotonic() - sent_at[i])
            except TimeoutError:
                continue   # a partial record: the rest follows
            except w.Closed as e:
                out[i] = (v, None, "closed: %s" % e)
    return [o or (socks[i][0], None, time.monotonic() - sent_at[i]) for i, o in enumerate(out)]


@test(timeout=60)
def hostile_auth_limits_refuse_server_busy_at_once(ctx):
    """--max-auth-queue, --max-auth-per-ip, --max-auth-per-user: checks beyond
    them are refused at once with server busy (3.1.1: 3, 5: 0x89), logged as
    reason=server_busy; the ones within them are hashed and refused with 4/0x86."""
    b = A.auth_broker(ctx)
    f = ctx.dir / "users"
    f.write_text(_pbkdf2_entry("alice", ALICE) + "\n")
    common = ["--users", f, "--workers", "1", "--auth-threads", "1", "--auth-fail-delay", "0"]
    many = ["127.0.1.%d" % i for i in range(1, 13)]
    cases = [
        ("queue 4", ["--max-auth-queue", "4", "--max-auth-per-ip", "100",
                     "--max-auth-per-user", "100"],
         [(src, "alice") for src in many], 4),
        ("per ip 2", ["--max-auth-queue", "64", "--max-auth-per-ip", "2",
                      "--max-auth-per-user", "100"],
         [("127.0.0.3", "alice")] * 8, 2),
        ("per user 2", ["--max-auth-queue", "64", "--max-auth-per-ip", "100",
                        "--max-auth-per-user", "2"],
         [(src, "alice") for src in many[:8]], 2),
    ]
    fails = []
    for name, flags, clients, cap in cases:
        m = A.auth_mqtls(ctx, b, *(common + flags))
        got = _tls_then_connect_together(ctx, m, clients, lambda i: 4 if i % 2 else 5,
                                         bound(5.0))
        busy = [g for g in got if g[1] in (3, 0x89)]
        hashed = [g for g in got if g[1] in (4, 0x86)]
        other = [g for g in got if g not in busy and g not in hashed]
        wrong_code = [g for g in busy + hashed
                      if g[1] not in {4: (3, 4), 5: (0x89, 0x86)}[g[0]]]
        late = [g for g in busy if g[2] > bound(0.5)]
        logged = len(_refuse_lines(m, "server_busy"))
        ctx.notes.append("%s: %d clients -> %d server busy (max %s after the CONNECT), %d "
                         "hashed and refused, %d other %r; %d refuse reason=server_busy lines"
                         % (name, len(got), len(busy),
                            ms(max((g[2] for g in busy), default=None)), len(hashed),
                            len(other), other[:3], logged))
        if len(busy) < len(clients) - cap - 1 or len(hashed) < 1:
            fails.append("%s: want about %d of %d refused as busy and the rest hashed, got %r"
                         % (name, len(clients) - cap, len(clients), got))
        if other or wrong_code:
            fails.append("%s: unexpected answers %r" % (name, other + wrong_code))
        if late:
            fails.append("%s: server busy not at once: %r" % (name, late))
        if logged != len(busy):
            fails.append("%s: %d refuse reason=server_busy lines for %d busy answers"
                         % (name, logged, len(busy)))
        m.stop()
    check(b.clients() == [], "the broker saw clients: %r" % b.clients())
    check(not fails, "\n".join(fails))


@test(timeout=60)
def hostile_password_over_1024_bytes_is_refused_without_hashing(ctx):
    b, m = _slow_password_pair(ctx, "--workers", "1", "--auth-fail-delay", "0")
    # Exact answers: the CONNACK, the reason, and a broker that never hears of it.
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", client_id="long-v4",
                     username="alice", password="w" * 1025)
    A.expect_refused(ctx, m, b, 5, 0x86, "bad_credentials", client_id="long-v5",
                     username="alice", password="w" * (60 * 1024), barrier=False)
    # Not hashed: refused in far less time than one 210,000-iteration check.

    def timed(pw, version, n=3):
        rs = [good_connect(ctx, m, OTHER, version, client_id="t", username="alice",
                           password=pw, timeout=10) for _ in range(n)]
        return rs, sorted(r.secs for r in rs)[n // 2]
    hashed, t_hash = timed("w" * 600, 4)
    long4, t_long4 = timed("w" * 1025, 4)
    long5, t_long5 = timed("w" * (60 * 1024), 5)
    ctx.notes.append("median refusal: 600-byte wrong password (hashed) %s; 1025 bytes %s; "
                     "60 KB %s" % (ms(t_hash), ms(t_long4), ms(t_long5)))
    check(all(r.code == 4 for r in hashed), "600-byte wrong password: %r" % hashed)
    # 210,000 PBKDF2-SHA512 rounds cannot take under 20 ms on any current CPU
    # (about 70 ms on an idle core here); below that the measure is void.
    check(t_hash >= 0.02, "a 210,000-iteration check took only %s: the measure is void"
          % ms(t_hash))
    check(all(r.code == 4 for r in long4) and all(r.code == 0x86 for r in long5),
          "long passwords: v3.1.1 %r, v5 %r" % (long4, long5))
    check(max(t_long4, t_long5) < t_hash / 2,
          "long passwords were refused after %s / %s, a hashed check takes %s: they were "
          "hashed" % (ms(t_long4), ms(t_long5), ms(t_hash)))


# -- 3. slow handshakes ------------------------------------------------------------------
#
# Sockets that send a real ClientHello at one byte per second. Before the fix
# each held a handshake slot for --handshake-timeout (10 s) and accepting
# paused at --max-handshakes: good clients waited ~9 s or failed.

STALL_REASONS = ("hello_timeout", "handshake_evicted", "handshakes_per_ip")


def _stalled_closes(m):
    return [c for c in m.close_lines()
            if c.get("state") == "handshake" and c.get("reason", "").startswith(STALL_REASONS)]


def _slow_handshakes(ctx, n, *flags, src="127.0.0.1"):
    b = ctx.broker()
    m = ctx.mqtls("--workers", "2", *flags, broker=b)
    hello = client_hello(sslctx(ctx))
    limit = bound(1.0)
    hold = scaled(4.0, 30.0)
    attack = SlowHellos(m.host, m.port, hello, n, src=src)
    ctx.note_socket(attack)
    t0 = time.monotonic()
    attack.start()
    fails = []
    rounds = []
    # Measure while the attack holds: after the first hello deadline has
    # passed (3 s) and the attacker has reopened what was closed.
    while True:
        wait_until(lambda: time.monotonic() - t0 >= hold, hold + 1, "the attack to hold")
        res = good_clients(ctx, m, 10, limit, spacing=0.2, timeout=limit + 1.0)
        rounds.append(res)
        if not STRESS or time.monotonic() - t0 >= 60:
            break
        hold += 15.0
    open_now = attack.open_count()
    # Stalled handshakes are closed: by the hello deadline, by eviction or by
    # the per-address cap (close lines in state handshake).
    try:
        wait_until(lambda: len(_stalled_closes(m)) >= 32, max(0.5, 3 + bound(3.0) -
                                                                (time.monotonic() - t0)),
                   "32 close lines state=handshake reason=%s" % "|".join(STALL_REASONS))
    except Fail as e:
        fails.append(str(e))
    stalled = _stalled_closes(m)
    by_reason = {}
    for c in stalled:
        by_reason[c["reason"]] = by_reason.get(c["reason"], 0) + 1
    attack.stop()
    elapsed = time.monotonic() - t0
    ctx.notes.append("attack: %s over %.0f s; %d held open when measured"
                     % (attack.figures(), elapsed, open_now))
    for i, res in enumerate(rounds):
        ctx.notes.append("good clients from %s (round %d): %s" % (OTHER, i + 1,
                                                                 summary(res, limit)))
        if not all(r.ok(limit) for r in res):
            fails.append("good clients while %d slow handshakes hold: %r" % (n, res))
    ctx.notes.append("stalled handshakes closed: %s; other handshake closes: %r"
                     % (by_reason or "none",
                        sorted({c.get("reason") for c in m.close_lines()
                                if c.get("state") == "handshake"} - set(by_reason))))
    check(not fails, "\n".join(fails))


@test(timeout=150 if STRESS else 60)
def hostile_slow_handshakes_with_max_handshakes_64(ctx):
    _slow_handshakes(ctx, scaled(600, 2000), "--max-handshakes", "64")


@test(timeout=150 if STRESS else 60)
def hostile_slow_handshakes_from_50_addresses_with_max_handshakes_64(ctx):
    # 12 (stress 40) per address: under the per-address cap, so what keeps
    # the door open is evicting the oldest stalled handshake at the limit.
    _slow_handshakes(ctx, scaled(600, 2000), "--max-handshakes", "64",
                     src=["127.0.2.%d" % i for i in range(1, 51)])


@test(timeout=150 if STRESS else 60)
def hostile_slow_handshakes_with_default_limits(ctx):
    # More than --max-handshakes (512) x 2 workers, so the default limit is hit.
    _slow_handshakes(ctx, scaled(1200, 4000))


# -- 4. a handshake flood ------------------------------------------------------------------
#
# Full TLS handshakes + CONNECT/CONNACK + disconnect, more than mqtls can take
# (2,000/s offered from 100 addresses, 500 in flight), while a live pub/sub
# pair exchanges a message every 10 ms. Before the fix every ready handshake
# ran in the loop turn before the live session's next record: the pair's p99
# went to 100-350 ms, against single-digit ms when the same flood (without
# TLS) hit the broker directly.
#
# One worker, so every handshake lands on the loop that serves the live
# pair; the flood tool runs at nice 10 so the attacker does not take the CPU
# from the measuring clients (what is measured is mqtls's own scheduling).
# Rounds alternate direct / through mqtls; each mqtls round is held to
# max(4 x the p99 of the direct round before it, 40 ms) and the median round
# decides, so one burst of unrelated load on the machine does not.

BENCH = REPO / "build" / "mqtls-bench"
FLOOD_RATE = 2000


def _flood(ctx, port, rate, secs, tls, tag):
    """mqtls-bench conn --churn at rate/s for secs (SIGINT if it falls behind);
    returns its JSON figures."""
    import json
    out = ctx.dir / ("flood-%s.json" % tag)
    argv = ["nice", "-n", "10", str(BENCH), "conn", "--churn", "--rate", str(rate),
            "--count", str(int(rate * secs)), "--concurrency", "500",
            "--source-ips", "127.0.1.1-127.0.1.100", "--port", str(port), "-q",
            "--json", str(out), "-i", "flood-%s-" % tag]
    argv += ["--cafile", ctx.pki.ca] if tls else ["--no-tls"]
    p = ctx.spawn("flood-" + tag, argv)
    try:
        p.p.wait(secs + 1.0)
    except subprocess.TimeoutExpired:
        p.send(signal.SIGINT)
        try:
            p.p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    p.stopped = True
    if not out.exists():
        raise Fail("mqtls-bench wrote no figures (rc=%s): %s" % (p.p.returncode,
                                                                p.log()[-2000:]))
    return json.loads(out.read_text())


@test(timeout=300 if STRESS else 60, alone=True)
def hostile_handshake_flood_keeps_live_latency_near_the_direct_broker(ctx):
    check(BENCH.exists(), "mqtls-bench not found at %s" % BENCH)
    # Without it mosquitto's own Nagle delays put a 40 ms floor on both paths.
    b = ctx.broker(extra="set_tcp_nodelay true\n")
    m = ctx.mqtls("--workers", "1", broker=b)
    secs, rounds = scaled(4, 20), 3
    direct = LatencyPair(ctx, "127.0.0.1", b.port, False, "lat/direct", tag="direct").start()
    through = LatencyPair(ctx, m.host, m.port, True, "lat/mqtls", tag="mqtls").start()
    i_d, i_t = direct.mark(), through.mark()
    wait_until(lambda: direct.mark() - i_d >= 100 and through.mark() - i_t >= 100, 5,
               "100 idle messages on each live pair")
    ctx.notes.append("idle: live pair p99 direct %s, through mqtls %s"
                     % (ms(pct(direct.lat[i_d:], 99)), ms(pct(through.lat[i_t:], 99))))
    p99s = {"direct": [], "mqtls": []}
    for rnd in range(1, rounds + 1):
        for tag, pair, port, tls in (("direct", direct, b.port, False),
                                     ("mqtls", through, m.port, True)):
            i0 = pair.mark()
            fig = _flood(ctx, port, FLOOD_RATE, secs, tls, "%s%d" % (tag, rnd))
            lat = pair.lat[i0:pair.mark()]
            check(len(lat) >= 50 * secs, "round %d %s: only %d messages arrived under the "
                  "flood" % (rnd, tag, len(lat)))
            p99s[tag].append(pct(lat, 99))
            ctx.notes.append("round %d, flood %s: live pair p50 %s p99 %s max %s (%d msgs); "
                             "flood %d/%d connected at %.0f/s"
                             % (rnd, "straight to the broker (no TLS)" if tag == "direct"
                                else "through mqtls", ms(pct(lat, 50)), ms(pct(lat, 99)),
                                ms(max(lat)), len(lat), fig["connected"], fig["attempted"],
                                fig["connects_per_s"]))
    direct.stop()
    through.stop()
    check(not through.errors and not direct.errors,
          "live pair errors: mqtls %r, direct %r" % (through.errors, direct.errors))
    check(through.received() >= through.sent,
          "live pair through mqtls lost messages: %d sent, %d received"
          % (through.sent, through.received()))
    # Each mqtls round is judged against the direct round just before it
    # (the same minute of the machine's life); the median round decides.
    verdicts = []
    for rnd, (d, t) in enumerate(zip(p99s["direct"], p99s["mqtls"]), 1):
        limit = max(4 * d, 0.040) * (3 if ASAN else 1)
        verdicts.append((t <= limit, "round %d: %s vs bound %s (max(4 x direct %s, 40 ms)%s)"
                         % (rnd, ms(t), ms(limit), ms(d), " x 3" if ASAN else "")))
    ctx.notes.append("p99 through mqtls per round: " + "; ".join(v[1] for v in verdicts))
    passed = sum(1 for v in verdicts if v[0])
    check(passed > rounds // 2, "p99 through mqtls under the flood over its bound in %d of %d "
          "rounds: %s" % (rounds - passed, rounds, "; ".join(v[1] for v in verdicts)))


# -- 5. small findings ------------------------------------------------------------------------
#
# A CONNECT without username and password while auth is on copied from a NULL
# pointer (the sanitizer build aborted on it); identities with control
# characters were injected, the broker dropped the client, and the client got
# a bare close instead of a CONNACK.

def _still_serving(ctx, m, b, what, **kw):
    check(m.alive(), "mqtls died after %s (rc=%s)" % (what, m.p.poll()))
    c = A.raw_connect(ctx, m, 4, "after-" + what.replace(" ", "-"), **kw)
    check(c.code == 0, "a client after %s got %r" % (what, c.code))


@test
def hostile_connect_without_credentials_with_passwords_on_is_answered(ctx):
    b = A.auth_broker(ctx, allow_anonymous=True)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", f, "--allow-anonymous", "on", "--auth-fail-delay", "0")
    for version in (4, 5):
        c = A.raw_connect(ctx, m, version, "anon-v%d" % version)
        check(c.code == 0, "anonymous v%d CONNECT (no username, no password) got %r; mqtls "
              "alive: %s" % (version, c.code, m.alive()))
        check(c.alive(), "anonymous v%d session does not answer PINGREQ" % version)
    ctx.notes.append("anonymous CONNECT without credentials, --users and --allow-anonymous "
                     "on: CONNACK 0 (v3.1.1 and v5)")
    _still_serving(ctx, m, b, "anonymous connects", username="alice",
                   password=A.PASSWORDS["alice"])


@test
def hostile_connect_without_credentials_with_cert_identity_is_answered(ctx):
    import auth_pki
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--client-ca", ctx.pki.client_ca, "--client-cert", "optional",
                     "--identity-as-username", "cn", "--auth-fail-delay", "0")
    cert = auth_pki.client_cert(ctx, "dev-cn", "dev-cn-1")
    for version in (4, 5):
        c = A.raw_connect(ctx, m, version, "cert-v%d" % version, cert=cert)
        check(c.code == 0, "v%d CONNECT without username/password over a client certificate "
              "got %r; mqtls alive: %s" % (version, c.code, m.alive()))
        check(A.broker_user_of(b, "cert-v%d" % version) == "dev-cn-1",
              "the broker did not see user dev-cn-1")
    ctx.notes.append("certificate CN dev-cn-1, CONNECT without credentials: CONNACK 0 "
                     "(v3.1.1 and v5), injected as dev-cn-1")
    _still_serving(ctx, m, b, "certificate connects", cert=cert)


@test
def hostile_certificate_cn_with_a_control_character_is_refused_bad_identity(ctx):
    import auth_pki
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--client-ca", ctx.pki.client_ca, "--client-cert", "optional",
                     "--identity-as-username", "cn", "--auth-fail-delay", "0")
    bad = auth_pki.client_cert(ctx, "ctl-cn", "dev\x01ice")
    good = auth_pki.client_cert(ctx, "dev-cn", "dev-cn-1")
    got = []
    for version, code in ((4, 5), (5, 0x87)):
        try:
            kv = A.expect_refused(ctx, m, b, version, code, "bad_identity",
                                  client_id="ctl-v%d" % version, cert=bad,
                                  barrier=dict(cert=good))
            got.append("v%d: CONNACK 0x%02x, reason=%s" % (version, code, kv.get("reason")))
        except Fail as e:
            c = A.close_line_of(m, "ctl-v%d" % version, timeout=2) \
                if m.lines('client_id="ctl-v%d"' % version) else {}
            ctx.notes.append("v%d: %s; close reason %r" % (version, str(e).splitlines()[0],
                                                           c.get("reason")))
            raise
    ctx.notes.append("CN \"dev\\x01ice\": " + "; ".join(got) + "; the broker never saw it")


@test
def hostile_token_sub_with_a_control_character_is_refused_bad_identity(ctx):
    k = J.key("hmac")
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--jwt-keys", J.keys_file(ctx, k), "--auth-fail-delay", "0")
    good = dict(username="token", password=J.token("HS256", k, payload=J.claims("device-7")))
    bad = J.token("HS256", k, payload=J.claims("a\u0001b"))
    got = []
    for version, code in ((4, 5), (5, 0x87)):
        kv = A.expect_refused(ctx, m, b, version, code, "bad_identity",
                              client_id="ctl-jwt-v%d" % version, username="token",
                              password=bad, barrier=good)
        got.append("v%d: CONNACK 0x%02x, reason=%s" % (version, code, kv.get("reason")))
    ctx.notes.append("JWT sub \"a\\u0001b\": " + "; ".join(got) + "; the broker never saw it")
