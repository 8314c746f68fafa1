"""One reloadable configuration: MQTLS_* environment variables and their
precedence, reloads on SIGHUP and on a change of any loaded file (inotify on
the files' directories, so a rename or a Kubernetes ..data swap is seen),
options that need a restart, and refusals that keep what is running."""
import os
import shutil
import signal
import socket
import ssl
import time
from pathlib import Path

from cryptography import x509

import auth_env as A
import mqttwire as w
from harness import check, free_port, parse_kv, test, wait_until


def _leaf_serial(path):
    """Serial number of the first certificate of a PEM file."""
    return x509.load_pem_x509_certificate(Path(path).read_bytes()).serial_number


def _served_serial(ctx, m):
    """Serial number of the certificate a new TLS connection is served."""
    s = ctx.tls_connect(m)
    der = s.getpeercert(binary_form=True)
    s.close()
    return x509.load_der_x509_certificate(der).serial_number


def _cert_lines(m):
    """The parsed `certificate ...` lines, oldest first."""
    return [parse_kv(l) for l in m.log().splitlines() if " certificate file=" in l]


def _wait_serial_logged(m, serial, timeout=6):
    """Waits until mqtls logs that the certificate with |serial| is live."""
    def logged():
        return [c for c in _cert_lines(m) if int(c.get("serial", "0"), 16) == serial]
    return wait_until(logged, timeout, "certificate serial=%X in the mqtls log" % serial)[0]


def _replace(path, data):
    """Writes data next to path and renames it over path (what certificate
    tools and careful editors do)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    tmp.replace(path)


def _copy_pair(ctx, cert, key, d=None):
    d = Path(d or ctx.dir / "tls")
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(cert, d / "cert.pem")
    shutil.copy(key, d / "key.pem")
    return d / "cert.pem", d / "key.pem"


def _live(ctx, m, client_id="live", version=4):
    """An MQTT session through mqtls (CONNACK 0) that later must still answer."""
    c = A.raw_connect(ctx, m, version, client_id)
    check(c.code == 0, "want CONNACK 0 for %r, got %r" % (client_id, c.code))
    return c


def _count(m, needle):
    return len(m.lines(needle))


def _wait_more(m, needle, before, timeout=6):
    return wait_until(lambda: _count(m, needle) > before and m.lines(needle), timeout,
                      "a new %r line in the mqtls log" % needle)


def _idle_close_seconds(ctx, m):
    """Seconds until mqtls closes a TLS connection that never sends CONNECT."""
    s = ctx.tls_connect(m)
    t0 = time.monotonic()
    check(w.Reader(s).expect_closed(8) == [], "packet from an idle session")
    return time.monotonic() - t0


def _big_connect(ctx, m, client_id):
    """CONNACK code for an MQTT 5 CONNECT of about 200 bytes (None: closed)."""
    return A.raw_connect(ctx, m, 5, client_id + "-" + "x" * 180).code


# -- the environment ----------------------------------------------------------------

@test(timeout=40)
def environment_overrides_the_config_file_and_a_flag_overrides_the_environment(ctx):
    b = ctx.broker()
    conf = ctx.dir / "mqtls.conf"
    conf.write_text("listen 127.0.0.1:0\ncert %s\nkey %s\nupstream %s\nconnect-timeout 30\n"
                    % (ctx.pki.server_cert, ctx.pki.server_key, b.upstream))
    # Each test runs in a process of its own: its environment is its own.
    os.environ["MQTLS_CONNECT_TIMEOUT"] = "1"
    m1 = ctx.mqtls_raw(["--config", conf])
    took = _idle_close_seconds(ctx, m1)
    check(0.7 < took < 3, "MQTLS_CONNECT_TIMEOUT=1 over the file's 30: closed after %.1f s" % took)
    check(m1.wait_close(1)[0].get("reason") == "connect_timeout", "close reason %r"
          % m1.close_lines())
    _live(ctx, m1, "from-file")   # the file's upstream still applies
    m2 = ctx.mqtls_raw(["--config", conf, "--connect-timeout", "3"])
    took = _idle_close_seconds(ctx, m2)
    check(2.6 < took < 5.5, "--connect-timeout 3 over MQTLS_CONNECT_TIMEOUT=1: closed after %.1f s"
          % took)


@test
def bad_or_unknown_mqtls_variable_is_a_one_line_error_naming_it(ctx):
    args = ["--listen", "127.0.0.1:0", "--cert", ctx.pki.server_cert, "--key", ctx.pki.server_key,
            "--upstream", "127.0.0.1:1"]
    for var, value, want in (("MQTLS_MAX_BUFFER", "lots", "MQTLS_MAX_BUFFER: expected an integer"),
                             ("MQTLS_MAX_BUFER", "65536",
                              "MQTLS_MAX_BUFER: no such option (did you mean MQTLS_MAX_BUFFER?)"),
                             ("MQTLS_ALLOW_ANONYMOUS", "perhaps", "MQTLS_ALLOW_ANONYMOUS: expected on or off")):
        os.environ[var] = value
        rc, out, err = ctx.run_mqtls(*args)
        del os.environ[var]
        lines = err.strip().splitlines()
        check(rc == 2 and len(lines) == 1 and want in lines[0],
              "%s=%s: rc=%d, stderr %r, want one line with %r" % (var, value, rc, lines, want))
    rc, out, err = ctx.run_mqtls("--help")
    check(rc == 0 and "MQTLS_<NAME>" in out and "precedence" in out,
          "--help does not state the precedence of MQTLS_* variables:\n" + out[:600])


# -- certificates replaced on disk ---------------------------------------------------

@test
def certificate_replaced_by_rename_is_served_without_sighup_and_live_connections_stay(ctx):
    cert, key = _copy_pair(ctx, ctx.pki.server_cert, ctx.pki.server_key)
    old, new = _leaf_serial(ctx.pki.server_cert), _leaf_serial(ctx.pki.server_rsa_cert)
    b, m = ctx.pair(cert=cert, key=key)
    first = _wait_serial_logged(m, old)
    check(first.get("subject") == "CN=localhost" and first.get("not_after", "").endswith("Z"),
          "startup certificate line lacks subject or not_after: %r" % first)
    live = _live(ctx, m)
    # The key first, then the certificate, as a renewal writes them: the
    # quiet period lets both land before the reload.
    _replace(key, Path(ctx.pki.server_rsa_key).read_bytes())
    _replace(cert, Path(ctx.pki.server_rsa_cert).read_bytes())
    _wait_serial_logged(m, new)
    check(m.lines("file changed"), "no 'file changed' line: the reload had another cause")
    check(_served_serial(ctx, m) == new, "new connections do not get the new certificate")
    check(live.alive(), "the connection opened before the new certificate was lost")
    _live(ctx, m, "after")


@test
def kubernetes_secret_update_is_served_without_sighup(ctx):
    # A mounted Secret: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/.
    d = ctx.dir / "secret"
    _copy_pair(ctx, ctx.pki.server_cert, ctx.pki.server_key, d / "..2026_01_01")
    os.symlink("..2026_01_01", d / "..data")
    os.symlink("..data/cert.pem", d / "tls.crt")
    os.symlink("..data/key.pem", d / "tls.key")
    old, new = _leaf_serial(ctx.pki.server_cert), _leaf_serial(ctx.pki.server_rsa_cert)
    b, m = ctx.pair(cert=d / "tls.crt", key=d / "tls.key")
    _wait_serial_logged(m, old)
    live = _live(ctx, m)
    # What the kubelet's atomic writer does: a new timestamped directory, a
    # new ..data symlink renamed over the old one, the old directory removed.
    _copy_pair(ctx, ctx.pki.server_rsa_cert, ctx.pki.server_rsa_key, d / "..2026_02_01")
    os.symlink("..2026_02_01", d / "..data_tmp")
    os.replace(d / "..data_tmp", d / "..data")
    shutil.rmtree(d / "..2026_01_01")
    _wait_serial_logged(m, new)
    check(_served_serial(ctx, m) == new, "new connections do not get the updated Secret")
    check(live.alive(), "the connection opened before the update was lost")
    # The watch follows the new timestamped directory: a second update is seen too.
    _copy_pair(ctx, ctx.pki.server_cert, ctx.pki.server_key, d / "..2026_03_01")
    n = len(_cert_lines(m))
    os.symlink("..2026_03_01", d / "..data_tmp")
    os.replace(d / "..data_tmp", d / "..data")
    wait_until(lambda: len(_cert_lines(m)) > n and int(_cert_lines(m)[-1]["serial"], 16) == old,
               6, "the second update's certificate line")
    check(_served_serial(ctx, m) == old, "the second Secret update is not served")


@test
def invalid_certificate_replacement_is_refused_naming_the_file_and_the_old_one_stays(ctx):
    cert, key = _copy_pair(ctx, ctx.pki.server_cert, ctx.pki.server_key)
    old = _leaf_serial(ctx.pki.server_cert)
    b, m = ctx.pair(cert=cert, key=key)
    live = _live(ctx, m)
    _replace(cert, b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    line = _wait_more(m, "reload failed", 0)[-1]
    check(str(cert) in line and "not a PEM certificate chain" in line,
          "the failure does not name the certificate file and why: %r" % line)
    check(_served_serial(ctx, m) == old, "a garbage certificate changed what is served")
    # A good certificate with a key that is not its own: the same refusal.
    n = _count(m, "reload failed")
    _replace(cert, Path(ctx.pki.server_cert).read_bytes())
    _replace(key, Path(ctx.pki.server_rsa_key).read_bytes())
    wait_until(lambda: [l for l in m.lines("reload failed")[n:] if "does not match" in l], 6,
               "a reload refused for the mismatched key")
    line = [l for l in m.lines("reload failed") if "does not match" in l][-1]
    check("--key %s" % key in line, "the failure does not name the key file: %r" % line)
    check(_served_serial(ctx, m) == old, "a mismatched key changed what is served")
    check(live.alive(), "the connection opened before the failed reloads was lost")
    _live(ctx, m, "after")


# -- users ---------------------------------------------------------------------------

@test
def users_file_change_is_picked_up_without_sighup(ctx):
    b, m = A.password_pair(ctx)
    live = A.expect_admitted(ctx, m, b, 4, "live", "alice", username="alice",
                             password=A.PASSWORDS["alice"])
    A.expect_refused(ctx, m, b, 4, 4, "bad_credentials", "password: unknown user",
                     username="carol", password="Carol-pw-42", barrier=False)
    users = dict(A.PASSWORDS, carol="Carol-pw-42")
    n = _count(m, "reloaded the configuration")
    A.mosquitto_passwd_file(ctx.dir / "users.new", users)
    (ctx.dir / "users.new").replace(ctx.dir / "users")
    _wait_more(m, "reloaded the configuration", n)
    check(m.lines('file changed: "%s' % (ctx.dir / "users")),
          "no 'file changed' line for the users file")
    A.expect_admitted(ctx, m, b, 4, "carol-1", "carol", username="carol", password="Carol-pw-42")
    check(live.alive(), "the connection made before the reload was lost")


# -- what needs a restart, and a config file that is wrong ---------------------------

def _conf(ctx, b, listen, extra=""):
    return ("listen %s\ncert %s\nkey %s\nupstream %s\n%s"
            % (listen, ctx.pki.server_cert, ctx.pki.server_key, b.upstream, extra)).encode()


@test
def sighup_with_a_changed_listen_address_needs_restart_and_keeps_listening(ctx):
    b = ctx.broker()
    conf = ctx.dir / "mqtls.conf"
    conf.write_bytes(_conf(ctx, b, "127.0.0.1:0"))
    m = ctx.mqtls_raw(["--config", conf])
    live = _live(ctx, m)
    check(_big_connect(ctx, m, "big-before") == 0, "a 200-byte CONNECT refused at the defaults")
    other = free_port()
    # Along with the listener, a limit that can change live.
    _replace(conf, _conf(ctx, b, "127.0.0.1:%d" % other, "max-connect-size 64\n"))
    n = _count(m, "needs restart")
    m.send(signal.SIGHUP)
    line = _wait_more(m, "needs restart", n)[-1]
    check("listen" in line and "max-connect-size" not in line,
          "the restart line should name listen and only what cannot change live: %r" % line)
    check(not m.lines("reload failed"), "reload failed: %r" % m.lines("reload failed"))
    _live(ctx, m, "old-port")     # still listening where it was
    with socket.socket() as s:
        s.settimeout(2)
        check(s.connect_ex(("127.0.0.1", other)) != 0,
              "mqtls listens on the new address %d without a restart" % other)
    code = _big_connect(ctx, m, "big-after")
    check(code == 0x95, "max-connect-size 64 not applied by the reload: CONNACK %r" % code)
    check(live.alive(), "the connection made before the reload was lost")


@test
def config_file_with_an_error_keeps_everything_and_a_good_edit_applies_without_sighup(ctx):
    b = ctx.broker()
    conf = ctx.dir / "mqtls.conf"
    conf.write_bytes(_conf(ctx, b, "127.0.0.1:0"))
    m = ctx.mqtls_raw(["--config", conf])
    live = _live(ctx, m)
    _replace(conf, _conf(ctx, b, "127.0.0.1:0", "max-connect-size 64\nmax-buffer lots\n"))
    m.send(signal.SIGHUP)
    line = m.wait_log("reload failed")[-1]
    check("%s:6: expected an integer" % conf in line,
          "the failure does not name the file, line and reason: %r" % line)
    check(_big_connect(ctx, m, "big-1") == 0,
          "a refused configuration applied its max-connect-size anyway")
    # Corrected, and no signal: the watched config file is enough.
    n = _count(m, "reloaded the configuration")
    _replace(conf, _conf(ctx, b, "127.0.0.1:0", "max-connect-size 64\n"))
    _wait_more(m, "reloaded the configuration with changed options", 0)
    check(_count(m, "reloaded the configuration") > n, "no reload after the fix")
    code = _big_connect(ctx, m, "big-2")
    check(code == 0x95, "max-connect-size 64 from the edited file not applied: CONNACK %r" % code)
    check(live.alive(), "the connection made before the reloads was lost")


@test
def environment_still_beats_the_file_after_a_reload(ctx):
    b = ctx.broker()
    conf = ctx.dir / "mqtls.conf"
    conf.write_bytes(_conf(ctx, b, "127.0.0.1:0", "max-connect-size 64\n"))
    os.environ["MQTLS_MAX_CONNECT_SIZE"] = "65536"
    m = ctx.mqtls_raw(["--config", conf])
    check(_big_connect(ctx, m, "big-1") == 0, "MQTLS_MAX_CONNECT_SIZE did not beat the file")
    n = _count(m, "reloaded the configuration")
    _replace(conf, _conf(ctx, b, "127.0.0.1:0", "max-connect-size 100\n"))
    m.send(signal.SIGHUP)
    _wait_more(m, "reloaded the configuration", n)
    check(_big_connect(ctx, m, "big-2") == 0, "after a reload the file beat MQTLS_MAX_CONNECT_SIZE")
