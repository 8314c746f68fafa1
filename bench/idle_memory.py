#!/usr/bin/python3
"""User-space memory of mqtls per idle TLS MQTT connection.

Starts a plain mosquitto and mqtls in front of it, reads mqtls's VmRSS and
RssAnon from /proc, opens N TLS connections that each complete CONNECT/CONNACK
and then stay idle, reads /proc again, and prints the delta per connection.

    bench/idle_memory.py [--count 1000] [--mtls] [--workers 1]
"""
import argparse
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    def key(name):
        sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/{name}.key")

    key("ca")
    sh("openssl", "req", "-x509", "-new", "-key", f"{d}/ca.key", "-subj", "/CN=bench-ca", "-days", "2",
       "-out", f"{d}/ca.pem")
    with open(f"{d}/ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        key(name)
        sh("openssl", "req", "-new", "-key", f"{d}/{name}.key", "-subj", f"/CN={name}", "-out", f"{d}/{name}.csr")
        sh("openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
           "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext", "-out", f"{d}/{name}.pem")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                out[k] = int(v.split()[0])
    return out


def dial(ctx, port):
    raw = socket.create_connection(("127.0.0.1", port))
    # Without this, Nagle holds the CONNECT behind the client's Finished
    # until the server's delayed ACK, 40 ms per connection.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def connect_packet(client_id):
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x3c"
    payload = len(cid).to_bytes(2, "big") + cid
    body = var + payload
    return bytes([0x10, len(body)]) + body


def wait_for(pred, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit(f"idle_memory: timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--mtls", action="store_true", help="clients present certificates")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "mqtls"))
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="mqtls-idle-")
    make_pki(tmp)
    bport = free_port()
    with open(f"{tmp}/mosq.conf", "w") as f:
        f.write(f"listener {bport} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n")
    procs = []
    socks = []
    try:
        procs.append(subprocess.Popen(["mosquitto", "-c", f"{tmp}/mosq.conf"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", bport)) == 0, 5, "mosquitto")
        args = [a.binary, "--listen", "127.0.0.1:0", "--cert", f"{tmp}/server.pem", "--key", f"{tmp}/server.key",
                "--upstream", f"127.0.0.1:{bport}", "--ready-file", f"{tmp}/ready", "--log-level", "warn",
                "--workers", str(a.workers)]
        if a.mtls:
            args += ["--client-ca", f"{tmp}/ca.pem", "--client-cert", "required"]
        mq = subprocess.Popen(args, stderr=open(f"{tmp}/mqtls.log", "w"))
        procs.append(mq)
        wait_for(lambda: os.path.exists(f"{tmp}/ready"), 5, "mqtls")
        port = int(open(f"{tmp}/ready").read().split()[0].rsplit(":", 1)[1])

        ctx = ssl.create_default_context(cafile=f"{tmp}/ca.pem")
        if a.mtls:
            ctx.load_cert_chain(f"{tmp}/client.pem", f"{tmp}/client.key")
        # Warm up one connection so lazily allocated per-process state
        # (error queues, thread-local caches) is not charged to the count.
        for i in range(2):
            s = dial(ctx, port)
            s.sendall(connect_packet(f"warm{i}"))
            assert s.recv(4)[:2] == b"\x20\x02"
            s.close()
        time.sleep(0.3)
        before = status(mq.pid)
        for i in range(a.count):
            s = dial(ctx, port)
            s.sendall(connect_packet(f"idle{i}"))
            ack = s.recv(4)
            if ack != b"\x20\x02\x00\x00":
                raise SystemExit(f"idle_memory: connection {i} got {ack!r}")
            socks.append(s)
        time.sleep(0.5)
        after = status(mq.pid)
        mode = "mTLS" if a.mtls else "TLS"
        for k in ("VmRSS", "RssAnon"):
            delta = after[k] - before[k]
            print(f"{mode} {k}: {before[k]} KiB -> {after[k]} KiB with {a.count} idle connections: "
                  f"{delta / a.count:.2f} KiB per connection")
    finally:
        for s in socks:
            s.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
