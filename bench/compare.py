#!/usr/bin/python3
"""Side-by-side benchmark of TLS terminators in front of one plain mosquitto.

One plain mosquitto is the broker. In turn, each terminator is started in
front of it on loopback (mqtls, HAProxy, nginx stream, stunnel) and the same
mqtls-bench scenarios run through it; mosquitto's own TLS listener (a second
listener of the same broker process) and the plain broker directly are
measured the same way. CPU time and RSS come from /proc for the terminator's
own processes (all of them: nginx's master and workers), so that a noisy
shared machine changes wall-clock figures but hardly these.

The mqtls-wss row is mqtls again, with --ws-listen: clients do the
WebSocket upgrade (RFC 6455, subprotocol mqtt) after TLS and send MQTT in
masked binary frames (mqtls-bench --ws /mqtt). It runs the scenarios in
WSS_SCENARIOS only (full and resumed handshakes, idle memory, 16 KiB
forwarding) and is
reported in its own table beside mqtls over plain TLS.

The mqtls-acl row is mqtls again, with --acl-file (ACL_FILE below: every
PUBLISH and SUBSCRIBE checked against a general section, 50 user sections
and two patterns). It runs ACL_SCENARIOS only (256-byte QoS 0 messages):
the CPU a checked message costs, beside the same mqtls without an ACL.

The mqtls-uptls row is mqtls again, with --upstream-tls to mosquitto's own
TLS listener (the broker's certificate verified against the bench CA). It
runs UPTLS_SCENARIOS only (full handshakes, idle memory, 16 KiB forwarding):
what the second TLS side costs, beside the same mqtls with a plain hop.

Prints one Markdown table and writes it, the raw figures and a gnuplot PNG of
the latency distributions to bench/results/.

Sizes come from the environment (defaults fit 2 cores in a few minutes):
  BENCH_CONN=2000        full handshakes + CONNECT/CONNACK (churn), and as many resumed
  BENCH_IDLE=2000        idle TLS MQTT connections held for the RSS delta
  BENCH_GB_MB=256        MB of payload published for CPU per GB (forwarded twice: in and out)
  BENCH_LAT_RATE=400     messages/s per publisher for the latency runs (4 pairs)
  BENCH_LAT_SECONDS=3    length of each latency run
  BENCH_LAT_REPEAT=3     latency runs per terminator; the one with the median p99 is kept
  BENCH_KEYS=ecdsa       certificate types to run: "ecdsa", "rsa" or "ecdsa rsa"
  BENCH_ONLY=            space-separated subset of: direct mqtls mqtls-wss mqtls-acl haproxy nginx stunnel mosquitto-tls
  BENCH_GB16_MB=512      MB published in 16 KiB QoS 0 messages, one pair, at most 32 in flight
  BENCH_SMALL=100000     256-byte QoS 0 messages, one pair, at most 32 in flight
  BENCH_NAGLE=200        connects (TLS 1.3 + CONNECT/CONNACK) by a client that leaves Nagle on
  BENCH_SCENARIOS=       subset of: conn resume idle lat gb64 gb16 small nagle (default: all)
  BENCH_MTLS_CONN=500    with "resume": full and resumed handshakes with client certificates (compare_mtls.py)
  BENCH_RESULTS=         directory for the results (default bench/results; a partial run elsewhere)
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import compare_mtls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "build", "mqtls-bench")
MQTLS = os.path.join(ROOT, "build", "mqtls")
RESULTS = os.environ.get("BENCH_RESULTS") or os.path.join(ROOT, "bench", "results")
HZ = os.sysconf("SC_CLK_TCK")

N_CONN = int(os.environ.get("BENCH_CONN", "2000"))
N_IDLE = int(os.environ.get("BENCH_IDLE", "2000"))
GB_MB = int(os.environ.get("BENCH_GB_MB", "256"))
LAT_RATE = float(os.environ.get("BENCH_LAT_RATE", "400"))
LAT_SECONDS = float(os.environ.get("BENCH_LAT_SECONDS", "3"))
LAT_REPEAT = int(os.environ.get("BENCH_LAT_REPEAT", "3"))
KEYS = os.environ.get("BENCH_KEYS", "ecdsa").split()
ORDER = ["direct", "mqtls", "mqtls-wss", "mqtls-acl", "mqtls-uptls", "haproxy", "nginx", "stunnel",
         "mosquitto-tls"]
ONLY = os.environ.get("BENCH_ONLY", "").split() or ORDER
LAT_PAIRS = 4
GB_PAYLOAD = 65536
GB16_MB = int(os.environ.get("BENCH_GB16_MB", "512"))
N_SMALL = int(os.environ.get("BENCH_SMALL", "100000"))
N_NAGLE = int(os.environ.get("BENCH_NAGLE", "200"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "").split() or \
    ["conn", "resume", "idle", "lat", "gb64", "gb16", "small", "nagle"]
WINDOW = 32
# What the wss row measures: full and resumed handshakes (TLS + upgrade + CONNECT), idle
# memory, and 16 KiB QoS 0 forwarding.
WSS_SCENARIOS = ["conn", "resume", "idle", "gb16"]
WS_PATH = "/mqtt"
# What the mqtls-acl row measures: the per-message cost of the checks.
ACL_SCENARIOS = ["small"]
# What the mqtls-uptls row (--upstream-tls to the broker's own TLS listener)
# measures: the cost of the second TLS side per connection, per idle
# connection and per forwarded GB.
UPTLS_SCENARIOS = ["conn", "idle", "gb16"]
# Anonymous bench clients fall in the general section; the user sections
# and patterns are there so the table is not trivially small.
ACL_FILE = ("topic deny bench/secret/#\ntopic readwrite bench/#\n"
            + "".join(f"user u{i}\ntopic readwrite u{i}/#\ntopic read shared/+/{i}\n" for i in range(50))
            + "pattern readwrite dev/%u/%c/#\npattern read status/%c\n")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_for(pred, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def make_pki(d, kind):
    """CA + server certificate for localhost/127.0.0.1, ECDSA P-256 or RSA-2048."""
    def key(name):
        if kind == "rsa":
            run("openssl", "genrsa", "-out", f"{d}/{name}.key", "2048")
        else:
            run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/{name}.key")
    key("ca")
    run("openssl", "req", "-x509", "-new", "-key", f"{d}/ca.key", "-subj", "/CN=bench-ca", "-days", "2",
        "-out", f"{d}/ca.pem")
    with open(f"{d}/ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    key("server")
    run("openssl", "req", "-new", "-key", f"{d}/server.key", "-subj", "/CN=localhost", "-out", f"{d}/server.csr")
    run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext", "-out", f"{d}/server.pem")
    # PKCS#8 for every consumer, and cert+key in one file for HAProxy.
    run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", f"{d}/server.key", "-out", f"{d}/server.p8")
    os.replace(f"{d}/server.p8", f"{d}/server.key")
    with open(f"{d}/combined.pem", "w") as f:
        f.write(open(f"{d}/server.pem").read() + open(f"{d}/server.key").read())
    # mosquitto drops privileges before it reads its TLS files.
    for name in os.listdir(d):
        os.chmod(f"{d}/{name}", 0o644)


# ---- /proc ----

def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p))
            except OSError:
                pass
    return out


def cpu_s(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])     # utime + stime, all threads
        except OSError:
            pass
    return total / HZ


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---- processes ----

class Procs:
    """Every process this run starts, ended by PID (and waited for) at the end."""

    def __init__(self):
        self.list = []

    def start(self, args, out):
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        self.list.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.list):
            self.stop(p)


def start_terminator(name, d, procs, bport, tport):
    """Starts |name| on a free port; returns (port, pids-getter, popen) or port only for mosquitto-tls."""
    port = free_port()
    logf = open(f"{d}/{name}.log", "w")
    if name in ("mqtls", "mqtls-wss", "mqtls-acl", "mqtls-uptls"):
        args = [MQTLS, "--listen", f"127.0.0.1:{port}", "--cert", f"{d}/server.pem", "--key", f"{d}/server.key",
                "--upstream", f"127.0.0.1:{tport if name == 'mqtls-uptls' else bport}", "--workers", "1",
                "--log-level", "warn", "--ready-file", f"{d}/{name}.ready"]
        if name == "mqtls-uptls":
            # TLS on the last hop too: to mosquitto's own TLS listener.
            args += ["--upstream-tls", "--upstream-ca", f"{d}/ca.pem"]
        if name == "mqtls-wss":
            # The port measured is the WebSocket one; TLS listens beside it.
            port = free_port()
            args += ["--ws-listen", f"127.0.0.1:{port}", "--ws-path", WS_PATH]
        if name == "mqtls-acl":
            with open(f"{d}/acl", "w") as f:
                f.write(ACL_FILE)
            args += ["--acl-file", f"{d}/acl"]
    elif name == "haproxy":
        with open(f"{d}/haproxy.cfg", "w") as f:
            f.write(f"""global
    maxconn 9000
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend tls
    bind 127.0.0.1:{port} ssl crt {d}/combined.pem
    default_backend broker
backend broker
    server broker 127.0.0.1:{bport}
""")
        args = ["haproxy", "-db", "-f", f"{d}/haproxy.cfg"]
    elif name == "nginx":
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/nginx.err warn;
events {{ worker_connections 9000; }}
stream {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.key;
        proxy_pass 127.0.0.1:{bport};
    }}
}}
""")
        args = ["nginx", "-c", f"{d}/nginx.conf"]
    elif name == "stunnel":
        with open(f"{d}/stunnel.conf", "w") as f:
            f.write(f"""foreground = yes
pid =
debug = 3
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[mqtt]
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{bport}
cert = {d}/server.pem
key = {d}/server.key
""")
        args = ["stunnel", f"{d}/stunnel.conf"]
    else:
        raise ValueError(name)
    p = procs.start(args, logf)
    wait_for(lambda: port_open(port) or p.poll() is not None, 15, name)
    if p.poll() is not None:
        raise RuntimeError(f"{name} exited: see {d}/{name}.log")
    return port, p


def bench(args, d, tag, timeout=300):
    path = f"{d}/{tag}.json"
    r = subprocess.run([BENCH] + args + ["-q", "--json", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, preexec_fn=raise_nofile)
    if not os.path.exists(path):
        raise RuntimeError(f"mqtls-bench {' '.join(args)} wrote no report:\n{r.stdout.decode()[-2000:]}")
    with open(path) as f:
        return json.load(f)


def measured(pids_of, broker_pid, fn):
    """Runs fn() and returns (its result, terminator CPU s, broker CPU s)."""
    t0, b0 = cpu_s(pids_of()), cpu_s([broker_pid])
    res = fn()
    return res, cpu_s(pids_of()) - t0, cpu_s([broker_pid]) - b0


def idle_rss(pids_of, broker_pid, client_args, d, tag):
    """VmRSS delta of the terminator and the broker between 0 and N_IDLE idle connections."""
    time.sleep(0.3)
    t0, b0 = rss_kib(pids_of()), rss_kib([broker_pid])
    out = open(f"{d}/{tag}.progress", "w+")
    args = [BENCH, "idle", "--count", str(N_IDLE), "--concurrency", "100", "--duration", "300",
            "--keepalive", "120", "--json", f"{d}/{tag}.json"] + client_args
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
    try:
        def all_in():
            out.seek(0)
            return re.search(rf"connected {N_IDLE}\b", out.read()) is not None or p.poll() is not None
        wait_for(all_in, 120, f"{N_IDLE} idle connections")
        time.sleep(1.0)
        t1, b1 = rss_kib(pids_of()), rss_kib([broker_pid])
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)        # ends the run cleanly, with its report
        p.wait(timeout=60)
    with open(f"{d}/{tag}.json") as f:
        r = json.load(f)
    n = r["connected"]
    if n == 0:
        return None, None, r
    return (t1 - t0) / n, (b1 - b0) / n, r


def measure(name, d, pids_of, broker_pid, port, tls, ws=False, acl=False, uptls=False):
    """Every scenario (with ws, those of WSS_SCENARIOS) against one endpoint.
    Returns a dict of figures."""
    client = ["--port", str(port), "--threads", "1", "--source-ips", "127.0.0.1-127.0.0.30"]
    if tls:
        client += ["--tls-version", "1.3", "--cafile", f"{d}/ca.pem", "--sni", "localhost"]
    else:
        client += ["--no-tls"]
    if ws:
        client += ["--ws", WS_PATH]
    scen = [s for s in SCENARIOS if not ws or s in WSS_SCENARIOS]
    if acl:
        scen = [s for s in scen if s in ACL_SCENARIOS]
    if uptls:
        scen = [s for s in scen if s in UPTLS_SCENARIOS]
    f = {"name": name, "errors": 0}
    if "conn" in scen:
        conn_scenario(f, name, d, pids_of, broker_pid, client, tls, scen)
    if "idle" in scen:
        log(f"  {name}: {N_IDLE} idle connections")
        kt, kb, r = idle_rss(pids_of, broker_pid, client + ["-i", f"{name}-i"], d, f"{name}-idle")
        f["errors"] += r["failed"]
        f["idle_kib"], f["idle_kib_broker"] = kt, kb
    if "lat" in scen:
        lat_scenario(f, name, d, client)
    if "gb64" in scen:
        log(f"  {name}: {GB_MB} MB published in 64 KiB QoS 1 messages")
        msgs = max(GB_MB * 1024 * 1024 // GB_PAYLOAD // 2, 1)
        forward_scenario(f, "", name, d, pids_of, broker_pid, client,
                         ["--qos", "1", "--payload", str(GB_PAYLOAD), "--messages", str(msgs)])
    if "gb16" in scen:
        log(f"  {name}: {GB16_MB} MB published in 16 KiB QoS 0 messages, {WINDOW} in flight")
        msgs = max(GB16_MB * 1024 * 1024 // 16384, 1)
        forward_scenario(f, "16", name, d, pids_of, broker_pid, client,
                         ["--qos", "0", "--payload", "16384", "--window", str(WINDOW), "--messages", str(msgs)])
    if "small" in scen:
        log(f"  {name}: {N_SMALL} messages of 256 B, QoS 0, {WINDOW} in flight")
        forward_scenario(f, "_small", name, d, pids_of, broker_pid, client,
                         ["--qos", "0", "--payload", "256", "--window", str(WINDOW), "--messages", str(N_SMALL)])
    if "nagle" in scen:
        log(f"  {name}: {N_NAGLE} connects by a client with Nagle on")
        r = bench(["conn", "--count", str(N_NAGLE), "--churn", "--concurrency", "1", "--nagle",
                   "-i", f"{name}-n"] + client, d, f"{name}-nagle")
        f["errors"] += r["failed"]
        t = r["latency"]["connect_total"]
        f["nagle_p50_ms"], f["nagle_p99_ms"] = t["p50_ns"] / 1e6, t["p99_ns"] / 1e6
    return f


def conn_scenario(f, name, d, pids_of, broker_pid, client, tls, scen):
    log(f"  {name}: {N_CONN} full handshakes")
    r, tc, bc = measured(pids_of, broker_pid, lambda: bench(
        ["conn", "--count", str(N_CONN), "--churn", "--concurrency", "50", "-i", f"{name}-c"] + client, d, f"{name}-conn"))
    f["errors"] += r["failed"]
    full = max(r["connected"] - r.get("tls_resumed", 0), 1)
    f["full_ms"] = tc * 1e6 / full
    f["full_ms_b"] = (tc + bc) * 1e6 / full
    f["connects_s"] = r["connects_per_s"]
    f["broker_full_ms"] = bc * 1e6 / full
    if tls and "resume" in scen:
        log(f"  {name}: {N_CONN} resumed handshakes")
        r, tc, bc = measured(pids_of, broker_pid, lambda: bench(
            ["conn", "--count", str(N_CONN), "--churn", "--concurrency", "50", "--tls-resume",
             "-i", f"{name}-r"] + client, d, f"{name}-resume"))
        f["errors"] += r["failed"]
        resumed = r.get("tls_resumed", 0)
        f["resumed"] = resumed
        if resumed > N_CONN // 2:
            nfull = r["connected"] - resumed
            f["resumed_ms"] = max(tc * 1e3 - nfull * f["full_ms"] / 1e3, 0) * 1e3 / resumed
            f["resumed_ms_b"] = max((tc + bc) * 1e3 - nfull * f["full_ms_b"] / 1e3, 0) * 1e3 / resumed


def lat_scenario(f, name, d, client):
    log(f"  {name}: latency, {LAT_PAIRS} pairs at {LAT_RATE:g} msg/s, {LAT_REPEAT} x {LAT_SECONDS:g} s")
    # The tail on a shared 2-core machine is noisy: keep the run with the
    # median p99 of a few.
    runs = []
    for i in range(LAT_REPEAT):
        r = bench(["pubsub", "--count", str(LAT_PAIRS), "--qos", "0", "--payload", "64",
                   "--messages", str(int(LAT_RATE * LAT_SECONDS)), "--msg-rate", str(LAT_RATE),
                   "-i", f"{name}-l{i}-"] + client, d, f"{name}-lat{i}")
        f["errors"] += r["failed"] + r["messages"]["lost"]
        runs.append(r)
    runs.sort(key=lambda r: r["latency"]["end_to_end"]["p99_ns"])
    r = runs[len(runs) // 2]
    e = r["latency"]["end_to_end"]
    f["p50_us"], f["p99_us"] = e["p50_ns"] / 1e3, e["p99_ns"] / 1e3
    f["dist"] = r["messages"]["end_to_end_distribution"]


def forward_scenario(f, key, name, d, pids_of, broker_pid, client, args):
    """One publisher/subscriber pair through the endpoint: terminator CPU
    per GB forwarded (in and out), MB/s published, messages/s, CPU per message."""
    r, tc, bc = measured(pids_of, broker_pid, lambda: bench(
        ["pubsub", "--count", "2", "--duration", "120", "-i", f"{name}-g{key}"] + args + client,
        d, f"{name}-gb{key}"))
    m = r["messages"]
    f["errors"] += r["failed"] + m["lost"]
    forwarded = (m["published_bytes"] + m["received_bytes"]) / 1e9     # in and out of the terminator
    f["gb_s" + key] = tc / forwarded if forwarded else None
    f["gb_s_b" + key] = (tc + bc) / forwarded if forwarded else None
    f["broker_gb_s" + key] = bc / forwarded if forwarded else None
    f["mb_s" + key] = m["published_bytes"] / 1e6 / m["publish_s"] if m["publish_s"] else None
    f["msgs_s" + key] = m["received"] / m["publish_s"] if m["publish_s"] else None
    f["us_msg" + key] = tc * 1e6 / m["received"] if m["received"] else None
    f["broker_us_msg" + key] = bc * 1e6 / m["received"] if m["received"] else None


def run_key(kind, procs, out_dir):
    d = tempfile.mkdtemp(prefix=f"mqtls-compare-{kind}-")
    os.chmod(d, 0o755)
    make_pki(d, kind)
    bport, tport = free_port(), free_port()
    with open(f"{d}/mosquitto.conf", "w") as f:
        f.write(f"""per_listener_settings false
allow_anonymous true
max_connections -1
max_queued_messages 0
max_inflight_messages 0
set_tcp_nodelay true
log_dest stdout
listener {bport} 127.0.0.1
listener {tport} 127.0.0.1
certfile {d}/server.pem
keyfile {d}/server.key
""")
    broker = procs.start(["stdbuf", "-oL", "mosquitto", "-c", f"{d}/mosquitto.conf"], open(f"{d}/mosquitto.log", "w"))
    wait_for(lambda: port_open(bport) and port_open(tport), 10, "mosquitto")
    figs = {}
    try:
        measure_all(kind, figs, d, procs, broker, bport, tport)
        if "resume" in SCENARIOS:
            compare_mtls.measure(sys.modules[__name__], kind, figs, d, procs, broker.pid, bport)
    finally:
        procs.stop(broker)
        shutil.rmtree(d, ignore_errors=True)
    return figs


def measure_all(kind, figs, d, procs, broker, bport, tport):
    for name in ORDER:
        if name not in ONLY:
            continue
        log(f"[{kind}] {name}")
        if name == "direct":
            figs[name] = measure(name, d, lambda: [], broker.pid, bport, tls=False)
        elif name == "mosquitto-tls":
            # The broker is the terminator: its own CPU and RSS, minus what the
            # same work costs it in plain MQTT (the direct row), for the
            # terminator-only columns.
            f = measure(name, d, lambda: [broker.pid], broker.pid, tport, tls=True)
            f["self_is_broker"] = True
            figs[name] = f
        else:
            port, p = start_terminator(name, d, procs, bport, tport)
            try:
                figs[name] = measure(name, d, lambda: [p.pid] + children(p.pid), broker.pid, port, tls=True,
                                     ws=name == "mqtls-wss", acl=name == "mqtls-acl",
                                     uptls=name == "mqtls-uptls")
            finally:
                procs.stop(p)


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def ratio(v, ref):
    if v is None or ref is None or ref <= 0:
        return "–"
    return f"{v / ref:.2f}×"


def table(kind, figs):
    direct = figs.get("direct", {})
    # For mosquitto-tls, the CPU columns of figs hold terminator+broker
    # (one process); the terminator alone is that minus the plain broker.
    rows = []
    for name in ORDER:
        f = figs.get(name)
        if f is None or name in ("direct", "mqtls-wss", "mqtls-acl", "mqtls-uptls"):
            continue
        g = dict(f)
        if f.get("self_is_broker"):
            def minus(k, dk):
                return f[k] - direct.get(dk, 0) if direct and f.get(k) is not None else None
            for key in ("", "16", "_small"):
                g["gb_s_b" + key], g["gb_s" + key] = f.get("gb_s" + key), minus("gb_s" + key, "broker_gb_s" + key)
                g["us_msg" + key] = minus("us_msg" + key, "broker_us_msg" + key)
            g["full_ms_b"], g["full_ms"] = f.get("full_ms"), minus("full_ms", "broker_full_ms")
            g["resumed_ms_b"], g["resumed_ms"] = f.get("resumed_ms"), minus("resumed_ms", "broker_full_ms")
            g["idle_kib_b"] = f.get("idle_kib")
            g["idle_kib"] = (f["idle_kib"] - direct["idle_kib_broker"]
                             if f.get("idle_kib") is not None and direct.get("idle_kib_broker") is not None else None)
        else:
            g["idle_kib_b"] = (f["idle_kib"] + f["idle_kib_broker"]) if f.get("idle_kib") is not None else None
        if direct.get("p50_us") is not None and f.get("p50_us") is not None:
            g["add_p50"], g["add_p99"] = f["p50_us"] - direct["p50_us"], f["p99_us"] - direct["p99_us"]
        else:
            g["add_p50"] = g["add_p99"] = None
        rows.append(g)
    ref = next((g for g in rows if g["name"] == "mqtls"), None)

    def r(g, k):
        return ratio(g.get(k), ref.get(k)) if ref else "–"

    def v(g, k, digits=2):
        return fmt(g.get(k), digits)

    title = f"### {'ECDSA P-256' if kind == 'ecdsa' else 'RSA-2048'} server certificate, TLS 1.3"
    lines = [title, ""]
    if any(k in SCENARIOS for k in ("conn", "idle", "lat", "gb64")):
        lines += [
            "| terminator | CPU ms / 1,000 full handshakes + CONNECT (term. / +broker) | × mqtls "
            "| CPU ms / 1,000 resumed (term. / +broker) | × mqtls | connects/s (wall clock) "
            "| KiB RSS / idle conn. (term. / +broker) | × mqtls | CPU s / GB forwarded, 64 KiB QoS 1 (term. / +broker) | × mqtls "
            "| added p50 / p99 publish→receive, µs (wall clock) | × mqtls (p99) | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for g in rows:
            name = g["name"] + (" ¹" if g.get("self_is_broker") else "")
            lines.append(
                f"| {name} | {v(g, 'full_ms')} / {v(g, 'full_ms_b')} | {r(g, 'full_ms')} "
                f"| {v(g, 'resumed_ms')} / {v(g, 'resumed_ms_b')} | {r(g, 'resumed_ms')} "
                f"| {v(g, 'connects_s', 0)} "
                f"| {v(g, 'idle_kib', 1)} / {v(g, 'idle_kib_b', 1)} | {r(g, 'idle_kib')} "
                f"| {v(g, 'gb_s')} / {v(g, 'gb_s_b')} | {r(g, 'gb_s')} "
                f"| {v(g, 'add_p50', 0)} / {v(g, 'add_p99', 0)} | {r(g, 'add_p99')} | {g['errors']} |")
        lines.append("")
    if any(k in SCENARIOS for k in ("gb64", "gb16", "small", "nagle")):
        lines += [
            "Forwarding workloads, one publisher/subscriber pair (terminator CPU; MB/s and messages/s wall clock), "
            "and connect time for a client that leaves Nagle on:",
            "",
            "| terminator | (a) 16 KiB QoS 0, ≤32 in flight: CPU s/GB | × mqtls | MB/s "
            "| (b) 64 KiB QoS 1: CPU s/GB | × mqtls | MB/s "
            "| 256 B QoS 0: messages/s | CPU µs / message | × mqtls "
            "| Nagle client TCP connect→CONNACK p50 / p99, ms | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for g in rows:
            name = g["name"] + (" ¹" if g.get("self_is_broker") else "")
            lines.append(
                f"| {name} | {v(g, 'gb_s16')} | {r(g, 'gb_s16')} | {v(g, 'mb_s16', 0)} "
                f"| {v(g, 'gb_s')} | {r(g, 'gb_s')} | {v(g, 'mb_s', 0)} "
                f"| {v(g, 'msgs_s_small', 0)} | {v(g, 'us_msg_small', 1)} | {r(g, 'us_msg_small')} "
                f"| {v(g, 'nagle_p50_ms', 1)} / {v(g, 'nagle_p99_ms', 1)} | {g['errors']} |")
        lines.append("")
    lines += wss_table(figs)
    lines += acl_table(figs)
    lines += uptls_table(figs)
    lines += compare_mtls.table(sys.modules[__name__], figs)
    if direct.get("broker_full_ms") is not None:
        lines += [f"Direct plain MQTT to the broker (the baseline): broker CPU {fmt(direct.get('broker_full_ms'))} ms "
                  f"per 1,000 connects, {fmt(direct.get('broker_gb_s'))} s per GB; publish→receive p50 "
                  f"{fmt(direct.get('p50_us'), 0)} µs, p99 {fmt(direct.get('p99_us'), 0)} µs; broker "
                  f"{fmt(direct.get('idle_kib_broker'), 1)} KiB per idle connection.", ""]
    lines += ["¹ mosquitto's own TLS listener: terminator and broker are one process, so its \"+broker\" figure "
              "is measured and its terminator-only figure is that minus the plain broker's cost for the same work "
              "(the direct row)."]
    return "\n".join(lines), rows


def wss_table(figs):
    """mqtls over TLS and over secure WebSockets, side by side."""
    tcp, wss = figs.get("mqtls"), figs.get("mqtls-wss")
    if wss is None:
        return []

    def v(g, k, digits=2):
        return fmt(g.get(k), digits) if g else "–"

    lines = ["MQTT over secure WebSockets (mqtls --ws-listen, subprotocol mqtt, client frames masked) beside "
             "MQTT over TLS, same mqtls and broker (terminator CPU; connects/s and MB/s wall clock):", "",
             "| mqtls transport | CPU ms / 1,000 full handshakes + CONNECT (term. / +broker) "
             "| CPU ms / 1,000 resumed (term. / +broker) | connects/s "
             "| KiB RSS / idle conn. (terminator) | 16 KiB QoS 0: CPU s/GB (term. / +broker) | MB/s | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for label, g in (("TLS over TCP", tcp), ("wss (TLS + WebSocket)", wss)):
        lines.append(
            f"| {label} | {v(g, 'full_ms')} / {v(g, 'full_ms_b')} | {v(g, 'resumed_ms')} / {v(g, 'resumed_ms_b')} "
            f"| {v(g, 'connects_s', 0)} "
            f"| {v(g, 'idle_kib', 1)} | {v(g, 'gb_s16')} / {v(g, 'gb_s_b16')} "
            f"| {v(g, 'mb_s16', 0)} | {g['errors'] if g else '–'} |")
    if tcp:
        lines.append(f"| wss ÷ TLS | {ratio(wss.get('full_ms'), tcp.get('full_ms'))} "
                     f"| {ratio(wss.get('resumed_ms'), tcp.get('resumed_ms'))} | "
                     f"{ratio(wss.get('connects_s'), tcp.get('connects_s'))} "
                     f"| {ratio(wss.get('idle_kib'), tcp.get('idle_kib'))} | {ratio(wss.get('gb_s16'), tcp.get('gb_s16'))} "
                     f"| {ratio(wss.get('mb_s16'), tcp.get('mb_s16'))} | |")
    # The broker sees plain MQTT over TCP either way; its RSS delta in the
    # second run is mostly memory it freed after the first, so it is left out.
    return lines + ["", "The broker's memory per idle connection is the same for both (it sees plain MQTT over TCP); "
                    "see the mqtls row above.", ""]


def acl_table(figs):
    """mqtls without and with --acl-file, 256-byte QoS 0 messages."""
    off, on = figs.get("mqtls"), figs.get("mqtls-acl")
    if on is None:
        return []

    def v(g, k, digits=2):
        return fmt(g.get(k), digits) if g else "–"

    lines = ["Topic ACL (mqtls --acl-file: every PUBLISH and SUBSCRIBE parsed and checked) beside the same mqtls "
             "without one, 256 B QoS 0 messages, one pair (terminator CPU; messages/s wall clock):", "",
             "| mqtls | messages/s | CPU µs / message (terminator) | CPU µs / message (+broker) | errors |",
             "|---|---|---|---|---|"]
    for label, g in (("no ACL (opaque stream)", off), ("--acl-file", on)):
        b = g.get("us_msg_small") + g.get("broker_us_msg_small") \
            if g and g.get("us_msg_small") is not None and g.get("broker_us_msg_small") is not None else None
        lines.append(f"| {label} | {v(g, 'msgs_s_small', 0)} | {v(g, 'us_msg_small', 2)} | {fmt(b, 2)} "
                     f"| {g['errors'] if g else '–'} |")
    if off and off.get("us_msg_small") is not None and on.get("us_msg_small") is not None:
        lines.append(f"| cost of the check | | {on['us_msg_small'] - off['us_msg_small']:+.2f} µs | | |")
    return lines + [""]


def uptls_table(figs):
    """mqtls with a plain broker hop and with --upstream-tls, side by side."""
    plain, tls = figs.get("mqtls"), figs.get("mqtls-uptls")
    if tls is None:
        return []

    def v(g, k, digits=2):
        return fmt(g.get(k), digits) if g else "–"

    lines = ["TLS to the broker too (mqtls --upstream-tls to mosquitto's TLS listener, verified against the "
             "bench CA) beside a plain broker hop, same mqtls and broker (terminator CPU; the broker's own TLS "
             "is in +broker; connects/s and MB/s wall clock):", "",
             "| broker hop | CPU ms / 1,000 full handshakes + CONNECT (term. / +broker) | connects/s "
             "| KiB RSS / idle conn. (terminator) | 16 KiB QoS 0: CPU s/GB (term. / +broker) | MB/s | errors |",
             "|---|---|---|---|---|---|---|"]
    for label, g in (("plain TCP", plain), ("--upstream-tls", tls)):
        lines.append(
            f"| {label} | {v(g, 'full_ms')} / {v(g, 'full_ms_b')} | {v(g, 'connects_s', 0)} "
            f"| {v(g, 'idle_kib', 1)} | {v(g, 'gb_s16')} / {v(g, 'gb_s_b16')} "
            f"| {v(g, 'mb_s16', 0)} | {g['errors'] if g else '–'} |")
    if plain:
        lines.append(f"| --upstream-tls ÷ plain | {ratio(tls.get('full_ms'), plain.get('full_ms'))} "
                     f"| {ratio(tls.get('connects_s'), plain.get('connects_s'))} "
                     f"| {ratio(tls.get('idle_kib'), plain.get('idle_kib'))} "
                     f"| {ratio(tls.get('gb_s16'), plain.get('gb_s16'))} "
                     f"| {ratio(tls.get('mb_s16'), plain.get('mb_s16'))} | |")
    return lines + [""]


def plot(kind, rows, direct):
    series = [("direct", direct.get("dist"))] + [(g["name"], g.get("dist")) for g in rows]
    if not any(dist for _, dist in series):
        return None
    files = []
    for name, dist in series:
        if not dist:
            continue
        path = os.path.join(RESULTS, f"latency-{kind}-{name}.dat")
        with open(path, "w") as f:
            for pct, ns in dist:
                if pct < 100:
                    f.write(f"{1 / (1 - pct / 100):.6f} {ns / 1e3:.3f} {pct}\n")
        files.append((name, path))
    if not files or not shutil.which("gnuplot"):
        return None
    png = os.path.join(RESULTS, f"latency-{kind}.png")
    plots = ", ".join(f"'{p}' using 1:2 with linespoints title '{n}'" for n, p in files)
    script = f"""set terminal png size 900,560
set output '{png}'
set title 'publish->receive latency, {LAT_PAIRS} pairs x {LAT_RATE:g} msg/s, QoS 0, 64 B ({kind})'
set logscale xy
set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)
set xlabel 'percentile'
set ylabel 'latency (us)'
set key left top
set grid
plot {plots}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=False)
    return png


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    vers = []
    for cmd in (["haproxy", "-v"], ["nginx", "-v"], ["stunnel", "-version"], ["mosquitto", "-h"]):
        try:
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5).stdout.decode()
            vers.append(next(ln for ln in out.splitlines() if "version" in ln or "stunnel" in ln))
        except (OSError, StopIteration, subprocess.TimeoutExpired):
            pass
    return f"{os.cpu_count()} cores, {cpu}; " + "; ".join(vers)


def main():
    for tool in (BENCH, MQTLS):
        if not os.access(tool, os.X_OK):
            sys.exit(f"compare: {tool} is missing (make all)")
    os.makedirs(RESULTS, exist_ok=True)
    raise_nofile()
    procs = Procs()
    t0 = time.time()
    out, raw = [], {}
    try:
        for kind in KEYS:
            figs = run_key(kind, procs, RESULTS)
            raw[kind] = figs
            text, rows = table(kind, figs)
            png = plot(kind, rows, figs.get("direct", {}))
            out.append(text)
            if png:
                out.append(f"\nLatency distributions: `{os.path.relpath(png, ROOT)}`")
    finally:
        procs.stop_all()
    header = (f"## mqtls vs. other TLS terminators (`make bench`, {time.strftime('%Y-%m-%d %H:%M')})\n\n"
              f"Machine: {machine()}.\n"
              f"Sizes: {N_CONN} full and {N_CONN} resumed handshakes (churn, 50 in flight), {N_IDLE} idle "
              f"connections, {GB_MB} MB published in {GB_PAYLOAD // 1024} KiB QoS 1 messages and {GB16_MB} MB in 16 KiB "
              f"QoS 0 messages (forwarded in and out), {N_SMALL} messages of 256 B, {N_NAGLE} connects with Nagle on, "
              f"latency from {LAT_PAIRS} publisher/subscriber pairs at {LAT_RATE:g} msg/s each (QoS 0, 64 B; median-p99 "
              f"of {LAT_REPEAT} runs of {LAT_SECONDS:g} s). One worker "
              f"process/thread per terminator. CPU = utime+stime from /proc of all the terminator's processes; "
              f"RSS = VmRSS delta; wall-clock figures are marked. Run took {time.time() - t0:.0f} s.\n")
    report = header + "\n" + "\n\n".join(out) + "\n"
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write(report)
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump(raw, f, indent=1)
    print(report)


if __name__ == "__main__":
    main()
