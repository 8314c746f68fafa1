"""Tokens from a real identity provider (--jwt-jwks-url, --jwt-discovery):
nginx serves a Keycloak-style realm over HTTPS (auth_idp), mqtls fetches its
JWK Set, follows key rotation without a restart, refetches for an unknown
kid at most once per 30 s, keeps the last good keys when the provider fails,
and refuses token logins with "server unavailable" until it has keys."""
import re

import auth_env as A
import auth_idp as I
import auth_jwt as J
from harness import check, test, wait_until

RSA1 = ("rsa", "idp-rsa-1")
RSA2 = ("rsa", "idp-rsa-2")


def _key(spec):
    return J.key(*spec)


def _mqtls(ctx, b, idp, *args, url=None, ca=True):
    extra = ["--jwt-jwks-url", url or idp.jwks_url] if url is not False else []
    if ca:
        extra += ["--jwt-jwks-ca", ctx.pki.ca]
    return A.auth_mqtls(ctx, b, *(extra + ["--auth-fail-delay", "0"] + list(args)))


def _loaded(m, n=1, kids=None, timeout=10):
    """Waits for the n-th "jwks status=loaded" line (with exactly these kids)."""
    def find():
        lines = m.lines("jwks status=loaded")
        if kids is not None:
            lines = [l for l in lines if 'kids="%s"' % ",".join(kids) in l]
        return lines if len(lines) >= n else None
    return wait_until(find, timeout, "jwks status=loaded #%d kids=%r in the mqtls log" % (n, kids))


@test
def jwks_url_tokens_of_the_published_key_are_admitted(ctx):
    idp = I.Idp(ctx)
    idp.set_keys([(_key(RSA1), "k1", "RS256")])
    b = A.auth_broker(ctx)
    m = _mqtls(ctx, b, idp)
    _loaded(m, kids=["k1"])
    A.expect_admitted(ctx, m, b, 4, "idp-k1", "device-7", username="token",
                      password=I.token(_key(RSA1), "k1"))
    A.expect_admitted(ctx, m, b, 5, "idp-k1-v5", "device-7", username="token",
                      password=I.token(_key(RSA1), "k1"))
    check(len(idp.requests()) == 1, "nginx saw %r" % idp.requests())
