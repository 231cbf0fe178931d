#!/usr/bin/env python3
"""Policy checks on rendered jamba-serve manifests (kubectl kustomize output).

    policy_check.py RENDERED.yaml [--expect-gpu] [--expect-hpa]

The schema is checked elsewhere (kubernetes-validate); this checks what the
schema cannot: the serving conventions of deploy/README.md. Every workload
(Deployment, StatefulSet) must have

- startup, liveness and readiness probes on numeric ports; a gRPC liveness
  probe only on the "" service (never one that depends on other pods);
- a preStop hook and terminationGracePeriodSeconds at least the preStop
  sleep plus the drain budget in its args (--drain_seconds=N or
  --drain_timeout=DURATION);
- exactly one PodDisruptionBudget selecting its pods;
- an image with an explicit tag other than "latest" (or a digest);
- runAsNonRoot, no privilege escalation, a read-only root filesystem;
- CPU and memory requests and limits; with --expect-gpu, an nvidia.com/gpu
  limit of at least 1 on every container that runs the model (all but a
  router with --mixers, which must have none), and without it none at all;
- with --expect-hpa, an HPA on every expert shard Deployment, on a
  non-resource metric; a Deployment an HPA manages sets no spec.replicas.

And the placement ConfigMap must agree with the objects: every shard target
is dns:///<service>.<namespace>.svc.cluster.local:<port> of a headless
Service with that port, selecting the pods of a Deployment started with
--shard=<that shard>. A router with --mixers has neither --placement nor
--experts, and each of its mixer targets is dns:///<service>...:<port> of a
headless Service with that port selecting the pods of a workload that runs
jamba-mixer-worker with --placement. Prints every violation; exit code 1 if
any, else 0.
"""
import argparse
import json
import re
import sys

import yaml

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
TARGET_RE = re.compile(r"^dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$")


def parse_duration(text):
    """Seconds in an absl duration such as 30s, 1m30s or 500ms; None if bad."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def flag_value(args, name):
    """The value of --name=VALUE or --name VALUE in a container's args."""
    for i, arg in enumerate(args):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
    return None


def drain_budget(args):
    """Seconds a container gives calls in flight after SIGTERM, or None."""
    seconds = flag_value(args, "drain_seconds")
    if seconds is not None:
        return float(seconds) if seconds.isdigit() else None
    timeout = flag_value(args, "drain_timeout")
    return parse_duration(timeout) if timeout is not None else None


def selects(selector, labels):
    """Whether a LabelSelector (matchLabels only) selects `labels`."""
    if not selector or selector.get("matchExpressions"):
        return False
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


class Checker:
    def __init__(self, objects, expect_gpu, expect_hpa):
        self.objects = objects
        self.expect_gpu = expect_gpu
        self.expect_hpa = expect_hpa
        self.errors = []

    def error(self, obj, message):
        self.errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {message}")

    def of_kind(self, *kinds):
        return [o for o in self.objects if o.get("kind") in kinds]

    def run(self):
        workloads = self.of_kind(*WORKLOAD_KINDS)
        if not workloads:
            self.errors.append("no Deployment or StatefulSet rendered")
        for workload in workloads:
            self.check_workload(workload)
        self.check_hpas(workloads)
        self.check_placement(workloads)
        self.check_mixers(workloads)
        return self.errors

    def check_workload(self, w):
        spec = w["spec"]["template"]["spec"]
        labels = w["spec"]["template"]["metadata"].get("labels", {})
        pod_security = spec.get("securityContext", {})
        pdbs = [p for p in self.of_kind("PodDisruptionBudget")
                if p["metadata"].get("namespace") == w["metadata"].get("namespace")
                and selects(p["spec"].get("selector"), labels)]
        if len(pdbs) != 1:
            self.error(w, f"{len(pdbs)} PodDisruptionBudgets select its pods, want 1")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers", []):
            where = f"container {c['name']}"
            self.check_probes(w, c, where)
            self.check_image(w, c, where)
            self.check_security(w, c, pod_security, where)
            self.check_resources(w, c, where, needs_gpu=not is_mixer_client(c))
            pre_stop = (c.get("lifecycle") or {}).get("preStop")
            if pre_stop is None:
                self.error(w, f"{where}: no preStop hook")
            sleep = ((pre_stop or {}).get("sleep") or {}).get("seconds", 0)
            budget = drain_budget(c.get("args", []))
            if budget is None:
                self.error(w, f"{where}: no --drain_seconds or --drain_timeout in args")
            elif grace < sleep + budget:
                self.error(w, f"{where}: terminationGracePeriodSeconds {grace} < preStop sleep "
                              f"{sleep} s + drain budget {budget:g} s")

    def check_probes(self, w, c, where):
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c.get(kind)
            if probe is None:
                self.error(w, f"{where}: no {kind}")
                continue
            handlers = [h for h in ("grpc", "tcpSocket", "httpGet") if h in probe]
            if not handlers:
                self.error(w, f"{where}: {kind} is neither grpc, tcpSocket nor httpGet")
            for handler in handlers:
                port = probe[handler].get("port")
                if not isinstance(port, int) or isinstance(port, bool):
                    self.error(w, f"{where}: {kind} port {port!r} is not a number")
            if kind == "livenessProbe" and "grpc" in probe and probe["grpc"].get("service"):
                self.error(w, f"{where}: liveness checks gRPC service "
                              f"{probe['grpc']['service']!r}; use \"\" so that it never "
                              "depends on other pods")

    def check_image(self, w, c, where):
        image = c.get("image", "")
        if "@sha256:" in image:
            return
        name_part = image.rsplit("/", 1)[-1]
        tag = name_part.split(":", 1)[1] if ":" in name_part else ""
        if not tag or tag == "latest":
            self.error(w, f"{where}: image {image!r} needs a version tag (not latest)")

    def check_security(self, w, c, pod_security, where):
        sc = c.get("securityContext", {})
        non_root = sc.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        user = sc.get("runAsUser", pod_security.get("runAsUser"))
        if non_root is not True:
            self.error(w, f"{where}: runAsNonRoot is not true")
        if user == 0:
            self.error(w, f"{where}: runAsUser is 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            self.error(w, f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            self.error(w, f"{where}: readOnlyRootFilesystem is not true")

    def check_resources(self, w, c, where, needs_gpu):
        resources = c.get("resources", {})
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(part, {}):
                    self.error(w, f"{where}: no {resource} {part[:-1]}")
        gpus = resources.get("limits", {}).get("nvidia.com/gpu")
        if self.expect_gpu and needs_gpu and (gpus is None or int(gpus) < 1):
            self.error(w, f"{where}: no nvidia.com/gpu limit")
        if self.expect_gpu and not needs_gpu and gpus is not None:
            self.error(w, f"{where}: nvidia.com/gpu limit on a router with --mixers, "
                          "which runs no model layers")
        if not self.expect_gpu and gpus is not None:
            self.error(w, f"{where}: nvidia.com/gpu limit in an overlay without GPUs")
        requested = resources.get("requests", {}).get("nvidia.com/gpu")
        if requested is not None and requested != gpus:
            self.error(w, f"{where}: nvidia.com/gpu request {requested} differs from the limit")

    def check_hpas(self, workloads):
        by_name = {(w["kind"], w["metadata"]["name"]): w for w in workloads}
        managed = set()
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            ref = hpa["spec"]["scaleTargetRef"]
            key = (ref["kind"], ref["name"])
            if key not in by_name:
                self.error(hpa, f"scales {ref['kind']}/{ref['name']}, which is not rendered")
                continue
            managed.add(key)
            for metric in hpa["spec"].get("metrics", []):
                if metric["type"] in ("Resource", "ContainerResource"):
                    self.error(hpa, "scales on CPU/memory; use queue depth or routed tokens")
            if "replicas" in by_name[key]["spec"]:
                self.error(by_name[key], "sets spec.replicas although an HPA manages it")
        if self.expect_hpa:
            for w in workloads:
                if shard_of(w) is not None and (w["kind"], w["metadata"]["name"]) not in managed:
                    self.error(w, "expert shard without an HPA")

    def check_placement(self, workloads):
        maps = [m for m in self.of_kind("ConfigMap") if "placement.json" in m.get("data", {})]
        if len(maps) != 1:
            self.errors.append(f"{len(maps)} ConfigMaps hold placement.json, want 1")
            return
        placement = json.loads(maps[0]["data"]["placement.json"])
        namespace = maps[0]["metadata"].get("namespace")
        services = {s["metadata"]["name"]: s for s in self.of_kind("Service")
                    if s["metadata"].get("namespace") == namespace}
        shard_workloads = {shard_of(w): w for w in workloads if shard_of(w) is not None}
        names = set()
        for shard in placement.get("shards", []):
            name = shard.get("name")
            names.add(name)
            workload = shard_workloads.get(name)
            if workload is None:
                self.error(maps[0], f"no workload runs with --shard={name}")
            for target in shard.get("targets", []):
                match = TARGET_RE.match(target)
                if match is None:
                    self.error(maps[0], f"target {target!r} of {name} is not "
                                        "dns:///SERVICE.NAMESPACE.svc.cluster.local:PORT")
                    continue
                service_name, target_ns, port = match.group(1), match.group(2), int(match.group(3))
                service = services.get(service_name)
                if target_ns != namespace or service is None:
                    self.error(maps[0], f"target {target} names no Service of namespace "
                                        f"{namespace}")
                    continue
                if service["spec"].get("clusterIP") != "None":
                    self.error(service, "is not headless (clusterIP: None)")
                if port not in [p["port"] for p in service["spec"].get("ports", [])]:
                    self.error(service, f"has no port {port} (target {target})")
                if workload is not None and not selects(
                        {"matchLabels": service["spec"].get("selector", {})},
                        workload["spec"]["template"]["metadata"].get("labels", {})):
                    self.error(service, f"does not select the pods of shard {name}")
        for shard, workload in shard_workloads.items():
            if shard not in names:
                self.error(workload, f"--shard={shard} is not in the placement")


    def check_mixers(self, workloads):
        services = {(s["metadata"].get("namespace"), s["metadata"]["name"]): s
                    for s in self.of_kind("Service")}
        mixer_workloads = [w for w in workloads
                           if any(command_of(c) == "jamba-mixer-worker" for c in containers(w))]
        for w in mixer_workloads:
            for c in containers(w):
                if command_of(c) == "jamba-mixer-worker" and \
                        flag_value(c.get("args", []), "placement") is None:
                    self.error(w, f"container {c['name']}: jamba-mixer-worker without --placement")
        for w in workloads:
            for c in containers(w):
                if not is_mixer_client(c):
                    continue
                where = f"container {c['name']}"
                args = c.get("args", [])
                for flag in ("placement", "experts"):
                    if flag_value(args, flag) is not None:
                        self.error(w, f"{where}: --{flag} together with --mixers (the mixer "
                                      "workers call the experts; the router refuses this)")
                for target in flag_value(args, "mixers").split(","):
                    self.check_mixer_target(w, where, target, services, mixer_workloads)

    def check_mixer_target(self, w, where, target, services, mixer_workloads):
        match = TARGET_RE.match(target)
        if match is None:
            self.error(w, f"{where}: mixer target {target!r} is not "
                          "dns:///SERVICE.NAMESPACE.svc.cluster.local:PORT")
            return
        service_name, target_ns, port = match.group(1), match.group(2), int(match.group(3))
        service = services.get((target_ns, service_name))
        if target_ns != w["metadata"].get("namespace") or service is None:
            self.error(w, f"{where}: mixer target {target} names no Service of namespace "
                          f"{w['metadata'].get('namespace')}")
            return
        if service["spec"].get("clusterIP") != "None":
            self.error(service, "is not headless (clusterIP: None), so the router cannot "
                                "reach each mixer pod")
        if port not in [p["port"] for p in service["spec"].get("ports", [])]:
            self.error(service, f"has no port {port} (mixer target {target})")
        selector = {"matchLabels": service["spec"].get("selector", {})}
        if not any(selects(selector, m["spec"]["template"]["metadata"].get("labels", {}))
                   for m in mixer_workloads):
            self.error(service, f"selects no jamba-mixer-worker pods (mixer target {target})")


def containers(workload):
    return workload["spec"]["template"]["spec"].get("containers", [])


def command_of(c):
    """The program a container runs (its command, else its first arg)."""
    argv = (c.get("command") or []) + (c.get("args") or [])
    return argv[0].rsplit("/", 1)[-1] if argv else None


def is_mixer_client(c):
    """A router that drives mixer workers (--mixers) and holds no layers."""
    return command_of(c) == "jamba-router" and flag_value(c.get("args", []), "mixers")


def shard_of(workload):
    """The --shard of an expert worker workload, or None."""
    for c in workload["spec"]["template"]["spec"].get("containers", []):
        shard = flag_value(c.get("args", []), "shard")
        if shard is not None:
            return shard
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rendered", help="multi-document YAML from kubectl kustomize")
    parser.add_argument("--expect-gpu", action="store_true",
                        help="every container must have an nvidia.com/gpu limit")
    parser.add_argument("--expect-hpa", action="store_true",
                        help="every expert shard must have an HPA")
    args = parser.parse_args()
    with open(args.rendered, encoding="utf-8") as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    errors = Checker(objects, args.expect_gpu, args.expect_hpa).run()
    for e in errors:
        print(f"policy: {args.rendered}: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"policy: {args.rendered}: {len(objects)} objects pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
