"""The mTLS rows of `make bench` (part of scenario "resume").

Every terminator that can ask for client certificates is started once more
with them required (verified against the bench CA and a CRL that revokes
another certificate) and measured twice: BENCH_MTLS_CONN full handshakes,
then as many with --tls-resume (each connection after the first offers the
latest ticket). mqtls also maps the CN to the username, so a resumed
connection gets the identity from its ticket and its certificate is checked
against the CRL again. The CPU of a resumed handshake is the resumed run's
terminator CPU minus its few full handshakes at the full run's cost, as for
the TLS rows. mosquitto's own TLS listener is left out: it is shared with
the other rows of the run.

  BENCH_MTLS_CONN=500        handshakes per run (and as many resumed)
  BENCH_MTLS_TLS="1.3 1.2"   TLS versions measured

compare.py calls measure() and table(); the helpers it passes in (module
|c|) start processes and read /proc.
"""
import os

N = int(os.environ.get("BENCH_MTLS_CONN", "500"))
VERSIONS = os.environ.get("BENCH_MTLS_TLS", "1.3 1.2").split()
ORDER = ["mqtls", "haproxy", "nginx", "stunnel"]


def _pki(c, d):
    """client.pem/.key signed by the bench CA, and crl.pem revoking another certificate."""
    c.run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/client.key")
    c.run("openssl", "req", "-new", "-key", f"{d}/client.key", "-subj", "/CN=bench-device", "-out", f"{d}/client.csr")
    c.run("openssl", "x509", "-req", "-in", f"{d}/client.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
          "-CAcreateserial", "-days", "2", "-out", f"{d}/client.pem")
    c.run("openssl", "x509", "-req", "-in", f"{d}/client.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
          "-CAcreateserial", "-days", "2", "-out", f"{d}/revoked.pem")
    with open(f"{d}/crl.cnf", "w") as f:
        f.write(f"[ca]\ndefault_ca = c\n[c]\ndatabase = {d}/index.txt\ncrlnumber = {d}/crlnumber\n"
                "default_md = sha256\ndefault_crl_days = 2\n")
    open(f"{d}/index.txt", "w").close()
    with open(f"{d}/crlnumber", "w") as f:
        f.write("1000\n")
    base = ["-config", f"{d}/crl.cnf", "-keyfile", f"{d}/ca.key", "-cert", f"{d}/ca.pem"]
    c.run("openssl", "ca", *base, "-revoke", f"{d}/revoked.pem")
    c.run("openssl", "ca", *base, "-gencrl", "-out", f"{d}/crl.pem")
    for name in ("client.pem", "client.key", "crl.pem"):
        os.chmod(f"{d}/{name}", 0o644)


def _start(c, name, d, procs, bport):
    """|name| requiring client certificates, on a free port: (port, popen)."""
    port = c.free_port()
    if name == "mqtls":
        args = [c.MQTLS, "--listen", f"127.0.0.1:{port}", "--cert", f"{d}/server.pem", "--key", f"{d}/server.key",
                "--upstream", f"127.0.0.1:{bport}", "--workers", "1", "--log-level", "warn",
                "--client-ca", f"{d}/ca.pem", "--client-cert", "required", "--crl", f"{d}/crl.pem",
                "--identity-as-username", "cn"]
    elif name == "haproxy":
        with open(f"{d}/haproxy-mtls.cfg", "w") as f:
            f.write(f"global\n    maxconn 9000\n    nbthread 1\n"
                    f"defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 600s\n"
                    f"    timeout server 600s\n"
                    f"frontend tls\n    bind 127.0.0.1:{port} ssl crt {d}/combined.pem ca-file {d}/ca.pem "
                    f"verify required crl-file {d}/crl.pem\n    default_backend broker\n"
                    f"backend broker\n    server broker 127.0.0.1:{bport}\n")
        args = ["haproxy", "-db", "-f", f"{d}/haproxy-mtls.cfg"]
    elif name == "nginx":
        with open(f"{d}/nginx-mtls.conf", "w") as f:
            f.write(f"load_module /usr/lib/nginx/modules/ngx_stream_module.so;\ndaemon off;\n"
                    f"worker_processes 1;\nworker_rlimit_nofile 20000;\npid {d}/nginx-mtls.pid;\n"
                    f"error_log {d}/nginx-mtls.err warn;\nevents {{ worker_connections 9000; }}\n"
                    f"stream {{\n    server {{\n        listen 127.0.0.1:{port} ssl;\n"
                    f"        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_certificate {d}/server.pem;\n"
                    f"        ssl_certificate_key {d}/server.key;\n"
                    f"        ssl_client_certificate {d}/ca.pem;\n        ssl_verify_client on;\n"
                    f"        ssl_crl {d}/crl.pem;\n        proxy_pass 127.0.0.1:{bport};\n    }}\n}}\n")
        args = ["nginx", "-c", f"{d}/nginx-mtls.conf"]
    elif name == "stunnel":
        with open(f"{d}/stunnel-mtls.conf", "w") as f:
            f.write(f"foreground = yes\npid =\ndebug = 3\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
                    f"[mqtt]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{bport}\n"
                    f"cert = {d}/server.pem\nkey = {d}/server.key\nCAfile = {d}/ca.pem\n"
                    f"verifyChain = yes\nrequireCert = yes\nCRLfile = {d}/crl.pem\n")
        args = ["stunnel", f"{d}/stunnel-mtls.conf"]
    else:
        raise ValueError(name)
    p = procs.start(args, open(f"{d}/{name}-mtls.log", "w"))
    c.wait_for(lambda: c.port_open(port) or p.poll() is not None, 15, f"{name} (mTLS)")
    if p.poll() is not None:
        raise RuntimeError(f"{name} (mTLS) exited: see {d}/{name}-mtls.log")
    return port, p


def _runs(c, f, name, version, d, pids_of, broker_pid, port):
    client = ["--port", str(port), "--threads", "1", "--source-ips", "127.0.0.1-127.0.0.30",
              "--tls-version", version, "--cafile", f"{d}/ca.pem", "--sni", "localhost",
              "--cert", f"{d}/client.pem", "--key", f"{d}/client.key"]
    tag = f"{name}-mtls{version}"
    r, tc, _ = c.measured(pids_of, broker_pid, lambda: c.bench(
        ["conn", "--count", str(N), "--churn", "--concurrency", "50", "-i", f"{tag}-c"] + client, d, f"{tag}-full"))
    f["errors"] += r["failed"]
    full = max(r["connected"] - r.get("tls_resumed", 0), 1)
    f["full_ms"] = tc * 1e6 / full
    f["full_cps"] = r["connects_per_s"]
    r, tc, _ = c.measured(pids_of, broker_pid, lambda: c.bench(
        ["conn", "--count", str(N), "--churn", "--concurrency", "50", "--tls-resume", "-i", f"{tag}-r"] + client,
        d, f"{tag}-resumed"))
    f["errors"] += r["failed"]
    f["resumed"], f["attempted"] = r.get("tls_resumed", 0), r["connected"]
    f["resumed_cps"] = r["connects_per_s"]
    if f["resumed"] > N // 2:
        nfull = r["connected"] - f["resumed"]
        f["resumed_ms"] = max(tc * 1e3 - nfull * f["full_ms"] / 1e3, 0) * 1e3 / f["resumed"]


def measure(c, kind, figs, d, procs, broker_pid, bport):
    """Runs the mTLS rows into figs["mtls"][version][name]."""
    _pki(c, d)
    out = figs.setdefault("mtls", {})
    for name in ORDER:
        if name not in c.ONLY:
            continue
        c.log(f"[{kind}] {name}: mTLS, {N} full and {N} resumed handshakes, TLS {' and '.join(VERSIONS)}")
        port, p = _start(c, name, d, procs, bport)
        try:
            for version in VERSIONS:
                f = out.setdefault(version, {}).setdefault(name, {"name": name, "errors": 0})
                _runs(c, f, name, version, d, lambda: [p.pid] + c.children(p.pid), broker_pid, port)
        finally:
            procs.stop(p)


def table(c, figs):
    """Markdown lines for the mTLS rows (none if they did not run)."""
    runs = figs.get("mtls")
    if not runs:
        return []
    lines = ["Client certificates required (verified against the bench CA and a CRL; mqtls also maps the CN to "
             "the username and checks a resumed client's certificate against the CRL again), "
             f"{N} full then {N} resumed handshakes + CONNECT per run (terminator CPU; connects/s wall clock):", "",
             "| terminator | TLS | full: CPU ms / 1,000 | × mqtls | full: connects/s "
             "| resumed: CPU ms / 1,000 | × mqtls | resumed: connects/s | resumed / attempted | resumed ÷ full CPU "
             "| errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for version in VERSIONS:
        rows = runs.get(version, {})
        ref = rows.get("mqtls", {})
        for name in ORDER:
            g = rows.get(name)
            if g is None:
                continue
            share = (g["resumed_ms"] / g["full_ms"]) if g.get("resumed_ms") is not None and g.get("full_ms") else None
            lines.append(
                f"| {name} | {version} | {c.fmt(g.get('full_ms'))} | {c.ratio(g.get('full_ms'), ref.get('full_ms'))} "
                f"| {c.fmt(g.get('full_cps'), 0)} | {c.fmt(g.get('resumed_ms'))} "
                f"| {c.ratio(g.get('resumed_ms'), ref.get('resumed_ms'))} | {c.fmt(g.get('resumed_cps'), 0)} "
                f"| {g.get('resumed', 0)} / {g.get('attempted', 0)} | {c.fmt(share)} | {g['errors']} |")
    return lines + ["", "A terminator that resumed fewer than half of the attempts gets no resumed CPU figure.", ""]
