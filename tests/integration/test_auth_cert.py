"""Client certificate identity (--identity-as-username), method order, and
MQTT 5 enhanced authentication (refused with 0x8C)."""
import signal
import ssl

import auth_clients
import auth_env as A
import auth_pki
import clients
import mqttwire as w
from auth_fakebroker import FakeBroker
from harness import check, test, wait_until
from pki import _CA

ALICE = A.PASSWORDS["alice"]


def _cert_pair(ctx, mode="cn", client_cert="optional", *args):
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--client-ca", ctx.pki.client_ca, "--client-cert", client_cert,
                     "--identity-as-username", mode, "--auth-fail-delay", "0", *args)
    return b, m


def _cn_cert(ctx):
    return auth_pki.client_cert(ctx, "dev-cn", "dev-cn-1")


def _dns_cert(ctx):
    return auth_pki.client_cert(ctx, "dev-dns", "some-cn", ["DNS:dev1.example.com"])


def _mosquitto_pub_cert(ctx, mode, cert, user, version):
    b, m = _cert_pair(ctx, mode)
    watcher = A.Watcher(ctx, b)
    rc, out = clients.pub(ctx, m, "id/%s/pub" % user, version, 1, message="hello",
                          extra=["--cert", cert[0], "--key", cert[1], "-i", "pub-cert"])
    check(rc == 0, "mosquitto_pub --cert/--key failed rc=%d: %s" % (rc, out))
    check(watcher.messages() == ["id/%s/pub hello" % user], "watcher got %r" % watcher.text())
    check(A.broker_user_of(b, "pub-cert") == user, "broker did not see %s" % user)
    c = A.close_line_of(m, "pub-cert")
    check(c.get("auth") == "cert" and c.get("user") == user,
          "close line auth=%r user=%r, want cert/%s: %r" % (c.get("auth"), c.get("user"),
                                                           user, c))


@test
def cert_cn_with_mosquitto_pub_v311_is_the_injected_user(ctx):
    _mosquitto_pub_cert(ctx, "cn", _cn_cert(ctx), "dev-cn-1", 4)


@test
def cert_san_dns_with_mosquitto_pub_v5_is_the_injected_user(ctx):
    _mosquitto_pub_cert(ctx, "san-dns", _dns_cert(ctx), "dev1.example.com", 5)


def _injected_name(ctx, mode, cert):
    fb = FakeBroker(ctx)
    m = ctx.mqtls("--client-ca", ctx.pki.client_ca, "--client-cert", "required",
                  "--identity-as-username", mode, upstream=fb.upstream)
    c = A.raw_connect(ctx, m, 4, "who", cert=cert, keepalive=9)
    check(c.code == 0, "CONNACK %r: %r" % (c.code, m.lines("refuse")))
    return fb.wait_connects(1)[0]


@test
def cert_san_email_and_san_uri_name_the_user_without_a_password(ctx):
    cert = auth_pki.client_cert(ctx, "dev-mail", "cn-x", ["email:carol@example.com",
                                                           "URI:urn:dev:7", "DNS:x.example"])
    got = _injected_name(ctx, "san-email", cert)
    want = w.connect(4, client_id="who", keepalive=9, username="carol@example.com")
    check(got == want, "san-email: upstream CONNECT\n  got  %r\n  want %r" % (got, want))
    got = _injected_name(ctx, "san-uri", cert)
    want = w.connect(4, client_id="who", keepalive=9, username="urn:dev:7")
    check(got == want, "san-uri: upstream CONNECT\n  got  %r\n  want %r" % (got, want))


@test
def cert_paho_tls_set_certfile_keyfile_is_admitted_as_the_cn(ctx):
    b, m = _cert_pair(ctx)
    cert = _cn_cert(ctx)

    def conf(c):
        c.tls_set(ca_certs=ctx.pki.ca, certfile=cert[0], keyfile=cert[1])
    got = auth_clients.paho_session(m, "dev-cn-1", conf)
    check(got == ("ok", b"paho as dev-cn-1"), "paho got %r" % (got,))


@test
def cert_paho_v5_with_sslcontext_load_cert_chain_is_admitted(ctx):
    import paho.mqtt.client as mqtt
    b, m = _cert_pair(ctx, "san-dns", "required")
    cert = _dns_cert(ctx)
    sslctx = ssl.create_default_context(cafile=ctx.pki.ca)
    sslctx.load_cert_chain(*cert)
    got = auth_clients.paho_session(m, "dev1.example.com", lambda c: c.tls_set_context(sslctx),
                                    protocol=mqtt.MQTTv5)
    check(got == ("ok", b"paho as dev1.example.com"), "paho v5 got %r" % (got,))


@test
def cert_asyncio_mqtt_tls_params_certfile_keyfile_is_admitted(ctx):
    from asyncio_mqtt import ProtocolVersion, TLSParameters
    b, m = _cert_pair(ctx)
    cert = _cn_cert(ctx)
    tls = TLSParameters(ca_certs=ctx.pki.ca, certfile=cert[0], keyfile=cert[1])
    got = auth_clients.asyncio_session(m, "dev-cn-1", tls_params=tls)
    check(got == ("ok", b"aio as dev-cn-1"), "asyncio-mqtt got %r" % (got,))
    got = auth_clients.asyncio_session(m, "dev-cn-1", client_id="aio-v5", tls_params=tls,
                                       protocol=ProtocolVersion.V5)
    check(got == ("ok", b"aio as dev-cn-1"), "asyncio-mqtt v5 got %r" % (got,))


@test
def cert_client_id_must_be_the_identity_with_require_clientid_match(ctx):
    b, m = _cert_pair(ctx, "cn", "optional", "--require-clientid-match")
    cert = _cn_cert(ctx)
    A.expect_admitted(ctx, m, b, 4, "dev-cn-1", "dev-cn-1", cert=cert)
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", client_id="dev-cn-2", cert=cert,
                     barrier=False)
    A.expect_refused(ctx, m, b, 5, 0x87, "not_authorized", client_id="someone", cert=cert,
                     barrier=False)
    check(A.broker_logins(b) == [("dev-cn-1", "dev-cn-1")],
          "broker logins %r, want only dev-cn-1" % A.broker_logins(b))


@test
def cert_optional_without_a_certificate_is_anonymous_and_refused(ctx):
    b, m = _cert_pair(ctx)
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", barrier=dict(cert=_cn_cert(ctx)))
    A.expect_refused(ctx, m, b, 5, 0x87, "not_authorized", client_id="r5",
                     barrier=False, username="alice", password=ALICE)


@test
def cert_optional_without_a_certificate_is_admitted_with_allow_anonymous(ctx):
    b, m = _cert_pair(ctx, "cn", "optional", "--allow-anonymous", "--upstream-username", "svc")
    anon = A.expect_admitted(ctx, m, b, 4, "anon", "svc")
    anon.sock.sendall(w.disconnect())
    # The certificate authenticates; the service account is what the broker sees.
    A.expect_admitted(ctx, m, b, 5, "certified", "svc", cert=_cn_cert(ctx))
    check(A.close_line_of(m, "anon").get("auth") == "anonymous", "anon close line")


@test
def cert_without_the_configured_identity_does_not_authenticate(ctx):
    # san-dns wanted, the certificate has only a CN: not the cert method's client.
    b, m = _cert_pair(ctx, "san-dns")
    A.expect_refused(ctx, m, b, 4, 5, "not_authorized", cert=_cn_cert(ctx),
                     barrier=dict(cert=_dns_cert(ctx)))


@test
def cert_comes_before_password_by_default_and_after_it_with_auth_order(ctx):
    b = A.auth_broker(ctx)
    users = A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS)
    base = ["--client-ca", ctx.pki.client_ca, "--client-cert", "optional",
            "--identity-as-username", "cn", "--users", users, "--auth-fail-delay", "0"]
    cert = _cn_cert(ctx)
    m = A.auth_mqtls(ctx, b, *base)
    # The certificate decides; the password is not even looked at.
    A.expect_admitted(ctx, m, b, 4, "c-first", "dev-cn-1", cert=cert, username="alice",
                      password=A.WRONG_PW)
    A.expect_admitted(ctx, m, b, 4, "pw-only", "alice", username="alice", password=ALICE)
    m2 = A.auth_mqtls(ctx, b, *base, "--auth", "password,cert")
    A.expect_refused(ctx, m2, b, 4, 4, "bad_credentials", "password: bad password",
                     cert=cert, username="alice", password=A.WRONG_PW,
                     barrier=dict(cert=cert))
    A.expect_admitted(ctx, m2, b, 5, "pw-first", "alice", cert=cert, username="alice",
                      password=ALICE)


# -- enhanced authentication ------------------------------------------------------

AUTH_METHOD = b"\x15" + w.utf8("SCRAM-SHA-256") + b"\x16" + w.utf8(b"client-first")


@test
def v5_enhanced_auth_is_refused_with_0x8c(ctx):
    b, m = A.password_pair(ctx)
    A.expect_refused(ctx, m, b, 5, 0x8C, "bad_auth_method", properties=AUTH_METHOD)
    A.expect_refused(ctx, m, b, 5, 0x8C, "bad_auth_method", client_id="with-pw",
                     barrier=False, properties=AUTH_METHOD, username="alice", password=ALICE)


@test
def v5_enhanced_auth_with_a_certificate_is_refused_with_0x8c(ctx):
    b, m = _cert_pair(ctx)
    cert = _cn_cert(ctx)
    A.expect_refused(ctx, m, b, 5, 0x8C, "bad_auth_method", cert=cert,
                     properties=b"\x15" + w.utf8("X-DEVICE"), barrier=dict(cert=cert))


# -- reload of the client CA and CRL ------------------------------------------------

def _tls_refused(ctx, m, cert):
    try:
        c = A.raw_connect(ctx, m, 4, "crl-check", cert=cert)
    except (ssl.SSLError, ConnectionError, w.Closed) as e:
        return repr(e)
    return None if c.code is not None else "closed without CONNACK"


@test
def sighup_reloads_the_crl_and_keeps_it_when_the_new_one_is_bad(ctx):
    ca = _CA(ctx.dir, "ca", "reload test CA")
    good = ca.issue(ctx.dir, "dev-good", "dev-cn-1", "ext_client")
    doomed = ca.issue(ctx.dir, "dev-doomed", "dave", "ext_client")
    crl = ctx.dir / "crl.pem"
    ca.crl(crl)
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--client-ca", ca.cert, "--client-cert", "required", "--crl", crl,
                     "--identity-as-username", "cn", "--auth-fail-delay", "0")
    live = A.expect_admitted(ctx, m, b, 5, "live", "dev-cn-1", cert=tuple(map(str, good)))
    A.expect_admitted(ctx, m, b, 4, "dave-1", "dave", cert=tuple(map(str, doomed)))
    ca.revoke(doomed[0])
    ca.crl(crl)
    n = len(m.lines("reload"))
    m.send(signal.SIGHUP)
    wait_until(lambda: len(m.lines("reload")) > n, 5, "a reload line")
    check(not m.lines("reload failed"), "reload failed: %r" % m.lines("reload"))
    why = _tls_refused(ctx, m, tuple(map(str, doomed)))
    check(why, "a certificate revoked by the reloaded CRL was admitted")
    crl.write_text("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n")
    m.send(signal.SIGHUP)
    m.wait_log("reload failed")
    check(_tls_refused(ctx, m, tuple(map(str, doomed))),
          "the revoked certificate was admitted after a failed reload")
    A.expect_admitted(ctx, m, b, 4, "good-2", "dev-cn-1", cert=tuple(map(str, good)))
    check(live.alive(), "the connection made before the reloads was lost")


@test
def sighup_reloads_the_server_certificate_and_keeps_it_when_the_new_one_is_bad(ctx):
    import shutil
    cert, key = ctx.dir / "server.pem", ctx.dir / "server.key"
    shutil.copy(ctx.pki.server_cert, cert)
    shutil.copy(ctx.pki.server_key, key)
    b = A.auth_broker(ctx)
    m = A.auth_mqtls(ctx, b, "--users", A.mosquitto_passwd_file(ctx.dir / "users", A.PASSWORDS),
                     cert=cert, key=key)

    def served():
        s = ctx.tls_connect(m)
        der = s.getpeercert(binary_form=True)
        s.close()
        return der
    def leaf(path):
        end = "-----END CERTIFICATE-----"
        return ssl.PEM_cert_to_DER_cert(open(path).read().split(end)[0] + end + "\n")
    ec_leaf, rsa_leaf = leaf(ctx.pki.server_cert), leaf(ctx.pki.server_rsa_cert)
    check(served() == ec_leaf, "mqtls does not serve the EC certificate at start")
    live = A.expect_admitted(ctx, m, b, 4, "live", "alice", username="alice", password=ALICE)
    # Write the new pair under other names and rename, as certificate tools do.
    shutil.copy(ctx.pki.server_rsa_cert, ctx.dir / "new.pem")
    shutil.copy(ctx.pki.server_rsa_key, ctx.dir / "new.key")
    (ctx.dir / "new.key").replace(key)
    (ctx.dir / "new.pem").replace(cert)
    n = len(m.lines("reload"))
    m.send(signal.SIGHUP)
    wait_until(lambda: len(m.lines("reload")) > n, 5, "a reload line")
    check(not m.lines("reload failed"), "reload failed: %r" % m.lines("reload"))
    check(served() == rsa_leaf, "mqtls does not serve the reloaded RSA certificate")
    cert.write_text("not a certificate\n")
    m.send(signal.SIGHUP)
    m.wait_log("reload failed")
    check(served() == rsa_leaf, "a failed reload changed the served certificate")
    A.expect_admitted(ctx, m, b, 5, "after", "alice", username="alice", password=ALICE)
    check(live.alive(), "the connection made before the reloads was lost")
