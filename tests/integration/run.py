#!/usr/bin/python3
"""Run the mqtls integration tests and print TAP.

usage: /usr/bin/python3 tests/integration/run.py [-k] [-j N] [FILTER...]
  FILTER   run only tests whose name contains one of these substrings
  -j N     run N tests at a time (default 2)
  -k       keep the temporary directory (PKI, logs) after the run
Exit code 0 when every test passed (skips count as passed).
Environment: MQTLS_BIN=path tests another binary than build/mqtls;
MQTLS_REFERENCE=1 puts mosquitto's own TLS listener in mqtls's place (to tell
a client-side test problem from an mqtls bug; log assertions then fail).
A failing test prints its traceback, the mqtls log and the broker log.
"""
import importlib
import os
import signal
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

MODULES = ["test_clients", "test_mtls", "test_tls", "test_connect", "test_sessions",
           "test_lifecycle", "test_sslscan", "test_hostile", "test_operations", "test_reload", "test_scaleout",
           "test_browser"]
MODULES += ["test_websockets"]
MODULES += ["test_brokers"]
MODULES += ["test_resume"]
MODULES += ["test_upstream_tls"]
MODULES += ["test_sni"]
MODULES += ["test_acl"]
# Authentication tests live in test_auth_*.py, picked up by name.
MODULES += sorted(p.stem for p in HERE.glob("test_auth_*.py"))


def run_one(fn):
    """Run one test in a forked child (so tests cannot disturb each other and a
    hang can be killed). Returns (status, detail_lines, seconds)."""
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        # Whatever a client library prints must not land in the TAP stream.
        out = os.open(str(harness.suite_dir() / ("output.%d" % os.getpid())),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        status, lines = "ok", []
        ctx = None

        def on_alarm(signum, frame):
            raise TimeoutError("test timed out after %ss" % fn.timeout)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(fn.timeout)
        try:
            ctx = harness.Ctx(fn.__name__)
            fn(ctx)
            dead = ctx.unexpected_exits()
            if dead:
                raise harness.Fail("; ".join(dead))
            stray = ctx.stray_log_lines()
            if stray:
                raise harness.Fail("mqtls wrote %d line(s) that are not log events, e.g. %r"
                                   % (len(stray), stray[:3]))
            lines = list(ctx.notes)
        except harness.Skip as e:
            status, lines = "skip", [str(e)]
        except BaseException:
            status = "fail"
            lines = traceback.format_exc().rstrip().splitlines()
            if ctx is not None:
                lines += ctx.dump()
            sys.stdout.flush()
            sys.stderr.flush()
            printed = harness.tail(harness.suite_dir() / ("output.%d" % os.getpid()), 20)
            if printed:
                lines += ["---- the test's own output (last 20 lines) ----"] + printed
        finally:
            signal.alarm(0)
            if ctx is not None:
                ctx.cleanup()
        tmp = harness.suite_dir() / ("result.%d.tmp" % os.getpid())
        tmp.write_text(status + "\n" + "\n".join(lines))
        os.rename(tmp, harness.suite_dir() / ("result.%d" % os.getpid()))
        os._exit(0)
    # The child's own alarm fires first; this is a backstop for a stuck child.
    deadline = t0 + fn.timeout + 20
    while True:
        wpid, _ = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            harness.kill_recorded(pid)
            return "fail", ["test hung past its timeout of %ss" % fn.timeout], \
                time.monotonic() - t0
        time.sleep(0.02)
    res = harness.suite_dir() / ("result.%d" % pid)
    try:
        text = res.read_text()
    except OSError:
        return "fail", ["test process died without a result"], time.monotonic() - t0
    status, _, rest = text.partition("\n")
    return status, rest.splitlines() if rest else [], time.monotonic() - t0


def main(argv):
    jobs, keep, filters = 2, False, []
    it = iter(argv)
    for a in it:
        if a == "-j":
            jobs = int(next(it))
        elif a == "-k":
            keep = True
        else:
            filters.append(a)
    for m in MODULES:
        importlib.import_module(m)
    for need in (harness.MQTLS, harness.MOSQUITTO):
        if not os.access(str(need), os.X_OK):
            print("Bail out! %s not found or not executable (make build/mqtls?)" % need)
            return 1
    tests = [t for t in harness.TESTS
             if not filters or any(f in t.__name__ for f in filters)]
    # Tests that judge timing run last, one at a time (harness.test alone=True).
    shared = [t for t in tests if not t.alone]
    tests = shared + [t for t in tests if t.alone]
    harness.pki()   # once, before forking, so every test shares it
    print("1..%d" % len(tests), flush=True)
    failed = 0
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        futures = [ex.submit(run_one, t) for t in shared]
        for n, t in enumerate(tests, 1):
            status, lines, secs = (futures[n - 1].result() if n <= len(futures)
                                   else run_one(t))
            if status == "ok":
                print("ok %d - %s  # %.1fs" % (n, t.__name__, secs))
                for l in lines:
                    print("#   " + l)
            elif status == "skip":
                print("ok %d - %s # SKIP %s" % (n, t.__name__, " ".join(lines)))
            else:
                failed += 1
                print("not ok %d - %s  # %.1fs" % (n, t.__name__, secs))
                for l in lines:
                    print("#   " + l)
            sys.stdout.flush()
    print("# %d passed, %d failed, %.0fs" % (len(tests) - failed, failed,
                                            time.monotonic() - t0))
    if keep:
        print("# kept %s" % harness.suite_dir())
    else:
        harness.remove_suite_dir()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
