"""JWT authentication (--jwt-keys): a token in the CONNECT password, any
username. The broker behind mqtls admits only the injected identity (the
token's user name claim) with the upstream password (see auth_env)."""
import json
import re
import signal
import time

import auth_clients
import auth_env as A
import auth_jwt as J
import clients
import mqttwire as w
from auth_fakebroker import FakeBroker
from harness import check, test, wait_until

DEFAULT_ALG = {"rsa": "RS256", "ec256": "ES256", "ec384": "ES384", "ed25519": "EdDSA",
               "hmac": "HS256"}
JWT_DETAIL = re.compile(r"^jwt: ")


def _jwt_pair(ctx, keys, *args):
    """Broker + mqtls --jwt-keys (a Key, or [(Key, kid, alg)] for a JWKS).
    Returns (broker, mqtls, barrier) where barrier logs in with a good token."""
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--jwt-keys", J.keys_file(ctx, keys), "--auth-fail-delay", "0",
                     *args)
    if isinstance(keys, J.Key):
        tok = J.token(DEFAULT_ALG[keys.kind], keys)
    else:
        k, kid, alg = keys[0]
        tok = J.token(alg or DEFAULT_ALG[k.kind], k, kid=kid)
    return b, m, dict(username="token", password=tok)


def _refused(ctx, alg_key, tok, detail, version=4, *args, key=None):
    b, m, barrier = _jwt_pair(ctx, key or J.key(alg_key), *args)
    return A.expect_refused(ctx, m, b, version, 4 if version == 4 else 0x86, "bad_credentials",
                            detail, barrier=barrier, username="token", password=tok)


# -- each algorithm -------------------------------------------------------------

def _admitted(ctx, alg):
    b, m, _ = _jwt_pair(ctx, J.key_for(alg))
    tok = J.token(alg, payload=J.claims(sub="device-7"))
    cid = "jwt-" + alg.lower()
    A.expect_admitted(ctx, m, b, 4, cid, "device-7", username="token", password=tok)
    A.expect_admitted(ctx, m, b, 5, cid + "-v5", "device-7", username="device-7", password=tok)
    A.assert_no_secrets(m, [tok, tok.rsplit(".", 1)[1]])


def _alg_test(alg):
    def fn(ctx):
        _admitted(ctx, alg)
    fn.__name__ = "jwt_%s_token_is_admitted_as_its_subject" % alg.lower()
    return test(fn)


for _alg in J.ALGS:
    globals()["jwt_%s" % _alg.lower()] = _alg_test(_alg)


@test
def jwt_rs256_with_mosquitto_pub_v5_publishes_as_the_subject(ctx):
    b, m, _ = _jwt_pair(ctx, J.key("rsa"))
    watcher = A.Watcher(ctx, b)
    tok = J.token("RS256")
    rc, out = clients.pub(ctx, m, "id/device-7/pub", 5, 1, message="hello",
                          extra=["-u", "token", "-P", tok, "-i", "pub-jwt"])
    check(rc == 0, "mosquitto_pub with a JWT failed rc=%d: %s" % (rc, out))
    check(watcher.messages() == ["id/device-7/pub hello"], "watcher got %r" % watcher.text())
    c = A.close_line_of(m, "pub-jwt")
    check(c.get("auth") == "jwt" and c.get("user") == "device-7",
          "close line auth=%r user=%r: %r" % (c.get("auth"), c.get("user"), c))


@test
def jwt_es256_with_paho_v311_username_token_is_admitted(ctx):
    b, m, _ = _jwt_pair(ctx, J.key("ec256"))
    tok = J.token("ES256")

    def conf(c):
        c.tls_set(ca_certs=ctx.pki.ca)
        c.username_pw_set("token", tok)
    got = auth_clients.paho_session(m, "device-7", conf)
    check(got == ("ok", b"paho as device-7"), "paho got %r" % (got,))


@test
def jwt_eddsa_with_asyncio_mqtt_v5_username_token_is_admitted(ctx):
    from asyncio_mqtt import ProtocolVersion, TLSParameters
    b, m, _ = _jwt_pair(ctx, J.key("ed25519"))
    tok = J.token("EdDSA")
    got = auth_clients.asyncio_session(m, "device-7", username="token", password=tok,
                                       tls_params=TLSParameters(ca_certs=ctx.pki.ca),
                                       protocol=ProtocolVersion.V5)
    check(got == ("ok", b"aio as device-7"), "asyncio-mqtt got %r" % (got,))
    bad = J.token("EdDSA", payload=J.claims(ttl=-3600))
    got = auth_clients.asyncio_session(m, "device-7", client_id="aio-expired", username="token",
                                       password=bad,
                                       tls_params=TLSParameters(ca_certs=ctx.pki.ca),
                                       protocol=ProtocolVersion.V5)
    check(got == ("refused", 0x86), "asyncio-mqtt with an expired token got %r" % (got,))


@test
def jwks_with_every_key_type_admits_every_algorithm(ctx):
    keys = [(J.key("rsa"), "r1", None), (J.key("ec256"), "e1", None),
            (J.key("ec384"), "e2", None), (J.key("ed25519"), "o1", None),
            (J.key("hmac"), "h1", None)]
    kid = {"rsa": "r1", "ec256": "e1", "ec384": "e2", "ed25519": "o1", "hmac": "h1"}
    b, m, _ = _jwt_pair(ctx, keys)
    for i, alg in enumerate(J.ALGS):
        tok = J.token(alg, kid=kid[J.KIND[alg]])
        A.expect_admitted(ctx, m, b, 4, "jwks-%d" % i, "device-7", username="token",
                          password=tok)


@test
def jwks_kid_selects_the_key(ctx):
    k1, k2 = J.key("rsa"), J.key("rsa", "rsa-second")
    b, m, barrier = _jwt_pair(ctx, [(k1, "k1", "RS256"), (k2, "k2", "RS256")])
    A.expect_admitted(ctx, m, b, 4, "by-k2", "device-7", username="token",
                      password=J.token("RS256", k2, kid="k2"))
    A.expect_admitted(ctx, m, b, 4, "by-k1", "device-7", username="token",
                      password=J.token("RS256", k1, kid="k1"))
    # Signed by k2 but naming k1: checked against k1 only.
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", re.compile(r"^jwt: .*signature"),
                     client_id="wrong-kid", barrier=False, username="token",
                     password=J.token("RS256", k2, kid="k1"))
    A.expect_refused(ctx, m, b, 5, 0x86, "bad_credentials",
                     re.compile(r"^jwt: .*(kid|key id)"), client_id="unknown-kid",
                     barrier=barrier, username="token",
                     password=J.token("RS256", k2, kid="k9"))


# -- invalid tokens -------------------------------------------------------------

@test
def jwt_expired_v311_gets_4_and_the_log_names_its_exp(ctx):
    c = J.claims(ttl=-3600)
    kv = _refused(ctx, "rsa", J.token("RS256", payload=c), re.compile(r"^jwt: .*(expired|exp\b)"))
    check(str(c["exp"]) in kv["detail"], "detail %r does not give exp %d"
          % (kv["detail"], c["exp"]))


@test
def jwt_expired_v5_gets_0x86(ctx):
    _refused(ctx, "ec256", J.token("ES256", payload=J.claims(ttl=-3600)),
             re.compile(r"^jwt: .*(expired|exp\b)"), 5)


@test
def jwt_expired_within_the_leeway_is_admitted_and_refused_with_leeway_0(ctx):
    tok = J.token("HS256", payload=J.claims(ttl=-10))
    b, m, _ = _jwt_pair(ctx, J.key("hmac"))
    A.expect_admitted(ctx, m, b, 4, "in-leeway", "device-7", username="token", password=tok)
    _refused(ctx, "hmac", tok, re.compile(r"^jwt: .*(expired|exp\b)"), 4, "--jwt-leeway", "0")


@test
def jwt_not_yet_valid_is_refused(ctx):
    now = int(time.time())
    _refused(ctx, "rsa", J.token("RS256", payload=J.claims(nbf=now + 600)),
             re.compile(r"^jwt: .*(not yet valid|nbf)"))


@test
def jwt_wrong_issuer_is_refused_and_the_right_one_admitted(ctx):
    b, m, _ = _jwt_pair(ctx, J.key("rsa"), "--jwt-issuer", "https://issuer.example/")
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", re.compile(r"^jwt: .*(issuer|iss\b)"),
                     barrier=False, username="token", password=J.token(
                         "RS256", payload=J.claims(iss="https://evil.example/")))
    A.expect_refused(ctx, m, b, 5, 0x86, "bad_credentials", re.compile(r"^jwt: .*(issuer|iss\b)"),
                     client_id="no-iss", barrier=False, username="token",
                     password=J.token("RS256"))
    A.expect_admitted(ctx, m, b, 4, "good-iss", "device-7", username="token", password=J.token(
        "RS256", payload=J.claims(iss="https://issuer.example/")))
    check(len(b.connections()) == 1, "broker saw %r" % b.connections())


@test
def jwt_wrong_audience_is_refused_and_a_list_with_ours_admitted(ctx):
    b, m, _ = _jwt_pair(ctx, J.key("ec384"), "--jwt-audience", "mqtls-test")
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", re.compile(r"^jwt: .*(audience|aud\b)"),
                     barrier=False, username="token",
                     password=J.token("ES384", payload=J.claims(aud="other-api")))
    A.expect_admitted(ctx, m, b, 4, "aud-str", "device-7", username="token",
                      password=J.token("ES384", payload=J.claims(aud="mqtls-test")))
    A.expect_admitted(ctx, m, b, 4, "aud-list", "device-7", username="token",
                      password=J.token("ES384", payload=J.claims(aud=["x", "mqtls-test"])))


@test
def jwt_with_a_tampered_payload_has_a_bad_signature(ctx):
    tok = J.token("RS256", payload=J.claims(sub="device-7"))
    h, _, s = tok.split(".")
    forged = h + "." + J.b64u(json.dumps(J.claims(sub="alice"))) + "." + s
    _refused(ctx, "rsa", forged, re.compile(r"^jwt: .*signature"))


@test
def jwt_signed_by_another_key_has_a_bad_signature(ctx):
    other = J.key("ec256", "ec256-other")
    _refused(ctx, "ec256", J.token("ES256", other), re.compile(r"^jwt: .*signature"), 5)


@test
def jwt_hmac_with_another_secret_has_a_bad_signature(ctx):
    other = J.key("hmac", "hmac-other")
    _refused(ctx, "hmac", J.token("HS512", other), re.compile(r"^jwt: .*signature"))


@test
def jwt_alg_none_is_refused(ctx):
    payload = J.b64u(json.dumps(J.claims()))
    unsigned = J.b64u('{"alg":"none","typ":"JWT"}') + "." + payload + "."
    _refused(ctx, "rsa", unsigned, JWT_DETAIL)


@test
def jwt_alg_none_with_a_signature_part_is_refused(ctx):
    payload = J.b64u(json.dumps(J.claims()))
    tok = J.b64u('{"alg":"none","typ":"JWT"}') + "." + payload + "." + J.b64u(b"x" * 32)
    _refused(ctx, "hmac", tok, JWT_DETAIL, 5)


@test
def jwt_hs256_signed_with_the_rsa_public_key_is_refused(ctx):
    # The classic key confusion: the verifier must not use an RSA key as an HMAC secret.
    rsa = J.key("rsa")

    class PemAsSecret:
        secret = rsa.public.read_bytes()
    tok = J.token("HS256", PemAsSecret, payload=J.claims())
    _refused(ctx, "rsa", tok, JWT_DETAIL)
    # Nor the key as a JWK set.
    b, m, barrier = _jwt_pair(ctx, [(rsa, "r1", None)])
    tok = J.token("HS256", PemAsSecret, kid="r1")
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", JWT_DETAIL, barrier=barrier,
                     username="token", password=tok)


@test
def jwt_with_malformed_base64_is_refused(ctx):
    _, p, s = J.token("HS256").split(".")
    # Pad the JSON until its base64url length is a multiple of 4; one more
    # character then makes a length base64 cannot have.
    hdr = '{"alg":"HS256","typ":"JWT"}'
    while len(J.b64u(hdr)) % 4:
        hdr += " "
    _refused(ctx, "hmac", J.b64u(hdr) + "A." + p + "." + s,
             re.compile(r"^jwt: .*(malformed|base64)"))


@test
def jwt_with_malformed_header_json_is_refused(ctx):
    p = J.b64u(json.dumps(J.claims()))
    tok = J.b64u('{"alg":"HS256",') + "." + p + "." + J.b64u(b"s" * 32)
    _refused(ctx, "hmac", tok, re.compile(r"^jwt: .*(malformed|header.*JSON)"), 5)


@test
def jwt_with_a_signed_payload_that_is_not_json_is_refused(ctx):
    tok = J.token("HS384", payload=b'{"sub":"device-7","exp":')
    _refused(ctx, "hmac", tok, re.compile(r"^jwt: .*(malformed|payload.*JSON)"))


@test
def jwt_without_exp_is_refused_unless_jwt_require_exp_off(ctx):
    tok = J.token("RS256", payload=J.claims(ttl=None))
    _refused(ctx, "rsa", tok, re.compile(r"^jwt: .*(expiry|exp)"))
    b, m, _ = _jwt_pair(ctx, J.key("rsa"), "--jwt-require-exp", "off")
    A.expect_admitted(ctx, m, b, 4, "no-exp", "device-7", username="token", password=tok)


@test
def jwt_username_claim_names_the_injected_user(ctx):
    b, m, _ = _jwt_pair(ctx, J.key("hmac"), "--jwt-username-claim", "client_id")
    tok = J.token("HS256", payload=J.claims(sub="ignored", client_id="dev1.example.com"))
    A.expect_admitted(ctx, m, b, 5, "claim", "dev1.example.com", username="token",
                      password=tok)
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", JWT_DETAIL, barrier=False,
                     username="token", password=J.token("HS256"))


@test
def jwt_injection_is_the_subject_and_the_upstream_password_byte_for_byte(ctx):
    fb = FakeBroker(ctx)
    m = ctx.mqtls("--jwt-keys", J.keys_file(ctx, J.key("rsa")), "--upstream-password-file",
                  A.upstream_pw_file(ctx), upstream=fb.upstream)
    tok = J.token("PS256")
    kw = dict(client_id="dev-jwt", keepalive=20, will=("w/t", "x"),
              properties=b"\x11\x00\x00\x00\x3c")
    c = A.raw_connect(ctx, m, 5, username="token", password=tok, **kw)
    check(c.code == 0, "CONNACK %r" % c.code)
    want = w.connect(5, username="device-7", password=A.UPSTREAM_PW, **kw)
    got = fb.wait_connects(1)[0]
    check(got == want, "upstream CONNECT\n  got  %r\n  want %r" % (got, want))


# -- method order -----------------------------------------------------------------

@test
def jwt_comes_before_password_by_default(ctx):
    b = A.auth_broker(ctx)
    users = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", users, "--jwt-keys", J.keys_file(ctx, J.key("rsa")),
                     "--auth-fail-delay", "0")
    # A token under a real user name: the token decides.
    A.expect_admitted(ctx, m, b, 4, "jwt-first", "device-7", username="alice",
                      password=J.token("RS256"))
    A.expect_admitted(ctx, m, b, 4, "pw", "alice", username="alice",
                      password=A.PASSWORDS["alice"])
    # A bad token does not fall back to anything.
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", JWT_DETAIL, barrier=False,
                     username="alice", password=J.token("RS256", payload=J.claims(ttl=-999)))


@test
def auth_password_only_treats_a_token_as_a_password(ctx):
    b = A.auth_broker(ctx)
    users = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", users, "--jwt-keys", J.keys_file(ctx, J.key("rsa")),
                     "--auth", "password", "--auth-fail-delay", "0")
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: unknown user",
                     username="token", password=J.token("RS256"))


@test
def auth_jwt_only_ignores_the_users_file(ctx):
    b = A.auth_broker(ctx)
    users = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    m = A.auth_mqtls(ctx, b, "--users", users, "--jwt-keys", J.keys_file(ctx, J.key("rsa")),
                     "--auth", "jwt", "--auth-fail-delay", "0")
    A.expect_refused(ctx, m, b, 5, 0x87, "not_authorized",
                     barrier=dict(username="token", password=J.token("RS256")),
                     username="alice", password=A.PASSWORDS["alice"])


# -- token lifetime -----------------------------------------------------------------

def _short_lived(ctx, version, *args):
    b, m, _ = _jwt_pair(ctx, J.key("hmac"), "--jwt-leeway", "0", *args)
    cl = J.claims(ttl=3)
    tok = J.token("HS256", payload=cl)
    c = A.expect_admitted(ctx, m, b, version, "short-v%d" % version, "device-7",
                          username="token", password=tok)
    # The token's own exp (whole seconds): with --jwt-leeway 0 the connection
    # must last until then, and not much longer.
    return b, m, c, float(cl["exp"])


@test
def jwt_expiry_sends_v5_disconnect_0xa0_then_closes(ctx):
    b, m, c, exp = _short_lived(ctx, 5)
    check(c.alive(), "connection not usable before expiry")
    seen = c.reader.expect_closed(8)
    t = time.time()
    check(t >= exp - 0.25, "closed %.2fs before the token expired" % (exp - t))
    check(t <= exp + 2.0, "closed %.2fs after the token expired" % (t - exp))
    types = [p[0] for p in seen]
    check(types and types[-1] == w.DISCONNECT, "want a DISCONNECT before the close, got %r"
          % seen)
    check(seen[-1][2][:1] == b"\xa0", "DISCONNECT reason %r, want 0xA0" % seen[-1][2])
    cl = A.close_line_of(m, "short-v5")
    check(cl.get("reason") == "token_expired", "close reason %r: %r" % (cl.get("reason"), cl))


@test
def jwt_expiry_closes_a_v311_connection(ctx):
    b, m, c, exp = _short_lived(ctx, 4)
    seen = c.reader.expect_closed(8)
    t = time.time()
    check(t >= exp - 0.25, "closed %.2fs before the token expired" % (exp - t))
    check(t <= exp + 2.0, "closed %.2fs after the token expired" % (t - exp))
    check(seen == [], "v3.1.1 client got packets %r before the close" % seen)
    cl = A.close_line_of(m, "short-v4")
    check(cl.get("reason") == "token_expired", "close reason %r: %r" % (cl.get("reason"), cl))


@test
def jwt_expiry_disconnect_off_keeps_the_connection(ctx):
    # The config file spelling: the key without --, then the value.
    conf = ctx.dir / "mqtls.conf"
    conf.write_text("jwt-expiry-disconnect off\n")
    b, m, c, exp = _short_lived(ctx, 5, "--config", conf)
    while time.time() < exp + 1.5:
        time.sleep(0.2)
    check(c.alive(), "connection ended after expiry despite --jwt-expiry-disconnect off")


# -- reload and logs ------------------------------------------------------------------

@test
def sighup_reloads_jwt_keys_and_keeps_them_when_the_new_file_is_bad(ctx):
    old, new = J.key("ec256"), J.key("ec256", "ec256-other")
    b, m, _ = _jwt_pair(ctx, old)
    live = A.expect_admitted(ctx, m, b, 5, "live", "device-7", username="token",
                             password=J.token("ES256", old))
    (ctx.dir / "jwt-keys").write_bytes(new.keys_file_bytes())
    n = len(m.lines("reload"))
    m.send(signal.SIGHUP)
    wait_until(lambda: len(m.lines("reload")) > n, 5, "a reload line")
    check(not m.lines("reload failed"), "reload failed: %r" % m.lines("reload"))
    A.expect_admitted(ctx, m, b, 4, "new-key", "device-7", username="token",
                      password=J.token("ES256", new))
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", re.compile(r"^jwt: .*signature"),
                     client_id="old-key", barrier=False, username="token",
                     password=J.token("ES256", old))
    # A private key is not a key file: refused, the new public key stays.
    (ctx.dir / "jwt-keys").write_bytes(new.private.read_bytes())
    m.send(signal.SIGHUP)
    m.wait_log("reload failed")
    A.expect_admitted(ctx, m, b, 4, "still-new", "device-7", username="token",
                      password=J.token("ES256", new))
    check(live.alive(), "the connection made before the reloads was lost")
    check("PRIVATE" not in m.log(), "the log quotes the key file")


@test
def tokens_and_secrets_never_appear_in_the_mqtls_log(ctx):
    hk = J.key("hmac")
    b, m, _ = _jwt_pair(ctx, hk, "--log-level", "debug")
    toks = [J.token("HS256"), J.token("HS384", payload=J.claims(ttl=-999)),
            J.token("HS512", J.key("hmac", "hmac-other")),
            J.token("HS256", payload=J.claims(nbf=int(time.time()) + 999))]
    for i, t in enumerate(toks):
        A.raw_connect(ctx, m, 5 if i % 2 else 4, "t%d" % i, username="token", password=t)
    wait_until(lambda: len(m.lines("refuse ")) >= 3, 5, "3 refuse lines")
    secrets = [hk.secret.decode(), A.UPSTREAM_PW]
    for t in toks:
        secrets += [t, t.rsplit(".", 1)[1]]
    A.assert_no_secrets(m, secrets)


@test
def jwt_longer_than_8_kib_is_refused(ctx):
    tok = J.token("HS256", payload=J.claims(pad="p" * 9000))
    _refused(ctx, "hmac", tok, JWT_DETAIL)


@test
def jwt_issued_in_the_future_is_refused(ctx):
    c = J.claims()
    c["iat"] += 600
    _refused(ctx, "ec256", J.token("ES256", payload=c),
             re.compile(r"^jwt: .*(not yet valid|future|iat)"))


@test
def jwt_exp_that_is_not_a_number_is_refused(ctx):
    c = J.claims()
    c["exp"] = str(c["exp"] + 999999)
    _refused(ctx, "rsa", J.token("RS256", payload=c), JWT_DETAIL, 5)


@test
def jwt_client_id_must_be_the_subject_with_require_clientid_match(ctx):
    b, m, _ = _jwt_pair(ctx, J.key("hmac"), "--require-clientid-match")
    tok = J.token("HS256")
    A.expect_admitted(ctx, m, b, 5, "device-7", "device-7", username="token", password=tok)
    A.expect_refused(ctx, m, b, 5, 0x87, "not_authorized", client_id="device-8",
                     barrier=False, username="token", password=tok)
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", client_id="x",
                     barrier=False, username="token", password=tok)
    check(A.broker_logins(b) == [("device-7", "device-7")], "broker logins %r"
          % A.broker_logins(b))


@test(timeout=40)
def jwt_expiry_disconnect_lands_between_packets_of_a_busy_stream(ctx):
    import socket
    import threading
    b, m, _ = _jwt_pair(ctx, J.key("hmac"), "--jwt-leeway", "0")
    tok = J.token("HS256", payload=J.claims(ttl=3))
    c = A.expect_admitted(ctx, m, b, 5, "busy", "device-7", username="token", password=tok)
    c.sock.sendall(w.subscribe(1, "id/device-7/flood", 0, version=5))
    t, _, _ = c.reader.read(5)
    check(t == w.SUBACK, "want SUBACK, got type %d" % t)
    stop = threading.Event()
    payload = bytes(range(256)) * 250           # 64000 bytes: many TLS records each

    def flood():
        # Straight to the broker as device-7, so the stream never pauses.
        s = socket.create_connection(("127.0.0.1", b.port))
        s.sendall(w.connect(4, client_id="flooder", username="device-7",
                            password=A.UPSTREAM_PW))
        s.recv(4)
        while not stop.is_set():
            try:
                s.sendall(w.publish("id/device-7/flood", payload))
            except OSError:
                break
        s.close()
    th = threading.Thread(target=flood, daemon=True)
    th.start()
    try:
        seen = c.reader.expect_closed(10)
    finally:
        stop.set()
        th.join(5)
    check(len(seen) > 10, "only %d packets before the close: the stream was not busy"
          % len(seen))
    bad = [(i, p[0], len(p[2])) for i, p in enumerate(seen[:-1])
           if p[0] != w.PUBLISH or w.publish_fields(p[1], p[2], 5) != ("id/device-7/flood",
                                                                      payload)]
    check(not bad, "packets before the DISCONNECT are not whole PUBLISHes: %r" % bad[:5])
    check(seen[-1][0] == w.DISCONNECT and seen[-1][2][:1] == b"\xa0",
          "the stream did not end with DISCONNECT 0xA0: last packet type %d after %d "
          "packets, then %s with %d bytes of a partial packet left"
          % (seen[-1][0], len(seen), c.reader.closed_how, len(c.reader.buf)))
    cl = A.close_line_of(m, "busy")
    check(cl.get("reason") == "token_expired", "close reason %r" % cl.get("reason"))
