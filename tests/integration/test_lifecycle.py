"""Process-level behaviour: flags and config, startup errors, signals, IPv6
and unix-socket upstreams, broker restarts, backpressure, leaks, linkage."""
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import clients
import mqttwire as w
from harness import MQTLS, Skip, check, free_port, test, wait_until


def _connack(ctx, m, client_id="c", host=None, port=None, version=4):
    s = ctx.tls_connect(m, host=host, port=port)
    s.sendall(w.connect(version, client_id=client_id))
    r = w.Reader(s)
    t, _, body = r.read(5)
    check(t == w.CONNACK and w.connack_code(body) == 0, "want CONNACK 0, got %d %r" % (t, body))
    return s, r


# -- the binary --------------------------------------------------------------

@test
def binary_links_boringssl_and_not_openssl(ctx):
    out = subprocess.run(["ldd", str(MQTLS)], stdout=subprocess.PIPE, text=True).stdout
    check("/android/libssl.so" in out and "/android/libcrypto.so" in out,
          "BoringSSL (android/libssl, android/libcrypto) not linked:\n" + out)
    check("libssl.so.3" not in out and "libcrypto.so.3" not in out,
          "OpenSSL 3 is linked:\n" + out)


@test
def help_and_version_exit_zero(ctx):
    rc, out, err = ctx.run_mqtls("--help")
    check(rc == 0 and "--upstream" in out + err, "--help rc=%d: %s%s" % (rc, out, err))
    rc, out, err = ctx.run_mqtls("--version")
    check(rc == 0 and "0." in out + err, "--version rc=%d: %s%s" % (rc, out, err))


def _one_line_error(ctx, args, mention=None, want_rc=2):
    rc, out, err = ctx.run_mqtls(*args)
    lines = err.strip().splitlines()
    check(rc == want_rc if want_rc else rc != 0, "%r: exit %d, want %s" % (args, rc, want_rc or
                                                                       "non-zero"))
    check(len(lines) == 1, "%r: want one line on stderr, got %r" % (args, lines))
    if mention:
        check(mention in lines[0], "%r: error %r does not name %r" % (args, lines[0], mention))
    return lines[0]


def _base(ctx, **over):
    a = {"listen": "127.0.0.1:0", "cert": ctx.pki.server_cert, "key": ctx.pki.server_key,
         "upstream": "127.0.0.1:1883"}
    a.update(over)
    out = []
    for k, v in a.items():
        out += ["--" + k, v]
    return out


@test
def unknown_flag_exits_2_with_one_line(ctx):
    _one_line_error(ctx, _base(ctx) + ["--no-such-flag"], "--no-such-flag")


@test
def bad_flag_values_exit_2_with_one_line(ctx):
    for extra in (["--workers", "abc"], ["--client-cert", "sometimes"],
                  ["--log-level", "chatty"], ["--connect-timeout", "-1"],
                  ["--max-connect-size", "lots"]):
        _one_line_error(ctx, _base(ctx) + extra, extra[1])
    _one_line_error(ctx, _base(ctx, listen="127.0.0.1"), "127.0.0.1")
    _one_line_error(ctx, _base(ctx, upstream="nowhere:"), "nowhere")
    _one_line_error(ctx, _base(ctx) + ["--workers"], "--workers")


@test
def missing_cert_file_is_a_one_line_startup_error_naming_it(ctx):
    path = str(ctx.dir / "no-such-cert.pem")
    _one_line_error(ctx, _base(ctx, cert=path), path, want_rc=None)


@test
def missing_key_file_is_a_one_line_startup_error_naming_it(ctx):
    path = str(ctx.dir / "no-such-key.pem")
    _one_line_error(ctx, _base(ctx, key=path), path, want_rc=None)


@test
def key_not_matching_cert_is_a_one_line_startup_error(ctx):
    _one_line_error(ctx, _base(ctx, key=ctx.pki.server_rsa_key), ctx.pki.server_rsa_key,
                    want_rc=None)


@test
def expired_server_cert_is_a_one_line_startup_error_naming_it(ctx):
    line = _one_line_error(ctx, _base(ctx, cert=ctx.pki.server_expired_cert,
                                      key=ctx.pki.server_expired_key),
                           ctx.pki.server_expired_cert, want_rc=None)
    check("expired" in line, "error does not say expired: %r" % line)


@test
def garbage_cert_file_is_a_one_line_startup_error_naming_it(ctx):
    path = ctx.dir / "garbage.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    _one_line_error(ctx, _base(ctx, cert=str(path)), str(path), want_rc=None)


@test
def missing_client_ca_file_is_a_one_line_startup_error_naming_it(ctx):
    path = str(ctx.dir / "no-such-ca.pem")
    _one_line_error(ctx, _base(ctx) + ["--client-ca", path, "--client-cert", "required"], path,
                    want_rc=None)


# -- signals -------------------------------------------------------------------

@test
def sigterm_exits_zero(ctx):
    b, m = ctx.pair()
    rc = m.stop(signal.SIGTERM)
    check(rc == 0, "exit code %d after SIGTERM" % rc)


@test
def sigint_exits_zero(ctx):
    b, m = ctx.pair()
    rc = m.stop(signal.SIGINT)
    check(rc == 0, "exit code %d after SIGINT" % rc)


@test
def sigterm_closes_open_sessions_and_exits_zero(ctx):
    # Without a drain (its own tests are in test_operations.py).
    b, m = ctx.pair("--drain-timeout", "0")
    s, r = _connack(ctx, m, "shutdown-me")
    t0 = time.monotonic()
    rc = m.stop(signal.SIGTERM, timeout=8)
    check(rc == 0, "exit code %d after SIGTERM" % rc)
    check(time.monotonic() - t0 < 3, "SIGTERM with one session took %.1fs"
          % (time.monotonic() - t0))
    check(r.expect_closed(2) == [], "packets before close")
    c = [c for c in m.close_lines() if c.get("client_id") == "shutdown-me"]
    check(c and c[0].get("reason") == "shutdown", "close lines %r, want reason=shutdown"
          % m.close_lines())
    wait_until(lambda: "Client shutdown-me closed its connection" in b.log()
               or "Client shutdown-me disconnected" in b.log(),
               3, "the broker to see the upstream connection end")


@test
def sigterm_sends_v5_clients_disconnect_0x8b_first(ctx):
    b, m = ctx.pair("--drain-timeout", "0")
    s, r = _connack(ctx, m, "v5-shutdown", version=5)
    # A broker packet in flight first: the DISCONNECT must come after it, whole.
    s.sendall(w.subscribe(1, "itest/shutdown", 0, version=5))
    t, _, _ = r.read(5)
    check(t == w.SUBACK, "want SUBACK, got type %d" % t)
    rc = m.stop(signal.SIGTERM, timeout=8)
    check(rc == 0, "exit code %d after SIGTERM" % rc)
    seen = r.expect_closed(3)
    check([p[0] for p in seen] == [w.DISCONNECT], "want exactly one DISCONNECT, got %r" % seen)
    check(seen[0][2][:1] == b"\x8b", "DISCONNECT reason %r, want 0x8B" % seen[0][2])
    c = [c for c in m.close_lines() if c.get("client_id") == "v5-shutdown"]
    check(c and c[0].get("reason") == "shutdown", "close lines %r" % m.close_lines())


# -- addresses -------------------------------------------------------------------

def _has_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@test
def ipv6_listener_serves_clients(ctx):
    if not _has_ipv6():
        raise Skip("no IPv6 loopback")
    b = ctx.broker()
    m = ctx.mqtls(broker=b, listen=("[::1]:0",))
    check(m.ready.read_text().startswith("[::1]:"), "ready file %r" % m.ready.read_text())
    _connack(ctx, m, "v6", host="::1", port=m.port)


@test
def ipv4_and_ipv6_listeners_together(ctx):
    if not _has_ipv6():
        raise Skip("no IPv6 loopback")
    b = ctx.broker()
    m = ctx.mqtls(broker=b, listen=("127.0.0.1:0", "[::1]:0"))
    check(len(m.addrs) == 2, "ready file %r, want two listeners" % m.ready.read_text())
    for host, port in m.addrs:
        _connack(ctx, m, "both-%d" % port, host=host, port=port)
    check(len(b.clients()) == 2, "broker clients %r" % b.clients())


@test
def ipv6_upstream_is_used(ctx):
    if not _has_ipv6():
        raise Skip("no IPv6 loopback")
    port = free_port("::1")
    b = ctx.broker(extra="listener %d ::1\n" % port)
    m = ctx.mqtls(broker=b, upstream="[::1]:%d" % port)
    _connack(ctx, m, "via-v6")
    check(any(h in ("::1", "[::1]") for h, _ in b.connections()),
          "broker saw no IPv6 connection: %r" % b.connections())


@test
def unix_socket_upstream_is_used(ctx):
    path = str(ctx.dir / "broker.sock")
    b = ctx.broker(unix_path=path)
    m = ctx.mqtls(broker=b)
    check(m.argv[m.argv.index("--upstream") + 1] == "unix:" + path, "argv %r" % m.argv)
    _connack(ctx, m, "via-unix")
    clients.pub_sub_round_trip(ctx, m, 5, 1, b"over a unix socket")
    check("via-unix" in b.clients(), "broker clients %r" % b.clients())


# -- config file ------------------------------------------------------------------

@test
def config_file_is_read_and_flags_override_it(ctx):
    b = ctx.broker()
    conf = ctx.dir / "mqtls.conf"
    dead = "127.0.0.1:%d" % free_port()
    conf.write_text(
        "# integration test config\n"
        "listen 127.0.0.1:0\n"
        "cert %s\n"
        "key %s\n"
        "\n"
        "upstream %s   \n"
        "connect-timeout 1\n"
        "log-level info\n" % (ctx.pki.server_cert, ctx.pki.server_key, dead))
    # From the file alone the broker is unreachable...
    m1 = ctx.mqtls_raw(["--config", str(conf)])
    s = ctx.tls_connect(m1)
    s.sendall(w.connect(4, client_id="cfg"))
    t, _, body = w.Reader(s).read(5)
    check(body == b"\x00\x03", "file's upstream: want CONNACK 3, got %r" % body)
    # ...and a flag overrides the file's upstream, keeping the rest.
    m2 = ctx.mqtls_raw(["--config", str(conf), "--upstream", b.upstream])
    _connack(ctx, m2, "cfg")
    s = ctx.tls_connect(m2)     # connect-timeout 1 from the file still applies
    t0 = time.monotonic()
    check(w.Reader(s).expect_closed(4) == [], "packet from an idle session")
    check(time.monotonic() - t0 < 2.5, "file's connect-timeout 1 not applied")


@test
def config_file_with_an_unknown_key_exits_2(ctx):
    conf = ctx.dir / "bad.conf"
    conf.write_text("listen 127.0.0.1:0\nfrobnicate yes\n")
    _one_line_error(ctx, ["--config", str(conf)], "frobnicate")


@test
def missing_config_file_exits_2(ctx):
    path = str(ctx.dir / "nope.conf")
    _one_line_error(ctx, ["--config", path], path)


# -- broker restarts, vanishing clients, many clients ---------------------------------

@test
def broker_restart_disconnects_the_client_and_later_clients_work(ctx):
    b, m = ctx.pair()
    s, r = _connack(ctx, m, "before-restart")
    s.sendall(w.subscribe(1, "itest/restart", 1))
    check(r.read(5)[0] == w.SUBACK, "no SUBACK")
    b.kill()
    t0 = time.monotonic()
    r.expect_closed(5)
    check(time.monotonic() - t0 < 3, "client noticed the broker's death after %.1fs"
          % (time.monotonic() - t0))
    c = m.wait_close(1)[0]
    check(c.get("reason") == "broker_closed", "close reason %r: %r" % (c.get("reason"), c))
    check(c.get("client_id") == "before-restart", "client_id %r" % c.get("client_id"))
    # While the broker is down, new clients are told it is unavailable.
    s2 = ctx.tls_connect(m)
    s2.sendall(w.connect(4, client_id="during"))
    check(w.Reader(s2).read(5)[2] == b"\x00\x03", "want CONNACK 3 while the broker is down")
    b.restart()
    clients.pub_sub_round_trip(ctx, m, 4, 1, b"after restart")


@test
def paho_client_is_disconnected_when_the_broker_dies(ctx):
    import paho.mqtt.client as mqtt
    b, m = ctx.pair()
    c = mqtt.Client(client_id="paho-restart")
    c.tls_set(ca_certs=ctx.pki.ca)
    conn, gone = threading.Event(), threading.Event()
    c.on_connect = lambda *a: conn.set()
    c.on_disconnect = lambda *a: gone.set()
    c.connect(m.host, m.port, keepalive=30)
    c.loop_start()
    try:
        check(conn.wait(5), "paho did not connect")
        b.kill()
        check(gone.wait(5), "paho was not disconnected within 5s of the broker dying")
    finally:
        c.disconnect()
        c.loop_stop()
    check(m.wait_close(1)[0].get("reason") == "broker_closed", "close reason")


@test
def vanished_client_releases_the_upstream_connection(ctx):
    b, m = ctx.pair()
    s, r = _connack(ctx, m, "vanisher")
    raw = s.detach() if hasattr(s, "detach") else s
    sock = socket.socket(fileno=raw) if isinstance(raw, int) else raw
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()          # RST, no close_notify, no DISCONNECT
    wait_until(lambda: "Client vanisher closed its connection" in b.log() or
               "Client vanisher disconnected" in b.log(), 5,
               "the broker to see the vanished client's upstream close")
    c = m.wait_close(1)[0]
    check(c.get("reason") in ("client_closed", "client_error", "error"),
          "close reason %r" % c.get("reason"))


@test
def clean_disconnect_reaches_the_broker(ctx):
    b, m = ctx.pair()
    s, r = _connack(ctx, m, "polite")
    s.sendall(w.disconnect())
    wait_until(lambda: "Received DISCONNECT from polite" in b.log(), 5,
               "the broker to receive DISCONNECT")
    check(r.expect_closed(5) == [], "packets after DISCONNECT")


def _fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@test(timeout=40)
def fifty_concurrent_clients_and_no_descriptor_leak(ctx):
    b, m = ctx.pair("--workers", "2")
    _connack(ctx, m, "warmup")[0].close()
    m.wait_close(1)
    base = _fd_count(m.pid)
    socks = []
    for i in range(50):
        s = ctx.tls_connect(m)
        s.sendall(w.connect(4, client_id="many-%d" % i))
        socks.append(s)
    for i, s in enumerate(socks):
        t, _, body = w.Reader(s).read(5)
        check((t, body) == (w.CONNACK, b"\x00\x00"), "client %d: %d %r" % (i, t, body))
    check(_fd_count(m.pid) >= base + 100, "fd count %d with 50 sessions (base %d)"
          % (_fd_count(m.pid), base))
    for i, s in enumerate(socks):
        if i % 2:
            s.sendall(w.disconnect())
        s.close()
    m.wait_close(51, timeout=10)
    wait_until(lambda: _fd_count(m.pid) <= base, 5,
               "mqtls fds back to %d (now %d)" % (base, _fd_count(m.pid)))


# -- backpressure -------------------------------------------------------------------------

def _flood_broker(port, topic, total, chunk):
    """Publish total bytes to topic straight at the broker (plain TCP, QoS 0)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(w.connect(4, client_id="flooder"))
    r = w.Reader(s)
    r.read(5)
    msg = w.publish(topic, os.urandom(chunk))
    sent = 0
    while sent < total:
        s.sendall(msg)
        sent += chunk
    s.sendall(w.pingreq())     # the broker has read everything once it answers
    while r.read(30)[0] != w.PINGRESP:
        pass
    s.close()
    return sent


@test(timeout=60)
def client_that_stops_reading_keeps_mqtls_memory_bounded(ctx):
    b, m = ctx.pair("--max-buffer", "65536", "--workers", "1")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    raw.settimeout(5)
    raw.connect((m.host, m.port))
    s = ctx.note_socket(ctx.client_context().wrap_socket(raw, server_hostname=m.host))
    s.sendall(w.connect(4, client_id="sleeper") + w.subscribe(1, "itest/flood", 0))
    r = w.Reader(s)
    check(r.read(5)[0] == w.CONNACK and r.read(5)[0] == w.SUBACK, "no CONNACK/SUBACK")
    before = m.rss_kb()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], m.rss_kb())
            time.sleep(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        sent = _flood_broker(b.port, "itest/flood", 110 << 20, 64 << 10)
        time.sleep(1.0)          # let mqtls take whatever it would take
    finally:
        done.set()
        t.join(2)
    grew = (peak[0] - before) / 1024
    ctx.notes.append("RSS before %d KiB, peak %d KiB, %d MiB published"
                     % (before, peak[0], sent >> 20))
    check(grew < 20, "mqtls RSS grew %.1f MiB (from %d KiB) while %d MiB were published"
          % (grew, before, sent >> 20))
    # Reading again resumes the flow.
    got = 0
    deadline = time.monotonic() + 10
    while got < (4 << 20) and time.monotonic() < deadline:
        t_, f, body = r.read(5)
        check(t_ == w.PUBLISH, "packet type %d in the flood" % t_)
        topic, payload = w.publish_fields(f, body)
        check(topic == "itest/flood" and len(payload) == 64 << 10,
              "flood stream corrupted: topic %r, %d bytes" % (topic[:40], len(payload)))
        got += len(body)
    check(got >= 4 << 20, "only %d bytes arrived after the client resumed reading" % got)


@test(timeout=60)
def broker_that_stops_reading_keeps_mqtls_memory_bounded(ctx):
    b, m = ctx.pair("--max-buffer", "65536", "--workers", "1")
    s, r = _connack(ctx, m, "firehose")
    b.send(signal.SIGSTOP)      # the broker stops reading
    try:
        before = m.rss_kb()
        msg = w.publish("itest/firehose", os.urandom(64 << 10))
        s.setblocking(False)
        sent, stalled_since = 0, None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sent < (100 << 20):
            try:
                n = s.send(msg)
                sent += n
                stalled_since = None
            except (ssl.SSLWantWriteError, BlockingIOError):
                if stalled_since is None:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > 1.0:
                    break           # mqtls stopped reading from us: backpressure works
                time.sleep(0.01)
        after = m.rss_kb()
        grew = (after - before) / 1024
        ctx.notes.append("RSS before %d KiB, after %d KiB, %d MiB written" %
                         (before, after, sent >> 20))
        check(sent < (100 << 20), "100 MiB written into a stopped broker: no backpressure")
        check(grew < 20, "mqtls RSS grew %.1f MiB while the broker was stopped" % grew)
    finally:
        b.send(signal.SIGCONT)


@test
def workers_flag_sets_the_number_of_event_loops(ctx):
    b, m = ctx.pair("--workers", "3")
    threads = int([l for l in open("/proc/%d/status" % m.pid) if l.startswith("Threads:")][0]
                  .split()[1])
    check(threads >= 3, "%d threads with --workers 3" % threads)
    for i in range(6):
        _connack(ctx, m, "w%d" % i)
    b2 = ctx.broker()
    m1 = ctx.mqtls("--workers", "1", broker=b2)
    _connack(ctx, m1, "single")
