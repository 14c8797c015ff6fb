#!/usr/bin/env python3
"""The deployment files parse as YAML and agree with each other: every
Kubernetes manifest names the image the compose file runs, the ports the
compose file's services listen on, and the environment variables it sets."""
import glob
import os
import subprocess
import sys
import tempfile

import yaml

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
errors = []

with open(os.path.join(root, "deploy/docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
services = compose["services"]
for name in ("keys", "coordinator", "ledger", "pokedex", "worker", "client"):
    if name not in services:
        errors.append(f"docker-compose.yml: no service '{name}'")
image = services["coordinator"]["image"].split(":-", 1)[-1].rstrip("}")  # ${FANOUT_IMAGE:-fanout:latest}
worker = services["worker"]
if "container_name" in worker or "ports" in worker:
    errors.append("docker-compose.yml: the worker must not have a container name or ports (it scales)")
if services["client"].get("profiles") != ["client"]:
    errors.append("docker-compose.yml: the client belongs in the 'client' profile")

# The ports each compose service listens on, from its environment.
def port(value):
    return int(str(value).rsplit(":", 1)[-1])

listens = {
    "coordinator": {port(services["coordinator"]["environment"]["FANOUT_WORKERS_ENDPOINT"]),
                    port(services["coordinator"]["environment"]["FANOUT_CLIENTS_ENDPOINT"]),
                    port(services["coordinator"]["environment"]["FANOUT_HTTP"])},
    "ledger": {port(services["ledger"]["environment"]["FANOUT_LEDGER_ENDPOINT"]),
               port(services["ledger"]["environment"]["FANOUT_LEDGER_HTTP"])},
    "worker": {port(services["worker"]["environment"]["FANOUT_WORKER_HTTP"])},
    "pokedex": {int(services["pokedex"]["environment"]["FANOUT_POKEDEX_PORT"])},
}

docs = []
for path in sorted(glob.glob(os.path.join(root, "deploy/k8s/*.yaml"))):
    with open(path) as f:
        try:
            docs += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
        except yaml.YAMLError as e:
            errors.append(f"{path}: {e}")

kinds = {(d["kind"], d["metadata"]["name"]) for _, d in docs}
for needed in [("Service", "coordinator"), ("Service", "ledger"), ("StatefulSet", "ledger"),
               ("Deployment", "worker")]:
    if needed not in kinds:
        errors.append(f"deploy/k8s: no {needed[0]} '{needed[1]}'")

for path, d in docs:
    name = d["metadata"]["name"]
    if d["kind"] == "Service":
        # A Service exposes what other pods reach; Prometheus scrapes the pods.
        ports = {p["port"] for p in d["spec"]["ports"]}
        if name in listens and not ports <= listens[name]:
            errors.append(f"{path}: Service {name} exposes {sorted(ports)}, compose listens on "
                          f"{sorted(listens[name])}")
        continue
    pod = d["spec"]["template"]["spec"]
    for c in pod["containers"]:
        if c["image"] != image:
            errors.append(f"{path}: {name} runs {c['image']}, compose runs {image}")
        env = {e["name"]: e["value"] for e in c.get("env", [])}
        want = {k: str(v) for k, v in services[name]["environment"].items()}
        for k, v in want.items():
            if env.get(k) != v:
                errors.append(f"{path}: {name} sets {k}={env.get(k)!r}, compose sets {v!r}")
        ports = {p["containerPort"] for p in c.get("ports", [])}
        if name in listens and ports != listens[name]:
            errors.append(f"{path}: {name} declares ports {sorted(ports)}, it listens on "
                          f"{sorted(listens[name])}")
    annotations = d["spec"]["template"]["metadata"].get("annotations", {})
    http = [k for k in services[name]["environment"] if k.endswith("_HTTP")]
    if http and annotations.get("prometheus.io/scrape") != "true":
        errors.append(f"{path}: {name} serves /metrics but has no prometheus.io/scrape annotation")
    if http and annotations.get("prometheus.io/port") != str(port(services[name]["environment"][http[0]])):
        errors.append(f"{path}: {name}'s prometheus.io/port is not its --http port")
    keyed = "FANOUT_KEYS" in services[name]["environment"]
    secrets = [v for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == "fanout-keys"]
    if keyed and not secrets:
        errors.append(f"{path}: {name} runs keyed in compose but mounts no fanout-keys secret")
    if keyed and secrets and secrets[0]["secret"].get("defaultMode", 0o644) & 0o007:
        errors.append(f"{path}: {name}'s keys are readable by others")
    if d["kind"] == "StatefulSet" and not d["spec"].get("volumeClaimTemplates"):
        errors.append(f"{path}: StatefulSet {name} has no volume")

# The Swarm stack made from the compose file: what `docker stack deploy`
# refuses or mishandles is out, every other service is there unchanged.
# Keyed: the files of `fanout keygen` (their names are what it checks).
with tempfile.TemporaryDirectory() as keys:
    for f in ("coordinator.key", "coordinator.pub", "ledger.key", "ledger.pub", "worker.key",
              "authorized_keys", "http.token"):
        open(os.path.join(keys, f), "w").close()
    stack = yaml.safe_load(subprocess.run([os.path.join(root, "deploy/swarm-stack"), "--keys", keys],
                                          check=True, capture_output=True, text=True).stdout)
want = {n for n, s in services.items() if "profiles" not in s and n != "keys"}
if set(stack["services"]) != want:
    errors.append(f"swarm-stack: services {sorted(stack['services'])}, want {sorted(want)}")
for name, s in stack["services"].items():
    for key in ("profiles", "depends_on", "restart", "ports"):
        if key in s:
            errors.append(f"swarm-stack: {name} keeps '{key}', which Swarm refuses or mishandles")
    if s.get("deploy", {}).get("endpoint_mode") != "dnsrr":
        errors.append(f"swarm-stack: {name} is not endpoint_mode dnsrr")
    env = dict(services[name].get("environment", {}))
    if "FANOUT_KEYS" in env:
        env["FANOUT_KEYS"] = "/run/secrets"  # the keys as Swarm secrets
        modes = {x.get("mode") for x in s.get("secrets", [])}
        if not s.get("secrets") or modes != {0o400}:
            errors.append(f"swarm-stack: {name}'s keys are not owner-only secrets")
    if s.get("image") != services[name]["image"] or s.get("environment") != env:
        errors.append(f"swarm-stack: {name} differs from the compose file")
if not stack.get("networks", {}).get("default", {}).get("attachable"):
    errors.append("swarm-stack: the default network is not attachable (clients join it)")

for e in errors:
    print(e, file=sys.stderr)
print(f"{len(docs)} manifests, {len(services)} compose services: "
      f"{'ok' if not errors else f'{len(errors)} problems'}")
sys.exit(1 if errors else 0)
