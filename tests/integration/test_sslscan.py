"""The TLS surface as sslscan, an outside scanner, sees it."""
import re
import shutil
import subprocess

from harness import check, test


def _scan(m):
    out = subprocess.run(["sslscan", "--no-colour", "--no-heartbleed", "%s:%d" % (m.host, m.port)],
                         capture_output=True, text=True, timeout=120).stdout
    return out


@test
def sslscan_sees_only_tls12_and_tls13_with_aead_forward_secret_suites(ctx):
    if shutil.which("sslscan") is None:
        raise AssertionError("sslscan is not installed (make deps installs it)")
    _, m = ctx.pair()
    out = _scan(m)
    protocols = dict(re.findall(r"^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)", out, re.M))
    check(protocols.get("TLSv1.2") == "enabled" and protocols.get("TLSv1.3") == "enabled",
          "TLS 1.2/1.3 not both enabled: %r\n%s" % (protocols, out))
    for old in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        check(protocols.get(old) == "disabled", "%s is %r\n%s" % (old, protocols.get(old), out))
    suites = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+\d+ bits\s+(\S+)", out, re.M)
    check(suites, "sslscan listed no suites:\n%s" % out)
    for version, name in suites:
        if version == "TLSv1.2":
            check(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name),
                  "TLS 1.2 suite without ECDHE+AEAD accepted: %s" % name)
        else:
            check(name in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                           "TLS_CHACHA20_POLY1305_SHA256"), "unexpected TLS 1.3 suite %s" % name)
    groups = set(re.findall(r"^TLSv1\.[23]\s+\d+ bits\s+(\S+)", out.split("Key Exchange Group")[1], re.M))
    check(groups and groups <= {"x25519", "secp256r1"}, "groups beyond X25519/P-256: %r" % groups)
    check("Session renegotiation not supported" in out, "renegotiation is not refused:\n%s" % out)
