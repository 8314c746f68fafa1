"""Copies of the deploy files that podman 4.3 on the test machines can run
(used by deploy/test_live.sh; Debian's /usr/bin/python3 with python3-yaml).
The files users get stay as they are: every change here works around a
podman gap or a limit of the test VM, and each is printed as "# adapted: ...".

  adapt.py compose IN OUT NOFILE NPROC
      podman-compose 1.0.3: ulimits above the host's hard limit cannot be set
      without CAP_SYS_RESOURCE (capped at NOFILE), an explicit ulimit list
      replaces podman's defaults (so nproc is given too), and podman's tmpfs
      takes no uid=/gid= options (its `U` option chowns the tmpfs to the
      container's user instead).
  adapt.py kube IN OUT CONFIGDIR
      podman kube play 4.3: a Secret volume needs `optional: false`; subPath
      is ignored, so each ConfigMap key mounted with subPath becomes a
      hostPath file (written to CONFIGDIR) at the same path, read-only. (The
      Service is ignored; podman publishes every containerPort on the host.)
  adapt.py secret NAME CERT KEY OUT
      The Secret a kubernetes.io/tls Secret would be, in the form podman 4.3's
      secret volumes read: `podman secret create NAME OUT`, with the PEM text
      itself under `data` (podman writes `data` values as they are, without
      base64-decoding them, and ignores stringData).
  adapt.py probes MANIFEST POD
      Runs each container's readiness and liveness probes once, as the kubelet
      would (podman 4.3 runs none of them): exec probes with `podman exec
      POD-CONTAINER`; httpGet probes from inside the container (the pod's
      network), with bash's /dev/tcp; tcpSocket probes as a connect to the
      published port on 127.0.0.1. Prints "ok - ..." / "not ok - ..." per probe.
"""
import os
import socket
import subprocess
import sys

import yaml


def note(msg):
    print("# adapted: " + msg)


def compose(src, dst, nofile, nproc):
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for name, svc in doc.get("services", {}).items():
        ul = svc.get("ulimits")
        if ul:
            nf = ul.get("nofile")
            if isinstance(nf, dict):
                for k in ("soft", "hard"):
                    if int(nf.get(k, 0)) > nofile:
                        note("%s: ulimits.nofile.%s %s -> %d (the host's hard limit)" % (name, k, nf[k], nofile))
                        nf[k] = nofile
            elif nf is not None and int(nf) > nofile:
                note("%s: ulimits.nofile %s -> %d (the host's hard limit)" % (name, nf, nofile))
                ul["nofile"] = nofile
            if "nproc" not in ul:
                note("%s: ulimits.nproc %d added (an explicit ulimit list replaces podman's defaults)" % (name, nproc))
                ul["nproc"] = nproc
        tmpfs = svc.get("tmpfs")
        if tmpfs:
            out = []
            for t in ([tmpfs] if isinstance(tmpfs, str) else tmpfs):
                path, _, opts = t.partition(":")
                kept = [o for o in opts.split(",") if o and not o.startswith(("uid=", "gid="))]
                if len(kept) != len([o for o in opts.split(",") if o]):
                    kept.append("U")
                    new = path + ":" + ",".join(kept)
                    note("%s: tmpfs %s -> %s (podman's U: owned by the container's user)" % (name, t, new))
                    t = new
                out.append(t)
            svc["tmpfs"] = out
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False)


def kube(src, dst, configdir):
    with open(src, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    cms = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    for d in docs:
        if d.get("kind") not in ("Deployment", "Pod"):
            continue
        pod = d["spec"]["template"]["spec"] if d["kind"] == "Deployment" else d["spec"]
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for v in vols.values():
            if "secret" in v and "optional" not in v["secret"]:
                v["secret"]["optional"] = False
                note("volume %s: secret.optional: false" % v["name"])
        for c in pod.get("containers", []):
            for m in c.get("volumeMounts", []):
                v = vols.get(m["name"], {})
                if "subPath" not in m or "configMap" not in v:
                    continue
                cm, key = v["configMap"]["name"], m["subPath"]
                os.makedirs(os.path.join(configdir, cm), exist_ok=True)
                path = os.path.join(configdir, cm, key)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(cms[cm]["data"][key])
                os.chmod(path, 0o644)
                name = "%s-%s" % (c["name"], key.replace(".", "-"))
                pod["volumes"].append({"name": name, "hostPath": {"path": path, "type": "File"}})
                note("%s: %s (configMap %s, subPath %s) -> hostPath file %s" %
                     (c["name"], m["mountPath"], cm, key, path))
                m["name"] = name
                del m["subPath"]
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)


def secret(name, cert, key, dst):
    with open(cert, encoding="utf-8") as f:
        crt = f.read()
    with open(key, encoding="utf-8") as f:
        k = f.read()
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                        "type": "kubernetes.io/tls", "data": {"tls.crt": crt, "tls.key": k}}, f)


def probes(manifest, pod_name):
    with open(manifest, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    bad = 0
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            container = "%s-%s" % (pod_name, c["name"])
            for kind in ("readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if not probe:
                    continue
                timeout = probe.get("timeoutSeconds", 1)
                good, detail = False, ""
                if "exec" in probe:
                    cmd = probe["exec"]["command"]
                    what = "%s %s exec %s" % (c["name"], kind, " ".join(cmd))
                elif "httpGet" in probe:
                    get = probe["httpGet"]
                    port = named.get(get["port"], get["port"])
                    what = "%s %s httpGet :%s%s" % (c["name"], kind, port, get["path"])
                    cmd = ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/%d && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' >&3 "
                           "&& cat <&3" % (int(port), get["path"])]
                elif "tcpSocket" in probe:
                    port = named.get(probe["tcpSocket"]["port"], probe["tcpSocket"]["port"])
                    what = "%s %s tcpSocket %s" % (c["name"], kind, port)
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
                        good, detail = True, "connected"
                    except OSError as e:
                        detail = str(e)
                    cmd = None
                else:
                    continue
                if cmd is not None:
                    try:
                        r = subprocess.run(["podman", "exec", container] + cmd,
                                           capture_output=True, text=True, timeout=timeout + 5)
                        out = (r.stdout + r.stderr).strip()
                        if "httpGet" in probe:
                            status = out.split("\n", 1)[0].split()
                            code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
                            good = r.returncode == 0 and 200 <= code < 400
                            detail = "%s: %s" % (out.split("\n", 1)[0].strip(), out.splitlines()[-1].strip() if out else "")
                        else:
                            good, detail = r.returncode == 0, out
                    except subprocess.TimeoutExpired:
                        detail = "timed out"
                print("%s - %s (%s)" % ("ok" if good else "not ok", what,
                                         detail.splitlines()[0] if detail else ""))
                bad += not good
    return 1 if bad else 0


def main(argv):
    if len(argv) == 6 and argv[1] == "compose":
        compose(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif len(argv) == 5 and argv[1] == "kube":
        kube(argv[2], argv[3], argv[4])
    elif len(argv) == 6 and argv[1] == "secret":
        secret(argv[2], argv[3], argv[4], argv[5])
    elif len(argv) == 4 and argv[1] == "probes":
        sys.exit(probes(argv[2], argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
