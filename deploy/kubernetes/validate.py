"""Offline check of Kubernetes manifests against the Kubernetes API schema.

  /usr/bin/python3 deploy/kubernetes/validate.py FILE.yaml...

No cluster and no network: each YAML document becomes a typed TypeScript
constant, `const doc: Deployment = {...}`, and the TypeScript compiler checks
it against kubernetes-types (npm; the Kubernetes 1.30 API types generated from
its OpenAPI spec). An object literal may only have the fields its type
declares, so a misspelt field name anywhere in a document fails, as does a
wrong type (a string where the API wants an integer) or a missing required
field (a container without `name`). Numbers for Quantity fields (`cpu: 1`)
count as errors: write them as strings ("1", "500m").

Needs, from `make deps`: npm's typescript@5 and kubernetes-types, installed
globally (npm root -g), and python3-yaml. Exit status: 0 all valid, 1 some
document invalid, 2 the checker itself is missing or broken.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml


def npm_root():
    try:
        return subprocess.run(["npm", "root", "-g"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "/usr/lib/node_modules"


def module_for(api_version):
    """'apps/v1' -> 'apps/v1', 'v1' -> 'core/v1', 'networking.k8s.io/v1' -> 'networking/v1'."""
    if "/" not in api_version:
        return "core/" + api_version
    group, version = api_version.split("/", 1)
    return group.split(".")[0] + "/" + version


def main(files):
    root = npm_root()
    tsc = os.path.join(root, "typescript", "bin", "tsc")
    types = os.path.join(root, "kubernetes-types")
    if not os.path.isfile(tsc) or not os.path.isdir(types):
        print("validate.py: needs npm's typescript and kubernetes-types in %s (make deps)" % root,
              file=sys.stderr)
        return 2
    with open(os.path.join(types, "package.json"), encoding="utf-8") as f:
        types_version = json.load(f)["version"]

    work = tempfile.mkdtemp(prefix="mqtls-k8s-validate.")
    try:
        os.symlink(root, os.path.join(work, "node_modules"))
        lines, where, bad = [], {}, 0
        for path in files:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            for i, doc in enumerate(docs):
                name = "%s document %d" % (path, i + 1)
                if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                    print("not ok - %s: no apiVersion or kind" % name)
                    bad += 1
                    continue
                kind, mod = doc["kind"], module_for(doc["apiVersion"])
                dts = os.path.join(types, mod + ".d.ts")
                with open(dts, encoding="utf-8") if os.path.isfile(dts) else open(os.devnull) as f:
                    known = ("export interface %s {" % kind) in f.read()
                if not known:
                    print("not ok - %s: no schema for %s %s" % (name, doc["apiVersion"], kind))
                    bad += 1
                    continue
                label = "%s (%s %s)" % (name, kind, doc.get("metadata", {}).get("name", "?"))
                var = "doc%d" % len(where)
                # apiVersion and kind are optional in the types; pin them.
                lines.append("import type { %s as T_%s } from \"kubernetes-types/%s\";" % (kind, var, mod))
                lines.append("const %s: T_%s & { apiVersion: %s; kind: %s } =" %
                             (var, var, json.dumps(doc["apiVersion"]), json.dumps(kind)))
                first = len(lines) + 1
                lines.extend(json.dumps(doc, indent=2, default=str).splitlines())
                lines[-1] += ";"
                lines.append("void %s;" % var)
                where[var] = (label, first, len(lines))
        src = os.path.join(work, "manifests.ts")
        with open(src, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\nexport {};\n")
        with open(os.path.join(work, "tsconfig.json"), "w", encoding="utf-8") as f:
            json.dump({"compilerOptions": {
                "strict": True, "noEmit": True, "target": "es2020", "module": "commonjs",
                "moduleResolution": "node", "types": [], "skipLibCheck": True},
                "files": ["manifests.ts"]}, f)
        r = subprocess.run(["node", tsc, "-p", ".", "--pretty", "false"],
                           capture_output=True, text=True, cwd=work)
        errors = {}
        for line in (r.stdout + r.stderr).splitlines():
            # manifests.ts(LINE,COL): error TSnnnn: message
            m = re.match(r"(?:.*/)?manifests\.ts\((\d+),\d+\): error", line)
            if m:
                n = int(m.group(1))
                var = next((v for v, (_, a, b) in where.items() if a - 2 <= n <= b), None)
                text = line.split("): ", 1)[1]
                if var is not None:
                    src_line = lines[n - 1].strip() if 0 < n <= len(lines) else ""
                    errors.setdefault(var, []).append("%s  [at: %s]" % (text, src_line))
                else:
                    errors.setdefault(None, []).append(text)
            elif line.strip() and r.returncode != 0 and not line.startswith(" "):
                errors.setdefault(None, []).append(line)
        if None in errors:
            print("validate.py: tsc failed outside the documents:", file=sys.stderr)
            for e in errors[None]:
                print("  " + e, file=sys.stderr)
            return 2
        for var, (label, _, _) in where.items():
            if var in errors:
                bad += 1
                print("not ok - %s does not match the Kubernetes API (kubernetes-types %s)" %
                      (label, types_version))
                for e in errors[var]:
                    print("#   " + e)
            else:
                print("ok - %s matches the Kubernetes API (kubernetes-types %s)" % (label, types_version))
        if r.returncode != 0 and not errors:
            print("validate.py: tsc exited %d without errors it could place" % r.returncode,
                  file=sys.stderr)
            return 2
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
