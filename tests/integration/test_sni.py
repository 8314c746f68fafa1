"""Several --cert/--key pairs on one listener: real clients (Python ssl,
openssl s_client) get the certificate for the name they ask for (SNI), the
first pair without SNI or for an unknown name, and an RSA certificate when
they can only verify RSA; MQTT goes through each; bad pairs are one-line
errors; a change to one pair's files is served after the automatic reload."""
import re
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import mqttwire as w
from harness import check, free_port, parse_kv, test, wait_until


def _leaf_der(path):
    """DER of the first certificate of a PEM file."""
    pem = Path(path).read_text()
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


def _client(ctx, tls12_rsa=False, verify=True):
    c = ctx.client_context()
    if not verify:
        c.check_hostname = False
    if tls12_rsa:
        # TLS 1.2 with ECDHE-RSA suites only: a client that cannot take ECDSA.
        c.maximum_version = ssl.TLSVersion.TLSv1_2
        c.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    return c


def _connect(ctx, m, name, sslctx=None, session=None):
    """A TLS connection asking for |name| (None: no SNI)."""
    raw = socket.create_connection((m.host, m.port), timeout=5)
    try:
        s = (sslctx or _client(ctx, verify=name is not None)).wrap_socket(
            raw, server_hostname=name, session=session)
    except Exception:
        raw.close()
        raise
    return ctx.note_socket(s)


def _served(ctx, m, name, **kw):
    """The DER of the leaf a new connection asking for |name| is served."""
    s = _connect(ctx, m, name, **kw)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def _connack(s, client_id):
    s.sendall(w.connect(4, client_id=client_id))
    t, _, body = w.Reader(s).read(5)
    check((t, w.connack_code(body)) == (w.CONNACK, 0), "want CONNACK 0, got %d %r" % (t, body))


def _pairs(*pairs):
    args = []
    for cert, key in pairs:
        args += ["--cert", cert, "--key", key]
    return args


def _s_client(m, name, *extra):
    """The leaf DER `openssl s_client -servername NAME EXTRA...` is served."""
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (m.host, m.port),
                        "-servername", name, *extra], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    out = r.stdout.decode(errors="replace")
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    check(pem is not None, "s_client %s got no certificate: %s" % (" ".join(extra),
                                                                    r.stderr.decode()[-400:]))
    return ssl.PEM_cert_to_DER_cert(pem.group(0))


def _mqtls(ctx, *pairs, extra=()):
    """mqtls with these pairs (the first one the default) in front of a broker."""
    b = ctx.broker()
    args = ["--listen", "127.0.0.1:0", "--upstream", b.upstream] + _pairs(*pairs) + list(extra)
    return b, ctx.mqtls_raw(args)


@test
def each_name_gets_its_certificate_and_no_or_an_unknown_name_the_first(ctx):
    sni = ctx.pki.sni
    port = free_port()
    b, m = _mqtls(ctx, (ctx.pki.server_cert, ctx.pki.server_key), sni["a"][:2], sni["wild"][:2],
                  extra=("--metrics", "127.0.0.1:%d" % port))
    default, a, wild = _leaf_der(ctx.pki.server_cert), _leaf_der(sni["a"][2]), _leaf_der(sni["wild"][2])
    # The client verifies the chain and the name: each name is served its own.
    for name, want, cid in (("a.sni.test", a, "a"), ("A.SNI.test", a, "a-upper"),
                            ("d1.devices.sni.test", wild, "d1"), ("localhost", default, "local")):
        s = _connect(ctx, m, name)
        check(s.getpeercert(binary_form=True) == want, "%s was served another certificate" % name)
        _connack(s, cid)
        s.close()
    # Without SNI, for a name no certificate has, or two labels under the
    # wildcard: the first pair.
    for name in (None, "unknown.sni.test", "a.b.devices.sni.test", "devices.sni.test"):
        check(_served(ctx, m, name, sslctx=_client(ctx, verify=False)) == default,
              "%r was not served the default certificate" % name)
    check(_s_client(m, "d2.devices.sni.test") == wild, "s_client -servername was not served the wildcard")
    check(_s_client(m, "a.sni.test.") == a, "a name with a trailing dot was not served its certificate")
    check(len(b.connections()) >= 4, "the broker saw %d connections" % len(b.connections()))
    # One startup line and one expiry series per pair, each naming its file.
    lines = [parse_kv(l) for l in m.lines(" certificate file=")]
    got = [(l.get("file"), l.get("names"), l.get("key")) for l in lines]
    check(got == [(ctx.pki.server_cert, "localhost", "ecdsa-p256"), (sni["a"][0], "a.sni.test", "ecdsa-p256"),
                  (sni["wild"][0], "*.devices.sni.test", "ecdsa-p256")], "certificate lines %r" % got)
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    for f in (ctx.pki.server_cert, sni["a"][0], sni["wild"][0]):
        check('mqtls_certificate_expiry_timestamp_seconds{file="%s",subject="/CN=' % f in text,
              "no expiry series for %s" % f)


@test
def a_session_resumes_on_the_pair_its_name_chose(ctx):
    import base64
    import os
    sni = ctx.pki.sni
    keys = ctx.dir / "ticket.keys"
    keys.write_text(base64.b64encode(os.urandom(80)).decode() + "\n")
    pairs = ((ctx.pki.server_cert, ctx.pki.server_key), sni["a"][:2])
    b, m = _mqtls(ctx, *pairs)
    b2, shared = _mqtls(ctx, *pairs, extra=("--ticket-keys", keys))
    b3, replica = _mqtls(ctx, *pairs, extra=("--ticket-keys", keys))
    for first, second in ((m, m), (shared, replica)):
        for maxv in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            c = _client(ctx)
            c.maximum_version = maxv
            s = _connect(ctx, first, "a.sni.test", sslctx=c)
            _connack(s, "first")     # reading after the handshake takes in the TLS 1.3 ticket
            session = s.session
            s.close()
            s = _connect(ctx, second, "a.sni.test", sslctx=c, session=session)
            check(s.session_reused, "the %s session was not resumed%s" %
                  (maxv.name, " on the replica" if first is not second else ""))
            check(s.getpeercert(binary_form=True) == _leaf_der(sni["a"][2]), "resumed with another certificate")
            _connack(s, "resumed")
            s.close()


@test
def ecdsa_or_rsa_is_chosen_by_what_the_client_can_verify(ctx):
    sni = ctx.pki.sni
    b, m = _mqtls(ctx, (ctx.pki.server_cert, ctx.pki.server_key),
                  (ctx.pki.server_rsa_cert, ctx.pki.server_rsa_key), sni["a"][:2], sni["a-rsa"][:2])
    a, a_rsa = _leaf_der(sni["a"][2]), _leaf_der(sni["a-rsa"][2])
    keys = [parse_kv(l).get("key") for l in m.lines(" certificate file=")]
    check(keys == ["ecdsa-p256", "rsa", "ecdsa-p256", "rsa"], "key types logged %r" % keys)
    # A client that can verify both gets ECDSA, in TLS 1.3 and in 1.2.
    s = _connect(ctx, m, "a.sni.test")
    check(s.getpeercert(binary_form=True) == a, "a TLS 1.3 client was not served ECDSA")
    check(isinstance(x509.load_der_x509_certificate(s.getpeercert(True)).public_key(),
                     ec.EllipticCurvePublicKey), "not an EC key")
    _connack(s, "ec13")
    s.close()
    c12 = _client(ctx)
    c12.maximum_version = ssl.TLSVersion.TLSv1_2
    check(_served(ctx, m, "a.sni.test", sslctx=c12) == a, "a TLS 1.2 client was not served ECDSA")
    # TLS 1.2 with RSA suites only: the RSA pair, for the name and as the default.
    s = _connect(ctx, m, "a.sni.test", sslctx=_client(ctx, tls12_rsa=True))
    check(s.version() == "TLSv1.2" and s.cipher()[0].startswith("ECDHE-RSA-"), "negotiated %r" % (s.cipher(),))
    check(s.getpeercert(binary_form=True) == a_rsa, "an RSA-only TLS 1.2 client was not served RSA")
    check(isinstance(x509.load_der_x509_certificate(s.getpeercert(True)).public_key(),
                     rsa.RSAPublicKey), "not an RSA key")
    _connack(s, "rsa12")
    s.close()
    check(_served(ctx, m, None, sslctx=_client(ctx, tls12_rsa=True, verify=False)) ==
          _leaf_der(ctx.pki.server_rsa_cert), "the default's RSA twin was not served without SNI")
    check(_served(ctx, m, None, sslctx=_client(ctx, verify=False)) == _leaf_der(ctx.pki.server_cert),
          "the default ECDSA certificate was not served without SNI")
    # TLS 1.3 offering only RSA-PSS signatures (openssl s_client -sigalgs).
    check(_s_client(m, "a.sni.test", "-tls1_3", "-sigalgs", "RSA-PSS+SHA256") == a_rsa,
          "s_client -sigalgs RSA-PSS+SHA256 was not served RSA")
    check(_s_client(m, "a.sni.test", "-tls1_3", "-sigalgs", "ECDSA+SHA256") == a,
          "s_client -sigalgs ECDSA+SHA256 was not served ECDSA")


@test
def unpaired_or_mismatched_keys_are_one_line_errors(ctx):
    sni = ctx.pki.sni
    up = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1"]
    rc, out, err = ctx.run_mqtls(*up, *_pairs(sni["a"][:2]), "--cert", sni["wild"][0])
    check(rc == 2, "rc %d for an odd --cert" % rc)
    check(err == "mqtls: --cert and --key come in pairs: 2 --cert but 1 --key\n", "stderr %r" % err)
    rc, out, err = ctx.run_mqtls(*up, *_pairs(sni["a"][:2]), "--key", sni["wild"][1])
    check(rc == 2 and err == "mqtls: --cert and --key come in pairs: 1 --cert but 2 --key\n",
          "rc %d stderr %r" % (rc, err))
    # The second pair's key belongs to another certificate.
    rc, out, err = ctx.run_mqtls(*up, *_pairs(sni["a"][:2], (sni["wild"][0], sni["a"][1])))
    check(rc == 2, "rc %d for a mismatched key" % rc)
    check(err == "mqtls: --key %s: does not match the certificate in %s\n" % (sni["a"][1], sni["wild"][0]),
          "stderr %r" % err)


def _replace(path, data):
    tmp = Path(str(path) + ".new")
    tmp.write_bytes(data)
    tmp.replace(path)


@test(timeout=40)
def a_changed_pair_is_served_after_the_automatic_reload_and_the_others_stay(ctx):
    sni = ctx.pki.sni
    d = ctx.dir / "tls"
    d.mkdir()
    files = {}
    for n, (cert, key) in (("default", (ctx.pki.server_cert, ctx.pki.server_key)), ("a", sni["a"][:2])):
        files[n] = (d / (n + ".pem"), d / (n + ".key"))
        shutil.copy(cert, files[n][0])
        shutil.copy(key, files[n][1])
    b, m = _mqtls(ctx, *[(str(c), str(k)) for c, k in files.values()])
    live = _connect(ctx, m, "a.sni.test")
    _connack(live, "live")
    check(_served(ctx, m, "a.sni.test") == _leaf_der(sni["a"][2]), "not served a before the change")
    before = len(m.lines(" certificate file="))
    # Only the second pair changes: its key, then its certificate.
    _replace(files["a"][1], Path(sni["a-next"][1]).read_bytes())
    _replace(files["a"][0], Path(sni["a-next"][0]).read_bytes())
    m.wait_log("reloaded the configuration", timeout=10)
    check(m.lines("file changed"), "no 'file changed' line: the reload had another cause")
    wait_until(lambda: len(m.lines(" certificate file=")) >= before + 2, 5, "a certificate line per pair")
    check(_served(ctx, m, "a.sni.test") == _leaf_der(sni["a-next"][2]), "the new a certificate is not served")
    check(_served(ctx, m, "localhost") == _leaf_der(ctx.pki.server_cert), "the default pair changed")
    # The connection from before goes on.
    live.sendall(w.pingreq())
    t, _, _ = w.Reader(live).read(5)
    check(t == w.PINGRESP, "the live connection got type %d, not PINGRESP" % t)


def _mqtt_through(ctx, m, name, cert):
    """CONNECT on a connection asking for |name| and presenting |cert|:
    ('connack', code), or ('refused', why) when TLS ends it."""
    c = ctx.client_context(cert=cert)
    try:
        s = _connect(ctx, m, name, sslctx=c)
        served = s.getpeercert(binary_form=True)
        s.sendall(w.connect(4, client_id="mtls-" + name))
        t, _, body = w.Reader(s).read(5)
    except (ssl.SSLError, w.Closed, ConnectionError) as e:
        return "refused", repr(e)
    check(t == w.CONNACK, "first packet type %d" % t)
    return ("connack", w.connack_code(body)), served


@test
def client_certificates_are_checked_the_same_on_every_pair(ctx):
    sni = ctx.pki.sni
    b, m = _mqtls(ctx, (ctx.pki.server_cert, ctx.pki.server_key), sni["a"][:2], sni["wild"][:2],
                  extra=("--client-ca", ctx.pki.client_ca, "--client-cert", "required", "--crl", ctx.pki.crl))
    for name, leaf in (("localhost", ctx.pki.server_cert), ("a.sni.test", sni["a"][2]),
                       ("d9.devices.sni.test", sni["wild"][2])):
        r, served = _mqtt_through(ctx, m, name, ctx.pki.client_good)
        check(r == ("connack", 0) and served == _leaf_der(leaf), "%s with a good client certificate: %r" % (name, r))
        # The CA, the CRL and the requirement hold on the chosen pair too.
        for cert, what in ((None, "no"), (ctx.pki.client_revoked, "a revoked"),
                           (ctx.pki.client_untrusted, "an untrusted")):
            r = _mqtt_through(ctx, m, name, cert)
            check(r[0] == "refused", "%s with %s client certificate: %r" % (name, what, r))
    check(sorted(b.clients()) == ["mtls-a.sni.test", "mtls-d9.devices.sni.test", "mtls-localhost"],
          "broker clients %r" % b.clients())
    # A client-certificate session resumes on the pair its name chose.
    for maxv in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = ctx.client_context(cert=ctx.pki.client_good)
        c.maximum_version = maxv
        s = _connect(ctx, m, "a.sni.test", sslctx=c)
        _connack(s, "full")
        session = s.session
        s.close()
        s = _connect(ctx, m, "a.sni.test", sslctx=c, session=session)
        check(s.session_reused, "the %s client-certificate session was not resumed" % maxv.name)
        _connack(s, "resumed")
        s.close()
