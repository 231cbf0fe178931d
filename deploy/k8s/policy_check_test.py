#!/usr/bin/env python3
"""Tests of policy_check.py: each rule fires on a broken copy of a render.

    policy_check_test.py RENDERED_CPU_TINY.yaml RENDERED_GPU.yaml
"""
import copy
import sys
import unittest

import yaml

import policy_check

RENDERED = {}
_LOADED = {}


def load(name):
    """A fresh copy of the objects of a render."""
    if name not in _LOADED:
        with open(RENDERED[name], encoding="utf-8") as f:
            _LOADED[name] = [o for o in yaml.safe_load_all(f) if o]
    return copy.deepcopy(_LOADED[name])


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def container(objects, name):
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


class PolicyCheckTest(unittest.TestCase):
    def errors(self, objects, gpu=False, hpa=False):
        return "\n".join(policy_check.Checker(objects, gpu, hpa).run())

    def assert_flags(self, mutate, expected, overlay="cpu-tiny"):
        objects = load(overlay)
        mutate(objects)
        gpu = overlay == "gpu"
        self.assertIn(expected, self.errors(objects, gpu, gpu))

    def test_renders_pass(self):
        self.assertEqual(self.errors(load("cpu-tiny")), "")
        self.assertEqual(self.errors(load("gpu"), True, True), "")

    def test_named_probe_port(self):
        def mutate(objects):
            container(objects, "shard-0")["readinessProbe"]["grpc"]["port"] = "grpc"
        self.assert_flags(mutate, "readinessProbe port 'grpc' is not a number")

    def test_liveness_on_a_downstream_service(self):
        def mutate(objects):
            container(objects, "shard-1")["livenessProbe"]["grpc"]["service"] = "x.Y"
        self.assert_flags(mutate, "liveness checks gRPC service 'x.Y'")

    def test_short_grace_period(self):
        def mutate(objects):
            find(objects, "Deployment", "router")["spec"]["template"]["spec"][
                "terminationGracePeriodSeconds"] = 30
        self.assert_flags(mutate, "terminationGracePeriodSeconds 30 < preStop sleep 10 s")

    def test_worker_drain_timeout_counts(self):
        def mutate(objects):
            args = container(objects, "shard-0")["args"]
            args[args.index("--drain_timeout=30s")] = "--drain_timeout=1m30s"
        self.assert_flags(mutate, "drain budget 90 s")

    def test_missing_pdb(self):
        def mutate(objects):
            objects.remove(find(objects, "PodDisruptionBudget", "shard-1"))
        self.assert_flags(mutate, "Deployment/shard-1: 0 PodDisruptionBudgets")

    def test_latest_and_untagged_images(self):
        def mutate(objects):
            container(objects, "router")["image"] = "registry:5000/jamba-serve:latest"
            container(objects, "shard-0")["image"] = "registry:5000/jamba-serve"
        self.assert_flags(mutate, "router: container router: image 'registry:5000/jamba-serve:latest'")
        self.assert_flags(mutate, "shard-0: container expert-worker: image 'registry:5000/jamba-serve'")

    def test_root_user(self):
        def mutate(objects):
            del find(objects, "Deployment", "router")["spec"]["template"]["spec"][
                "securityContext"]["runAsNonRoot"]
        self.assert_flags(mutate, "runAsNonRoot is not true")

    def test_gpu_limit_missing(self):
        def mutate(objects):
            del container(objects, "shard-1")["resources"]["limits"]["nvidia.com/gpu"]
        self.assert_flags(mutate, "shard-1: container expert-worker: no nvidia.com/gpu limit",
                          overlay="gpu")

    def test_hpa_on_cpu_and_replicas_set(self):
        def mutate(objects):
            hpa = find(objects, "HorizontalPodAutoscaler", "shard-0")
            hpa["spec"]["metrics"] = [{"type": "Resource", "resource": {"name": "cpu"}}]
            find(objects, "Deployment", "shard-0")["spec"]["replicas"] = 2
        self.assert_flags(mutate, "scales on CPU/memory", overlay="gpu")
        self.assert_flags(mutate, "sets spec.replicas although an HPA manages it", overlay="gpu")

    def test_placement_target_without_service(self):
        def mutate(objects):
            cm = next(o for o in objects if o["kind"] == "ConfigMap")
            cm["data"]["placement.json"] = cm["data"]["placement.json"].replace(
                "shard-1.jamba.svc", "shard-9.jamba.svc")
        self.assert_flags(mutate, "names no Service of namespace jamba")

    def test_shard_missing_from_placement(self):
        def mutate(objects):
            args = container(objects, "shard-1")["args"]
            args[args.index("--shard=shard-1")] = "--shard=shard-7"
        self.assert_flags(mutate, "no workload runs with --shard=shard-1")

    def test_gpu_on_a_router_with_mixers(self):
        def mutate(objects):
            container(objects, "router")["resources"]["limits"]["nvidia.com/gpu"] = 1
        self.assert_flags(mutate, "nvidia.com/gpu limit on a router with --mixers", overlay="gpu")

    def test_mixer_gpu_limit_missing(self):
        def mutate(objects):
            del container(objects, "mixer")["resources"]["limits"]["nvidia.com/gpu"]
        self.assert_flags(mutate, "mixer: container mixer-worker: no nvidia.com/gpu limit",
                          overlay="gpu")

    def test_mixer_target_without_service(self):
        def mutate(objects):
            args = container(objects, "router")["args"]
            i = next(i for i, a in enumerate(args) if a.startswith("--mixers="))
            args[i] = args[i].replace("mixer.jamba.svc", "mixers.jamba.svc")
        self.assert_flags(mutate, "names no Service of namespace jamba")

    def test_mixer_service_not_headless_or_wrong_port(self):
        def mutate(objects):
            service = find(objects, "Service", "mixer")
            del service["spec"]["clusterIP"]
            service["spec"]["ports"][0]["port"] = 7101
        self.assert_flags(mutate, "Service/mixer: is not headless")
        self.assert_flags(mutate, "Service/mixer: has no port 7100")

    def test_mixer_service_selecting_no_mixer(self):
        def mutate(objects):
            find(objects, "Service", "mixer")["spec"]["selector"][
                "app.kubernetes.io/component"] = "shard-0"
        self.assert_flags(mutate, "selects no jamba-mixer-worker pods")

    def test_router_with_mixers_and_placement(self):
        def mutate(objects):
            container(objects, "router")["args"].append("--placement=/etc/jamba/placement.json")
        self.assert_flags(mutate, "--placement together with --mixers")

    def test_mixer_without_placement(self):
        def mutate(objects):
            args = container(objects, "mixer")["args"]
            args.remove("--placement=/etc/jamba/placement.json")
        self.assert_flags(mutate, "jamba-mixer-worker without --placement")

    def test_durations(self):
        self.assertEqual(policy_check.parse_duration("30s"), 30)
        self.assertEqual(policy_check.parse_duration("1m30s"), 90)
        self.assertEqual(policy_check.parse_duration("500ms"), 0.5)
        self.assertIsNone(policy_check.parse_duration("30"))
        self.assertIsNone(policy_check.parse_duration("30sx"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: policy_check_test.py RENDERED_CPU_TINY.yaml RENDERED_GPU.yaml")
    RENDERED["cpu-tiny"], RENDERED["gpu"] = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=1)
