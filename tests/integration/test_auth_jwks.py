"""Tokens from a real identity provider (--jwt-jwks-url, --jwt-discovery):
nginx serves a Keycloak-style realm over HTTPS with a certificate from the
test CA (auth_idp). mqtls fetches its JWK Set, follows key rotation without
a restart, refetches for an unknown kid at most once per 30 s, keeps the last
good keys when the provider fails or serves something unusable, and refuses
token logins with "server unavailable" until it has keys.

Nothing waits a fixed time: a fetch is observed in nginx's access log or in
the "jwks status=..." lines mqtls logs, and "no further fetch" is checked
against mqtls's own count of fetches, which includes every one that ended."""
import json
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request
import uuid

import auth_env as A
import auth_idp as I
import auth_jwt as J
import mqttwire as w
from harness import check, free_port, parse_kv, test, wait_until

RSA1 = ("rsa", "idp-rsa-1")
RSA2 = ("rsa", "idp-rsa-2")
EC1 = ("ec256", "idp-ec-1")
STATIC = ("ec256", "emergency-ec")


def _key(spec):
    return J.key(*spec)


def _mqtls(ctx, b, idp, *args, url=None, ca=True):
    """mqtls in front of b with --jwt-jwks-url (url, or the IdP's JWK Set;
    False: none) verified with the test CA (ca=False: the system's)."""
    extra = ["--jwt-jwks-url", url or idp.jwks_url] if url is not False else []
    if ca:
        extra += ["--jwt-jwks-ca", ctx.pki.ca]
    return A.auth_mqtls(ctx, b, *(extra + ["--auth-fail-delay", "0"] + [str(a) for a in args]))


def _status(m, status, n=1, timeout=10, **fields):
    """Waits for the n-th `jwks status=STATUS` line whose fields include
    `fields` (kids="k1,k2", result="tls", ...); returns it parsed."""
    def find():
        got = []
        for line in m.lines("jwks status=%s " % status):
            kv = parse_kv(line)
            if all(kv.get(k) == v for k, v in fields.items()):
                kv["_line"] = line
                got.append(kv)
        return got[n - 1] if len(got) >= n else None
    return wait_until(find, timeout, "jwks status=%s #%d %r in the mqtls log" % (status, n, fields))


def _admitted(ctx, m, b, cid, tok, version=4, user="device-7"):
    return A.expect_admitted(ctx, m, b, version, cid, user, username="token", password=tok)


def _refused(ctx, m, b, tok, code, reason, detail=None, version=4, cid="refused"):
    return A.expect_refused(ctx, m, b, version, code, reason, detail, client_id=cid,
                            barrier=False, username="token", password=tok)


def _metrics(port, promtool=False):
    """{'name{labels}': value} scraped from /metrics (checked by promtool
    when asked and installed)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    if promtool and shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        check(p.returncode == 0, "promtool check metrics:\n%s" % p.stdout.decode())
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def _fetches(s):
    """Fetches mqtls counted, whatever their result."""
    return sum(v for k, v in s.items() if k.startswith("mqtls_jwks_fetch_total{"))


# -- keys from the URL --------------------------------------------------------------

@test
def jwks_url_tokens_of_the_published_key_and_of_a_static_key_are_admitted(ctx):
    idp = I.Idp(ctx)
    idp.set_keys([(_key(RSA1), "k1", "RS256"), (_key(EC1), "e1", None)])
    b = A.auth_broker(ctx)
    static = J.keys_file(ctx, [(_key(STATIC), "emergency", "ES256")])
    m = _mqtls(ctx, b, idp, "--jwt-keys", static)
    # mqtls waited for the first fetch before it started accepting.
    check(m.lines("jwks status=loaded"), "no jwks status=loaded line before ready: %s" % m.log())
    kv = _status(m, "loaded", kids="k1,e1")
    check(kv["keys"] == "2" and kv["url"] == idp.jwks_url, "loaded line %r" % kv["_line"])
    check(kv["next_refresh_s"] == "300", "no Cache-Control: the refresh is MIN: %r" % kv["_line"])
    _admitted(ctx, m, b, "idp-rs256", I.token(_key(RSA1), "k1"))
    _admitted(ctx, m, b, "idp-es256-v5", I.token(_key(EC1), "e1", alg="ES256"), version=5)
    _admitted(ctx, m, b, "static-es256", I.token(_key(STATIC), "emergency", alg="ES256"))
    # A key the provider publishes is not an HMAC secret, nor a key for another kid.
    _refused(ctx, m, b, I.token(_key(RSA1), "e1"), 4, "bad_credentials", "jwt: ", cid="kid-e1")
    check(idp.requests() == [(200, idp.requests()[0][1])], "nginx saw %r" % idp.requests())


@test
def jwks_rotation_a_new_kid_is_admitted_and_a_removed_key_refused_after_the_next_refresh(ctx):
    # Cache-Control: max-age=1 within --jwt-jwks-refresh 1..3600: a refresh a second.
    idp = I.Idp(ctx, max_age=1)
    k1, k2 = _key(RSA1), _key(RSA2)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    m = _mqtls(ctx, b, idp, "--jwt-jwks-refresh", "1..3600")
    kv = _status(m, "loaded", kids="k1")
    check(kv["next_refresh_s"] == "1", "max-age=1 not followed: %r" % kv["_line"])
    _admitted(ctx, m, b, "rot-k1", I.token(k1, "k1"))
    # The provider publishes k2 next to k1, and signs with it: no SIGHUP.
    idp.set_keys([(k1, "k1", "RS256"), (k2, "k2", "RS256")])
    _admitted(ctx, m, b, "rot-k2", I.token(k2, "k2"))
    # Then withdraws k1: once a fetch has seen that, k1's tokens are refused.
    idp.set_keys([(k2, "k2", "RS256")])
    _status(m, "loaded", kids="k2")
    _refused(ctx, m, b, I.token(k1, "k1"), 4, "bad_credentials", 'kid \\"k1\\"', cid="rot-k1-gone")
    _refused(ctx, m, b, I.token(k1, "k1"), 0x86, "bad_credentials", "unknown key id", version=5,
             cid="rot-k1-gone-v5")
    _admitted(ctx, m, b, "rot-k2-again", I.token(k2, "k2"))
    check(not m.lines("reload"), "something reloaded: %r" % m.lines("reload"))


@test
def jwks_unknown_kid_refetches_once_and_the_waiting_login_is_admitted(ctx):
    idp = I.Idp(ctx)    # no Cache-Control: the next scheduled refresh is 300 s away
    k1, k2 = _key(RSA1), _key(RSA2)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    port = free_port()
    m = _mqtls(ctx, b, idp, "--metrics", "127.0.0.1:%d" % port)
    _status(m, "loaded", kids="k1")
    idp.set_keys([(k1, "k1", "RS256"), (k2, "k2", "RS256")])
    # The check finds no k2, waits for the one refetch it caused, and passes.
    _admitted(ctx, m, b, "kid-k2", I.token(k2, "k2"))
    _status(m, "loaded", kids="k1,k2")
    check(len(idp.requests()) == 2, "want the startup fetch and one refetch, nginx saw %r"
          % idp.requests())
    # A kid nobody published, within 30 s: refused at once, no request.
    _refused(ctx, m, b, I.token(k2, "k3"), 4, "bad_credentials", "unknown key id", cid="kid-k3")
    s = _metrics(port, promtool=True)
    check(_fetches(s) == 2 and s['mqtls_jwks_fetch_total{result="ok"}'] == 2,
          "fetch counters %r" % {k: v for k, v in s.items() if "jwks" in k})
    check(s["mqtls_jwks_refetch_limited_total"] == 1, "limited %r" % s)
    check(s["mqtls_jwks_keys"] == 2 and 0 <= s["mqtls_jwks_age_seconds"] < 60, "gauges %r" % s)
    # A reload keeps the fetcher and its keys: no new fetch, k2 still good.
    m.send(signal.SIGHUP)
    m.wait_log("reloaded the configuration")
    _admitted(ctx, m, b, "kid-k2-reloaded", I.token(k2, "k2"))
    check(not m.lines("needs restart"), "reload: %r" % m.lines("needs restart"))
    check(len(idp.requests()) == 2, "nginx saw %r" % idp.requests())


@test(timeout=60)
def jwks_kid_flood_makes_at_most_one_request_to_the_provider(ctx):
    idp = I.Idp(ctx)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    port = free_port()
    m = _mqtls(ctx, b, idp, "--metrics", "127.0.0.1:%d" % port, "--max-auth-per-ip", "0",
               "--max-auth-per-user", "0", "--max-auth-queue", "1000")
    _status(m, "loaded", kids="k1")
    tokens = [I.token(k1, uuid.uuid4().hex) for _ in range(20)]
    codes, errors = [], []

    def flood(batch):
        for tok in batch:
            try:
                codes.append(A.raw_connect(ctx, m, 4, "flood", username="token",
                                           password=tok, timeout=15).code)
            except Exception as e:     # reported below
                errors.append(repr(e))
    # 8 clients at once, 5 tokens each (the 20 kids again for the last 20):
    # the first unknown kid starts a refetch that others wait for.
    threads = [threading.Thread(target=flood, args=((tokens * 2)[i * 5:(i + 1) * 5],))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    check(not errors, "flood clients failed: %r" % errors[:3])
    check(codes == [4] * 40, "every flooding client wants CONNACK 4, got %r" % codes)
    # Every client had its answer, so every fetch it caused has ended and
    # is counted: the startup fetch and at most one refetch.
    s = _metrics(port)
    fetches = _fetches(s)
    check(fetches <= 2, "%d fetches for a flood of 40 unknown kids" % fetches)
    got = idp.wait_requests(int(fetches))
    check(len(got) == fetches, "nginx saw %r, mqtls counted %d" % (got, fetches))
    ctx.notes.append("kid flood: 40 logins with 20 random kids -> %d JWKS requests in all "
                     "(%d refetch), %d refetches refused by the rate limit"
                     % (len(got), len(got) - 1, s["mqtls_jwks_refetch_limited_total"]))
    check(s["mqtls_jwks_refetch_limited_total"] >= 1, "limited %r" % s)
    _admitted(ctx, m, b, "after-flood", I.token(k1, "k1"))


# -- discovery ------------------------------------------------------------------------

@test
def jwks_discovery_finds_the_jwks_uri_from_the_issuer_keycloak_style(ctx):
    idp = I.Idp(ctx)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    m = _mqtls(ctx, b, idp, "--jwt-issuer", idp.issuer, "--jwt-discovery", url=False)
    kv = _status(m, "discovered")
    check(kv["jwks_uri"] == idp.jwks_url, "discovered %r" % kv["_line"])
    _status(m, "loaded", kids="k1")
    check(len(idp.requests(I.DISCOVERY)) == 1 and len(idp.requests()) == 1,
          "nginx saw %r then %r" % (idp.requests(I.DISCOVERY), idp.requests()))
    _admitted(ctx, m, b, "disc-ok", I.token(k1, "k1", iss=idp.issuer))
    _refused(ctx, m, b, I.token(k1, "k1", iss="https://evil.example/realms/mqtt"), 4,
             "bad_credentials", "issuer", cid="disc-bad-iss")


@test
def jwks_discovery_document_of_another_issuer_is_not_trusted(ctx):
    idp = I.Idp(ctx)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    idp.write_discovery(issuer="https://evil.example/realms/mqtt")
    b = A.auth_broker(ctx)
    m = _mqtls(ctx, b, idp, "--jwt-issuer", idp.issuer, "--jwt-discovery", url=False)
    kv = _status(m, "failed", result="discovery")
    check("issuer" in kv["detail"], "failed line %r" % kv["_line"])
    check(idp.requests() == [], "the JWK Set was fetched anyway: %r" % idp.requests())
    _refused(ctx, m, b, I.token(k1, "k1", iss=idp.issuer), 3, "jwks_unavailable",
             "no keys from the identity provider", cid="disc-evil")


# -- failures ----------------------------------------------------------------------------

@test
def jwks_provider_down_keeps_the_last_keys_and_logs_the_failure(ctx):
    idp = I.Idp(ctx, max_age=1)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    port = free_port()
    m = _mqtls(ctx, b, idp, "--jwt-jwks-refresh", "1..3600", "--metrics", "127.0.0.1:%d" % port)
    _status(m, "loaded", kids="k1")
    idp.stop()
    kv = _status(m, "failed", result="unreachable")
    check(kv["keeping_keys"] == "1" and "Connection refused" in kv["detail"],
          "failed line %r" % kv["_line"])
    _admitted(ctx, m, b, "down-k1", I.token(k1, "k1"))
    s = _metrics(port)
    check(s['mqtls_jwks_fetch_total{result="unreachable"}'] >= 1 and s["mqtls_jwks_keys"] == 1,
          "metrics %r" % {k: v for k, v in s.items() if "jwks" in k})
    # Back again: the retries (at most MIN apart) find it.
    idp.start()
    _status(m, "loaded", n=2, kids="k1")


@test
def jwks_unreachable_at_startup_refuses_token_logins_with_server_unavailable_until_keys_arrive(ctx):
    idp = I.Idp(ctx, start=False)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    static = J.keys_file(ctx, [(_key(STATIC), "emergency", "ES256")])
    m = _mqtls(ctx, b, idp, "--jwt-keys", static, "--jwt-jwks-refresh", "1..3600")
    kv = _status(m, "failed", result="unreachable")
    check(kv["keys"] == "0" and "server unavailable" in kv["logins"], "failed line %r" % kv["_line"])
    tok = I.token(k1, "k1")
    kv = _refused(ctx, m, b, tok, 3, "jwks_unavailable", "no keys from the identity provider",
                  cid="early-v3")
    check(kv.get("delay_ms") == "0", "an unavailable provider is not the client's failure: %r"
          % kv["_line"])
    _refused(ctx, m, b, tok, 0x88, "jwks_unavailable", None, version=5, cid="early-v5")
    # The static emergency key works all along.
    _admitted(ctx, m, b, "early-static", I.token(_key(STATIC), "emergency", alg="ES256"))
    idp.start()
    _status(m, "loaded", kids="k1")
    _admitted(ctx, m, b, "late-k1", tok)


@test(timeout=45)
def jwks_oversized_malformed_and_keyless_documents_are_rejected_and_the_last_good_keys_kept(ctx):
    idp = I.Idp(ctx)
    k1 = _key(RSA1)
    # 10 MB of valid JSON: refused by its Content-Length, before the body.
    big = json.dumps({"keys": [dict(k1.jwk("k1", "RS256"), use="sig")],
                      "padding": "x" * (10 * 1024 * 1024)})
    idp.set_raw(big)
    b = A.auth_broker(ctx)
    m = _mqtls(ctx, b, idp, "--jwt-jwks-refresh", "1..3600")
    kv = _status(m, "failed", result="too_large")
    check("Content-Length" in kv["detail"], "failed line %r" % kv["_line"])
    tok = I.token(k1, "k1")
    _refused(ctx, m, b, tok, 3, "jwks_unavailable", None, cid="big")
    idp.set_raw('{"keys": [')
    kv = _status(m, "failed", result="malformed")
    check("JSON" in kv["detail"], "failed line %r" % kv["_line"])
    # Only secrets and encryption keys: nothing to verify with.
    idp.set_raw(json.dumps({"keys": [{"kty": "oct", "k": J.b64u(b"s" * 32), "kid": "h"},
                                     dict(k1.jwk("enc", None), use="enc")]}))
    _status(m, "failed", result="no_keys")
    idp.set_raw("<html><body>502 Bad Gateway</body></html>")
    _status(m, "failed", n=2, result="malformed")
    idp.set_keys([(k1, "k1", "RS256")])
    _status(m, "loaded", kids="k1")
    _admitted(ctx, m, b, "good", tok)
    # Bad documents after a good one: the good keys stay.
    idp.set_raw(big)
    kv = _status(m, "failed", n=2, result="too_large")
    check(kv["keeping_keys"] == "1", "failed line %r" % kv["_line"])
    idp.set_raw('{"keys": "nope"}')
    _status(m, "failed", n=3, result="malformed")
    _admitted(ctx, m, b, "still-good", tok)


@test
def jwks_redirects_are_followed_to_https_at_most_three_times(ctx):
    idp = I.Idp(ctx)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    m = _mqtls(ctx, b, idp, url=idp.base + "/redirect/once")
    _status(m, "loaded", kids="k1")
    m = _mqtls(ctx, b, idp, url=idp.base + "/redirect/loop")
    kv = _status(m, "failed", result="redirects")
    check("more than 3 redirects" in kv["detail"], "failed line %r" % kv["_line"])
    check(len(idp.requests("/redirect/loop")) == 4, "loop requests %r"
          % idp.requests("/redirect/loop"))
    m = _mqtls(ctx, b, idp, url=idp.base + "/redirect/plain")
    kv = _status(m, "failed", result="redirects")
    check("http://" in kv["detail"], "failed line %r" % kv["_line"])


@test
def jwks_server_certificate_is_verified_against_the_ca_and_the_host_name(ctx):
    idp = I.Idp(ctx)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    # The system's CAs do not know the test CA.
    m = _mqtls(ctx, b, idp, ca=False)
    kv = _status(m, "failed", result="tls")
    check("does not verify" in kv["detail"], "failed line %r" % kv["_line"])
    # The certificate names 127.0.0.1 and localhost, not 127.0.0.2.
    m = _mqtls(ctx, b, idp, url="https://127.0.0.2:%d%s" % (idp.port, I.CERTS))
    kv = _status(m, "failed", result="tls")
    check("does not verify" in kv["detail"], "failed line %r" % kv["_line"])
    # By name: localhost is in the certificate.
    m = _mqtls(ctx, b, idp, url="https://localhost:%d%s" % (idp.port, I.CERTS))
    _status(m, "loaded", kids="k1")
    check(len(idp.requests()) == 1, "nginx saw %r" % idp.requests())


@test
def jwks_options_are_checked_at_startup(ctx):
    base = ["--listen", "127.0.0.1:0", "--cert", ctx.pki.server_cert, "--key", ctx.pki.server_key,
            "--upstream", "127.0.0.1:1"]
    cases = [
        (["--jwt-jwks-url", "http://idp.example/certs"], "https://"),
        (["--jwt-jwks-url", "https://user@idp.example/certs"], "user info"),
        (["--jwt-discovery"], "--jwt-issuer"),
        (["--jwt-discovery", "--jwt-issuer", "https://idp.example/r",
          "--jwt-jwks-url", "https://idp.example/certs"], "one of them"),
        (["--jwt-jwks-url", "https://idp.example/c", "--jwt-jwks-refresh", "60..30"], "MIN..MAX"),
        (["--jwt-jwks-url", "https://idp.example/c", "--jwt-jwks-refresh", "300"], "MIN..MAX"),
        (["--jwt-jwks-ca", ctx.pki.ca], "needs --jwt-jwks-url"),
        (["--jwt-jwks-url", "https://idp.example/c", "--jwt-jwks-ca", "/nonexistent/ca.pem"],
         "--jwt-jwks-ca"),
    ]
    for args, want in cases:
        rc, out, err = ctx.run_mqtls(*(base + args))
        check(rc == 2 and want in err, "%r: rc=%d stderr=%r (want %r)" % (args, rc, err, want))


# -- waiting checks and shutdown ---------------------------------------------------------

@test(timeout=40)
def jwks_a_check_waiting_for_a_fetch_leaves_with_its_client_and_at_shutdown(ctx):
    idp = I.Idp(ctx, max_age=1)
    k1 = _key(RSA1)
    idp.set_keys([(k1, "k1", "RS256")])
    b = A.auth_broker(ctx)
    port = free_port()
    m = _mqtls(ctx, b, idp, "--jwt-jwks-refresh", "1..3600", "--metrics", "127.0.0.1:%d" % port,
               "--drain-timeout", "0")
    _status(m, "loaded", kids="k1")
    # The provider now accepts connections and never answers: the next
    # refresh hangs (for up to 10 s), and a check for an unknown kid waits.
    idp.stop()
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", idp.port))
    hole.listen(8)
    hole.settimeout(5)
    held = hole.accept()[0]       # the refresh is under way
    ctx.note_socket(held)
    ctx.note_socket(hole)

    def depth():
        return _metrics(port)["mqtls_auth_queue_depth"]

    def waiting_client(cid):
        s = ctx.tls_connect(m)
        s.sendall(w.connect(4, client_id=cid, username="token", password=I.token(k1, "kx")))
        wait_until(lambda: depth() == 1, 5, "the check of %s waiting in the queue" % cid)
        return s
    s = waiting_client("waits-1")
    s.close()
    wait_until(lambda: depth() == 0, 5, "the departed client's check leaving the queue")
    waiting_client("waits-2")
    # SIGTERM while a check waits: the fetch is abandoned, the check comes
    # home, and everything is freed (the ASan build reports leaks at exit).
    rc = m.stop(signal.SIGTERM, timeout=5)
    check(rc == 0, "mqtls exited with %r" % rc)
