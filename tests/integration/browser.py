"""Headless Chromium for the integration tests, driven over the DevTools
protocol on a pipe (--remote-debugging-pipe: commands on its fd 3, replies
on its fd 4, each a JSON text ended by NUL), so a test waits for what the
page shows instead of sleeping. The browser trusts the test CA through an
NSS database under a private $HOME (Chromium on Linux reads
$HOME/.pki/nssdb); pages come from a loopback HTTP server in the test.
"""
import base64
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time

from harness import REPO, Fail, Proc, Skip

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MQTTJS_BUNDLE = REPO / "build" / "npm" / "node_modules" / "mqtt" / "dist" / "mqtt.min.js"


def require_chromium():
    """Skip unless Chromium is installed; a missing MQTT.js bundle is a failure
    (make deps installs both, so only a machine without a browser skips)."""
    if not os.access(CHROMIUM, os.X_OK):
        raise Skip("chromium is not installed (make deps installs it)")
    if not MQTTJS_BUNDLE.is_file():
        raise Fail("%s is missing: run make deps (npm install --prefix build/npm mqtt)" % MQTTJS_BUNDLE)


def nss_home(ctx, ca_pem):
    """A $HOME whose NSS database trusts ca_pem for TLS servers."""
    home = ctx.dir / "browser-home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "mqtls-test", "-i", str(ca_pem)]):
        r = subprocess.run(["certutil", "-d", "sql:%s" % db] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        if r.returncode != 0:
            raise Fail("certutil %s: %s" % (" ".join(args), r.stdout.decode(errors="replace")))
    return home


class PageServer:
    """Serves a fixed set of paths over plain HTTP on 127.0.0.1 (a thread of
    the test process): {"/": (content_type, bytes), ...}."""

    def __init__(self, files):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path not in files:
                    self.send_error(404)
                    return
                ctype, body = files[path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def kill(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Chromium:
    """One headless Chromium with one page, attached through the DevTools
    protocol. Events are kept (console messages help when a test fails)."""

    def __init__(self, ctx, home, width=900, height=520):
        self.ctx = ctx
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        args = [CHROMIUM, "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
                "--no-default-browser-check", "--disable-dev-shm-usage", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=%s" % (ctx.dir / "chromium-profile"),
                "--window-size=%d,%d" % (width, height), "--remote-debugging-pipe", "about:blank"]
        # The shell puts the pipe ends on the descriptors Chromium expects and
        # then becomes Chromium (same PID, so the harness can end it).
        env = dict(os.environ, HOME=str(home))
        self.proc = Proc(ctx, "chromium",
                         ["/bin/bash", "-c", 'exec "$@" 3<&%d 4>&%d' % (cmd_r, res_w), "bash"] + args,
                         ctx.dir / "chromium.log", pass_fds=(cmd_r, res_w), env=env)
        os.close(cmd_r)
        os.close(res_w)
        ctx._procs.append(self)             # closes the pipes at cleanup
        self._buf = b""
        self._next_id = 0
        self.events = []
        self.console = []
        # The first reply waits for the browser to start: slow on a loaded machine.
        targets = self.call("Target.getTargets", timeout=30)["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        if page is None:
            page = {"targetId": self.call("Target.createTarget", url="about:blank")["targetId"]}
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                 flatten=True)["sessionId"]
        self.call("Runtime.enable", session=True)
        self.call("Page.enable", session=True)

    # -- the pipe ------------------------------------------------------------
    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail("chromium: no DevTools reply in time; log:\n%s" % self.proc.log()[-3000:])
            ready, _, _ = select.select([self._res_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise Fail("chromium closed its DevTools pipe; log:\n%s" % self.proc.log()[-3000:])
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def _note_event(self, m):
        self.events.append(m.get("method"))
        if m.get("method") == "Runtime.consoleAPICalled":
            args = m["params"].get("args", [])
            self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif m.get("method") == "Runtime.exceptionThrown":
            d = m["params"].get("exceptionDetails", {})
            self.console.append("exception: %s" % d.get("exception", {}).get("description", d.get("text")))

    def call(self, method, session=False, timeout=10, **params):
        """Sends one command and returns its result; events seen meanwhile are kept."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._cmd_w, data):]
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") != self._next_id:
                self._note_event(m)
                continue
            if "error" in m:
                raise Fail("chromium: %s failed: %s" % (method, m["error"]))
            return m.get("result", {})

    # -- the page ------------------------------------------------------------
    def navigate(self, url):
        r = self.call("Page.navigate", session=True, url=url)
        if r.get("errorText"):
            raise Fail("chromium could not load %s: %s" % (url, r["errorText"]))

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise Fail("chromium: %s threw %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def kill(self):
        try:
            self.call("Browser.close", timeout=3)
        except Exception:
            pass
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._cmd_w = self._res_r = -1
        self.proc.kill()
