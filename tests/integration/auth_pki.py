"""Client certificates carrying an identity, signed at test time by the
suite's client CA (the one mqtls is given with --client-ca).

`openssl x509 -req` with a random serial is used rather than `openssl ca`, so
tests running at the same time never share the CA's database files.
"""
import os
import subprocess
from pathlib import Path

from harness import Fail

EXT = """\
[ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(*args):
    r = subprocess.run(["openssl"] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise Fail("openssl %s: %s" % (" ".join(map(str, args)),
                                       r.stderr.decode(errors="replace")))


def client_cert(ctx, name, cn, sans=(), ca_cert=None):
    """NAME.pem / NAME.key in the test's directory: subject CN=cn and the
    given subjectAltName entries ("DNS:x", "email:y", "URI:z"), signed by the
    suite's client CA (or ca_cert, whose key lies next to it as ca.key).
    Returns (cert, key) as str."""
    ca_cert = Path(ca_cert or ctx.pki.client_ca)
    ca_key = ca_cert.with_name("ca.key")
    d = Path(ctx.dir)
    key, csr, cert, ext = (d / (name + s) for s in (".key", ".csr", ".pem", ".ext"))
    ext.write_text(EXT + ("subjectAltName = %s\n" % ",".join(sans) if sans else ""))
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    _openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "30",
             "-sha256", "-extfile", ext, "-extensions", "ext", "-out", cert)
    return str(cert), str(key)
