"""A Keycloak-style identity provider for the JWKS tests: a real nginx (from
Debian) serving HTTPS on loopback with a certificate from the test CA.

    https://127.0.0.1:PORT/realms/mqtt                       the issuer
        .../realms/mqtt/.well-known/openid-configuration     discovery document
        .../realms/mqtt/protocol/openid-connect/certs        the JWK Set

The documents are files the tests rewrite (atomically, by rename) while
mqtls runs; nginx reads them afresh for every request. Its access log, one
line per request ("URI STATUS BYTES"), counts what mqtls fetched.
"""
import json
import os
import shutil
import socket
import time
from pathlib import Path

import auth_jwt as J
from harness import Fail, Proc, Skip, free_port, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

REALM = "/realms/mqtt"
CERTS = REALM + "/protocol/openid-connect/certs"
DISCOVERY = REALM + "/.well-known/openid-configuration"

CONF = """\
user root;
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    log_format idp '$request_uri $status $body_bytes_sent';
    access_log {dir}/access.log idp;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    default_type application/json;
    server {{
        listen {listen} ssl;
        listen 127.0.0.2:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {dir}/www;
        location / {{
            {cache_control}
        }}
        location = /redirect/once {{ return 302 {certs}; }}
        location = /redirect/loop {{ return 302 /redirect/loop; }}
        location = /redirect/plain {{ return 302 http://127.0.0.1:{port}{certs}; }}
    }}
}}
"""


class Idp:
    """nginx serving the realm's documents. max_age: the Cache-Control
    max-age it sends (None: no Cache-Control header)."""

    def __init__(self, ctx, port=None, max_age=None, start=True):
        if not os.path.exists(NGINX):
            raise Skip("nginx is not installed (Debian package nginx-light)")
        self.ctx = ctx
        self.dir = Path(ctx.dir) / ("idp%d" % len(list(Path(ctx.dir).glob("idp*"))))
        (self.dir / "tmp").mkdir(parents=True)
        (self.dir / "www" / CERTS.lstrip("/")).parent.mkdir(parents=True)
        (self.dir / "www" / DISCOVERY.lstrip("/")).parent.mkdir(parents=True)
        self.port = port or free_port()
        self.max_age = max_age
        self.proc = None
        self.base = "https://127.0.0.1:%d" % self.port
        self.issuer = self.base + REALM
        self.jwks_url = self.base + CERTS
        self.write_discovery()
        self.set_keys([])
        if start:
            self.start()

    # -- documents --------------------------------------------------------
    def _write(self, path, data):
        f = self.dir / "www" / path.lstrip("/")
        tmp = f.with_name(f.name + ".tmp")
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
        os.rename(tmp, f)

    def write_discovery(self, issuer=None, jwks_uri=None):
        doc = {"issuer": issuer or self.issuer,
               "authorization_endpoint": self.issuer + "/protocol/openid-connect/auth",
               "token_endpoint": self.issuer + "/protocol/openid-connect/token",
               "jwks_uri": jwks_uri or self.jwks_url,
               "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
        self._write(DISCOVERY, json.dumps(doc))

    def set_keys(self, keys):
        """keys: [(auth_jwt.Key, kid, alg)] -> the JWK Set document."""
        doc = {"keys": [dict(k.jwk(kid, alg), use="sig") for k, kid, alg in keys]}
        self._write(CERTS, json.dumps(doc))

    def set_raw(self, data, path=CERTS):
        self._write(path, data)

    # -- the server ---------------------------------------------------------
    def start(self):
        pki = self.ctx.pki
        cache = ('add_header Cache-Control "max-age=%d";' % self.max_age) \
            if self.max_age is not None else ""
        conf = self.dir / "nginx.conf"
        conf.write_text(CONF.format(dir=self.dir, listen="127.0.0.1:%d" % self.port,
                                    cert=pki.server_cert, key=pki.server_key, port=self.port,
                                    certs=CERTS, cache_control=cache))
        self.proc = Proc(self.ctx, "nginx", [NGINX, "-c", conf, "-p", self.dir],
                         self.dir / "nginx.out")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise Fail("nginx exited at start:\n%s\n%s" % (
                    self.proc.log(), self.error_log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        raise Fail("nginx did not listen on %d within 5 s:\n%s" % (self.port, self.error_log()))

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc = None

    def error_log(self):
        try:
            return (self.dir / "nginx-error.log").read_text(errors="replace")
        except OSError:
            return ""

    def requests(self, path=CERTS):
        """[(status, bytes)] of the requests for path, in order."""
        try:
            lines = (self.dir / "access.log").read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            uri, status, size = line.split(" ")
            if uri == path:
                out.append((int(status), int(size)))
        return out

    def wait_requests(self, n, path=CERTS, timeout=10):
        """Waits until at least n requests for path were logged; returns them."""
        return wait_until(lambda: (lambda r: r if len(r) >= n else None)(self.requests(path)),
                          timeout, "%d request(s) for %s in the nginx access log" % (n, path))


def token(key, kid, sub="device-7", alg="RS256", **claims):
    """A token signed by key with kid in its header."""
    return J.token(alg, key, payload=J.claims(sub=sub, **claims), kid=kid)
