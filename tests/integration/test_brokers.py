"""Several brokers (--upstream repeated, --upstream-balance, health, --resolve-interval)
against two real mosquitto processes: failover and return with `first`, a client id
kept on one broker with `clientid-hash`, every broker down, a host name, bad specs."""
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import mqttwire as w
from harness import Skip, check, free_port, test, wait_until


def _metrics(port):
    """The scrape's samples, {'name{labels}': value}; the text passes promtool when it is installed."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        check(r.returncode == 0, "promtool check metrics failed:\n%s" % r.stdout.decode())
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _connack(ctx, m, client_id, version=4):
    """CONNECT through mqtls: (socket, CONNACK code, or None if closed without one)."""
    s = ctx.tls_connect(m)
    s.sendall(w.connect(version, client_id=client_id))
    r = w.Reader(s)
    try:
        t, _, body = r.read(8)
    except w.Closed:
        return s, None
    check(t == w.CONNACK, "want CONNACK, got type %d" % t)
    return s, w.connack_code(body)


def _land(ctx, m, brokers, client_id):
    """Connect |client_id|, expect CONNACK 0, and return the index of the broker
    that accepted it (each broker logs the client ids it accepts)."""
    before = [b.clients().count(client_id) for b in brokers]
    s, code = _connack(ctx, m, client_id)
    check(code == 0, "client %s got CONNACK %r, want 0" % (client_id, code))
    try:
        return wait_until(lambda: next((i + 1 for i, b in enumerate(brokers)
                                        if b.clients().count(client_id) > before[i]), None),
                          5, "a broker seeing client %s" % client_id) - 1
    finally:
        s.sendall(w.disconnect())
        s.close()


def _refused(m):
    """Close lines of clients mqtls refused for want of a broker."""
    return [c for c in m.close_lines() if c.get("reason") in ("broker_unreachable", "broker_timeout")]


def _two(ctx, *extra):
    a, b = ctx.broker(), ctx.broker()
    port = free_port()
    m = ctx.mqtls("--upstream", b.upstream, "--metrics", "127.0.0.1:%d" % port, *extra, broker=a)
    return a, b, m, port


@test(timeout=40)
def first_fails_over_to_the_next_broker_and_returns_after_the_back_off(ctx):
    a, b, m, port = _two(ctx)
    check(_land(ctx, m, [a, b], "before-1") == 0, "with both up, `first` is broker A")
    check(_land(ctx, m, [a, b], "before-2") == 0, "with both up, `first` is broker A")
    a.kill()
    # The first client after A stopped finds it down and lands on B in the same
    # connect: no refusal.
    check(_land(ctx, m, [a, b], "during-1") == 1, "with A stopped, the client is on B")
    m.wait_log("upstream broker=%s state=down" % a.upstream)
    check(m.lines("warn broker broker=%s" % a.upstream), "no warning names the broker that failed")
    s = _metrics(port)
    check(s['mqtls_broker_up{upstream="%s"}' % a.upstream] == 0 and
          s['mqtls_broker_up{upstream="%s"}' % b.upstream] == 1, "broker up gauges %r" % s)
    check(s['mqtls_broker_connect_failures_total{upstream="%s"}' % a.upstream] >= 1,
          "no connect failure counted for A")
    # Marked down, A is not even tried now: B at once.
    check(_land(ctx, m, [a, b], "during-2") == 1, "with A down, the client is on B")
    a.restart()
    # The health probe brings A back after its back-off; until then clients
    # keep landing on B, never refused.
    n = [0]

    def back_on_a():
        n[0] += 1
        return _land(ctx, m, [a, b], "after-%d" % n[0]) == 0

    wait_until(back_on_a, 10, "a new client landing on the restarted broker A", interval=0.2)
    m.wait_log("upstream broker=%s state=up seen_by=probe" % a.upstream)
    check(_metrics(port)['mqtls_broker_up{upstream="%s"}' % a.upstream] == 1, "A's gauge is not back to 1")
    refused = _refused(m)
    check(not refused, "clients were refused: %r" % refused)


@test(timeout=40)
def clientid_hash_keeps_each_client_id_on_one_broker_on_every_replica(ctx):
    a, b, m, _ = _two(ctx, "--upstream-balance", "clientid-hash")
    # A second replica lists the brokers the other way round.
    m2 = ctx.mqtls("--upstream", a.upstream, "--upstream-balance", "clientid-hash", upstream=b.upstream)
    ids = ["device-%02d" % i for i in range(16)]
    where = {}
    for cid in ids:
        where[cid] = _land(ctx, m, [a, b], cid)
    for cid in ids:
        got = _land(ctx, m2, [a, b], cid)
        check(got == where[cid], "%s: broker %d through one replica, %d through the other"
              % (cid, where[cid], got))
    spread = sorted(set(where.values()))
    check(spread == [0, 1], "16 client ids all on broker %r" % spread)


@test
def clientid_hash_moves_a_client_whose_broker_is_down_and_no_one_else(ctx):
    a, b, m, _ = _two(ctx, "--upstream-balance", "clientid-hash")
    ids = ["unit-%02d" % i for i in range(12)]
    where = {cid: _land(ctx, m, [a, b], cid) for cid in ids}
    on_a = [cid for cid in ids if where[cid] == 0]
    on_b = [cid for cid in ids if where[cid] == 1]
    check(on_a and on_b, "12 ids did not spread: %r" % where)
    b.kill()
    # B's clients move to A (the only one left); A's stay where they were.
    for cid in on_b + on_a:
        check(_land(ctx, m, [a, b], cid) == 0, "%s is not on A with B stopped" % cid)
    refused = _refused(m)
    check(not refused, "clients were refused: %r" % refused)
    b.restart()
    # Once B is back, its clients return to it: the hash, not the outage, decides.
    wait_until(lambda: _land(ctx, m, [a, b], on_b[0]) == 1, 10, "%s back on B" % on_b[0], interval=0.2)
    for cid in on_a:
        check(_land(ctx, m, [a, b], cid) == 0, "%s left A when B came back" % cid)


def _silent_port(ctx):
    """A listener whose accept queue is full: the kernel drops further SYNs,
    so a connect to it hangs (a broker host that stopped answering)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    ctx.note_socket(ls)
    port = ls.getsockname()[1]
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        ctx.note_socket(f)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
        raise Skip("the kernel still completes connections to a full listener")
    except (socket.timeout, OSError):
        pass
    finally:
        probe.close()
    return port


@test(timeout=20)
def a_broker_that_does_not_answer_costs_one_upstream_timeout_then_is_skipped(ctx):
    silent = "127.0.0.1:%d" % _silent_port(ctx)
    b = ctx.broker()
    port = free_port()
    m = ctx.mqtls("--upstream", b.upstream, "--upstream-timeout", "1", "--metrics", "127.0.0.1:%d" % port,
                  upstream=silent)
    t0 = time.monotonic()
    check(_land(ctx, m, [b], "patient") == 0, "the first client is not on the broker that answers")
    took = time.monotonic() - t0
    check(0.8 <= took <= 3.0, "failover after %.2fs, want about the 1 s --upstream-timeout" % took)
    m.wait_log("upstream broker=%s state=down" % silent)
    check(m.lines("broker broker=%s addr=%s error=\"Connection timed out\"" % (silent, silent)),
          "no warning names the broker that timed out")
    # Marked down, the silent broker is not tried again by new clients.
    t0 = time.monotonic()
    check(_land(ctx, m, [b], "quick") == 0, "the second client is not on the broker that answers")
    check(time.monotonic() - t0 < 0.8, "the second client waited %.2fs" % (time.monotonic() - t0))
    check(not _refused(m), "clients were refused: %r" % _refused(m))
    # /readyz asks the broker that is up first: ready at once, not after the
    # silent one's probe timeout (longer than a readiness probe waits).
    t0 = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5) as r:
        status = r.status
    took = time.monotonic() - t0
    check(status == 200 and took < 0.5, "/readyz %d after %.2fs" % (status, took))


def _all_down(ctx, version, want):
    pa, pb = free_port(), free_port()
    m = ctx.mqtls("--upstream", "127.0.0.1:%d" % pb, upstream="127.0.0.1:%d" % pa)
    s, code = _connack(ctx, m, "nobody-home", version)
    check(code == want, "CONNACK %r, want 0x%02x" % (code, want))
    c = m.wait_close(1)[0]
    check(c.get("reason") == "broker_unreachable", "close reason %r" % c)
    for p in (pa, pb):
        check(m.lines("broker broker=127.0.0.1:%d " % p), "no log line names broker 127.0.0.1:%d" % p)


@test
def every_broker_down_gives_v311_connack_3_and_names_each(ctx):
    _all_down(ctx, 4, 0x03)


@test
def every_broker_down_gives_v5_connack_0x88_and_names_each(ctx):
    _all_down(ctx, 5, 0x88)


@test
def a_host_name_upstream_is_resolved_and_carries_clients(ctx):
    a = ctx.broker()
    m = ctx.mqtls("--resolve-interval", "1", upstream="localhost:%d" % a.port)
    check(_land(ctx, m, [a], "by-name-1") == 0, "")
    check(any("upstream localhost:%d" % a.port in l for l in m.lines("listening on")),
          "the startup line does not name the upstream as given")


@test
def bad_upstream_options_are_one_line_errors_naming_the_flag(ctx):
    cert, key = ctx.pki.server_cert, ctx.pki.server_key
    base = ["--listen", "127.0.0.1:0", "--cert", cert, "--key", key]
    cases = [
        (["--upstream", "127.0.0.1"], "--upstream '127.0.0.1'"),
        (["--upstream", "127.0.0.1:1883", "--upstream", "127.0.0.1:70000"], "--upstream '127.0.0.1:70000'"),
        (["--upstream", "no-such-broker.invalid:1883"], "--upstream 'no-such-broker.invalid:1883': cannot resolve"),
        (["--upstream", "127.0.0.1:1883", "--upstream", "127.0.0.1:1883"], "--upstream 127.0.0.1:1883: given twice"),
        (["--upstream", "127.0.0.1:1883", "--upstream-balance", "random"], "--upstream-balance"),
        (["--upstream", "127.0.0.1:1883", "--resolve-interval", "-1"], "--resolve-interval"),
        (sum((["--upstream", "127.0.0.1:%d" % (1000 + i)] for i in range(9)), []), "--upstream: at most 8"),
    ]
    for args, want in cases:
        rc, out, err = ctx.run_mqtls(*(base + args))
        check(rc == 2, "%r: exit %d, want 2 (stderr %r)" % (args, rc, err))
        check(want in err and err.count("\n") == 1 and err.startswith("mqtls: "),
              "%r: stderr %r, want one line with %r" % (args, err, want))


@test
def a_reload_keeps_the_brokers_it_started_with_and_says_they_need_a_restart(ctx):
    a, b = ctx.broker(), ctx.broker()
    conf = ctx.dir / "mqtls.conf"
    head = "listen 127.0.0.1:0\ncert %s\nkey %s\n" % (ctx.pki.server_cert, ctx.pki.server_key)
    conf.write_text(head + "upstream %s\n" % a.upstream)
    m = ctx.mqtls_raw(["--config", conf])
    check(_land(ctx, m, [a, b], "before-reload") == 0, "the client is not on the only broker")
    tmp = ctx.dir / "mqtls.conf.new"
    tmp.write_text(head + "upstream %s\nupstream %s\nupstream-balance clientid-hash\n" % (b.upstream, a.upstream))
    tmp.replace(conf)
    m.send(signal.SIGHUP)
    line = m.wait_log("needs restart")[-1]
    check("upstream," in line and "upstream-balance" in line, "the restart line should name both: %r" % line)
    check(_land(ctx, m, [a, b], "after-reload") == 0, "after the reload the client went to the new list")
