#!/usr/bin/python3
"""User-space memory of mqtls per idle TLS MQTT connection.

Starts a plain mosquitto and mqtls in front of it, reads mqtls's VmRSS and
RssAnon from /proc, opens N TLS connections that each complete CONNECT/CONNACK
and then stay idle, reads /proc again, and prints the delta per connection.
With --ws the same is measured again for MQTT over secure WebSockets (a
fresh mqtls with --ws-listen; each client does the HTTP upgrade after TLS
and sends its CONNECT in a masked binary frame), and both figures are
printed side by side. With --upstream-tls the same is measured with TLS on
the broker side too (mosquitto's own TLS listener, --upstream-tls): what a
broker SSL adds to each idle connection. With --resume every measured
connection resumes the session of the last warm-up one (tickets), with
--tls12 clients stop at TLS 1.2.

    bench/idle_memory.py [--count 1000] [--mtls] [--workers 1] [--ws] [--upstream-tls] [--resume] [--tls12]
"""
import argparse
import base64
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d, client_subject="/CN=client"):
    def key(name):
        sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/{name}.key")

    key("ca")
    sh("openssl", "req", "-x509", "-new", "-key", f"{d}/ca.key", "-subj", "/CN=bench-ca", "-days", "2",
       "-out", f"{d}/ca.pem")
    with open(f"{d}/ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        key(name)
        subj = client_subject if name == "client" else f"/CN={name}"
        sh("openssl", "req", "-new", "-key", f"{d}/{name}.key", "-subj", subj, "-out", f"{d}/{name}.csr")
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


def dial(ctx, port, session=None):
    raw = socket.create_connection(("127.0.0.1", port))
    # Without this, Nagle holds the CONNECT behind the client's Finished
    # until the server's delayed ACK, 40 ms per connection.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="localhost", session=session)


def connect_packet(client_id):
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x3c"
    payload = len(cid).to_bytes(2, "big") + cid
    body = var + payload
    return bytes([0x10, len(body)]) + body


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_upgrade(s, path):
    """RFC 6455 opening handshake for MQTT on TLS socket s; checks the 101."""
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1024)
        if not chunk:
            raise SystemExit(f"idle_memory: the server closed during the WebSocket upgrade: {head!r}")
        head += chunk
    want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    if not lines[0].startswith(b"HTTP/1.1 101") or fields.get(b"sec-websocket-accept") != want or \
            fields.get(b"sec-websocket-protocol") != b"mqtt":
        raise SystemExit(f"idle_memory: bad WebSocket upgrade answer: {head!r}")
    if not head.endswith(b"\r\n\r\n"):
        raise SystemExit("idle_memory: frames before CONNECT")


def ws_frame(payload):
    """One masked binary frame (client to server), payload under 126 bytes."""
    mask = os.urandom(4)
    return bytes([0x82, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def connack(s, ws):
    """The 4-byte CONNACK, unframed from its binary frame over WebSockets."""
    if ws:
        hdr = recv_exact(s, 2)
        if len(hdr) < 2 or hdr[0] != 0x82 or hdr[1] != 4:
            return hdr
    return recv_exact(s, 4)


def wait_for(pred, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit(f"idle_memory: timed out waiting for {what}")


def measure(a, tmp, bport, ws, tport=None):
    """Starts mqtls, opens a.count idle connections; returns {VmRSS, RssAnon: (before, after)}.
    With |tport|, mqtls talks TLS to the broker's TLS listener on that port."""
    socks = []
    args = [a.binary, "--listen", "127.0.0.1:0", "--cert", f"{tmp}/server.pem", "--key", f"{tmp}/server.key",
            "--upstream", f"127.0.0.1:{tport or bport}", "--ready-file", f"{tmp}/ready", "--log-level", "warn",
            "--workers", str(a.workers)]
    if tport:
        args += ["--upstream-tls", "--upstream-ca", f"{tmp}/ca.pem"]
    if ws:
        ws_port = free_port()
        args += ["--ws-listen", f"127.0.0.1:{ws_port}"]
    if a.mtls:
        args += ["--client-ca", f"{tmp}/ca.pem", "--client-cert", "required"]
    if os.path.exists(f"{tmp}/ready"):
        os.unlink(f"{tmp}/ready")
    log = f"{tmp}/mqtls{'-ws' if ws else ''}.log"
    mq = subprocess.Popen(args, stderr=open(log, "w"))
    try:
        wait_for(lambda: os.path.exists(f"{tmp}/ready") or mq.poll() is not None, 5, "mqtls")
        if mq.poll() is not None:
            raise SystemExit(f"idle_memory: mqtls exited: {open(log).read()[-500:]}")
        port = ws_port if ws else int(open(f"{tmp}/ready").read().split()[0].rsplit(":", 1)[1])

        ctx = ssl.create_default_context(cafile=f"{tmp}/ca.pem")
        if a.mtls:
            ctx.load_cert_chain(f"{tmp}/client.pem", f"{tmp}/client.key")
        if a.tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        offer = [None]      # with --resume, the session the next connections offer

        def open_one(client_id):
            s = dial(ctx, port, offer[0])
            if ws:
                ws_upgrade(s, a.ws_path)
                s.sendall(ws_frame(connect_packet(client_id)))
            else:
                s.sendall(connect_packet(client_id))
            return s, connack(s, ws)
        # Warm up one connection so lazily allocated per-process state
        # (error queues, thread-local caches) is not charged to the count.
        for i in range(2):
            s, ack = open_one(f"warm{i}")
            assert ack[:2] == b"\x20\x02", ack
            if a.resume:
                offer[0] = s.session     # read after the CONNACK: TLS 1.3 tickets come after the handshake
            s.close()
        time.sleep(0.3)
        before = status(mq.pid)
        for i in range(a.count):
            s, ack = open_one(f"idle{i}")
            if ack != b"\x20\x02\x00\x00":
                raise SystemExit(f"idle_memory: connection {i} got {ack!r}")
            socks.append(s)
        if a.resume and not all(s.session_reused for s in socks):
            raise SystemExit(f"idle_memory: only {sum(s.session_reused for s in socks)} of {a.count} "
                             f"connections resumed")
        time.sleep(0.5)
        after = status(mq.pid)
        return {k: (before[k], after[k]) for k in ("VmRSS", "RssAnon")}
    finally:
        for s in socks:
            s.close()
        mq.terminate()
        mq.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--mtls", action="store_true", help="clients present certificates")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--ws", action="store_true", help="also measure MQTT over secure WebSockets (--ws-listen)")
    ap.add_argument("--ws-path", default="/mqtt")
    ap.add_argument("--upstream-tls", action="store_true",
                    help="also measure with TLS to the broker (mosquitto's TLS listener, --upstream-tls)")
    ap.add_argument("--resume", action="store_true", help="measured connections resume a session (tickets)")
    ap.add_argument("--tls12", action="store_true", help="clients use TLS 1.2 (default: up to 1.3)")
    ap.add_argument("--client-subject", default="/CN=client",
                    help="subject of the --mtls client certificate (its size moves the heap layout)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "mqtls"))
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="mqtls-idle-")
    make_pki(tmp, a.client_subject)
    bport = free_port()
    with open(f"{tmp}/mosq.conf", "w") as f:
        f.write(f"listener {bport} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n")
        tport = free_port() if a.upstream_tls else None
        if tport:
            # Started as root, mosquitto would read the keys as user mosquitto.
            f.write(f"user root\nlistener {tport} 127.0.0.1\ncafile {tmp}/ca.pem\ncertfile {tmp}/server.pem\n"
                    f"keyfile {tmp}/server.key\n")
    broker = subprocess.Popen(["mosquitto", "-c", f"{tmp}/mosq.conf"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", bport)) == 0, 5, "mosquitto")
        base = ("mTLS" if a.mtls else "TLS") + (" 1.2" if a.tls12 else "") + (" resumed" if a.resume else "")
        per = {}
        for ws in ([False, True] if a.ws else [False]):
            mode = base + (" + WebSocket (wss)" if ws else "")
            figs = measure(a, tmp, bport, ws)
            for k, (b, after) in figs.items():
                per[(ws, k)] = (after - b) / a.count
                print(f"{mode} {k}: {b} KiB -> {after} KiB with {a.count} idle connections: "
                      f"{per[(ws, k)]:.2f} KiB per connection", flush=True)
        if a.ws:
            for k in ("VmRSS", "RssAnon"):
                print(f"side by side, {k} KiB per idle connection: {base} over TCP {per[(False, k)]:.2f}, "
                      f"wss {per[(True, k)]:.2f} ({per[(True, k)] - per[(False, k)]:+.2f})")
        if tport:
            figs = measure(a, tmp, bport, False, tport)
            for k, (b, after) in figs.items():
                up = (after - b) / a.count
                print(f"{base} + TLS to the broker {k}: {b} KiB -> {after} KiB with {a.count} idle connections: "
                      f"{up:.2f} KiB per connection ({up - per[(False, k)]:+.2f} against a plain broker hop)",
                      flush=True)
    finally:
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
