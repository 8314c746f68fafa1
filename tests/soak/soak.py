#!/usr/bin/python3
"""Soak: thousands of TLS clients held through mqtls while the broker is
restarted twice.

usage: /usr/bin/python3 tests/soak/soak.py [--seconds S] [--clients N] [--tap] ...

What runs (all on loopback, in a temp dir):
  mosquitto   persistence on (database in the temp dir), autosave every second,
              max_connections -1, fd limit raised to the hard limit
  mqtls       build/mqtls (or $MQTLS_BIN) in front of it, log level info
  clients     soak_client.py in --procs processes: N/2 QoS 1 publisher/subscriber
              pairs, persistent sessions (clean session 0, fixed client ids),
              backoff with full jitter, TLS session resumption

Timeline: the clients connect (ramped over --ramp s); once all N are connected,
publishing starts and the hold of --seconds begins. At 1/3 and 2/3 of it the
broker is stopped (the first time with SIGTERM, the second with SIGKILL; see
--signals), stays down --down s and is started again on the same port. At the
end of the hold publishing stops and the run drains.

"Accounted for" means exactly:
  1. every message a publisher created was PUBACKed by the end of the drain
     (publishers retransmit unacknowledged messages with DUP after each
     reconnect, so a message the broker never took is sent again), and
  2. every PUBACKed message was delivered to its subscriber at least once,
     except, for a SIGKILL restart only, a message whose PUBACK reached the
     publisher between KILL_WINDOW s before the kill and the moment the new
     broker accepted connections, and that was not delivered: mosquitto
     PUBACKs before it writes anything to disk and saves its database only every
     autosave_interval, so such a message may legitimately die with the broker.
     (A PUBACK received while no broker runs was sent by the killed one; mqtls
     may hand it over after the kill when it is busy.) Those are counted and
     listed, never silently dropped. A SIGTERM restart saves the database on
     exit, so there every PUBACKed message is required.
  3. no subscriber got a message that was not published to it (topic, pair,
     sequence number and QoS checked).
Duplicates (at-least-once) are counted, not failed.

Checks (one TAP line each with --tap): all clients connected at the start;
after each restart every client reconnected (a CONNACK after the broker went
down, for every one of the N) within --reconnect-bound s of the broker being
back, and none kept a connection from before; every message PUBACKed;
every PUBACKed message delivered; no foreign message; mqtls RSS after the
last reconnect settled within 10% of its level before the first restart; no
`error` line in the mqtls log and no `warn` line other than "broker ...
unreachable" while the broker was down; mqtls alive throughout and exiting 0
on SIGTERM. Exit status 0 only when every check passed.
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from calendar import timegm
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from pki import PKI  # noqa: E402

MQTLS = Path(os.environ.get("MQTLS_BIN", REPO / "build" / "mqtls"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PYTHON = "/usr/bin/python3"
AUTOSAVE = 1                       # mosquitto autosave_interval, seconds
KILL_WINDOW = 2 * AUTOSAVE + 3     # see "accounted for" above
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def child_setup():
    raise_nofile()
    os.setsid()


def free_port():
    """A free port below the ephemeral range: while the broker is down, no
    outgoing connection can take its port as a local one."""
    lo, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        port = random.randint(max(1024, lo - 12000), lo - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def proc_rss_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def proc_cpu_s(pid):
    f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def tail(path, n=40):
    try:
        return Path(path).read_text(errors="replace").splitlines()[-n:]
    except OSError as e:
        return ["(cannot read %s: %s)" % (path, e)]


class Abort(Exception):
    pass


class Broker:
    def __init__(self, work, port):
        self.port = port
        self.work = work
        self.conf = work / "mosquitto.conf"
        self.log = work / "mosquitto.log"
        (work / "db").mkdir()
        self.conf.write_text(
            "user root\n"
            "listener %d 127.0.0.1\n"
            "allow_anonymous true\n"
            "max_connections -1\n"
            "persistence true\n"
            "persistence_location %s/\n"
            "autosave_interval %d\n"
            "max_queued_messages 100000\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages false\n"
            "log_timestamp true\n" % (port, work / "db", AUTOSAVE))
        self.p = None
        self.starts = 0

    def start(self, timeout=30):
        for attempt in range(5):
            self.starts += 1
            with open(self.log, "ab") as f:
                f.write(b"==== soak: start %d ====\n" % self.starts)
                self.p = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                          stdin=subprocess.DEVNULL, stdout=f,
                                          stderr=subprocess.STDOUT, preexec_fn=child_setup)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.p.poll() is not None:
                    break
                with socket.socket() as s:
                    s.settimeout(0.5)
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
                time.sleep(0.02)
            else:
                raise Abort("mosquitto did not listen within %ss" % timeout)
            if "Address already in use" not in "\n".join(tail(self.log, 5)):
                raise Abort("mosquitto exited at start (rc=%s)" % self.p.returncode)
            time.sleep(1)
        raise Abort("mosquitto could not bind port %d" % self.port)

    def stop(self, sig, timeout=60):
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)
            raise Abort("mosquitto did not exit within %ss of signal %d" % (timeout, sig))


class ClientProc:
    """One soak_client.py process and the latest status it printed."""

    def __init__(self, i, argv, log):
        self.i = i
        self.logf = open(log, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.logf, preexec_fn=child_setup)
        self.status = None
        self.report = None
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if d.get("type") == "report":
                    self.report = d
                else:
                    self.status = d

    def send(self, cmd):
        try:
            self.p.stdin.write((cmd + "\n").encode())
            self.p.stdin.flush()
        except OSError:
            pass

    def alive(self):
        return self.p.poll() is None


class Soak:
    def __init__(self, a):
        self.a = a
        self.work = Path(tempfile.mkdtemp(prefix="mqtls-soak-"))
        self.notes = []
        self.checks = []          # (ok, name, detail lines)
        self.restarts = []        # dicts
        self.rss_samples = []     # (t, kB)
        self.mqtls = None
        self.broker = None
        self.clients = []
        self.failed_early = None

    # ---- output -------------------------------------------------------------
    def say(self, msg):
        prefix = "# " if self.a.tap else ""
        print(prefix + msg, flush=True)

    def check(self, ok, name, detail=()):
        self.checks.append((bool(ok), name, list(detail)))

    # ---- processes ----------------------------------------------------------
    def start_mqtls(self):
        ready = self.work / "mqtls.ready"
        self.mqtls_log = self.work / "mqtls.log"
        argv = [str(MQTLS), "--listen", "127.0.0.1:0", "--cert", self.pki.server_cert,
                "--key", self.pki.server_key, "--upstream", "127.0.0.1:%d" % self.broker.port,
                "--ready-file", str(ready), "--log-level", "info"] + self.a.mqtls_arg
        self.mqtls_argv = argv
        with open(self.mqtls_log, "ab") as f:
            self.mqtls = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                          stderr=subprocess.STDOUT, preexec_fn=child_setup)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if ready.exists() and ready.read_text().strip():
                addr = ready.read_text().split()[0]
                host, port = addr.rsplit(":", 1)
                self.mqtls_addr = (host.strip("[]"), int(port))
                return
            if self.mqtls.poll() is not None:
                raise Abort("mqtls exited at start (rc=%s)" % self.mqtls.returncode)
            time.sleep(0.02)
        raise Abort("mqtls wrote no ready file within 15 s")

    def start_clients(self):
        pairs = self.a.clients // 2
        k = self.a.procs
        first = 0
        run = "r%06x" % random.getrandbits(24)
        self.run_id = run
        for i in range(k):
            n = pairs // k + (1 if i < pairs % k else 0)
            argv = [PYTHON, str(HERE / "soak_client.py"), "--host", self.mqtls_addr[0],
                    "--port", str(self.mqtls_addr[1]), "--ca", self.pki.ca, "--run", run,
                    "--first", str(first), "--pairs", str(n), "--ramp", str(self.a.ramp),
                    "--interval-min", str(self.a.interval_min),
                    "--interval-max", str(self.a.interval_max),
                    "--backoff-base", str(self.a.backoff_base),
                    "--backoff-cap", str(self.a.backoff_cap),
                    "--addresses", str(self.a.addresses or self.a.clients)]
            if self.a.no_resume:
                argv.append("--no-resume")
            self.clients.append(ClientProc(i, argv, self.work / ("client%d.log" % i)))
            first += n
        self.n_clients = 2 * pairs

    def broadcast(self, cmd):
        for c in self.clients:
            c.send(cmd)

    def agg(self):
        """Sums of the clients' latest status lines (None until every process reported)."""
        tot = {}
        for c in self.clients:
            with c.lock:
                s = c.status
            if s is None:
                return None
            for k, v in s.items():
                if isinstance(v, (int, float)) and k != "t":
                    tot[k] = tot.get(k, 0) + v
                elif isinstance(v, dict):
                    d = tot.setdefault(k, {})
                    for kk, vv in v.items():
                        d[kk] = d.get(kk, 0) + vv
            tot["min_epoch"] = min(tot.get("min_epoch", 1 << 30), s["epoch"])
        return tot

    def guard(self):
        """Raise Abort if a process we rely on died."""
        if self.mqtls.poll() is not None:
            raise Abort("mqtls exited (rc=%s) during the run" % self.mqtls.returncode)
        for c in self.clients:
            if not c.alive():
                raise Abort("client process %d exited (rc=%s); its log: %s"
                            % (c.i, c.p.returncode, " | ".join(tail(c.logf.name, 5))))

    def sample(self):
        try:
            self.rss_samples.append((time.monotonic(), proc_rss_kb(self.mqtls.pid)))
        except OSError:
            pass

    def wait_until(self, pred, timeout, what):
        """Poll pred(agg) every 0.25 s while guarding; returns (ok, seconds)."""
        t0 = time.monotonic()
        last_sample = 0
        while True:
            self.guard()
            now = time.monotonic()
            if now - last_sample >= 1:
                self.sample()
                last_sample = now
            a = self.agg()
            if a is not None and pred(a):
                return True, now - t0
            if now - t0 > timeout:
                self.notes.append("timed out after %.0f s waiting for %s; last status: %s"
                                  % (timeout, what, self.brief(a)))
                return False, now - t0
            time.sleep(0.25)

    def sleep_until(self, t):
        while time.monotonic() < t:
            self.guard()
            self.sample()
            time.sleep(min(1.0, max(0.0, t - time.monotonic())))

    @staticmethod
    def brief(a):
        if not a:
            return "no status yet"
        return ("states=%s up_epoch=%d up_stale=%d created=%d acked=%d delivered=%d "
                "undelivered=%d queued=%d refused=%s" % (
                    a.get("states"), a.get("up_epoch", 0), a.get("up_stale", 0),
                    a.get("created", 0), a.get("acked", 0), a.get("delivered", 0),
                    a.get("undelivered", 0), a.get("queued", 0), a.get("refused")))

    # ---- the run ------------------------------------------------------------
    def run(self):
        a = self.a
        raise_nofile()
        t_setup = time.monotonic()
        self.pki = PKI(self.work / "pki")
        self.broker = Broker(self.work, free_port())
        self.broker.start()
        self.start_mqtls()
        self.start_clients()
        n = self.n_clients
        st = MQTLS.stat()
        self.say("mqtls binary: %s (built %s)" % (MQTLS, time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))))
        self.say("soak: %d clients (%d publisher/subscriber pairs) in %d processes, mqtls %s, "
                 "broker port %d, work dir %s" % (n, n // 2, a.procs, self.mqtls_addr[1],
                                                  self.broker.port, self.work))

        # 1. everyone connects
        t_conn = time.monotonic()
        ok, took = self.wait_until(lambda s: s["up_epoch"] == n, a.connect_bound,
                                   "all %d clients to connect" % n)
        self.connect_time = took
        ag = self.agg()
        self.check(ok, "all %d clients connected through mqtls within %.0f s (took %.1f s)"
                   % (n, a.connect_bound, took), [self.brief(ag)])
        if not ok:
            raise Abort("not every client connected")
        self.say("all %d clients connected in %.1f s (%d attempts, refused %s)"
                 % (n, took, ag["attempts"], ag["refused"]))
        self.rss_connected = proc_rss_kb(self.mqtls.pid)

        # 2. hold, with the restarts at k/(R+1) of it
        self.broadcast("publish")
        t0 = time.monotonic()
        self.t_hold = t0
        end = t0 + a.seconds
        sigs = [s.strip().upper() for s in a.signals.split(",")]
        for r in range(1, a.restarts + 1):
            sig = getattr(signal, "SIG" + sigs[(r - 1) % len(sigs)])
            self.sleep_until(t0 + a.seconds * r / (a.restarts + 1))
            if r == 1:
                self.rss_before = proc_rss_kb(self.mqtls.pid)
                self.cpu_before = proc_cpu_s(self.mqtls.pid)
                self.steady_status = self.agg()
            self.restart(r, sig, n)
        self.sleep_until(max(end, self.restarts[-1]["t_back"] + a.settle if self.restarts else end))
        self.rss_after = proc_rss_kb(self.mqtls.pid)
        self.hold_status = self.agg()
        self.t_hold_end = time.monotonic()

        # 3. drain: no new messages; everything in flight must complete
        self.broadcast("stop")
        time.sleep(1.5)
        ok, took = self.wait_until(
            lambda s: s["queued"] == 0 and s["acked"] == s["created"] and s["undelivered"] == 0,
            a.drain_bound, "every message acked and delivered")
        self.drain_time = took
        # Let late duplicates land before the final accounting.
        time.sleep(1)
        self.broadcast("report")
        deadline = time.monotonic() + 30
        while any(c.report is None for c in self.clients) and time.monotonic() < deadline:
            self.guard()
            time.sleep(0.1)
        if any(c.report is None for c in self.clients):
            raise Abort("a client process sent no report within 30 s")
        self.cpu_mqtls = proc_cpu_s(self.mqtls.pid)
        self.finish_processes()
        self.account()
        self.check_logs()

    def restart(self, r, sig, n):
        a = self.a
        self.broadcast("epoch %d" % r)
        self.wait_until(lambda s: s["min_epoch"] == r, 10, "clients to take epoch %d" % r)
        before = self.agg()
        up_before = before["up_epoch"] + before["up_stale"]
        rec = {"r": r, "signal": signal.Signals(sig).name, "up_before": up_before}
        rec["t_kill"] = time.monotonic()
        rec["wall_kill"] = time.time()
        rc = self.broker.stop(sig)
        rec["t_dead"] = time.monotonic()
        rec["broker_rc"] = rc
        self.sleep_until(rec["t_dead"] + a.down)
        self.broker.start()
        rec["t_ready"] = time.monotonic()
        rec["wall_ready"] = time.time()
        ok, took = self.wait_until(lambda s: s["up_epoch"] == n, a.reconnect_bound,
                                   "all clients back after restart %d" % r)
        rec["t_back"] = time.monotonic()
        rec["wall_back"] = time.time()
        ag = self.agg()
        rec["ok"] = ok
        rec["took"] = took
        rec["stale"] = ag["up_stale"]
        rec["status"] = self.brief(ag)
        rec["attempts"] = ag["attempts"] - before["attempts"]
        rec["refused"] = {k: v - before["refused"].get(k, 0) for k, v in ag["refused"].items()}
        rec["sessions_lost"] = ag["sessions_lost"] - before["sessions_lost"]
        rec["resumed"] = ag["resumed"] - before["resumed"]
        rec["cbc"] = {k[len("closed_before_connack_"):]: ag.get(k, 0) - before.get(k, 0)
                      for k in ("closed_before_connack_lt0.25s", "closed_before_connack_lt0.5s",
                                "closed_before_connack_lt1s", "closed_before_connack_ge1s")}
        rec["peak_rss"] = max((kb for t, kb in self.rss_samples if t >= rec["t_kill"]), default=0)
        rec["rss_back"] = proc_rss_kb(self.mqtls.pid)
        self.restarts.append(rec)
        self.say("restart %d (SIG%s): %d clients up before; broker down %.1f s; all %d back "
                 "%.1f s after the broker was ready (%.1f s after the kill); %d attempts, "
                 "refused %s, %d TLS resumptions, %d sessions lost"
                 % (r, rec["signal"][3:], up_before, rec["t_ready"] - rec["t_kill"], n,
                    took, rec["t_back"] - rec["t_kill"], rec["attempts"], rec["refused"],
                    rec["resumed"], rec["sessions_lost"]) if ok else
                 "restart %d (SIG%s): NOT all clients back within %.0f s: %s"
                 % (r, rec["signal"][3:], a.reconnect_bound, rec["status"]))
        self.check(ok and rec["stale"] == 0 and up_before == n,
                   "restart %d (SIG%s): all %d clients connected before and reconnected within "
                   "%.0f s of the broker's return (took %.1f s)"
                   % (r, rec["signal"][3:], n, a.reconnect_bound, took),
                   ["clients up before the kill: %d of %d" % (up_before, n),
                    "clients still on a connection from before the kill: %d" % rec["stale"],
                    rec["status"]])

    def finish_processes(self):
        self.broadcast("quit")
        for c in self.clients:
            try:
                c.p.wait(30)
            except subprocess.TimeoutExpired:
                c.p.kill()
                c.p.wait(5)
        self.mqtls.send_signal(signal.SIGTERM)
        try:
            self.mqtls_rc = self.mqtls.wait(60)
        except subprocess.TimeoutExpired:
            self.mqtls.kill()
            self.mqtls.wait(5)
            self.mqtls_rc = "did not exit within 60 s of SIGTERM"
        self.check(self.mqtls_rc == 0, "mqtls ran throughout and exited 0 on SIGTERM",
                   ["exit: %s" % self.mqtls_rc])
        self.broker.stop(signal.SIGTERM)

    def account(self):
        reps = [c.report for c in self.clients]
        self.rep = tot = {k: sum(r[k] for r in reps) for k in (
            "created", "acked", "delivered", "dups", "sent", "resent", "n_unacked",
            "n_missing", "n_foreign", "attempts", "connacks_ok", "resumed", "sessions_lost")}
        unacked = [x for r in reps for x in r["unacked"]]
        self.check(tot["n_unacked"] == 0,
                   "every QoS 1 message created was PUBACKed (%d of %d)"
                   % (tot["acked"], tot["created"]),
                   ["%d not acked, e.g. (pair, seq): %s" % (tot["n_unacked"], unacked[:10])])
        kills = [(x["t_kill"], x["t_ready"]) for x in self.restarts if x["signal"] == "SIGKILL"]
        exempt, missing = [], []
        for r in reps:
            for pair, seq, t_ack in r["missing"]:
                if any(k - KILL_WINDOW <= t_ack <= back for k, back in kills):
                    exempt.append((pair, seq, t_ack))
                else:
                    missing.append((pair, seq, t_ack))
        self.exempt = exempt
        self.missing = missing

        def rel(t):
            return "t=%.1f s" % (t - self.t_hold)
        self.check(not missing,
                   "every PUBACKed message was delivered at least once (%d delivered, %d "
                   "duplicates, %d excused: acked from %d s before a SIGKILL until the broker "
                   "was back)"
                   % (tot["delivered"], tot["dups"], len(exempt), KILL_WINDOW),
                   ["%d acked and never delivered, e.g. (pair, seq, acked at): %s"
                    % (len(missing), [(p, s, rel(t)) for p, s, t in missing[:10]]),
                    "restarts at: %s" % ", ".join(rel(x["t_kill"]) for x in self.restarts)])
        foreign = [x for r in reps for x in r["foreign"]]
        self.check(tot["n_foreign"] == 0, "no subscriber got a message not published to it",
                   ["%d foreign, e.g. %s" % (tot["n_foreign"], foreign[:5])])

    def check_logs(self):
        a = self.a
        ts_re = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z (\w+) (.*)$")
        windows = [(x["wall_kill"] - 1, x["wall_ready"] + a.warn_grace) for x in self.restarts]
        errors, bad_warns, ok_warns, reasons, other = [], [], 0, {}, []
        with open(self.mqtls_log, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                m = ts_re.match(line)
                if not m:
                    other.append(line)
                    continue
                t = timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + int(m.group(2)) / 1e3
                level, msg = m.group(3), m.group(4)
                if level == "error":
                    errors.append(line)
                elif level == "warn":
                    # mqtls rate-limits warnings: the lines of one kind it held
                    # back are summed up in a "repeated count=N event=<first
                    # word>" line written just before the next line of that kind.
                    rep = re.match(r"repeated count=(\d+) event=broker$", msg)
                    in_window = any(lo <= t <= hi for lo, hi in windows)
                    # A failed connect names its broker; the first one also
                    # marks the broker down until a probe finds it back.
                    if (re.match(r"broker broker=\S+ addr=\S+ error=", msg) or
                            re.match(r"upstream broker=\S+ state=down ", msg)) and in_window:
                        ok_warns += 1
                    elif rep and in_window:
                        ok_warns += int(rep.group(1))
                    else:
                        bad_warns.append(line)
                elif msg.startswith("close "):
                    mm = re.search(r" reason=(\S+)", msg)
                    if mm:
                        why = mm.group(1)
                        reasons[why] = reasons.get(why, 0) + 1
                        for x in self.restarts:
                            if x["wall_kill"] <= t <= x["wall_back"]:
                                d = x.setdefault("reasons", {})
                                d[why] = d.get(why, 0) + 1
        self.close_reasons = reasons
        self.ok_warns = ok_warns
        self.check(not errors, "no error line in the mqtls log",
                   ["%d error lines, e.g.:" % len(errors)] + errors[:10])
        self.check(not bad_warns,
                   "no warn line in the mqtls log but 'broker unreachable' while the broker "
                   "was down (%d of those)" % ok_warns,
                   ["%d unexpected warn lines, e.g.:" % len(bad_warns)] + bad_warns[:10])
        self.stray = other

    def check_rss(self):
        lim = self.rss_before * 1.10
        self.check(self.rss_after <= lim,
                   "mqtls RSS after the restarts within 10%% of before (%d kB -> %d kB, %+.1f%%)"
                   % (self.rss_before, self.rss_after,
                      100.0 * (self.rss_after - self.rss_before) / max(1, self.rss_before)))

    def summary(self):
        a = self.a
        n = self.n_clients
        t = self.rep
        self.say("==== soak summary ====")
        self.say("clients: %d (%d publishers, %d subscribers, QoS 1, persistent sessions), "
                 "%d client processes; hold %.0f s (--seconds %d)"
                 % (n, n // 2, n // 2, a.procs, self.t_hold_end - self.t_hold, a.seconds))
        self.say("config: each publisher one message every %g-%g s; keepalive 60 s; reconnect "
                 "backoff uniform(0, min(%g, %g*2^k)) s; TLS %s; %s source addresses; broker "
                 "down %g s per restart; mosquitto persistence on, autosave every %d s (a SIGTERM "
                 "saves on exit: every PUBACKed message is required; after a SIGKILL, one acked "
                 "from %d s before it until the broker is back, and lost, is excused and "
                 "counted)"
                 % (a.interval_min, a.interval_max, a.backoff_cap, a.backoff_base,
                    "full handshakes" if a.no_resume else "session resumption",
                    a.addresses or n, a.down, AUTOSAVE, KILL_WINDOW))
        self.say("initial connect: all %d in %.1f s (ramp %g s)" % (n, self.connect_time, a.ramp))
        for x in self.restarts:
            self.say("restart %d: SIG%s at t=%.0f s, broker down %.1f s, %s; mqtls RSS peak "
                     "%d kB, %d kB when all were back; %d connect attempts, CONNACK refusals %s, %d sessions "
                     "lost, %d TLS resumptions"
                     % (x["r"], x["signal"][3:], x["t_kill"] - self.t_hold,
                        x["t_ready"] - x["t_kill"],
                        ("all back %.1f s after the broker was ready (%.1f s after the kill)"
                         % (x["took"], x["t_back"] - x["t_kill"])) if x["ok"] else
                        "NOT all back within %.0f s" % a.reconnect_bound,
                        x["peak_rss"], x["rss_back"], x["attempts"], x["refused"], x["sessions_lost"],
                        x["resumed"]))
            self.say("restart %d: mqtls closes from the kill until all were back: %s; clients "
                     "closed after their TLS Finished with no CONNACK, by time since it: %s"
                     % (x["r"], x.get("reasons", {}), x["cbc"]))
        self.say("messages: created %d, PUBLISH packets sent %d (%d DUP resends), acked %d, "
                 "delivered %d distinct, %d duplicates, %d not acked, %d acked and not "
                 "delivered (+%d excused by the SIGKILL window), %d foreign; drain %.1f s"
                 % (t["created"], t["sent"] + t["resent"], t["resent"], t["acked"],
                    t["delivered"], t["dups"], t["n_unacked"], len(self.missing),
                    len(self.exempt), t["n_foreign"], self.drain_time))
        self.say("mqtls RSS: %d kB when all had connected, %d kB before the first restart, "
                 "%d kB after the last reconnect settled (%+.1f%%), peak %d kB; CPU %.1f s in "
                 "total (%.1f s up to the first restart)"
                 % (self.rss_connected, self.rss_before, self.rss_after,
                    100.0 * (self.rss_after - self.rss_before) / max(1, self.rss_before),
                    max((kb for _, kb in self.rss_samples), default=0), self.cpu_mqtls,
                    self.cpu_before))
        self.say("mqtls log: close reasons %s; %d expected 'broker unreachable' warnings "
                 "(counting those mqtls summed up in 'repeated' lines)"
                 % (self.close_reasons, self.ok_warns))
        self.say("client totals: %d connect attempts, %d CONNACK 0, %d TLS resumptions"
                 % (t["attempts"], t["connacks_ok"], t["resumed"]))

    def report_checks(self):
        ok_all = all(ok for ok, _, _ in self.checks)
        if self.a.tap:
            print("1..%d" % len(self.checks))
        for i, (ok, name, detail) in enumerate(self.checks, 1):
            if self.a.tap:
                print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
            else:
                print("[%s] %s" % ("PASS" if ok else "FAIL", name))
            if not ok:
                for d in detail:
                    print("#   " + d)
        for note in self.notes:
            self.say("note: " + note)
        return ok_all

    def dump_logs(self):
        self.say("---- mqtls log (last 30 lines) ----")
        for l in tail(self.work / "mqtls.log", 30):
            self.say(l)
        self.say("---- mosquitto log (last 20 lines) ----")
        for l in tail(self.work / "mosquitto.log", 20):
            self.say(l)
        for c in self.clients:
            lines = tail(c.logf.name, 10)
            if lines:
                self.say("---- client process %d stderr ----" % c.i)
                for l in lines:
                    self.say(l)

    def kill_all(self):
        for c in self.clients:
            if c.alive():
                c.p.kill()
        for p in (self.mqtls, self.broker and self.broker.p):
            if p is not None and p.poll() is None:
                p.kill()
        for p in [c.p for c in self.clients] + [self.mqtls, self.broker and self.broker.p]:
            if p is not None:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=600, help="hold time once all are connected")
    ap.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", 9000)),
                    help="TLS clients, half publishers [$SOAK_CLIENTS or 9000]")
    ap.add_argument("--procs", type=int, default=3, help="client processes")
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--signals", default="TERM,KILL",
                    help="signal of each broker restart in turn [TERM,KILL]")
    ap.add_argument("--down", type=float, default=3.0, help="seconds the broker stays down")
    ap.add_argument("--addresses", type=int, default=0,
                    help="distinct source addresses (127.10.x.y) the clients connect from; "
                         "default one per client, as devices have")
    ap.add_argument("--ramp", type=float, default=1.0,
                    help="initial connects spread over this many seconds [1]: a storm like "
                         "the reconnects, so the RSS baseline has seen the same peak")
    ap.add_argument("--no-resume", action="store_true",
                    help="clients do a full TLS handshake every time (default: resume)")
    ap.add_argument("--interval-min", type=float, default=10.0)
    ap.add_argument("--interval-max", type=float, default=30.0)
    ap.add_argument("--backoff-base", type=float, default=1.0)
    ap.add_argument("--backoff-cap", type=float, default=10.0)
    ap.add_argument("--connect-bound", type=float, default=180.0)
    ap.add_argument("--reconnect-bound", type=float, default=120.0)
    ap.add_argument("--drain-bound", type=float, default=120.0)
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds after the last reconnect before RSS is measured")
    ap.add_argument("--warn-grace", type=float, default=3.0,
                    help="'broker unreachable' warnings allowed this long after the broker is back")
    ap.add_argument("--mqtls-arg", action="append", default=[],
                    help="extra argument for mqtls (repeat)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--tap", action="store_true")
    a = ap.parse_args()
    if a.clients < 2 or a.clients % 2:
        ap.error("--clients must be even and >= 2")

    s = Soak(a)
    ok = False
    try:
        s.run()
        s.check_rss()
        s.summary()
        ok = s.report_checks()
    except (Abort, KeyboardInterrupt) as e:
        s.check(False, "soak ran to the end", [str(e)])
        s.report_checks()
        ok = False
    except Exception:
        import traceback
        s.check(False, "soak ran to the end", traceback.format_exc().splitlines())
        s.report_checks()
        ok = False
    finally:
        s.kill_all()
    if not ok:
        s.dump_logs()
        s.say("work dir kept: %s" % s.work)
    elif a.keep:
        s.say("work dir kept: %s" % s.work)
    else:
        shutil.rmtree(s.work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
