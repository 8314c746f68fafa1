"""Username/password authentication (--users) with real clients, and the
identity mqtls injects towards a broker that checks it (see auth_env)."""
import base64
import hashlib
import os
import subprocess
from pathlib import Path

import auth_clients
import auth_env as A
import clients
from harness import check, test

ALICE = A.PASSWORDS["alice"]


def _pub(ctx, m, version, user, pw, client_id, topic=None):
    return clients.pub(ctx, m, topic or "id/%s/pub" % user, version, 1, message="hello",
                       extra=["-u", user, "-P", pw, "-i", client_id])


def _right_password_with_mosquitto_pub(ctx, version):
    b, m = A.password_pair(ctx)
    watcher = A.Watcher(ctx, b)
    rc, out = _pub(ctx, m, version, "alice", ALICE, "pub-alice")
    check(rc == 0, "mosquitto_pub -u alice -P <right> failed rc=%d: %s" % (rc, out))
    check(watcher.messages() == ["id/alice/pub hello"],
          "the watcher did not get alice's message: %r" % watcher.text())
    check(A.broker_user_of(b, "pub-alice") == "alice", "broker did not see user alice")
    c = A.close_line_of(m, "pub-alice")
    check(c.get("auth") == "password" and c.get("user") == "alice",
          "close line auth=%r user=%r, want password/alice: %r"
          % (c.get("auth"), c.get("user"), c))


@test
def password_right_v311_reaches_the_broker_as_alice_with_the_upstream_password(ctx):
    _right_password_with_mosquitto_pub(ctx, 4)


@test
def password_right_v5_reaches_the_broker_as_alice_with_the_upstream_password(ctx):
    _right_password_with_mosquitto_pub(ctx, 5)


@test
def password_wrong_v311_gets_connack_4_and_never_reaches_the_broker(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: bad password",
                     username="alice", password=A.WRONG_PW)


@test
def password_wrong_v5_gets_connack_0x86_and_never_reaches_the_broker(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 5, 0x86, "bad_credentials", "password: bad password",
                     username="alice", password=A.WRONG_PW)


@test
def password_unknown_user_v311_gets_connack_4(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: unknown user",
                     username="mallory", password=ALICE)


@test
def password_unknown_user_v5_gets_connack_0x86(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 5, 0x86, "bad_credentials", "password: unknown user",
                     username="mallory", password=ALICE)


@test
def password_mosquitto_pub_with_wrong_password_is_told_bad_username_or_password(ctx):
    b, m = A.password_pair(ctx)
    rc, out = _pub(ctx, m, 4, "alice", A.WRONG_PW, "pub-wrong")
    check(rc != 0, "mosquitto_pub with a wrong password succeeded: %s" % out)
    check("bad user name or password" in out.lower(),
          "mosquitto_pub was not told 'bad user name or password': %s" % out)
    check(b.connections() == [], "the broker was contacted: %r" % b.connections())


def _tool_file(ctx, scheme, prefix):
    b = A.auth_broker(ctx)
    f = A.mqtls_passwd_file(ctx.dir / "users", A.PASSWORDS, scheme)
    text = Path(f).read_text()
    check(text.startswith("alice:" + prefix), "mqtls passwd %s wrote %r..., want alice:%s"
          % (scheme, text[:16], prefix))
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "0")
    A.expect_admitted(ctx, m, b, 4, "tool-ok", "alice", username="alice", password=ALICE)
    A.expect_admitted(ctx, m, b, 5, "tool-ok-bob", "bob", username="bob",
                      password=A.PASSWORDS["bob"])
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: bad password",
                     username="bob", password=ALICE, barrier=False)
    return b, m, f


@test
def password_file_from_mqtls_passwd_argon2id_is_accepted(ctx):
    _tool_file(ctx, None, "$argon2id$")
    # --argon2id spelled out gives the same format.
    f2 = A.mqtls_passwd_file(ctx.dir / "users2", {"carol": "c-pw-123456"}, "--argon2id")
    check(Path(f2).read_text().startswith("carol:$argon2id$v=19$"),
          "mqtls passwd --argon2id wrote %r" % Path(f2).read_text()[:24])


@test
def password_file_from_mqtls_passwd_pbkdf2_is_accepted_by_mqtls_and_mosquitto(ctx):
    _, _, f = _tool_file(ctx, "--pbkdf2", "$7$")
    # The same file is a valid mosquitto password_file (the format is shared).
    b2 = ctx.broker(extra="allow_anonymous false\npassword_file %s\n" % f)
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b2.port), "-t", "t",
                        "-m", "x", "-u", "alice", "-P", ALICE], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    check(r.returncode == 0, "mosquitto refused alice with the file mqtls passwd --pbkdf2 "
          "wrote: %s" % r.stdout.decode(errors="replace"))


@test
def password_file_from_mqtls_passwd_sha512_is_accepted(ctx):
    _tool_file(ctx, "--sha512", "$6$")


@test
def password_paho_v311_username_pw_set_is_admitted_as_alice(ctx):
    b, m = A.password_pair(ctx)

    def conf(c):
        c.tls_set(ca_certs=ctx.pki.ca)
        c.username_pw_set("alice", ALICE)
    got = auth_clients.paho_session(m, "alice", conf)
    check(got == ("ok", b"paho as alice"), "paho got %r" % (got,))
    check(A.broker_user_of(b, "paho-auth") == "alice", "broker did not see alice")


@test
def password_paho_v5_username_pw_set_is_admitted_and_wrong_one_refused_0x86(ctx):
    import paho.mqtt.client as mqtt
    b, m = A.password_pair(ctx)

    def conf(pw):
        def f(c):
            c.tls_set(ca_certs=ctx.pki.ca)
            c.username_pw_set("alice", pw)
        return f
    got = auth_clients.paho_session(m, "alice", conf(ALICE), protocol=mqtt.MQTTv5)
    check(got == ("ok", b"paho as alice"), "paho v5 got %r" % (got,))
    got = auth_clients.paho_session(m, "alice", conf(A.WRONG_PW), protocol=mqtt.MQTTv5,
                                    client_id="paho-wrong")
    check(got == ("refused", 0x86), "paho v5 with a wrong password got %r" % (got,))


@test
def password_paho_v311_wrong_password_is_refused_with_4(ctx):
    b, m = A.password_pair(ctx)

    def conf(c):
        c.tls_set(ca_certs=ctx.pki.ca)
        c.username_pw_set("alice", A.WRONG_PW)
    got = auth_clients.paho_session(m, "alice", conf)
    check(got == ("refused", 4), "paho with a wrong password got %r" % (got,))
    check(b.connections() == [], "the broker was contacted: %r" % b.connections())


@test
def password_asyncio_mqtt_v311_and_v5_are_admitted_as_bob(ctx):
    from asyncio_mqtt import ProtocolVersion, TLSParameters
    b, m = A.password_pair(ctx)
    tls = TLSParameters(ca_certs=ctx.pki.ca)
    got = auth_clients.asyncio_session(m, "bob", username="bob", password=A.PASSWORDS["bob"],
                                       tls_params=tls)
    check(got == ("ok", b"aio as bob"), "asyncio-mqtt v3.1.1 got %r" % (got,))
    got = auth_clients.asyncio_session(m, "bob", client_id="aio-v5", username="bob",
                                       password=A.PASSWORDS["bob"], tls_params=tls,
                                       protocol=ProtocolVersion.V5)
    check(got == ("ok", b"aio as bob"), "asyncio-mqtt v5 got %r" % (got,))
    got = auth_clients.asyncio_session(m, "bob", client_id="aio-bad", username="bob",
                                       password=A.WRONG_PW, tls_params=tls)
    check(got == ("refused", 4), "asyncio-mqtt with a wrong password got %r" % (got,))
    check(A.broker_user_of(b, "aio-v5") == "bob", "broker did not see bob")


@test
def mqtls_passwd_updates_one_entry_of_a_mosquitto_passwd_file(ctx):
    b = A.auth_broker(ctx)
    f = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    A._run([A.MQTLS, "passwd", "-b", f, "alice", "Alice-New-pw-9"], "mqtls passwd -b")
    lines = Path(f).read_text().splitlines()
    check(len(lines) == 2 and lines[1].startswith("bob:$7$101$"),
          "bob's mosquitto_passwd entry was not kept as it was: %r" % lines)
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "0")
    A.expect_admitted(ctx, m, b, 4, "new-pw", "alice", username="alice",
                      password="Alice-New-pw-9")
    A.expect_admitted(ctx, m, b, 4, "bob-pw", "bob", username="bob",
                      password=A.PASSWORDS["bob"])
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: bad password",
                     username="alice", password=ALICE, barrier=False)


@test
def password_mosquitto_sub_and_pub_round_trip_through_mqtls_as_alice(ctx):
    b, m = A.password_pair(ctx)
    check(Path(ctx.dir / "users").read_text().startswith("alice:$7$"),
          "mosquitto_passwd -b did not write a $7$ entry")
    s = clients.Sub(ctx, m, "id/alice/rt", 5, 1,
                    extra=["-u", "alice", "-P", ALICE, "-i", "sub-alice"])
    s.wait_subscribed()
    rc, out = _pub(ctx, m, 5, "alice", ALICE, "pub-alice", topic="id/alice/rt")
    check(rc == 0, "mosquitto_pub failed rc=%d: %s" % (rc, out))
    rc, msgs = s.result()
    check(rc == 0 and msgs == [b"hello"], "mosquitto_sub rc=%d msgs=%r" % (rc, msgs))
    check(A.broker_user_of(b, "sub-alice") == "alice", "broker did not see the sub as alice")


def _pbkdf2_entry(user, pw, iterations, salt_len):
    salt = os.urandom(salt_len)
    dk = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, iterations, 64)
    return "%s:$7$%d$%s$%s" % (user, iterations, base64.b64encode(salt).decode(),
                               base64.b64encode(dk).decode())


def _sha512_entry(user, pw):
    salt = os.urandom(12)
    return "%s:$6$%s$%s" % (user, base64.b64encode(salt).decode(),
                            base64.b64encode(hashlib.sha512(pw.encode() + salt).digest()).decode())


@test
def password_file_with_mosquitto_2_1_and_1_x_entries_and_a_bad_line(ctx):
    b = A.auth_broker(ctx)
    f = ctx.dir / "users"
    f.write_text("\n".join([
        "# written by hand in the formats mosquitto 1.x, 2.0 and 2.1 use",
        _pbkdf2_entry("alice", ALICE, 210000, 64),      # mosquitto 2.1
        "",
        "broken:$7$101$!!!notbase64!!!$AAAA",
        _sha512_entry("bob", A.PASSWORDS["bob"]),        # mosquitto 1.x
        _pbkdf2_entry("carol", "Carol-pw-42", 101, 12),  # mosquitto 2.0
    ]) + "\n")
    m = A.auth_mqtls(ctx, b, "--users", f, "--auth-fail-delay", "0")
    A.expect_admitted(ctx, m, b, 4, "a", "alice", username="alice", password=ALICE)
    A.expect_admitted(ctx, m, b, 5, "b", "bob", username="bob", password=A.PASSWORDS["bob"])
    A.expect_admitted(ctx, m, b, 4, "c", "carol", username="carol", password="Carol-pw-42")
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password:", username="broken",
                     password="anything", barrier=False)
    bad = [l for l in m.log().splitlines() if "line 4" in l or ":4:" in l or "line=4" in l]
    check(bad, "no log line names line 4 of the users file:\n%s" % m.log())
    check("notbase64" not in m.log(), "the log quotes the bad line's hash: %r" % bad)
