#!/usr/bin/env python3
"""Checks the files under deploy/ that cannot run on this project's machines (no container engine,
no Kubernetes): the compose files and the Kubernetes manifests against their published schemas,
the Containerfile with BuildKit's own parser, and rules across files that no schema knows (a
Service selecting the Deployment's pods, a probe on /readyz, every DUCHA_ variable documented, …).

    python3 tests/deploy/check_deploy.py ROOT

ROOT is a checkout (or a copy laid out like one: ROOT/deploy, ROOT/docs/CONFIGURATION.md,
ROOT/Cargo.toml, ROOT/.dockerignore). Prints one line per check, `FAIL: …` for each problem, and
exits 0 when all pass, 1 when any fails, 3 when a checker is not installed (`cargo xtask test`
installs them: PyPI check-jsonschema, kubernetes-validate, dockerfile).

The checkers:
- compose: the compose specification's JSON schema as vendored in PyPI `check-jsonschema`
  (`--builtin-schema vendor.compose-spec`), run through its command line;
- Kubernetes: the official OpenAPI-derived JSON schemas bundled in PyPI `kubernetes-validate`,
  strict (unknown fields are errors), for the oldest version the manifests support and the newest
  bundled; a kind or apiVersion without a schema is an error (the tool's command line only warns);
- Containerfile: PyPI `dockerfile`, the Go parser of moby/BuildKit.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

try:
    import yaml
    import kubernetes_validate
    import dockerfile
    import check_jsonschema  # noqa: F401  (run as a module below)
except ImportError as e:  # pragma: no cover - reported to the caller
    print(f"missing checker: {e.name} (pip install check-jsonschema kubernetes-validate dockerfile)")
    sys.exit(3)

# The oldest Kubernetes the manifests are written for (the preStop `sleep` action is on by default
# from 1.30) and the newest schema kubernetes-validate bundles.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
MIN_SECRET_BYTES = 32  # backend/src/auth/keys.rs: an HS256 secret is at least 32 bytes

failures: list[str] = []


def ok(msg: str) -> None:
    print(f"ok: {msg}")


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"FAIL: {msg}")


def check(cond: bool, msg: str) -> bool:
    if cond:
        ok(msg)
    else:
        fail(msg)
    return cond


def load_all(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def documented_variables(root: Path) -> set[str]:
    text = (root / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    return set(re.findall(r"\bDUCHA_[A-Z0-9_]+\b", text)) - {"DUCHA_"}


def check_documented(names: set[str], documented: set[str], where: str) -> None:
    """Ducha ignores DUCHA_ names it does not know, so a typo would silently fall back to a default."""
    unknown = sorted(n for n in names if n.startswith("DUCHA_") and n not in documented)
    check(not unknown, f"{where}: every DUCHA_ variable is documented in docs/CONFIGURATION.md"
          + (f" (not: {', '.join(unknown)})" if unknown else ""))


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


# ---------------------------------------------------------------------------------------------
# compose
# ---------------------------------------------------------------------------------------------

def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def upstream_servers(conf: Path) -> list[tuple[str, int]]:
    text = conf.read_text(encoding="utf-8")
    return [(h, int(p)) for h, p in re.findall(r"^\s*server\s+([^\s:;]+):(\d+)", text, re.M)]


def nginx_listen_ports(conf: Path) -> set[int]:
    text = conf.read_text(encoding="utf-8")
    return {int(p) for p in re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)", text, re.M)}


def check_compose(root: Path, documented: set[str], image_env: dict[str, str]) -> None:
    compose_dir = root / "deploy" / "compose"
    files = sorted(compose_dir.glob("*.yaml"))
    check({f.name for f in files} == {"single.yaml", "postgres.yaml", "kurrentdb.yaml"},
          f"compose: the three layouts are there ({', '.join(f.name for f in files)})")
    if not files:
        return
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         *map(str, files)],
        capture_output=True, text=True)
    check(run.returncode == 0,
          "compose: every file validates against the compose specification's schema"
          + ("" if run.returncode == 0 else "\n" + run.stdout + run.stderr))

    image_port = port_of(image_env.get("DUCHA_LISTEN", "0.0.0.0:0"))
    for f in files:
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        services: dict = doc.get("services") or {}
        name = f.name
        variables: set[str] = set()
        for s in services.values():
            variables |= set(env_of(s))
        check_documented(variables, documented, f"compose {name}")

        # References resolve: depends_on targets, secrets, named volumes.
        for sname, s in services.items():
            deps = s.get("depends_on") or {}
            if isinstance(deps, list):
                deps = {d: {"condition": "service_started"} for d in deps}
            for target, spec in deps.items():
                if target not in services:
                    fail(f"compose {name}: {sname} depends on unknown service {target}")
                    continue
                cond = (spec or {}).get("condition")
                # Ducha's own image brings a HEALTHCHECK; any other target needs one in the file.
                if cond == "service_healthy" and "healthcheck" not in services[target] \
                        and not services[target].get("image", "").startswith("${DUCHA_IMAGE"):
                    fail(f"compose {name}: {sname} waits for {target} to be healthy, which has no health check")
                if cond == "service_completed_successfully" and services[target].get("restart") not in ("no", None):
                    fail(f"compose {name}: {sname} waits for one-shot {target}, which restarts")
            for secret in s.get("secrets") or []:
                sec = secret if isinstance(secret, str) else secret.get("source")
                if sec not in (doc.get("secrets") or {}):
                    fail(f"compose {name}: {sname} uses undeclared secret {sec}")
            for vol in s.get("volumes") or []:
                src = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
                if src and not src.startswith((".", "/")) and src not in (doc.get("volumes") or {}):
                    fail(f"compose {name}: {sname} mounts undeclared volume {src}")
                if isinstance(vol, str) and src.startswith("."):
                    local = (compose_dir / src).resolve()
                    mount_is_site_specific = src in ("./tls", "./secrets")
                    if not mount_is_site_specific and not local.exists():
                        fail(f"compose {name}: {sname} mounts {src}, which is not in the repository")
        ok(f"compose {name}: depends_on targets, secrets and volumes resolve")

        replicas = {k: v for k, v in services.items() if k.startswith("ducha")}
        if name == "single.yaml":
            (only,) = replicas.values() if len(replicas) == 1 else (None,)
            check(only is not None and any(str(v).endswith(":/var/lib/ducha") for v in only.get("volumes", [])),
                  "compose single.yaml: one Ducha with its data directory on a volume")
            continue

        # The shared layouts: two replicas, the same configuration and signing key, nginx in front.
        check(sorted(replicas) == ["ducha-1", "ducha-2"], f"compose {name}: two Ducha replicas")
        envs = [env_of(s) for s in replicas.values()]
        check(len(envs) == 2 and envs[0] == envs[1], f"compose {name}: the replicas share one configuration")
        for rname, s in replicas.items():
            env = env_of(s)
            key_file = env.get("DUCHA_JWT_SECRET_FILE", "")
            sec = Path(key_file).name
            check(key_file.startswith("/run/secrets/") and sec in (s.get("secrets") or []),
                  f"compose {name}: {rname} reads its signing key from a compose secret ({key_file})")
            check(env.get("DUCHA_TRUST_FORWARDED_FOR") == "true",
                  f"compose {name}: {rname} trusts nginx's X-Forwarded-For")
            test = (s.get("healthcheck") or {}).get("test") or []
            check(any(f"127.0.0.1:{image_port}/readyz" in str(t) for t in test),
                  f"compose {name}: {rname}'s health check asks /readyz on the image's port {image_port}")
        # `${VAR:?message}` (compose interpolation) may hold `?` and `:`; the URL is read without it.
        store_url = re.sub(r"\$\{[^}]*\}", "VAR", envs[0].get("DUCHA_STORE", "") if envs else "")
        store = urlsplit(store_url)
        store_hosts = {h.split(":")[0] for h in store.netloc.rsplit("@", 1)[-1].split(",") if h}
        expected_scheme = "postgres" if name == "postgres.yaml" else "kurrentdb"
        check(store.scheme == expected_scheme and store_hosts and store_hosts <= set(services),
              f"compose {name}: DUCHA_STORE is {expected_scheme}:// on the file's own services ({sorted(store_hosts)})")
        if name == "kurrentdb.yaml":
            nodes = sorted(k for k in services if k.startswith("node"))
            check(nodes == ["node1", "node2", "node3"] and store_hosts == set(nodes),
                  "compose kurrentdb.yaml: three KurrentDB nodes, all in the connection string")
            for n in nodes:
                env = env_of(services[n])
                others = {s.split(":")[0] for s in env.get("KURRENTDB_GOSSIP_SEED", "").split(",")}
                check(others == set(nodes) - {n} and env.get("KURRENTDB_CLUSTER_SIZE") == "3",
                      f"compose kurrentdb.yaml: {n} gossips with the other two, cluster size 3")
                check(f"/certs/{n}/" in env.get("KURRENTDB_CERTIFICATE_FILE", "")
                      and f"/certs/{n}/" in env.get("KURRENTDB_CERTIFICATE_PRIVATE_KEY_FILE", ""),
                      f"compose kurrentdb.yaml: {n} uses its own certificate")
                command = "\n".join(services.get("certs", {}).get("command") or [])
                loop = re.search(r"for n in ([^;]+);", command)
                check("-dns-names $$n," in command and loop is not None and n in loop.group(1).split(),
                      f"compose kurrentdb.yaml: {n}'s certificate is made for its name (-dns-names)")
            ca = re.search(r"tlsCAFile=([^&]+)", envs[0].get("DUCHA_STORE", ""))
            check(ca is not None and all(any(str(v).split(":")[1] == "/certs" for v in s.get("volumes", []))
                                         for s in replicas.values()) and ca.group(1).startswith("/certs/"),
                  "compose kurrentdb.yaml: the replicas verify TLS with the CA from the certs volume")
            # KurrentDB holds events only: `ducha serve` refuses it without a home for the state.
            state = urlsplit(re.sub(r"\$\{[^}]*\}", "VAR", envs[0].get("DUCHA_SERVER_STATE", "")))
            state_host = state.netloc.rsplit("@", 1)[-1].split(":")[0]
            check(state.scheme == "postgres" and state_host in services
                  and all(((s.get("depends_on") or {}).get(state_host) or {}).get("condition") == "service_healthy"
                          for s in replicas.values()),
                  f"compose kurrentdb.yaml: DUCHA_SERVER_STATE is postgres:// on the file's own service "
                  f"({state_host or 'none'}), which the replicas wait for")

        nginx = services.get("nginx") or {}
        vols = [str(v) for v in nginx.get("volumes", [])]
        check(any(v.startswith("../nginx/ducha.conf:") for v in vols),
              f"compose {name}: nginx runs deploy/nginx/ducha.conf itself")
        upstream_mount = next((v.split(":")[0] for v in vols if "upstream" in v), None)
        if check(upstream_mount is not None, f"compose {name}: nginx gets an upstream file"):
            servers = upstream_servers(compose_dir / upstream_mount)
            check(sorted(servers) == sorted((r, image_port) for r in replicas),
                  f"compose {name}: the upstream lists exactly the replicas on port {image_port} ({servers})")
        deps = nginx.get("depends_on") or {}
        check(all((deps.get(r) or {}).get("condition") == "service_healthy" for r in replicas),
              f"compose {name}: nginx starts once both replicas are healthy (it resolves their names at start)")
        published = {int(str(p).split(":")[-1]) for p in nginx.get("ports", [])}
        check(published == nginx_listen_ports(root / "deploy" / "nginx" / "ducha.conf"),
              f"compose {name}: nginx publishes the ports ducha.conf listens on ({sorted(published)})")


# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------

def check_kubernetes(root: Path, documented: set[str]) -> None:
    kdir = root / "deploy" / "kubernetes"
    manifests = sorted(p for p in kdir.glob("*.yaml") if p.name != "kustomization.yaml")
    docs: list[tuple[str, dict]] = []
    for path in manifests:
        for d in load_all(path):
            docs.append((path.name, d))
    for version in K8S_VERSIONS:
        bad = 0
        for fname, d in docs:
            what = f"{fname}: {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                fail(f"kubernetes {what}: no schema for it in Kubernetes {version} "
                     f"(apiVersion {d.get('apiVersion')}, kind {d.get('kind')})")
                bad += 1
            except kubernetes_validate.ValidationError as e:
                fail(f"kubernetes {what}: invalid for Kubernetes {version}: {e.message} at "
                     f"{'.'.join(map(str, e.path))}")
                bad += 1
        if bad == 0:
            ok(f"kubernetes: {len(docs)} resources validate strictly against the schemas of Kubernetes {version}")

    by_kind: dict[str, list[dict]] = {}
    for _, d in docs:
        by_kind.setdefault(d.get("kind", ""), []).append(d)
    for kind in ["Namespace", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"]:
        check(kind in by_kind, f"kubernetes: a {kind} is shipped")
    if "Deployment" not in by_kind:
        return
    dep = by_kind["Deployment"][0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    namespace = (by_kind.get("Namespace") or [{}])[0].get("metadata", {}).get("name")

    def selects(selector: dict) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    check(selects(spec["selector"]["matchLabels"]), "kubernetes: the Deployment's selector matches its pods")
    for svc in by_kind.get("Service", []):
        check(selects(svc["spec"].get("selector", {})), f"kubernetes: Service {svc['metadata']['name']} selects the pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        check(selects(pdb["spec"]["selector"]["matchLabels"]),
              f"kubernetes: PodDisruptionBudget {pdb['metadata']['name']} selects the pods")
        check(int(pdb["spec"].get("minAvailable", 0)) < int(spec.get("replicas", 1)),
              "kubernetes: the PodDisruptionBudget still lets a node drain (minAvailable < replicas)")
    check(int(spec.get("replicas", 1)) >= 2, f"kubernetes: at least two replicas ({spec.get('replicas')})")
    for _, d in docs:
        if d.get("kind") != "Namespace":
            check(d.get("metadata", {}).get("namespace") == namespace,
                  f"kubernetes: {d.get('kind')}/{d['metadata'].get('name')} is in namespace {namespace}")

    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind.get("ConfigMap", [])}
    secrets = {s["metadata"]["name"]: {**s.get("data", {}), **s.get("stringData", {})} for s in by_kind.get("Secret", [])}
    env: dict[str, str] = {}
    for ef in container.get("envFrom", []):
        name = ef.get("configMapRef", {}).get("name")
        if check(name in configmaps, f"kubernetes: envFrom ConfigMap {name} exists"):
            env.update(configmaps[name])
    for e in container.get("env", []):
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            check(ref["key"] in secrets.get(ref["name"], {}),
                  f"kubernetes: {e['name']} comes from secret {ref['name']} key {ref['key']}, which exists")
            env[e["name"]] = secrets.get(ref["name"], {}).get(ref["key"], "")
        else:
            env[e["name"]] = e.get("value", "")
    check_documented(set(env), documented, "kubernetes")
    check(ports.get("http") == port_of(env.get("DUCHA_LISTEN", ":0")),
          f"kubernetes: the container port is DUCHA_LISTEN's ({ports.get('http')} / {env.get('DUCHA_LISTEN')})")
    for svc in by_kind.get("Service", []):
        for p in svc["spec"]["ports"]:
            check(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
                  f"kubernetes: Service port {p.get('name')} targets a container port")
    check(urlsplit(env.get("DUCHA_STORE", "")).scheme in ("postgres", "postgresql"),
          "kubernetes: DUCHA_STORE names a PostgreSQL database")

    def probe(name: str) -> tuple[str, object]:
        get = (container.get(name) or {}).get("httpGet") or {}
        return get.get("path", ""), get.get("port")
    for name, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")]:
        got, port = probe(name)
        check(got == path and port in ports, f"kubernetes: {name} asks {path} on the container port (got {got} on {port})")

    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    key_file = env.get("DUCHA_JWT_SECRET_FILE", "")
    served = False
    for mname, m in mounts.items():
        vol = volumes.get(mname, {})
        sec = vol.get("secret")
        if sec and key_file.startswith(m["mountPath"].rstrip("/") + "/"):
            rel = key_file[len(m["mountPath"].rstrip("/")) + 1:]
            items = {i["path"]: i["key"] for i in sec.get("items", [])} or {k: k for k in secrets.get(sec["secretName"], {})}
            served = rel in items and items[rel] in secrets.get(sec["secretName"], {})
    check(served, f"kubernetes: DUCHA_JWT_SECRET_FILE ({key_file}) is a key of a shipped Secret, mounted")
    jwt = next((v for s in secrets.values() for k, v in s.items() if k == Path(key_file).name), None)
    check(jwt is not None and len(jwt.strip().encode()) < MIN_SECRET_BYTES,
          "kubernetes: the shipped signing key is a placeholder Ducha refuses (shorter than 32 bytes)")
    check(all(n in volumes for n in mounts), "kubernetes: every volume mount has its volume")

    psc = pod.get("securityContext") or {}
    csc = container.get("securityContext") or {}
    restricted = (
        (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")) is True
        and csc.get("allowPrivilegeEscalation") is False
        and csc.get("capabilities", {}).get("drop") == ["ALL"]
        and (psc.get("seccompProfile") or csc.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
        and all(set(v) - {"name"} <= {"secret", "emptyDir", "configMap", "projected", "persistentVolumeClaim"}
                for v in volumes.values())
    )
    check(restricted, "kubernetes: the pod meets the restricted Pod Security Standard (non-root, no escalation, "
                      "no capabilities, RuntimeDefault seccomp, plain volume types)")
    ns_labels = (by_kind.get("Namespace") or [{}])[0].get("metadata", {}).get("labels", {})
    check(ns_labels.get("pod-security.kubernetes.io/enforce") == "restricted",
          "kubernetes: the namespace enforces the restricted Pod Security Standard")
    check(csc.get("readOnlyRootFilesystem") is True and any(m["mountPath"] == "/tmp" for m in mounts.values()),
          "kubernetes: read-only root file system, with a writable /tmp for uploads")
    res = container.get("resources") or {}
    check(all(k in res.get("requests", {}) for k in ("cpu", "memory")) and "memory" in res.get("limits", {}),
          "kubernetes: CPU and memory requested, memory limited")
    sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    shutdown = int(env.get("DUCHA_SHUTDOWN_TIMEOUT_SECONDS", "30"))
    check(grace > shutdown + sleep,
          f"kubernetes: the grace period ({grace} s) covers the preStop pause ({sleep} s) and Ducha's "
          f"shutdown timeout ({shutdown} s)")
    check(pod.get("enableServiceLinks") is False,
          "kubernetes: no service-link variables (the Service `ducha` would add DUCHA_SERVICE_* and DUCHA_PORT*)")

    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text(encoding="utf-8"))
    check(sorted(kust.get("resources", [])) == sorted(p.name for p in manifests),
          "kubernetes: kustomization.yaml lists exactly the manifests")
    check(kust.get("namespace") == namespace, "kubernetes: kustomization.yaml uses the manifests' namespace")
    image_name = container["image"].split(":")[0]
    check(any(i.get("name") == image_name for i in kust.get("images", [])),
          f"kubernetes: kustomization.yaml's images entry applies to the Deployment's image ({image_name})")


# ---------------------------------------------------------------------------------------------
# Containerfile and .dockerignore
# ---------------------------------------------------------------------------------------------

def check_containerfile(root: Path, documented: set[str]) -> dict[str, str]:
    path = root / "deploy" / "container" / "Containerfile"
    try:
        cmds = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as e:
        fail(f"Containerfile: BuildKit's parser refuses it: {e}")
        return {}
    ok(f"Containerfile: BuildKit's parser reads {len(cmds)} instructions")
    known = {"FROM", "ARG", "RUN", "COPY", "ADD", "ENV", "WORKDIR", "USER", "EXPOSE", "VOLUME", "HEALTHCHECK",
             "ENTRYPOINT", "CMD", "LABEL", "STOPSIGNAL", "SHELL", "ONBUILD"}
    unknown = [c.original for c in cmds if c.cmd.upper() not in known]
    check(not unknown, "Containerfile: only known instructions" + (f" (not: {unknown})" if unknown else ""))

    stages: list[list] = []
    names: list[str] = []
    for c in cmds:
        if c.cmd.upper() == "FROM":
            stages.append([])
            v = list(c.value)
            names.append(v[2].lower() if len(v) >= 3 and v[1].upper() == "AS" else str(len(names)))
            stages[-1].append(c)
        elif stages:
            stages[-1].append(c)
    check(len(stages) >= 2, f"Containerfile: multi-stage ({len(stages)} stages)")
    if len(stages) < 2:
        return {}
    for i, stage in enumerate(stages):
        for c in stage:
            if c.cmd.upper() == "COPY":
                src = next((f.split("=", 1)[1] for f in c.flags if f.startswith("--from=")), None)
                if src is not None and src.lower() not in names[:i]:
                    fail(f"Containerfile: `{c.original}` copies from {src}, not an earlier stage")
    final = stages[-1]
    base = list(final[0].value)[0]
    check(base.startswith("gcr.io/distroless/"), f"Containerfile: the runtime is distroless ({base})")
    runs = [c.original for c in final if c.cmd.upper() == "RUN"]
    check(not runs, "Containerfile: nothing RUNs in the runtime stage (distroless has no shell)")

    def last(cmd: str):
        return next((c for c in reversed(final) if c.cmd.upper() == cmd), None)
    for cmd in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
        c = last(cmd)
        check(c is not None and c.json, f"Containerfile: {cmd} in exec (JSON) form, no shell needed")
    env: dict[str, str] = {}
    for c in final:
        if c.cmd.upper() == "ENV":
            v = list(c.value)
            env.update(dict(zip(v[0::2], v[1::2])))
    check_documented(set(env), documented, "Containerfile")
    user = last("USER")
    uid = list(user.value)[0].split(":")[0] if user else "root"
    check(uid not in ("root", "0"), f"Containerfile: runs as a non-root user ({uid})")
    port = port_of(env.get("DUCHA_LISTEN", "0.0.0.0:0"))
    exposed = last("EXPOSE")
    check(exposed is not None and str(port) in list(exposed.value), f"Containerfile: EXPOSE {port}, DUCHA_LISTEN's port")
    health = last("HEALTHCHECK")
    check(health is not None and f"http://127.0.0.1:{port}/healthz" in list(health.value),
          f"Containerfile: the health check asks /healthz on port {port}")
    probe = list(health.value)[1] if health is not None and len(list(health.value)) > 1 else ""
    copied = [list(c.value)[-1] for c in final if c.cmd.upper() == "COPY"]
    check(probe in copied, f"Containerfile: the health check's program ({probe}) is copied into the image")
    volume = last("VOLUME")
    check(volume is not None and env.get("DUCHA_DATA_DIR") in list(volume.value),
          f"Containerfile: the data directory {env.get('DUCHA_DATA_DIR')} is a VOLUME")

    build = " ".join(c.original for c in stages[0])
    benv: dict[str, str] = {}
    for c in stages[0]:
        if c.cmd.upper() == "ENV":
            v = list(c.value)
            benv.update(dict(zip(v[0::2], v[1::2])))
    dist = re.search(r"DUCHA_WEB_DIST=(\S+)", build)
    # xtask's web() writes into <CARGO_TARGET_DIR>/web-dist: the build must embed that folder.
    check("cargo xtask web" in build and dist is not None
          and dist.group(1).rstrip("/") == benv.get("CARGO_TARGET_DIR", "").rstrip("/") + "/web-dist",
          "Containerfile: builds the web app with `cargo xtask web` and embeds its output folder")
    check("cargo build --release" in build and "-p ducha" in build, "Containerfile: a release build of ducha")

    ignore = root / ".dockerignore"
    patterns = [l.strip().rstrip("/") for l in ignore.read_text(encoding="utf-8").splitlines()
                if l.strip() and not l.startswith("#")] if ignore.exists() else []
    manifest = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    needed = ["Cargo.toml", "Cargo.lock", ".cargo", "rustfmt.toml", *manifest["workspace"]["members"]]
    dropped = [n for n in needed if n in patterns or f"/{n}" in patterns or f"{n}/**" in patterns]
    check(ignore.exists() and not dropped and "target" in patterns,
          "/.dockerignore keeps every workspace member, the manifests and .cargo (the `xtask` alias), "
          "drops target/" + (f" (drops: {dropped})" if dropped else ""))
    return env


def check_systemd(root: Path, documented: set[str]) -> None:
    unit = (root / "deploy" / "systemd" / "ducha.service").read_text(encoding="utf-8")
    names = set(re.findall(r"\b(DUCHA_[A-Z0-9_]+)=", unit))
    check_documented(names, documented, "systemd ducha.service")


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    documented = documented_variables(root)
    image_env = check_containerfile(root, documented)
    check_compose(root, documented, image_env)
    check_kubernetes(root, documented)
    check_systemd(root, documented)
    print(json.dumps({"failures": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
