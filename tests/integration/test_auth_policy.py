"""Policy around the methods: anonymous clients, what exactly is injected
towards the broker, client id matching, the failure delay, work kept off the
event loop, secrets kept out of the log, and SIGHUP reloads of the users file."""
import signal
import time

import auth_env as A
import clients
import mqttwire as w
from auth_fakebroker import FakeBroker
from harness import check, test, wait_until

ALICE = A.PASSWORDS["alice"]


def _pub(ctx, m, version, user, pw, client_id, topic=None):
    return clients.pub(ctx, m, topic or "id/%s/pub" % user, version, 1, message="hello",
                       extra=["-u", user, "-P", pw, "-i", client_id])


@test
def anonymous_is_refused_v311_with_5_and_v5_with_0x87(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", barrier=False)
    A.expect_refused(ctx, m, b, 5, 0x87, "not_authorized", client_id="refused5")


@test
def username_without_password_is_anonymous_and_refused(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", username="alice")


@test
def anonymous_allowed_is_forwarded_as_the_upstream_username(ctx):
    b, m = A.password_pair(ctx, "--allow-anonymous", "--upstream-username", "svc")
    A.expect_admitted(ctx, m, b, 4, "anon-1", "svc")
    A.expect_admitted(ctx, m, b, 5, "alice-1", "svc", username="alice", password=ALICE)
    # A wrong password is still refused: no fallback to anonymous.
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: bad password",
                     username="alice", password=A.WRONG_PW, barrier=False)


@test
def anonymous_allowed_without_upstream_username_forwards_no_credentials(ctx):
    fb = FakeBroker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = ctx.mqtls("--users", f, "--allow-anonymous", "--upstream-password-file",
                  A.upstream_pw_file(ctx), upstream=fb.upstream)
    sent = w.connect(4, client_id="anon", keepalive=42)
    c = A.raw_connect(ctx, m, 4, "anon", keepalive=42)
    check(c.code == 0, "anonymous client got %r" % c.code)
    got = fb.wait_connects(1)[0]
    check(got == sent, "upstream CONNECT %r, want the client's own %r" % (got, sent))
    c.sock.close()
    cl = A.close_line_of(m, "anon")
    check(cl.get("auth") == "anonymous", "close line auth=%r: %r" % (cl.get("auth"), cl))


@test
def allow_anonymous_off_spelled_out_refuses(ctx):
    b, m = A.password_pair(ctx, "--allow-anonymous=off")
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized")


@test
def upstream_username_replaces_the_authenticated_user(ctx):
    b, m = A.password_pair(ctx, "--upstream-username", "svc")
    watcher = A.Watcher(ctx, b)
    rc, out = _pub(ctx, m, 4, "alice", ALICE, "pub-svc", topic="id/svc/x")
    check(rc == 0, "mosquitto_pub failed rc=%d: %s" % (rc, out))
    check(watcher.messages() == ["id/svc/x hello"], "watcher got %r" % watcher.text())
    check(A.broker_user_of(b, "pub-svc") == "svc", "broker did not see svc")


@test
def injected_connect_v311_is_byte_for_byte_but_username_and_password(ctx):
    fb = FakeBroker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = ctx.mqtls("--users", f, "--upstream-password-file", A.upstream_pw_file(ctx),
                  upstream=fb.upstream)
    kw = dict(client_id="dev-9", clean=False, keepalive=77, will=("wills/dev-9", "gone"),
              will_qos=1, will_retain=True)
    c = A.raw_connect(ctx, m, 4, username="alice", password=ALICE, **kw)
    check(c.code == 0, "CONNACK %r" % c.code)
    want = w.connect(4, username="alice", password=A.UPSTREAM_PW, **kw)
    got = fb.wait_connects(1)[0]
    check(got == want, "upstream CONNECT\n  got  %r\n  want %r" % (got, want))


@test
def injected_connect_v5_keeps_properties_and_will_byte_for_byte(ctx):
    fb = FakeBroker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = ctx.mqtls("--users", f, "--upstream-password-file", A.upstream_pw_file(ctx),
                  "--upstream-username", "svc", upstream=fb.upstream)
    props = (b"\x11\x00\x00\x0e\x10" +                      # session expiry 3600
             b"\x21\x00\x0a" +                              # receive maximum 10
             b"\x26" + w.utf8("k") + w.utf8("v"))           # user property
    kw = dict(client_id="dev-5", keepalive=15, will=("wills/dev-5", "bye"),
              will_properties=b"\x18\x00\x00\x00\x05", properties=props)
    c = A.raw_connect(ctx, m, 5, username="bob", password=A.PASSWORDS["bob"], **kw)
    check(c.code == 0, "CONNACK %r" % c.code)
    want = w.connect(5, username="svc", password=A.UPSTREAM_PW, **kw)
    got = fb.wait_connects(1)[0]
    check(got == want, "upstream CONNECT\n  got  %r\n  want %r" % (got, want))


@test
def without_upstream_password_file_the_broker_gets_no_password(ctx):
    fb = FakeBroker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = ctx.mqtls("--users", f, upstream=fb.upstream)
    c = A.raw_connect(ctx, m, 4, "nopw", username="alice", password=ALICE)
    check(c.code == 0, "CONNACK %r" % c.code)
    want = w.connect(4, client_id="nopw", username="alice")
    got = fb.wait_connects(1)[0]
    check(got == want, "upstream CONNECT\n  got  %r\n  want %r" % (got, want))


@test
def without_any_auth_option_the_clients_credentials_pass_unchanged(ctx):
    fb = FakeBroker(ctx)
    m = ctx.mqtls(upstream=fb.upstream)
    sent = w.connect(5, client_id="plain", username="alice", password=ALICE,
                     properties=b"\x21\x00\x05")
    c = A.raw_connect(ctx, m, 5, "plain", username="alice", password=ALICE,
                      properties=b"\x21\x00\x05")
    check(c.code == 0, "CONNACK %r" % c.code)
    got = fb.wait_connects(1)[0]
    check(got == sent, "upstream CONNECT\n  got  %r\n  want %r" % (got, sent))
    c.sock.sendall(w.disconnect())
    cl = A.close_line_of(m, "plain")
    check(cl.get("auth") == "none", "close line auth=%r, want none: %r" % (cl.get("auth"), cl))


@test
def without_any_auth_option_v5_enhanced_auth_passes_unchanged(ctx):
    fb = FakeBroker(ctx)
    m = ctx.mqtls(upstream=fb.upstream)
    props = b"\x15" + w.utf8("SCRAM-SHA-256") + b"\x16" + w.utf8(b"client-first")
    sent = w.connect(5, client_id="enh", properties=props)
    c = A.raw_connect(ctx, m, 5, "enh", properties=props)
    check(c.code == 0, "CONNACK %r" % c.code)
    got = fb.wait_connects(1)[0]
    check(got == sent, "upstream CONNECT\n  got  %r\n  want %r" % (got, sent))


@test
def client_id_must_match_the_user_with_require_clientid_match(ctx):
    b, m = A.password_pair(ctx, "--require-clientid-match")
    A.expect_admitted(ctx, m, b, 4, "alice", "alice", username="alice", password=ALICE)
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", client_id="not-alice",
                     username="alice", password=ALICE, barrier=False)
    A.expect_refused(ctx, m, b, 5, 0x87, "not_authorized", client_id="bob",
                     username="alice", password=ALICE, barrier=False)
    check(A.broker_logins(b) == [("alice", "alice")],
          "broker logins %r, want only alice" % A.broker_logins(b))


def _refusal_time(ctx, m, client_id):
    t0 = time.monotonic()
    c = A.raw_connect(ctx, m, 4, client_id, username="alice", password=A.WRONG_PW)
    dt = time.monotonic() - t0
    check(c.code == 4, "wrong password got %r" % c.code)
    c.sock.close()
    return dt


@test
def repeated_failures_from_one_address_are_slowed_down(ctx):
    b = A.auth_broker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "50")
    times = [_refusal_time(ctx, m, "guess%d" % i) for i in range(4)]
    ctx.notes.append("refusal times: %s" % ", ".join("%.3f" % t for t in times))
    # 50, 100, 200, 400 ms: the fourth takes noticeably longer than the first.
    check(times[0] >= 0.04, "first refusal came after %.3fs, want >= 0.05s" % times[0])
    check(times[3] >= times[0] + 0.25, "fourth refusal after %.3fs, first after %.3fs: "
          "no growing delay" % (times[3], times[0]))
    check(times[3] < 3, "fourth refusal took %.3fs" % times[3])
    # A right password still gets in (and is not held up by the penalty).
    A.expect_admitted(ctx, m, b, 4, "after-guesses", "alice", username="alice",
                      password=ALICE)


@test
def failure_delay_0_refuses_at_once(ctx):
    b, m = A.password_pair(ctx)     # --auth-fail-delay 0
    times = [_refusal_time(ctx, m, "fast%d" % i) for i in range(4)]
    check(max(times) < 0.5, "refusals took %r with --auth-fail-delay 0" % times)


@test
def passwords_never_appear_in_the_mqtls_log(ctx):
    b, m = A.password_pair(ctx, "--log-level", "debug")
    A.expect_admitted(ctx, m, b, 4, "s1", "alice", username="alice", password=ALICE)
    A.expect_admitted(ctx, m, b, 5, "s2", "bob", username="bob", password=A.PASSWORDS["bob"])
    for v in (4, 5):
        A.raw_connect(ctx, m, v, "s3", username="alice", password=A.WRONG_PW)
        A.raw_connect(ctx, m, v, "s4", username="mallory", password="Mallory-pw-77")
        A.raw_connect(ctx, m, v, "s5", username="bob", password=ALICE)
    wait_until(lambda: len(m.lines("refuse ")) >= 6, 5, "6 refuse lines")
    A.assert_no_secrets(m, [ALICE, A.PASSWORDS["bob"], A.WRONG_PW, "Mallory-pw-77",
                            A.UPSTREAM_PW])


# -- reload ------------------------------------------------------------------

@test
def sighup_reloads_a_good_users_file_and_live_connections_stay(ctx):
    b, m = A.password_pair(ctx)
    live = A.expect_admitted(ctx, m, b, 4, "live", "alice", username="alice", password=ALICE)
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: unknown user",
                     username="carol", password="Carol-pw-42", barrier=False)
    new = ctx.dir / "users.new"
    A.mosquitto_passwd_file(new, {"carol": "Carol-pw-42", "alice": ALICE})
    new.replace(ctx.dir / "users")
    before = len(m.lines("reload"))
    m.send(signal.SIGHUP)
    wait_until(lambda: len(m.lines("reload")) > before, 5, "a reload line")
    check(not m.lines("reload failed"), "reload failed: %r" % m.lines("reload"))
    A.expect_admitted(ctx, m, b, 4, "carol-1", "carol", username="carol",
                      password="Carol-pw-42")
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: unknown user",
                     username="bob", password=A.PASSWORDS["bob"], barrier=False)
    check(live.alive(), "the connection made before the reload was lost")


@test
def sighup_with_a_damaged_users_file_keeps_the_previous_one(ctx):
    b, m = A.password_pair(ctx)
    live = A.expect_admitted(ctx, m, b, 4, "live", "alice", username="alice", password=ALICE)
    bad = ctx.dir / "users.new"
    A.mosquitto_passwd_file(bad, {"dave": "Dave-pw-42"})
    with open(bad, "a") as fh:
        fh.write("carol:$9$notahash$\n")
    bad.replace(ctx.dir / "users")
    m.send(signal.SIGHUP)
    m.wait_log("reload failed")
    A.expect_admitted(ctx, m, b, 4, "alice-2", "alice", username="alice", password=ALICE)
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: unknown user",
                     username="dave", password="Dave-pw-42", barrier=False)
    check(live.alive(), "the connection made before the reload was lost")
    # A missing file is refused the same way.
    (ctx.dir / "users").unlink()
    n = len(m.lines("reload failed"))
    m.send(signal.SIGHUP)
    wait_until(lambda: len(m.lines("reload failed")) > n, 5, "a second 'reload failed'")
    A.expect_admitted(ctx, m, b, 5, "alice-3", "alice", username="alice", password=ALICE)


@test(timeout=40, alone=True)
def slow_password_checks_do_not_stall_other_connections(ctx):
    import threading
    b = A.auth_broker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    # PBKDF2 with 210,000 iterations (what mqtls passwd --pbkdf2 writes): ~0.2 s a check.
    A._run([A.MQTLS, "passwd", "--pbkdf2", "-b", f, "slow", "Slow-pw-1"], "mqtls passwd")
    # The per-address and per-user caps are off: this is about the loop
    # staying responsive while all twelve checks run (the caps have their
    # own tests in test_hostile.py).
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "0", "--workers", "1",
                     "--max-auth-per-ip", "0", "--max-auth-per-user", "0")
    live = A.expect_admitted(ctx, m, b, 4, "live", "alice", username="alice", password=ALICE)
    # How long one check takes on this machine now, so the storm can be
    # judged against it instead of against a fixed figure.
    t0 = time.monotonic()
    one = A.raw_connect(ctx, m, 4, "single", username="slow", password="nope", timeout=30)
    single = time.monotonic() - t0
    check(one.code == 4, "a single wrong password got CONNACK %r" % one.code)
    results = []

    def guess(i):
        c = A.raw_connect(ctx, m, 4, "storm%d" % i, username="slow", password="nope%d" % i,
                          timeout=30)
        results.append(c.code)
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    rtts = []
    while any(t.is_alive() for t in threads):
        p0 = time.monotonic()
        check(live.alive(), "the live connection failed during the storm")
        rtts.append(time.monotonic() - p0)
        time.sleep(0.01)
    for t in threads:
        t.join()
    storm = time.monotonic() - t0
    ctx.notes.append("storm %.2fs, one check %.2fs, %d pings, max ping %.3fs"
                     % (storm, single, len(rtts), max(rtts)))
    check(results == [4] * 12, "storm results %r, want all 4" % results)
    # Twelve checks on the pool's threads take several times one check: the
    # pings below were measured while the pool was busy.
    check(storm > 2.5 * single, "the storm took %.2fs, one check %.2fs: the checks did not queue"
          % (storm, single))
    # Checks on the event loop would hold every ping behind a queue of 0.2 s
    # hashes; the bounds leave room for a loaded 2-core machine.
    rtts.sort()
    check(rtts[len(rtts) // 2] < 0.1 and rtts[-1] < 0.75,
          "PINGREQs waited (median %.3fs, max %.3fs) while passwords were being checked"
          % (rtts[len(rtts) // 2], rtts[-1]))


@test
def v31_client_is_authenticated_and_injected_like_v311(ctx):
    fb = FakeBroker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = ctx.mqtls("--users", f, "--upstream-password-file", A.upstream_pw_file(ctx),
                  "--auth-fail-delay", "0", upstream=fb.upstream)
    c = A.raw_connect(ctx, m, 3, "old-dev", username="alice", password=ALICE, keepalive=5)
    check(c.code == 0, "v3.1 CONNACK %r" % c.code)
    want = w.connect(3, client_id="old-dev", username="alice", password=A.UPSTREAM_PW,
                     keepalive=5)
    got = fb.wait_connects(1)[0]
    check(got == want, "upstream CONNECT\n  got  %r\n  want %r" % (got, want))
    c = A.raw_connect(ctx, m, 3, "old-bad", username="alice", password=A.WRONG_PW)
    check(c.code == 4 and c.body == b"\x00\x04", "v3.1 wrong password got %r" % c.body)


@test
def a_username_made_to_forge_log_fields_stays_inside_its_detail(ctx):
    b, m = A.password_pair(ctx)
    for evil in ('x" reason=ok user="admin\nfake 2026-01-01T00:00:00Z info close reason=ok',
                 'zz\\" reason=ok forged=\\"'):
        c = A.raw_connect(ctx, m, 4, "forger", username=evil, password="p")
        check(c.code in (4, None), "a forged user name got CONNACK %r" % c.code)
        kv = A.refuse_line(m, c.port)
        check(kv.get("reason") in ("bad_credentials", "malformed_connect") and
              "forged" not in kv, "the user name %r forged fields: %s" % (evil, kv["_line"]))
    check(not [l for l in m.log().splitlines() if l.startswith("fake ")],
          "the user name started a log line of its own")


def _refusal_time_from(ctx, m, source, client_id):
    import socket
    raw = socket.create_connection((m.host, m.port), timeout=10, source_address=(source, 0))
    s = ctx.note_socket(ctx.client_context().wrap_socket(raw, server_hostname=m.host))
    t0 = time.monotonic()
    s.sendall(w.connect(4, client_id=client_id, username="alice", password=A.WRONG_PW))
    t, _, body = w.Reader(s).read(15)
    check(t == w.CONNACK and body == b"\x00\x04", "want CONNACK 4, got %r %r" % (t, body))
    return time.monotonic() - t0


@test
def failure_delay_is_per_address_and_does_not_hold_up_others(ctx):
    import threading
    b = A.auth_broker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "100")
    for i in range(4):          # 100 + 200 + 400 + 800 ms
        _refusal_time_from(ctx, m, "127.0.0.1", "g%d" % i)
    slow = {}
    th = threading.Thread(target=lambda: slow.setdefault(
        "t", _refusal_time_from(ctx, m, "127.0.0.1", "g5")))
    th.start()
    t0 = time.monotonic()
    fresh = _refusal_time_from(ctx, m, "127.0.0.2", "other-addr")
    ok = A.raw_connect(ctx, m, 4, "ok-meanwhile", username="bob", password=A.PASSWORDS["bob"])
    good = time.monotonic() - t0
    th.join(10)
    ctx.notes.append("127.0.0.1 5th refusal %.2fs; 127.0.0.2 first refusal %.2fs; "
                     "login meanwhile %.2fs" % (slow.get("t", -1), fresh, good))
    check(slow.get("t", 0) >= 1.2, "5th refusal from 127.0.0.1 after %.2fs, want >= 1.6s"
          % slow.get("t", 0))
    check(fresh < 0.6, "first refusal from 127.0.0.2 took %.2fs: penalised for another "
          "address's failures" % fresh)
    check(ok.code == 0 and good < slow["t"], "a good login (code %r) took %.2fs during a "
          "%.2fs penalty" % (ok.code, good, slow["t"]))


@test(alone=True)
def unknown_user_takes_as_long_as_a_wrong_password(ctx):
    # Users cannot be enumerated by timing: with only slow entries in the
    # file (210,000 PBKDF2 iterations), an unknown user costs the same check.
    b = A.auth_broker(ctx)
    f = A.mqtls_passwd_file(ctx.dir / "users", A.PASSWORDS, "--pbkdf2")
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "0")

    def timed(user):
        s = ctx.tls_connect(m)
        t0 = time.monotonic()
        s.sendall(w.connect(4, client_id="t", username=user, password=A.WRONG_PW))
        t, _, body = w.Reader(s).read(10)
        check(body == b"\x00\x04", "want CONNACK 4, got %r" % body)
        s.close()
        return time.monotonic() - t0
    wrong = sorted(timed("alice") for _ in range(3))[1]
    unknown = sorted(timed("nobody-%d" % i) for i in range(3))[1]
    ctx.notes.append("median refusal: wrong password %.3fs, unknown user %.3fs"
                     % (wrong, unknown))
    # 210,000 PBKDF2-SHA512 iterations take 80-130 ms on these machines; an
    # inline check of a cheap hash takes well under 5 ms.
    check(wrong > 0.05, "a wrong password was refused in %.3fs: the check is not slow" % wrong)
    check(unknown > 0.6 * wrong, "an unknown user was refused in %.3fs, a wrong password in "
          "%.3fs: user names can be told apart by timing" % (unknown, wrong))
