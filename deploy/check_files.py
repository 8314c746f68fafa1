"""Reads the files of deploy/ for deploy/check.sh (run with Debian's /usr/bin/python3).

  check_files.py extract OUTDIR   writes what check.sh feeds to real tools:
      dockerfile.packages     "STAGE PACKAGE" per apt-get install'ed package
      dockerfile.copies       each COPY source (repository-relative)
      dockerfile.build.sh     the build stage's RUN line that runs make
      options.SOURCE          mqtls option names a file uses, one per line
      conf.SOURCE             config files embedded in YAML (mqtls, mosquitto)
  check_files.py structure        TAP-style "ok - ..." / "not ok - ..." lines
      (numbered by check.sh) on the shape of the compose and Kubernetes files.

Without PyYAML (python3-yaml) the YAML parts print "skip - ..." lines.
"""
import json
import os
import re
import shlex
import sys

DEPLOY = os.path.dirname(os.path.abspath(__file__))

try:
    import yaml
except ImportError:  # reported as skips, not failures
    yaml = None


def read(rel):
    with open(os.path.join(DEPLOY, rel), encoding="utf-8") as f:
        return f.read()


def dockerfile_instructions():
    """[(stage_index, INSTRUCTION, argument text)] with continuations joined."""
    out, stage, buf = [], -1, ""
    for line in read("Dockerfile").splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comment lines inside a continuation are dropped by docker
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, rest.strip()))
        buf = ""
    return out


def apt_packages(run_arg):
    pkgs = []
    for part in re.split(r"&&|;|\|\|", run_arg):
        words = part.split()
        if "apt-get" in words and "install" in words:
            for w in words[words.index("install") + 1:]:
                if not w.startswith("-"):
                    pkgs.append(w)
    return pkgs


def options_in_argv(argv):
    return [a[2:].split("=", 1)[0] for a in argv if a.startswith("--")]


def options_in_conf(text, commented_too=False):
    """Keys of `key value` lines; with commented_too also "#key value" lines."""
    keys = []
    for line in text.splitlines():
        s = line.strip()
        if commented_too and re.match(r"#[a-z][a-z-]*\s+\S", s):
            s = s[1:]
        if not s or s.startswith("#"):
            continue
        keys.append(s.split()[0])
    return keys


def load_k8s(name="sidecar.yaml"):
    return [d for d in yaml.safe_load_all(read("kubernetes/" + name)) if d]


def k8s_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def write(outdir, name, lines):
    with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in lines))


def extract(outdir):
    instr = dockerfile_instructions()
    froms = [a for s, w, a in instr if w == "FROM"]
    stage_names = ["build" if " AS " in a.upper() else "runtime" for a in froms]
    pkgs, copies, build_runs = [], [], []
    for stage, word, arg in instr:
        if word == "RUN":
            pkgs += ["%s %s" % (stage_names[stage], p) for p in apt_packages(arg)]
            if stage_names[stage] == "build" and re.search(r"\bmake\b", arg) and "apt-get" not in arg:
                build_runs.append(arg)
        elif word == "COPY" and "--from" not in arg:
            copies += shlex.split(arg)[:-1]
        elif word in ("ENTRYPOINT", "CMD") and stage_names[stage] == "runtime":
            argv = json.loads(arg) if arg.startswith("[") else shlex.split(arg)
            write(outdir, "options.Dockerfile-" + word, options_in_argv(argv))
    write(outdir, "dockerfile.packages", pkgs)
    write(outdir, "dockerfile.copies", copies)
    write(outdir, "dockerfile.build.sh", build_runs)

    write(outdir, "options.mqtls.conf.example",
          options_in_conf(read("mqtls.conf.example"), commented_too=True))
    write(outdir, "options.docker-mqtls.conf", options_in_conf(read("docker/mqtls.conf")))
    unit = read("systemd/mqtls.service")
    for line in unit.splitlines():
        if line.startswith("ExecStart="):
            write(outdir, "options.systemd-ExecStart", options_in_argv(shlex.split(line[10:])))

    if yaml is None:
        return
    compose = yaml.safe_load(read("docker-compose.yml"))
    write(outdir, "options.compose-command",
          options_in_argv(compose["services"]["mqtls"].get("command", [])))
    for manifest, tag in (("sidecar.yaml", "k8s-"), ("replicas.yaml", "k8s-replicas-")):
        docs = load_k8s(manifest)
        for cm in k8s_kind(docs, "ConfigMap"):
            for name, text in cm.get("data", {}).items():
                write(outdir, "conf." + tag + name, text.splitlines())
                if name.startswith("mqtls"):
                    write(outdir, "options." + tag + name, options_in_conf(text))
        for dep in k8s_kind(docs, "Deployment"):
            for c in dep["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "mqtls":
                    write(outdir, "options." + tag + "args", options_in_argv(c.get("args", [])))


class Tap:
    def check(self, cond, name, diag=None):
        print(("ok - " if cond else "not ok - ") + name)
        if not cond and diag:
            print("# " + str(diag))

    def skip(self, name, why):
        print("skip - %s # SKIP %s" % (name, why))


def secure(c):
    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {}).get("drop", [])
    return (sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
            and sc.get("allowPrivilegeEscalation") is False and "ALL" in caps
            and isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] != 0)


def structure():
    t = Tap()
    if yaml is None:
        t.skip("docker-compose.yml and kubernetes/sidecar.yaml parse as YAML",
               "python3-yaml not installed")
        return
    replicas(t)
    try:
        compose = yaml.safe_load(read("docker-compose.yml"))
        t.check(True, "docker-compose.yml parses as YAML")
    except yaml.YAMLError as e:
        t.check(False, "docker-compose.yml parses as YAML", e)
        compose = None
    if compose:
        svc = compose.get("services", {})
        mq, mt = svc.get("mosquitto", {}), svc.get("mqtls", {})
        t.check("ports" not in mq and mq.get("image", "").startswith("eclipse-mosquitto"),
                "compose: mosquitto (eclipse-mosquitto) publishes no port")
        nets = compose.get("networks", {})
        t.check(all(nets.get(n, {}).get("internal") is True for n in mq.get("networks", [])),
                "compose: mosquitto is only on internal networks")
        t.check(any(str(p).split(":")[-1] == "8883" for p in mt.get("ports", [])),
                "compose: mqtls publishes 8883")
        vols = [str(v) for v in mt.get("volumes", [])]
        t.check(any(v.startswith("./certs:") and v.endswith(":ro") for v in vols),
                "compose: ./certs is mounted read-only into mqtls", vols)
        build = mt.get("build", {})
        grace = str(mt.get("stop_grace_period", "10s"))
        t.check(grace.endswith("s") and grace[:-1].isdigit() and int(grace[:-1]) >= 35,
                "compose: mqtls stop_grace_period %s covers the 30 s drain + 5" % grace)
        t.check(os.path.isfile(os.path.join(DEPLOY, build.get("context", "."),
                                            build.get("dockerfile", "Dockerfile"))),
                "compose: the mqtls build context and Dockerfile exist")
        srcs = [v.split(":")[0] for s in svc.values() for v in s.get("volumes", [])
                if str(v).startswith("./") and not str(v).startswith("./certs")]
        missing = [s for s in srcs if not os.path.exists(os.path.join(DEPLOY, s))]
        t.check(not missing, "compose: bind-mounted files exist", missing)

    try:
        docs = load_k8s()
        t.check(True, "kubernetes/sidecar.yaml parses as YAML")
    except yaml.YAMLError as e:
        t.check(False, "kubernetes/sidecar.yaml parses as YAML", e)
        return
    t.check(all("apiVersion" in d and "kind" in d and d.get("metadata", {}).get("name") for d in docs),
            "k8s: every document has apiVersion, kind and metadata.name")
    deps, svcs = k8s_kind(docs, "Deployment"), k8s_kind(docs, "Service")
    t.check(len(deps) == 1 and len(svcs) == 1, "k8s: one Deployment and one Service")
    if not deps or not svcs:
        return
    pod = deps[0]["spec"]["template"]["spec"]
    sel = deps[0]["spec"]["selector"]["matchLabels"]
    labels = deps[0]["spec"]["template"]["metadata"]["labels"]
    t.check(all(labels.get(k) == v for k, v in sel.items()), "k8s: the selector matches the pod labels")
    t.check(all(labels.get(k) == v for k, v in svcs[0]["spec"]["selector"].items()),
            "k8s: the Service selects the pod")
    cs = {c["name"]: c for c in pod["containers"]}
    t.check("broker" in cs and "mqtls" in cs, "k8s: the pod has broker and mqtls containers")
    mqtls = cs.get("mqtls", {})
    ports = {p.get("name"): p.get("containerPort") for p in mqtls.get("ports", [])}
    env = {e["name"]: e.get("value", "") for e in mqtls.get("env", [])}
    metrics_port = env.get("MQTLS_METRICS", "").rpartition(":")[2]
    for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = mqtls.get(kind, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        t.check(get.get("path") == path and str(port) == metrics_port and metrics_port,
                "k8s: mqtls %s is GET %s on the metrics port (MQTLS_METRICS %s)"
                % (kind, path, env.get("MQTLS_METRICS")), get)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    t.check(grace >= 35, "k8s: terminationGracePeriodSeconds %s covers the 30 s drain + 5" % grace)
    req = mqtls.get("resources", {}).get("requests", {})
    t.check("cpu" in req and "memory" in req, "k8s: mqtls has cpu and memory requests")
    bad = [n for n, c in cs.items() if not secure(c)]
    t.check(not bad, "k8s: every container is non-root, read-only root fs, no privilege escalation, drops ALL", bad)
    conf = {}
    for cm in k8s_kind(docs, "ConfigMap"):
        conf.update(cm.get("data", {}))
    t.check(re.search(r"^upstream 127\.0\.0\.1:1883$", conf.get("mqtls.conf", ""), re.M) is not None,
            "k8s: mqtls upstream is 127.0.0.1:1883")
    t.check(re.search(r"^listener 1883 127\.0\.0\.1$", conf.get("mosquitto.conf", ""), re.M) is not None,
            "k8s: the broker listens on 127.0.0.1:1883 only")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    tls = [v for v in vols.values() if "secret" in v]
    t.check(len(tls) == 1, "k8s: the certificate comes from a Secret volume")
    if tls:
        mounts = [m for m in mqtls.get("volumeMounts", []) if m["name"] == tls[0]["name"]]
        t.check(mounts and all("subPath" not in m for m in mounts),
                "k8s: the Secret is mounted as a directory (updates reach mqtls)")
        d = mounts[0]["mountPath"] if mounts else "?"
        t.check(re.search(r"^cert %s/tls\.crt$" % re.escape(d), conf.get("mqtls.conf", ""), re.M)
                and re.search(r"^key %s/tls\.key$" % re.escape(d), conf.get("mqtls.conf", ""), re.M),
                "k8s: mqtls reads tls.crt and tls.key from the Secret mount")
    undefined = ["%s:%s" % (n, m["name"]) for n, c in cs.items()
                 for m in c.get("volumeMounts", []) if m["name"] not in vols]
    t.check(not undefined, "k8s: every volume mount names a defined volume", undefined)
    ports = [p for p in svcs[0]["spec"]["ports"] if p.get("port") == 8883]
    t.check(len(ports) == 1 and ports[0].get("targetPort") in (8883, "mqtts"), "k8s: the Service serves 8883")


def replicas(t):
    """deploy/kubernetes/replicas.yaml: N stateless replicas sharing the
    certificate and the ticket keys through Secrets."""
    try:
        docs = load_k8s("replicas.yaml")
        t.check(True, "kubernetes/replicas.yaml parses as YAML")
    except yaml.YAMLError as e:
        t.check(False, "kubernetes/replicas.yaml parses as YAML", e)
        return
    deps, svcs = k8s_kind(docs, "Deployment"), k8s_kind(docs, "Service")
    t.check(len(deps) == 1 and len(svcs) == 1, "replicas: one Deployment and one Service")
    if not deps or not svcs:
        return
    spec = deps[0]["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    t.check(int(spec.get("replicas", 1)) >= 2, "replicas: the Deployment runs several replicas")
    t.check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
            and all(labels.get(k) == v for k, v in svcs[0]["spec"]["selector"].items()),
            "replicas: the Deployment and the Service select the pods")
    cs = {c["name"]: c for c in pod["containers"]}
    mqtls = cs.get("mqtls", {})
    t.check(secure(mqtls), "replicas: mqtls is non-root, read-only root fs, drops ALL")
    t.check(pod.get("terminationGracePeriodSeconds", 30) >= 35,
            "replicas: terminationGracePeriodSeconds covers the 30 s drain + 5")
    conf = "".join(cm.get("data", {}).get("mqtls.conf", "") for cm in k8s_kind(docs, "ConfigMap"))
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in mqtls.get("volumeMounts", [])}
    t.check(all(n in vols for n in mounts), "replicas: every volume mount names a defined volume")

    def secret_dir(secret):
        names = [n for n, v in vols.items() if v.get("secret", {}).get("secretName") == secret]
        m = mounts.get(names[0]) if names else None
        return m["mountPath"] if m and "subPath" not in m else None
    tickets, tls = secret_dir("mqtls-ticket-keys"), secret_dir("mqtt-tls")
    m = re.search(r"^ticket-keys (\S+)$", conf, re.M)
    t.check(tickets and m and os.path.dirname(m.group(1)) == tickets,
            "replicas: every replica reads ticket-keys from the shared Secret, mounted as a directory",
            (tickets, m and m.group(1)))
    t.check(tls and re.search(r"^cert %s/tls\.crt$" % re.escape(tls), conf, re.M)
            and re.search(r"^key %s/tls\.key$" % re.escape(tls), conf, re.M),
            "replicas: the certificate comes from the mqtt-tls Secret directory")
    t.check(svcs[0]["spec"].get("externalTrafficPolicy") == "Local"
            or re.search(r"^accept-proxy on$", conf, re.M) is not None,
            "replicas: client addresses survive (externalTrafficPolicy Local or accept-proxy)")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "extract":
        extract(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "structure":
        structure()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
