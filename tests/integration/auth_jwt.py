"""Minting JWTs for the tests: keys and signatures from the openssl command
line tool (RS*, PS256, ES*, EdDSA), HMAC from the Python standard library.

Keys are generated once per suite run under the suite directory; concurrent
tests agree on one key through link-if-absent (os.link fails when another
test published its key first, and then that one is used).
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
from pathlib import Path

import harness

ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
        "HS256", "HS384", "HS512")

# The key kind each algorithm needs.
KIND = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa",
        "ES256": "ec256", "ES384": "ec384", "EdDSA": "ed25519",
        "HS256": "hmac", "HS384": "hmac", "HS512": "hmac"}
DIGEST = {"256": "sha256", "384": "sha384", "512": "sha512"}


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _openssl(*args, inp=None):
    r = subprocess.run(["openssl"] + [str(a) for a in args], input=inp,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise harness.Fail("openssl %s: %s" % (" ".join(map(str, args)),
                                               r.stderr.decode(errors="replace")))
    return r.stdout


def _publish(tmp, final):
    try:
        os.link(tmp, final)
    except FileExistsError:
        pass
    os.unlink(tmp)


class Key:
    """One signing key: .kind, .private (PEM path) and .public (PEM path) or,
    for HMAC, .secret (bytes) and .secret_file (the secret plus a newline)."""

    def __init__(self, kind, name):
        self.kind = kind
        d = harness.suite_dir() / "jwtkeys"
        d.mkdir(exist_ok=True)
        tmp = "%s.%d.tmp" % (name, os.getpid())
        if kind == "hmac":
            self.secret_file = d / (name + ".secret")
            if not self.secret_file.exists():
                # Printable, 64 bytes; the file ends with the newline mqtls strips.
                (d / tmp).write_bytes(os.urandom(32).hex().encode() + b"\n")
                _publish(d / tmp, self.secret_file)
            self.secret = self.secret_file.read_bytes().rstrip(b"\n")
            return
        self.private = d / (name + ".key")
        self.public = d / (name + ".pub.pem")
        if not self.public.exists():
            if kind == "rsa":
                gen = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
            elif kind == "ec256":
                gen = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
            elif kind == "ec384":
                gen = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
            else:
                gen = ["-algorithm", "ED25519"]
            _openssl("genpkey", *gen, "-out", d / tmp)
            _publish(d / tmp, self.private)
            _openssl("pkey", "-in", self.private, "-pubout", "-out", d / tmp)
            _publish(d / tmp, self.public)

    def public_der(self):
        return _openssl("pkey", "-pubin", "-in", self.public, "-outform", "DER")

    def jwk(self, kid=None, alg=None):
        """The public JWK (oct for HMAC: the secret itself)."""
        if self.kind == "hmac":
            k = {"kty": "oct", "k": b64u(self.secret)}
        elif self.kind == "rsa":
            out = _openssl("rsa", "-pubin", "-in", self.public, "-noout", "-modulus")
            n = bytes.fromhex(out.decode().strip().split("=", 1)[1])
            k = {"kty": "RSA", "n": b64u(n), "e": "AQAB"}
        elif self.kind in ("ec256", "ec384"):
            size = 32 if self.kind == "ec256" else 48
            point = self.public_der()[-(2 * size + 1):]
            if point[0] != 4:
                raise harness.Fail("unexpected EC point encoding")
            k = {"kty": "EC", "crv": "P-256" if size == 32 else "P-384",
                 "x": b64u(point[1:1 + size]), "y": b64u(point[1 + size:])}
        else:
            k = {"kty": "OKP", "crv": "Ed25519", "x": b64u(self.public_der()[-32:])}
        if kid:
            k["kid"] = kid
        if alg:
            k["alg"] = alg
        return k

    def keys_file_bytes(self):
        """What --jwt-keys points at for this key alone."""
        if self.kind == "hmac":
            return self.secret_file.read_bytes()
        return self.public.read_bytes()


_keys = {}


def key(kind, name=None):
    name = name or kind
    if name not in _keys:
        _keys[name] = Key(kind, name)
    return _keys[name]


def key_for(alg):
    return key(KIND[alg])


def _der_ecdsa_to_raw(der, size):
    """ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs) -> r || s, size bytes each."""
    if der[0] != 0x30:
        raise harness.Fail("ECDSA signature is not a DER SEQUENCE")
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise harness.Fail("ECDSA signature part is not an INTEGER")
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


def sign(alg, k, data):
    """The JWS signature of data (bytes) with key k under alg."""
    if alg.startswith("HS"):
        return hmac.new(k.secret, data, getattr(hashlib, DIGEST[alg[2:]])).digest()
    if alg == "EdDSA":
        # One-shot Ed25519 signing needs the input's size: a file, not a pipe.
        f = harness.suite_dir() / ("eddsa-input.%d" % os.getpid())
        f.write_bytes(data)
        try:
            return _openssl("pkeyutl", "-sign", "-inkey", k.private, "-rawin", "-in", f)
        finally:
            f.unlink()
    md = "-" + DIGEST[alg[2:]]
    if alg.startswith("RS"):
        return _openssl("dgst", md, "-sign", k.private, inp=data)
    if alg.startswith("PS"):
        return _openssl("dgst", md, "-sign", k.private, "-sigopt", "rsa_padding_mode:pss",
                        "-sigopt", "rsa_pss_saltlen:digest", inp=data)
    der = _openssl("dgst", md, "-sign", k.private, inp=data)
    return _der_ecdsa_to_raw(der, 32 if alg == "ES256" else 48)


def claims(sub="device-7", ttl=300, **extra):
    """Typical claims: sub, iat now, exp now + ttl (ttl None: no exp)."""
    now = int(time.time())
    c = {"sub": sub, "iat": now}
    if ttl is not None:
        c["exp"] = now + ttl
    c.update(extra)
    return c


def token(alg, k=None, payload=None, header=None, kid=None):
    """A compact JWS. payload: dict (JSON-encoded) or raw bytes; header
    defaults to {"alg": alg, "typ": "JWT"} (+ kid)."""
    k = k or key_for(alg)
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
        if kid:
            header["kid"] = kid
    if payload is None:
        payload = claims()
    h = b64u(json.dumps(header, separators=(",", ":")))
    p = b64u(payload if isinstance(payload, bytes) else
             json.dumps(payload, separators=(",", ":")))
    signing_input = (h + "." + p).encode()
    return h + "." + p + "." + b64u(sign(alg, k, signing_input))


def keys_file(ctx, keys, name="jwt-keys"):
    """--jwt-keys file: one key's own file (PEM or secret), or for a list of
    (key, kid, alg) a JWKS document."""
    path = Path(ctx.dir) / name
    if isinstance(keys, Key):
        path.write_bytes(keys.keys_file_bytes())
    else:
        path.write_text(json.dumps({"keys": [k.jwk(kid, alg) for k, kid, alg in keys]}))
    return path
