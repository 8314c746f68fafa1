"""Running mqtls as infrastructure: /metrics checked by promtool while traffic
flows, /healthz and /readyz, the drain on SIGTERM, connection limits answered
with a CONNACK, and JSON logs with the same fields as text."""
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import auth_env as A
import clients
import mqttwire as w
from harness import Skip, check, free_port, test, wait_until


def _get(port, path, timeout=5):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _with_metrics(ctx, *extra, broker=None):
    port = free_port()
    b = broker or ctx.broker()
    m = ctx.mqtls("--metrics", "127.0.0.1:%d" % port, *extra, broker=b)
    return b, m, port


def _samples(text):
    """{'name{labels}': value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _promtool(text):
    if shutil.which("promtool") is None:
        raise Skip("promtool is not installed (make deps installs the prometheus package)")
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    check(r.returncode == 0, "promtool check metrics failed:\n%s" % r.stdout.decode())


def _connack(ctx, m, version=4, client_id="c", **kw):
    """A TLS connection that sent CONNECT: (socket, reader, CONNACK code or None)."""
    s = ctx.tls_connect(m)
    s.sendall(w.connect(version, client_id=client_id, **kw))
    r = w.Reader(s)
    try:
        t, _, body = r.read(5)
    except w.Closed:
        return s, r, None
    check(t == w.CONNACK, "want CONNACK, got type %d" % t)
    return s, r, w.connack_code(body)


# -- metrics -----------------------------------------------------------------------

@test(timeout=60)
def metrics_scraped_while_traffic_flows_pass_promtool_and_count_it(ctx):
    b, m, port = _with_metrics(ctx)
    done = threading.Event()
    errors = []

    def traffic():
        try:
            while not done.is_set():
                clients.pub_sub_round_trip(ctx, m, 4, 1, b"x" * 2000)
        except Exception as e:     # reported below; a scrape must not hide it
            errors.append(repr(e))
    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    scrapes = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, text = _get(port, "/metrics")
        check(status == 200, "/metrics answered %d" % status)
        scrapes.append(text)
        s = _samples(text)
        if len(scrapes) >= 3 and s.get('mqtls_bytes_total{direction="broker_to_client"}', 0) > 4000:
            break
        time.sleep(0.3)
    done.set()
    t.join(30)
    check(not errors, "traffic failed: %r" % errors)
    for text in scrapes:
        _promtool(text)
    s = _samples(scrapes[-1])
    ctx.notes.append("%d scrapes while publishing; last: %d connections, %d bytes client->broker"
                     % (len(scrapes), s['mqtls_connections_total{listener="127.0.0.1:0"}'],
                        s['mqtls_bytes_total{direction="client_to_broker"}']))
    check(s['mqtls_connections_total{listener="127.0.0.1:0"}'] >= 2, "connections_total %r" % s)
    check(s['mqtls_handshakes_total{version="1.3",result="ok"}'] >= 2, "handshakes %r" % s)
    check(s['mqtls_mqtt_connects_total{version="3.1.1"}'] >= 2, "connects %r" % s)
    check(s['mqtls_bytes_total{direction="client_to_broker"}'] > 2000, "bytes in %r" % s)
    check(s["mqtls_handshake_duration_seconds_count"] >= 2, "handshake histogram %r" % s)
    check(s["mqtls_connack_duration_seconds_count"] >= 2, "connack histogram %r" % s)
    check(s["process_open_fds"] > 0 and s["process_max_fds"] >= s["process_open_fds"], "fds %r" % s)
    expiry = [v for k, v in s.items() if k.startswith("mqtls_certificate_expiry_timestamp_seconds{")]
    check(expiry and all(v > time.time() for v in expiry), "certificate expiry %r" % expiry)
    # Counters never go backwards between scrapes.
    first = _samples(scrapes[0])
    for k, v in first.items():
        if k.startswith("mqtls_") and "_total" in k:
            check(s.get(k, 0) >= v, "%s went from %s to %s" % (k, v, s.get(k)))


@test
def metrics_count_refusals_by_connack_code_and_close_reason(ctx):
    b, m, port = _with_metrics(ctx)
    s = ctx.tls_connect(m)
    s.sendall(w.connect(4, level=9))          # an unknown protocol level: CONNACK 1
    t, _, body = w.Reader(s).read(5)
    check(t == w.CONNACK and w.connack_code(body) == 1, "want CONNACK 1, got %d %r" % (t, body))
    m.wait_close(1)
    v = _samples(_get(port, "/metrics")[1])
    check(v.get('mqtls_connack_sent_total{code="1"}') == 1, "connack_sent %r" % v)
    check(v.get('mqtls_closed_total{reason="bad_protocol"}') == 1, "closed %r" % v)


@test
def healthz_is_ok_and_unknown_paths_are_404(ctx):
    b, m, port = _with_metrics(ctx)
    check(_get(port, "/healthz") == (200, "ok\n"), "healthz %r" % (_get(port, "/healthz"),))
    check(_get(port, "/nope")[0] == 404, "unknown path not 404")


@test(timeout=40)
def readyz_turns_503_when_the_broker_stops_and_200_when_it_is_back(ctx):
    b, m, port = _with_metrics(ctx)
    wait_until(lambda: _get(port, "/readyz")[0] == 200, 5, "/readyz 200 with the broker up")
    b.kill()
    got = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(_get(port, "/readyz")), 8,
                     "/readyz 503 after the broker stopped")
    check("unreachable" in got[1] and len(got[1].strip().splitlines()) == 1,
          "want one line naming the broker, got %r" % got[1])
    b.restart()
    wait_until(lambda: _get(port, "/readyz")[0] == 200, 8, "/readyz 200 once the broker is back")


# -- drain ---------------------------------------------------------------------------

@test(timeout=40)
def drain_keeps_live_clients_then_sends_v5_disconnect_0x8b_and_closes_311(ctx):
    b, m, port = _with_metrics(ctx, "--drain-timeout", "2")
    s5, r5, code5 = _connack(ctx, m, 5, client_id="drain-v5")
    s4, r4, code4 = _connack(ctx, m, 4, client_id="drain-v311")
    check(code5 == 0 and code4 == 0, "CONNACKs %r %r" % (code5, code4))
    t0 = time.monotonic()
    m.stopped = True      # it is meant to exit
    m.send(signal.SIGTERM)
    wait_until(lambda: _get(port, "/readyz") == (503, "draining\n"), 2, "/readyz 503 draining")
    # No new clients: the listener is closed.
    wait_until(lambda: _refused(m.host, m.port), 2, "the TLS port to refuse new connections")
    # The live ones still work during the drain.
    s5.sendall(w.pingreq())
    t, _, _ = r5.read(2)
    check(t == w.PINGRESP, "v5 client's PINGREQ not answered during the drain")
    s4.sendall(w.pingreq())
    t, _, _ = r4.read(2)
    check(t == w.PINGRESP, "3.1.1 client's PINGREQ not answered during the drain")
    seen5 = r5.expect_closed(8)
    took = time.monotonic() - t0
    seen4 = r4.expect_closed(3)
    check(1.7 <= took <= 5, "the drain ended after %.1fs, want about 2s" % took)
    check([p[0] for p in seen5] == [w.DISCONNECT] and seen5[0][2][:1] == b"\x8b",
          "v5 client got %r, want DISCONNECT 0x8B" % seen5)
    check(seen4 == [] and r4.closed_how == "EOF", "3.1.1 client got %r, closed %r (want a clean close)"
          % (seen4, r4.closed_how))
    rc = m.p.wait(5)
    check(rc == 0, "exit code %d after the drain" % rc)
    ctx.notes.append("drain of 2 s ended after %.2f s" % took)


def _refused(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return False
    except OSError:
        return True


@test(timeout=30)
def second_sigterm_ends_the_drain_at_once(ctx):
    b, m, port = _with_metrics(ctx, "--drain-timeout", "60")
    s, r, code = _connack(ctx, m, 4, client_id="drain-twice")
    check(code == 0, "CONNACK %r" % code)
    m.send(signal.SIGTERM)
    m.wait_log("draining", 3)
    t0 = time.monotonic()
    m.send(signal.SIGTERM)
    rc = m.stop(signal.SIGTERM, timeout=8)
    check(rc == 0 and time.monotonic() - t0 < 6, "exit %s after %.1fs" % (rc, time.monotonic() - t0))
    check(r.expect_closed(2) == [], "the client got packets before its close")


@test(timeout=30)
def drain_ends_as_soon_as_the_last_client_leaves(ctx):
    b, m, port = _with_metrics(ctx, "--drain-timeout", "60")
    s, r, code = _connack(ctx, m, 4, client_id="leaves")
    m.stopped = True
    m.send(signal.SIGTERM)
    m.wait_log("draining", 3)
    t0 = time.monotonic()
    s.sendall(w.disconnect())
    s.close()
    rc = m.p.wait(10)
    check(rc == 0 and time.monotonic() - t0 < 5, "exit %s %.1fs after the last client left"
          % (rc, time.monotonic() - t0))


# -- limits ----------------------------------------------------------------------------

@test
def max_conn_per_ip_refuses_the_extra_connection_with_a_connack(ctx):
    b, m, port = _with_metrics(ctx, "--max-conn-per-ip", "2")
    keep = [_connack(ctx, m, 4, client_id="ip-%d" % i) for i in range(2)]
    check([k[2] for k in keep] == [0, 0], "first two: %r" % [k[2] for k in keep])
    _, _, v4 = _connack(ctx, m, 4, client_id="ip-extra4")
    _, _, v5 = _connack(ctx, m, 5, client_id="ip-extra5")
    check(v4 == 3 and v5 == 0x97, "over the limit got CONNACK %r (3.1.1) and %r (5.0), want 3 and 0x97"
          % (v4, v5))
    v = _samples(_get(port, "/metrics")[1])
    check(v['mqtls_connections_refused_total{reason="conn_per_ip"}'] == 2, "metric %r" % v)
    reasons = [c.get("reason") for c in m.wait_close(2)]
    check(reasons.count("conn_per_ip") == 2, "close reasons %r" % reasons)
    check("ip-extra4" not in b.clients(), "the refused client reached the broker")
    # One leaves: there is room again.
    keep[0][0].close()
    wait_until(lambda: _connack(ctx, m, 4, client_id="ip-again")[2] == 0, 5, "room after a client left")


@test
def conn_rate_per_ip_refuses_a_burst_beyond_the_rate(ctx):
    b, m, port = _with_metrics(ctx, "--conn-rate-per-ip", "3")
    codes = [_connack(ctx, m, 5, client_id="rate-%d" % i)[2] for i in range(6)]
    check(codes[:3] == [0, 0, 0] and 0x97 in codes[3:], "codes %r: want three accepted, then 0x97" % codes)
    check(any(c.get("reason") == "conn_rate_per_ip" for c in m.close_lines()), "no conn_rate_per_ip close")


@test
def max_connections_answers_server_busy_instead_of_a_silent_queue(ctx):
    b, m, port = _with_metrics(ctx, "--max-connections", "2", "--workers", "1")
    keep = [_connack(ctx, m, 4, client_id="cap-%d" % i) for i in range(2)]
    check([k[2] for k in keep] == [0, 0], "first two: %r" % [k[2] for k in keep])
    _, _, v5 = _connack(ctx, m, 5, client_id="cap-extra")
    _, _, v4 = _connack(ctx, m, 4, client_id="cap-extra4")
    check(v5 == 0x89 and v4 == 3, "over --max-connections: CONNACK %r (5.0) %r (3.1.1), want 0x89 and 3"
          % (v5, v4))
    check(any(c.get("reason") == "max_connections" for c in m.close_lines()), "no max_connections close")


@test(timeout=40)
def max_conn_per_identity_refuses_the_newest_connection_of_that_user(ctx):
    b = A.auth_broker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", f, "--max-conn-per-identity", "1")
    first = A.raw_connect(ctx, m, 4, "alice-1", username="alice", password=A.PASSWORDS["alice"])
    check(first.code == 0, "first alice: %r" % first.code)
    second = A.raw_connect(ctx, m, 5, "alice-2", username="alice", password=A.PASSWORDS["alice"])
    check(second.code == 0x97, "second alice got %r, want 0x97 quota exceeded" % second.code)
    check(first.alive(), "the first connection must keep working (the newest is refused)")
    bob = A.raw_connect(ctx, m, 4, "bob-1", username="bob", password=A.PASSWORDS["bob"])
    check(bob.code == 0, "another user is not limited: %r" % bob.code)
    first.sock.close()
    wait_until(lambda: A.raw_connect(ctx, m, 4, "alice-3", username="alice",
                                     password=A.PASSWORDS["alice"]).code == 0, 5,
               "alice admitted again once her connection ended")


# -- logs ------------------------------------------------------------------------------

@test
def json_logs_carry_the_same_fields_as_text(ctx):
    b = ctx.broker()
    text = ctx.mqtls(broker=b)
    js = ctx.mqtls("--log-format", "json", broker=b)
    for m in (text, js):
        s, r, code = _connack(ctx, m, 4, client_id='odd"id')
        s.close()
    want = text.wait_close(1)[0]
    lines = wait_until(lambda: [json.loads(l) for l in js.log().splitlines() if '"event":"close"' in l],
                       5, "a JSON close line")
    got = lines[0]
    for k in want:
        check(k in got, "JSON close line lacks %r: %r" % (k, got))
    check(got["client_id"] == 'odd"id' and got["reason"] == want["reason"], "fields differ: %r vs %r"
          % (got, want))
    for l in js.log().splitlines():
        json.loads(l)      # every line is one JSON object


@test(timeout=30)
def repeated_warnings_are_summarised_not_repeated(ctx):
    b = ctx.broker()
    m = ctx.mqtls("--workers", "1", broker=b)    # the limit is per thread
    b.kill()
    for i in range(12):
        _connack(ctx, m, 4, client_id="down-%d" % i)
    time.sleep(1.1)    # the next window: its first warning carries the count
    _connack(ctx, m, 4, client_id="down-last")
    unreachable = m.lines(" warn broker ")
    repeated = wait_until(lambda: m.lines("repeated count="), 3, "a 'repeated count=' line")
    # At most 5 a second per worker thread, then one summary.
    check(len(unreachable) <= 5 + 1, "%d 'unreachable' warnings for 13 clients" % len(unreachable))
    check("event=broker" in repeated[0], "summary line %r" % repeated[0])
