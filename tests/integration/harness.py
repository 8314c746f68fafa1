"""Process harness for the integration tests: PKI, mosquitto, mqtls, logs.

Every test gets a Ctx: it starts its own mosquitto on a free loopback port
and its own mqtls, and Ctx.cleanup() kills whatever is left, even when the
test failed. Readiness comes from the processes themselves (mqtls writes its
--ready-file, mosquitto accepts a TCP connection); every wait is bounded.
"""
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MQTLS = Path(os.environ.get("MQTLS_BIN", REPO / "build" / "mqtls"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PYTHON = "/usr/bin/python3"

TESTS = []


class Skip(Exception):
    pass


class Fail(AssertionError):
    pass


def test(fn=None, *, timeout=30, alone=False):
    """Register a test function taking a Ctx. The name is the function name.
    alone=True: the test measures latency or time against a bound, so
    run.py runs it by itself once the others are done, not beside another
    test competing for the same two cores."""
    def reg(f):
        f.timeout = timeout
        f.alone = alone
        TESTS.append(f)
        return f
    return reg(fn) if fn else reg


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def wait_until(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns something truthy; Fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    """A port nobody listens on, taken below the kernel's ephemeral range:
    a port the kernel handed out could be handed out again, before it is
    used, to a process listening on port 0 (mqtls's own listeners here)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10000, max(low, 10001))
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def split_addr(addr):
    """'127.0.0.1:123' or '[::1]:123' -> (host, port)."""
    m = re.fullmatch(r"\[(.*)\]:(\d+)", addr) or re.fullmatch(r"(.*):(\d+)", addr)
    if not m:
        raise Fail("bad address in ready file: %r" % addr)
    return m.group(1), int(m.group(2))


_suite = {}


def suite_dir():
    if "dir" not in _suite:
        _suite["dir"] = Path(tempfile.mkdtemp(prefix="mqtls-itest-"))
    return _suite["dir"]


def pki():
    if "pki" not in _suite:
        from pki import PKI
        _suite["pki"] = PKI(suite_dir() / "pki")
    return _suite["pki"]


def remove_suite_dir():
    d = _suite.pop("dir", None)
    if d:
        shutil.rmtree(d, ignore_errors=True)


def record_pid(pid):
    """Remember a child's process group so the runner can kill it if the test hangs."""
    with open(suite_dir() / ("pids.%d" % os.getpid()), "a") as f:
        f.write("%d\n" % pid)


def kill_recorded(test_pid):
    f = suite_dir() / ("pids.%d" % test_pid)
    try:
        pids = [int(x) for x in f.read_text().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def tail(path, n=60):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return ["(cannot read %s: %s)" % (path, e)]
    return lines[-n:]


CLOSE_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_kv(line):
    d = {}
    for k, v in CLOSE_KV.findall(line):
        if v.startswith('"'):
            v = v[1:-1]
        d[k] = v
    return d


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, ctx, name, argv, log, **kw):
        self.ctx = ctx
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log
        self._logf = open(log, "ab")
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                  stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.stopped = False
        ctx._procs.append(self)
        record_pid(self.p.pid)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def send(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Send sig and wait for exit; returns the exit code (negative = signal)."""
        self.stopped = True
        self.send(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
            raise Fail("%s did not exit within %ss of signal %d" % (self.name, timeout, sig))

    def kill(self):
        self.stopped = True
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._logf.close()


class Broker(Proc):
    """mosquitto with a plain listener on 127.0.0.1:port (or a unix socket)."""

    def __init__(self, ctx, port=None, unix_path=None, extra=""):
        self.port = port or free_port()
        self.unix_path = unix_path
        n = len(ctx.brokers)
        conf = ctx.dir / ("mosquitto%d.conf" % n)
        log = ctx.dir / ("mosquitto%d.log" % n)
        listener = ("listener 0 %s\n" % unix_path) if unix_path else \
            ("listener %d 127.0.0.1\n" % self.port)
        conf.write_text(
            "user root\n" + listener +
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type all\n"
            "connection_messages true\n"
            "log_timestamp true\n" + extra)
        self.conf = conf
        self._probe_ports = set()
        super().__init__(ctx, "mosquitto", [MOSQUITTO, "-c", conf], log)
        ctx.brokers.append(self)
        self.wait_ready()

    def _probe(self):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect(self.unix_path)
                return True
            except OSError:
                return False
            finally:
                s.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", self.port))
            self._probe_ports.add(s.getsockname()[1])
            return True
        except OSError:
            return False
        finally:
            s.close()

    def wait_ready(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise Fail("mosquitto exited at start (rc=%s):\n%s" % (self.p.returncode,
                                                                       self.log()))
            if self._probe():
                return
            time.sleep(0.02)
        raise Fail("mosquitto did not accept connections within %ss" % timeout)

    def restart(self):
        """Start a fresh mosquitto on the same port and config."""
        self.kill()
        self._logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        self.stopped = False
        self.ctx._procs.append(self)
        record_pid(self.p.pid)
        self.wait_ready()

    def connections(self):
        """Peers of every connection the broker accepted, probes excluded."""
        peers = re.findall(r"New connection from (\S+?)(?::(\d+))? on port", self.log())
        return [(h, p) for h, p in peers if not (p and int(p) in self._probe_ports)]

    def clients(self):
        """Client ids the broker saw CONNECT from."""
        return re.findall(r"New client connected from \S+ as (\S+) ", self.log())

    @property
    def upstream(self):
        return ("unix:" + self.unix_path) if self.unix_path else ("127.0.0.1:%d" % self.port)


class Mqtls(Proc):
    """build/mqtls started with --ready-file; .addrs lists its listeners."""

    def __init__(self, ctx, args):
        n = len(ctx.proxies)
        self.ready = ctx.dir / ("ready%d" % n)
        log = ctx.dir / ("mqtls%d.log" % n)
        super().__init__(ctx, "mqtls", [MQTLS] + list(args) + ["--ready-file", self.ready], log)
        ctx.proxies.append(self)
        self.wait_ready()
        self.addrs = [split_addr(a) for a in self.ready.read_text().split()]
        self.host, self.port = self.addrs[0]

    def wait_ready(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.exists() and self.ready.read_text().strip():
                return
            if not self.alive():
                raise Fail("mqtls exited at start (rc=%s):\n%s" % (self.p.returncode,
                                                                   self.log()))
            time.sleep(0.01)
        raise Fail("mqtls wrote no ready file within %ss" % timeout)

    def lines(self, needle):
        return [l for l in self.log().splitlines() if needle in l]

    def close_lines(self):
        return [parse_kv(l) for l in self.log().splitlines()
                if re.search(r"\bclose\b", l) and "reason=" in l]

    def wait_close(self, n=1, timeout=5):
        """Wait until at least n close lines were logged; returns them all."""
        return wait_until(lambda: (lambda c: c if len(c) >= n else None)(self.close_lines()),
                          timeout, "%d close line(s) in the mqtls log" % n)

    def wait_log(self, needle, timeout=5):
        return wait_until(lambda: self.lines(needle), timeout,
                          "%r in the mqtls log" % needle)

    def rss_kb(self):
        for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise Fail("no VmRSS for mqtls")


class RefProxy(Proc):
    """Development aid (MQTLS_REFERENCE=1): mosquitto's own TLS listener in
    place of mqtls, to validate clients and PKI before build/mqtls exists.
    Log-based assertions naturally fail in this mode."""

    def __init__(self, ctx, args):
        opts = {}
        it = iter(args)
        for a in it:
            if a.startswith("--") and a not in ("--help", "--version"):
                opts[a[2:]] = next(it, "")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.addrs = [(self.host, self.port)]
        conf = ctx.dir / ("ref%d.conf" % len(ctx.proxies))
        text = ("user root\nlistener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n"
                "allow_anonymous true\nlog_dest stderr\nlog_type all\n"
                % (self.port, opts["cert"], opts["key"]))
        if opts.get("client-ca"):
            text += "cafile %s\n" % opts["client-ca"]
            text += "require_certificate %s\n" % (
                "true" if opts.get("client-cert") == "required" else "false")
        if opts.get("crl"):
            text += "crlfile %s\n" % opts["crl"]
        conf.write_text(text)
        super().__init__(ctx, "mqtls", [MOSQUITTO, "-c", conf],
                         ctx.dir / ("mqtls%d.log" % len(ctx.proxies)))
        ctx.proxies.append(self)
        wait_until(lambda: "running" in self.log(), 5, "reference mosquitto")

    def close_lines(self):
        return []

    def lines(self, needle):
        return [l for l in self.log().splitlines() if needle in l]

    wait_close = Mqtls.wait_close
    wait_log = Mqtls.wait_log
    rss_kb = Mqtls.rss_kb


class Ctx:
    """One test's world: temp dir, PKI, processes, cleanup."""

    def __init__(self, name):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=name[:40] + "-", dir=suite_dir()))
        self.pki = pki()
        self._procs = []
        self.brokers = []
        self.proxies = []
        self.notes = []

    # -- processes -------------------------------------------------------
    def broker(self, **kw):
        last = None
        for _ in range(3):   # a free port can be taken between probe and bind
            try:
                return Broker(self, **kw)
            except Fail as e:
                last = e
                if "Address already in use" not in str(e) or kw.get("port"):
                    raise
        raise last

    def mqtls(self, *extra, broker=None, upstream=None, listen=("127.0.0.1:0",), cert=None,
              key=None):
        """Start mqtls in front of broker (or upstream) with the EC server chain."""
        if upstream is None:
            upstream = (broker or self.brokers[0]).upstream
        args = []
        for l in listen:
            args += ["--listen", l]
        args += ["--cert", cert or self.pki.server_cert, "--key", key or self.pki.server_key,
                 "--upstream", upstream]
        if os.environ.get("MQTLS_REFERENCE"):
            return RefProxy(self, args + [str(a) for a in extra])
        return Mqtls(self, args + [str(a) for a in extra])

    def mqtls_raw(self, args):
        """Start mqtls with exactly these arguments (plus --ready-file)."""
        return Mqtls(self, [str(a) for a in args])

    def pair(self, *extra, **kw):
        """Broker + mqtls in front of it."""
        b = self.broker()
        return b, self.mqtls(*extra, broker=b, **kw)

    def run_mqtls(self, *args, timeout=10):
        """Run mqtls to completion (for startup errors, --help...): (rc, stdout, stderr)."""
        r = subprocess.run([str(MQTLS)] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def spawn(self, name, argv, **kw):
        return Proc(self, name, argv, self.dir / ("%s-%d.log" % (name, len(self._procs))), **kw)

    # -- TLS clients -----------------------------------------------------
    def client_context(self, cafile=None, cert=None, minv=None, maxv=None, alpn=None):
        ctx = ssl.create_default_context(cafile=cafile or self.pki.ca)
        if cert:
            ctx.load_cert_chain(*cert)
        if minv:
            ctx.minimum_version = minv
        if maxv:
            ctx.maximum_version = maxv
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def tls_connect(self, proxy, ctx=None, host=None, port=None, timeout=5, strict_eof=False):
        """TLS connection to mqtls (handshake done); returns the SSLSocket.
        strict_eof: a TCP close without close_notify raises instead of
        reading as a clean EOF."""
        host = host or proxy.host
        port = port or proxy.port
        ctx = ctx or self.client_context()
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            s = ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=not strict_eof)
        except Exception:
            raw.close()
            raise
        self.note_socket(s)
        return s

    def note_socket(self, s):
        self._procs.append(_SockCloser(s))
        return s

    # -- teardown --------------------------------------------------------
    def unexpected_exits(self):
        """mqtls processes that died on their own during the test."""
        return ["mqtls pid %d exited with %s" % (p.pid, p.p.returncode)
                for p in self.proxies if not p.stopped and not p.alive()]

    LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (error|warn|info|debug) "
                          r"|^\{\"ts\":\"\d{4}-\d\d-\d\dT[^\"]*Z\",\"level\":\"(error|warn|info|debug)\",.*\}$")

    def stray_log_lines(self):
        """mqtls output lines that are not log events (one line per event)."""
        out = []
        for p in self.proxies:
            if isinstance(p, Mqtls):
                out += [l for l in p.log().splitlines() if l and not self.LOG_LINE.match(l)]
        return out

    def cleanup(self):
        for p in reversed(self._procs):
            try:
                p.kill()
            except Exception:
                pass

    def dump(self, n=60):
        out = []
        for p in self.proxies:
            out.append("---- mqtls log %s (last %d lines) ----" % (p.log_path, n))
            out += tail(p.log_path, n)
        for b in self.brokers:
            out.append("---- mosquitto log %s (last %d lines) ----" % (b.log_path, n))
            out += tail(b.log_path, n)
        for p in self._procs:
            if isinstance(p, Proc) and p.name not in ("mqtls", "mosquitto"):
                out.append("---- %s log (last 20 lines) ----" % p.name)
                out += tail(p.log_path, 20)
        return out + ["# " + n for n in self.notes]


class _SockCloser:
    def __init__(self, s):
        self.s = s

    def kill(self):
        try:
            self.s.close()
        except Exception:
            pass
