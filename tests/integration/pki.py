"""Test PKI, generated at test time with the openssl command line tool.

Layout (all under one temporary directory, created once per suite run):
  root CA  -> intermediate CA -> server leaves (EC P-256, RSA 2048, expired)
  client CA -> client leaves (good, expired, revoked) + a CRL revoking one
  other CA  -> an untrusted client leaf; also the CA a "wrong trust" client uses
The server is presented as fullchain.pem (leaf + intermediate) so chain
building is exercised; clients trust only the root.
"""
import subprocess
from pathlib import Path

CA_CONF = """\
[ca]
default_ca = this_ca
[this_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
private_key = $dir/ca.key
certificate = $dir/ca.pem
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
default_days = 30
default_crl_days = 30
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ext_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ext_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ext_client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

PAST_START = "20200101000000Z"
PAST_END = "20210101000000Z"


def _run(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args),
                                                      r.stderr.decode(errors="replace")))
    return r.stdout


def _ec_key(path):
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(path))


def _rsa_key(path):
    _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", str(path))


class _CA:
    """A CA managed by `openssl ca` (so it can sign with chosen dates and revoke)."""

    def __init__(self, base, name, cn, parent=None):
        self.dir = base / name
        (self.dir / "newcerts").mkdir(parents=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "crlnumber").write_text("1000\n")
        self.conf = self.dir / "ca.cnf"
        self.conf.write_text(CA_CONF.format(dir=self.dir))
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        _ec_key(self.key)
        if parent is None:
            _run("req", "-config", str(self.conf), "-new", "-x509", "-key", str(self.key),
                 "-subj", "/CN=" + cn, "-days", "30", "-extensions", "ext_ca",
                 "-out", str(self.cert))
        else:
            csr = self.dir / "ca.csr"
            _run("req", "-config", str(self.conf), "-new", "-key", str(self.key),
                 "-subj", "/CN=" + cn, "-out", str(csr))
            parent.sign(csr, self.cert, "ext_ca")

    def sign(self, csr, out, ext, start=None, end=None, extfile=None):
        args = ["ca", "-batch", "-notext", "-config", str(self.conf), "-extensions", ext,
                "-in", str(csr), "-out", str(out)]
        if extfile:
            args += ["-extfile", str(extfile)]
        if start:
            args += ["-startdate", start, "-enddate", end]
        else:
            args += ["-days", "30"]
        _run(*args)

    def issue(self, base, name, cn, ext, rsa=False, start=None, end=None, san=None):
        """Create NAME.key / NAME.pem in BASE signed by this CA; returns (cert, key).
        san: a server leaf with this subjectAltName ("DNS:a.example,DNS:*.b.example")
        instead of the one ext_server names."""
        key = base / (name + ".key")
        cert = base / (name + ".pem")
        csr = base / (name + ".csr")
        extfile = None
        (_rsa_key if rsa else _ec_key)(key)
        _run("req", "-config", str(self.conf), "-new", "-key", str(key), "-subj", "/CN=" + cn,
             "-out", str(csr))
        if san:
            extfile = base / (name + ".ext")
            extfile.write_text("[%s]\nbasicConstraints = CA:FALSE\n"
                               "keyUsage = critical,digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage = serverAuth\nsubjectAltName = %s\n" % (ext, san))
        self.sign(csr, cert, ext, start, end, extfile)
        return cert, key

    def revoke(self, cert):
        _run("ca", "-config", str(self.conf), "-revoke", str(cert))

    def crl(self, out):
        _run("ca", "-config", str(self.conf), "-gencrl", "-out", str(out))
        return out


class PKI:
    """Paths to every file the tests need (all absolute str)."""

    def __init__(self, base):
        base = Path(base)
        base.mkdir(parents=True, exist_ok=True)
        root = _CA(base, "root", "mqtls test root CA")
        inter = _CA(base, "inter", "mqtls test intermediate CA", parent=root)
        clients = _CA(base, "clientca", "mqtls test client CA")
        other = _CA(base, "other", "mqtls untrusted other CA")

        self.ca = str(root.cert)                 # what clients trust
        self.intermediate = str(inter.cert)
        self.other_ca = str(other.cert)          # a CA that signed nothing of the server's
        self.client_ca = str(clients.cert)       # what mqtls trusts for client certs

        leaf, self.server_key = map(str, inter.issue(base, "server-ec", "localhost", "ext_server"))
        self.server_leaf = leaf
        self.server_cert = self._fullchain(base / "server-ec.fullchain.pem", leaf, inter.cert)

        leaf, self.server_rsa_key = map(str, inter.issue(base, "server-rsa", "localhost",
                                                         "ext_server", rsa=True))
        self.server_rsa_cert = self._fullchain(base / "server-rsa.fullchain.pem", leaf,
                                               inter.cert)

        leaf, self.server_expired_key = map(str, inter.issue(
            base, "server-expired", "localhost", "ext_server", start=PAST_START, end=PAST_END))
        self.server_expired_cert = self._fullchain(base / "server-expired.fullchain.pem",
                                                   leaf, inter.cert)

        # The same keys in the older encodings mqtls must also read.
        self.server_key_sec1 = str(base / "server-ec.sec1.key")
        _run("ec", "-in", self.server_key, "-out", self.server_key_sec1)
        self.server_rsa_key_pkcs1 = str(base / "server-rsa.pkcs1.key")
        _run("rsa", "-in", self.server_rsa_key, "-traditional", "-out", self.server_rsa_key_pkcs1)

        # Pairs chosen by SNI (test_sni.py): (fullchain, key, leaf) each.
        self.sni = {}
        for name, cn, san, rsa in (("a", "a.sni.test", "DNS:a.sni.test", False),
                                   ("a-next", "a.sni.test", "DNS:a.sni.test", False),
                                   ("a-rsa", "a.sni.test RSA", "DNS:A.sni.test", True),
                                   ("wild", "devices wildcard", "DNS:*.devices.sni.test", False)):
            leaf, key = map(str, inter.issue(base, "sni-" + name, cn, "ext_sni", rsa=rsa, san=san))
            self.sni[name] = (self._fullchain(base / ("sni-%s.fullchain.pem" % name), leaf,
                                              inter.cert), key, leaf)

        self.client_good = tuple(map(str, clients.issue(base, "client-good", "good-client",
                                                        "ext_client")))
        self.client_expired = tuple(map(str, clients.issue(
            base, "client-expired", "expired-client", "ext_client",
            start=PAST_START, end=PAST_END)))
        self.client_revoked = tuple(map(str, clients.issue(base, "client-revoked",
                                                           "revoked-client", "ext_client")))
        clients.revoke(self.client_revoked[0])
        self.crl = str(clients.crl(base / "clientca.crl.pem"))
        self.client_untrusted = tuple(map(str, other.issue(base, "client-untrusted",
                                                           "untrusted-client", "ext_client")))

    @staticmethod
    def _fullchain(out, leaf, inter):
        Path(out).write_bytes(Path(leaf).read_bytes() + Path(inter).read_bytes())
        return str(out)


if __name__ == "__main__":
    import sys
    import tempfile
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mqtls-pki-")
    p = PKI(d)
    for k, v in sorted(vars(p).items()):
        print(k, v)
