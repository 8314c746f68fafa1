"""The world the authentication tests run in.

A mosquitto with its OWN password file and ACL stands behind mqtls, so the
broker itself proves which identity mqtls injected: every identity mqtls may
inject is a broker user whose password is the upstream password (so a client's
own password reaching the broker would be refused), and the ACL lets a user
write only id/<its user name>/#. A "watcher" user, connecting to the broker
directly, may read id/#: what it receives was published by whoever the broker
believed the publisher to be.

Helpers here start that broker and mqtls, write password files with the real
mosquitto_passwd (or `mqtls passwd`), and drive a single CONNECT over TLS to
assert exactly what a client gets: the CONNACK code, the refusal line mqtls
logs, and a broker that never heard of a refused client.
"""
import re
import subprocess
import threading
import time

import mqttwire as w
from harness import MQTLS, Fail, check, parse_kv, wait_until

# The password mqtls presents to the broker (--upstream-password-file).
UPSTREAM_PW = "Upstream-Pass-9c1e77"
WATCHER_PW = "watcher-pass-51d0a4"

# Clients' own passwords towards mqtls; none of them is a broker password.
PASSWORDS = {
    "alice": "Alice-S3cret-pw-1",
    "bob": "Bob-S3cret-pw-2",
}
WRONG_PW = "Wrong-Guess-pw-3"

# Every name mqtls may inject in these tests. The broker knows each of them
# with UPSTREAM_PW.
BROKER_USERS = ("alice", "bob", "carol", "dave", "svc", "device-7", "dev-cn-1",
                "dev1.example.com", "token-user")


def _run(argv, what, inp=None):
    r = subprocess.run([str(a) for a in argv], input=inp, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise Fail("%s failed rc=%d: %s" % (what, r.returncode,
                                            r.stdout.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


# -- password files -----------------------------------------------------------

def mosquitto_passwd_file(path, users):
    """Write users {name: password} to path with `mosquitto_passwd -b`
    (PBKDF2-SHA512, $7$). Returns path."""
    first = True
    for name, pw in users.items():
        _run(["mosquitto_passwd"] + (["-c"] if first else []) + ["-b", path, name, pw],
             "mosquitto_passwd -b %s" % name)
        first = False
    return path


def mqtls_passwd_file(path, users, scheme=None):
    """Write users with `mqtls passwd [-c] -b [--argon2id|--pbkdf2|--sha512]`."""
    first = True
    for name, pw in users.items():
        argv = [MQTLS, "passwd"] + (["-c"] if first else []) + \
            ([scheme] if scheme else []) + ["-b", path, name, pw]
        _run(argv, "mqtls passwd %s" % name)
        first = False
    return path


# -- the broker -----------------------------------------------------------------

def auth_broker(ctx, allow_anonymous=False, users=BROKER_USERS):
    """mosquitto that admits only `users` with UPSTREAM_PW (and the watcher),
    each allowed to write id/<own name>/#."""
    pw = ctx.dir / "broker.passwd"
    plain = "".join("%s:%s\n" % (u, UPSTREAM_PW) for u in users) + \
        "watcher:%s\n" % WATCHER_PW
    pw.write_text(plain)
    _run(["mosquitto_passwd", "-U", pw], "mosquitto_passwd -U")
    acl = ctx.dir / "broker.acl"
    acl.write_text("user watcher\ntopic read id/#\n\npattern readwrite id/%u/#\n")
    extra = ("allow_anonymous %s\npassword_file %s\nacl_file %s\n"
             % ("true" if allow_anonymous else "false", pw, acl))
    return ctx.broker(extra=extra)


LOGIN = re.compile(r"New client connected from \S+ as (\S+) \(p\d+, c\d+, k\d+(?:, u'([^']*)')?\)")


def broker_logins(b):
    """[(client_id, username or None)] of every CONNECT the broker accepted."""
    return [(cid, u if u else None) for cid, u in LOGIN.findall(b.log())]


def broker_user_of(b, client_id, timeout=5):
    """The user name the broker logged for client_id (waits for the line)."""
    def find():
        for cid, u in broker_logins(b):
            if cid == client_id:
                return (u,)
        return None
    return wait_until(find, timeout, "broker log of client %r" % client_id)[0]


def upstream_pw_file(ctx):
    """The upstream password file, with the trailing newline mqtls must strip."""
    f = ctx.dir / "upstream.pw"
    f.write_text(UPSTREAM_PW + "\n")
    return f


def auth_mqtls(ctx, b, *args, upstream_pw=True, **kw):
    """mqtls in front of b, injecting UPSTREAM_PW unless upstream_pw is False."""
    extra = ["--upstream-password-file", upstream_pw_file(ctx)] if upstream_pw else []
    return ctx.mqtls(*(extra + list(args)), broker=b, **kw)


def password_pair(ctx, *args, users=None, **kw):
    """Broker + mqtls --users (written by mosquitto_passwd) + the given args."""
    b = auth_broker(ctx)
    f = mosquitto_passwd_file(ctx.dir / "users", users or PASSWORDS)
    return b, auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "0", *args, **kw)


class Watcher:
    """mosquitto_sub connected straight to the broker as the watcher user,
    printing "topic payload" for messages under id/#."""

    def __init__(self, ctx, b, count=1, timeout=10, topic="id/#"):
        argv = ["stdbuf", "-o0", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", str(b.port),
                "-u", "watcher", "-P", WATCHER_PW, "-i", "watcher", "-t", topic, "-q", "1",
                "-C", str(count), "-W", str(timeout), "-F", "MSG %t %p"]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        ctx.note_socket(_Killer(self.p))
        self.out = bytearray()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()
        deadline = time.monotonic() + 5
        while b"Subscribed (mid" not in self.text():
            if time.monotonic() > deadline or (self.p.poll() is not None and
                                                not self.t.is_alive()):
                raise Fail("watcher did not subscribe: %s" % self.text().decode(errors="replace"))
            time.sleep(0.01)

    def _pump(self):
        while True:
            data = self.p.stdout.read1(1 << 16)
            if not data:
                return
            with self.lock:
                self.out += data

    def text(self):
        with self.lock:
            return bytes(self.out)

    def messages(self, timeout=15):
        """Wait for mosquitto_sub to end; returns ["topic payload", ...]."""
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.t.join(5)
        return [l[4:] for l in self.text().decode(errors="replace").splitlines()
                if l.startswith("MSG ")]


class _Killer:
    def __init__(self, p):
        self.p = p

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass


# -- one CONNECT over TLS ------------------------------------------------------------

class Conn:
    """A TLS connection to mqtls after a CONNECT: code is the CONNACK code
    (None when closed without one)."""

    def __init__(self, sock, reader, port, code, body):
        self.sock, self.reader, self.port, self.code, self.body = sock, reader, port, code, body

    def alive(self, timeout=5):
        """PINGREQ answered with PINGRESP (the whole path to the broker works)."""
        try:
            self.sock.sendall(w.pingreq())
            t, _, _ = self.reader.read(timeout)
        except (w.Closed, OSError, TimeoutError):
            return False
        return t == w.PINGRESP


def raw_connect(ctx, m, version=4, client_id="c", username=None, password=None, cert=None,
                properties=b"", timeout=8, **kw):
    """TLS (optionally with a client certificate), send one CONNECT, read the reply."""
    s = ctx.tls_connect(m, ctx.client_context(cert=cert) if cert else None)
    port = s.getsockname()[1]
    s.sendall(w.connect(version, client_id=client_id, username=username, password=password,
                        properties=properties, **kw))
    r = w.Reader(s)
    try:
        t, _, body = r.read(timeout)
    except w.Closed:
        return Conn(s, r, port, None, None)
    check(t == w.CONNACK, "first packet from mqtls has type %d, want CONNACK" % t)
    return Conn(s, r, port, w.connack_code(body), body)


def refuse_line(m, port, timeout=5):
    """The parsed `refuse` line mqtls logged for the client on local port."""
    needle = "refuse peer=127.0.0.1:%d " % port
    line = m.wait_log(needle, timeout)[0]
    kv = parse_kv(line)
    kv["_line"] = line
    return kv


def expect_admitted(ctx, m, b, version=4, client_id="ok", user=None, **kw):
    """CONNACK 0, and the broker logged client_id with user (None: no user)."""
    c = raw_connect(ctx, m, version, client_id, **kw)
    check(c.code == 0, "want CONNACK 0 for %r, got %r (body %r); refuse line: %r"
          % (client_id, c.code, c.body, m.lines("refuse peer=127.0.0.1:%d " % c.port)))
    got = broker_user_of(b, client_id)
    check(got == user, "broker saw client %r as user %r, want %r" % (client_id, got, user))
    return c


def expect_refused(ctx, m, b, version, code, reason, detail=None, client_id="refused",
                   barrier=None, **kw):
    """The client gets exactly one CONNACK with code, then the close; mqtls
    logs `refuse ... reason=REASON detail="...DETAIL..."`; the broker never
    sees the client (checked behind a barrier client that must be admitted:
    barrier is its raw_connect keyword arguments, or False to skip)."""
    before = len(b.connections())
    c = raw_connect(ctx, m, version, client_id, **kw)
    seen = [(w.CONNACK, 0, c.body)] if c.body is not None else []
    seen += c.reader.expect_closed(5)
    check(len(seen) == 1 and seen[0][0] == w.CONNACK,
          "want exactly one CONNACK then the close, got %r" % seen)
    got = w.connack_code(seen[0][2])
    check(got == code, "CONNACK code 0x%02x, want 0x%02x (body %r)" % (got, code, seen[0][2]))
    if version != 5:
        check(seen[0][2] == bytes([0, code]), "v3 CONNACK body %r" % seen[0][2])
    kv = refuse_line(m, c.port)
    check(kv.get("reason") == reason, "refuse reason %r, want %r: %s"
          % (kv.get("reason"), reason, kv["_line"]))
    check(kv.get("mqtt") == str(version), "refuse line mqtt=%r, want %d: %s"
          % (kv.get("mqtt"), version, kv["_line"]))
    if detail is not None:
        # A plain string must appear in the detail; a compiled pattern must match in it.
        d = kv.get("detail", "")
        ok = detail.search(d) if hasattr(detail, "search") else detail in d
        check(ok, "refuse detail %r lacks %r: %s"
              % (d, getattr(detail, "pattern", detail), kv["_line"]))
    if barrier is None:
        barrier = dict(username="alice", password=PASSWORDS["alice"])
    if barrier is not False:
        ok = raw_connect(ctx, m, 4, "barrier", **barrier)
        check(ok.code == 0, "barrier client refused with %r: %r"
              % (ok.code, m.lines("refuse peer=127.0.0.1:%d " % ok.port)))
        broker_user_of(b, "barrier")
        check(client_id not in b.clients(), "the broker saw the refused client %r: %r"
              % (client_id, b.clients()))
        check(len(b.connections()) == before + 1,
              "broker saw %d new connections, want only the barrier's: %r"
              % (len(b.connections()) - before, b.connections()))
    return kv


def close_line_of(m, client_id, timeout=5):
    """The parsed close line of client_id (waits for it)."""
    def find():
        for c in m.close_lines():
            if c.get("client_id") == client_id:
                return c
        return None
    return wait_until(find, timeout, "close line of %r in the mqtls log" % client_id)


def assert_no_secrets(m, secrets):
    """None of the secrets (passwords, tokens, token signatures) is in the log."""
    log = m.log()
    for sec in secrets:
        check(sec not in log, "mqtls log contains a secret (%d chars, starts %r)"
              % (len(sec), sec[:6]))
