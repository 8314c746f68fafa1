#!/usr/bin/python3
"""Does a storm of slow logins stall forwarding for connected clients?

Starts mosquitto and mqtls (--workers 1, --users with expensive hashes), keeps
one authenticated "canary" client doing PINGREQ/PINGRESP round trips through
mqtls, and measures the round trip alone and then while other clients log in
as fast as they can. Also reports mqtls's CPU time per login, from /proc.

    bench/auth_storm.py [--scheme pbkdf2|argon2id|sha512] [--logins 60] [--parallel 8]
"""
import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle_memory import make_pki, free_port, wait_for  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def connect_packet(cid, user, pw):
    cid, user, pw = cid.encode(), user.encode(), pw.encode()
    var = b"\x00\x04MQTT\x04\xc2\x00\x3c"
    payload = b"".join(len(x).to_bytes(2, "big") + x for x in (cid, user, pw))
    body = var + payload
    return bytes([0x10, len(body)]) + body


def dial(ctx, port):
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def login(ctx, port, cid, pw):
    s = dial(ctx, port)
    try:
        s.sendall(connect_packet(cid, "alice", pw))
        return s.recv(4)
    finally:
        s.close()


def pings(sock, seconds):
    rtts = []
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        sock.sendall(b"\xc0\x00")
        if sock.recv(2) != b"\xd0\x00":
            raise SystemExit("auth_storm: bad PINGRESP")
        rtts.append((time.perf_counter() - t0) * 1e6)
        time.sleep(0.005)
    return rtts


def summary(name, rtts):
    rtts = sorted(rtts)
    p = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))]
    print(f"  canary round trip {name}: n={len(rtts)} p50={p(0.5):.0f} us p99={p(0.99):.0f} us max={rtts[-1]:.0f} us")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scheme", default="pbkdf2", choices=["pbkdf2", "argon2id", "sha512"])
    ap.add_argument("--logins", type=int, default=60)
    ap.add_argument("--parallel", type=int, default=8)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="mqtls-storm-")
    make_pki(tmp)
    mqtls = os.path.join(ROOT, "build", "mqtls")
    subprocess.run([mqtls, "passwd", "-c", "-b", f"--{a.scheme}", f"{tmp}/users", "alice", "right"], check=True)
    bport = free_port()
    with open(f"{tmp}/mosq.conf", "w") as f:
        f.write(f"listener {bport} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n")
    procs = []
    try:
        procs.append(subprocess.Popen(["mosquitto", "-c", f"{tmp}/mosq.conf"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", bport)) == 0, 5, "mosquitto")
        mq = subprocess.Popen([mqtls, "--listen", "127.0.0.1:0", "--cert", f"{tmp}/server.pem", "--key",
                               f"{tmp}/server.key", "--upstream", f"127.0.0.1:{bport}", "--ready-file",
                               f"{tmp}/ready", "--users", f"{tmp}/users", "--workers", "1",
                               "--auth-fail-delay", "0", "--log-level", "warn"])
        procs.append(mq)
        wait_for(lambda: os.path.exists(f"{tmp}/ready"), 5, "mqtls")
        port = int(open(f"{tmp}/ready").read().split()[0].rsplit(":", 1)[1])
        ctx = ssl.create_default_context(cafile=f"{tmp}/ca.pem")

        t0 = time.perf_counter()
        assert login(ctx, port, "one", "right") == b"\x20\x02\x00\x00"
        single = time.perf_counter() - t0
        canary = dial(ctx, port)
        canary.sendall(connect_packet("canary", "alice", "right"))
        assert canary.recv(4) == b"\x20\x02\x00\x00"
        print(f"scheme {a.scheme}: one login took {single * 1000:.1f} ms wall")
        summary("idle", pings(canary, 2))

        results = []
        cpu0 = cpu_seconds(mq.pid)

        def storm(n):
            for i in range(n):
                results.append(login(ctx, port, f"s{i}", "right" if i % 2 else "wrong"))

        threads = [threading.Thread(target=storm, args=(a.logins // a.parallel,)) for _ in range(a.parallel)]
        w0 = time.perf_counter()
        for t in threads:
            t.start()
        during = []
        while any(t.is_alive() for t in threads):
            during += pings(canary, 0.2)
        wall = time.perf_counter() - w0
        cpu = cpu_seconds(mq.pid) - cpu0
        ok = sum(1 for r in results if r == b"\x20\x02\x00\x00")
        bad = sum(1 for r in results if r == b"\x20\x02\x00\x04")
        print(f"  storm: {len(results)} logins ({ok} accepted, {bad} refused with code 4) in {wall:.2f} s wall, "
              f"mqtls CPU {cpu * 1000 / max(1, len(results)):.2f} ms per login (TLS handshake included)")
        summary("during the storm", during)
        canary.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
