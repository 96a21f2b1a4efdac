#!/usr/bin/python3
"""deploy/k8s/: every manifest parses (python3-yaml), and the parts that
must agree with rebound-worker and with each other do: every environment
variable set is a setting of the worker under test (its --help), the grace
period exceeds the warm shutdown's bound, the probes ask rebound-status
about the pod's own worker, KEDA counts unacked jobs on the queue the
workers consume, and nothing else references what is not there.
Needs REBOUND_SOURCE_DIR and REBOUND_BIN_DIR (exit 77 without them).
"""
import glob
import os
import unittest

import yaml

from deploy_itest import DEPLOY_DIR, check_probe, drain_bound_ms, run_case, worker_settings

K8S = os.path.join(DEPLOY_DIR, "k8s")
BIN_DIR = os.environ.get("REBOUND_BIN_DIR", "")


def load_all():
    """{kind: [document, ...]} of every manifest, and {file: [kinds]}."""
    docs, files = {}, {}
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path) as f:
            parsed = [d for d in yaml.safe_load_all(f) if d is not None]
        files[os.path.basename(path)] = [d.get("kind") for d in parsed]
        for d in parsed:
            for key in ("apiVersion", "kind"):
                if key not in d:
                    raise AssertionError("%s: a document without %s" % (path, key))
            if d["kind"] != "Kustomization" and "name" not in d.get("metadata", {}):
                raise AssertionError("%s: %s without metadata.name" % (path, d["kind"]))
            docs.setdefault(d["kind"], []).append(d)
    return docs, files


def one(docs, kind):
    if len(docs.get(kind, [])) != 1:
        raise AssertionError("%d %s manifests, want 1" % (len(docs.get(kind, [])), kind))
    return docs[kind][0]


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs, cls.files = load_all()
        cls.settings = worker_settings(os.path.join(BIN_DIR, "rebound-worker"))
        cls.config = one(cls.docs, "ConfigMap")
        cls.deploy = one(cls.docs, "Deployment")
        cls.pod = cls.deploy["spec"]["template"]["spec"]
        containers = cls.pod["containers"]
        assert len(containers) == 1, containers
        cls.worker = containers[0]

    def test_every_kind_is_there(self):
        for kind in ("ConfigMap", "Secret", "Deployment", "PodDisruptionBudget", "ScaledObject",
                     "TriggerAuthentication", "Kustomization"):
            one(self.docs, kind)

    def test_environment_is_settings(self):
        names = list(self.config["data"])
        names += [e["name"] for e in self.worker.get("env", [])]
        self.assertGreater(len(names), 10)
        for name in names:
            self.assertTrue(name in self.settings, "%s is not a rebound-worker setting" % name)
        self.assertEqual(len(names), len(set(names)), "a setting set twice")
        for v in self.config["data"].values():
            self.assertIsInstance(v, str, "ConfigMap values must be strings")
        refs = self.worker["envFrom"]
        self.assertEqual([r["configMapRef"]["name"] for r in refs],
                         [self.config["metadata"]["name"]])

    def test_grace_period_exceeds_drain(self):
        drain = self.config["data"].get("REBOUND_DRAIN_MS", self.settings["REBOUND_DRAIN_MS"])
        grace_s = self.pod["terminationGracePeriodSeconds"]
        self.assertGreater(grace_s * 1000, drain_bound_ms(int(drain)))

    def test_secrets_come_from_the_secret(self):
        secret = one(self.docs, "Secret")
        env = {e["name"]: e for e in self.worker["env"]}
        data = self.config["data"]
        mounts = {m["name"]: m for m in self.worker["volumeMounts"]}
        vols = {v["name"]: v for v in self.pod["volumes"]}
        (urls,) = [n for n, v in vols.items()
                   if v.get("secret", {}).get("secretName") == secret["metadata"]["name"]]
        # the worker refuses a URL file that group or others may read
        self.assertEqual(vols[urls]["secret"]["defaultMode"] & 0o077, 0)
        self.assertNotIn("fsGroup", self.pod.get("securityContext", {}))
        self.assertTrue(mounts[urls].get("readOnly"))
        for var in ("REBOUND_AMQP_URL", "REBOUND_REDIS_URL"):
            # never in the environment, only the file's name
            self.assertNotIn(var, data, "%s in the ConfigMap" % var)
            self.assertNotIn(var, env, "%s in the pod's environment" % var)
            path = data[var + "_FILE"]
            self.assertEqual(os.path.dirname(path), mounts[urls]["mountPath"], var)
            self.assertIn(os.path.basename(path), secret["stringData"], var)
        # nothing secret on a command line
        for key in ("command", "args"):
            self.assertNotIn(key, self.worker)
        # the example Secret is never applied by the kustomization
        kust = one(self.docs, "Kustomization")
        self.assertNotIn("secret.example.yaml", kust["resources"])
        for res in kust["resources"]:
            self.assertTrue(os.path.isfile(os.path.join(K8S, res)), res)
        listed = set(kust["resources"]) | {"secret.example.yaml", "kustomization.yaml"}
        self.assertEqual(listed, set(self.files), "a manifest the kustomization forgets")

    def test_probes_and_security(self):
        env = {e["name"]: e for e in self.worker["env"]}
        self.assertEqual(env["REBOUND_WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "metadata.name")
        for probe in ("livenessProbe", "startupProbe"):
            cmd = self.worker[probe]["exec"]["command"]
            self.assertEqual(cmd[:2], ["sh", "-c"], probe)
            self.assertEqual(cmd[2], 'REBOUND_REDIS_URL=$(cat "$REBOUND_REDIS_URL_FILE") '
                             'exec rebound-status --worker "$REBOUND_WORKER_ID"', probe)
        # with the ConfigMap's settings, under a prefix of the test's own:
        # the probe looks where the worker writes
        settings = dict(self.config["data"],
                        REBOUND_REDIS_PREFIX="rbtest-k8s-probe-%d" % os.getpid())
        check_probe(self, self.worker["livenessProbe"]["exec"]["command"], settings)
        sc = self.worker["securityContext"]
        self.assertEqual(sc["runAsUser"], 0)
        self.assertTrue(sc["privileged"])
        res = self.worker["resources"]
        self.assertEqual(res["requests"], res["limits"], "a Guaranteed pod")
        self.assertEqual(int(res["limits"]["cpu"]), int(self.config["data"]["REBOUND_SLOTS"]))
        mounts = {m["mountPath"]: m for m in self.worker["volumeMounts"]}
        self.assertTrue(mounts[self.config["data"]["REBOUND_CODE_ROOT"]].get("readOnly"))
        vols = {v["name"] for v in self.pod["volumes"]}
        self.assertEqual({m["name"] for m in self.worker["volumeMounts"]}, vols)
        self.assertEqual(self.config["data"]["REBOUND_MODE"], "native")

    def test_pdb_selects_the_workers(self):
        pdb = one(self.docs, "PodDisruptionBudget")
        labels = self.deploy["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(pdb["spec"]["selector"]["matchLabels"].items(), labels.items())
        self.assertEqual(self.deploy["spec"]["selector"]["matchLabels"],
                         pdb["spec"]["selector"]["matchLabels"])
        self.assertIn("maxUnavailable", pdb["spec"])

    def test_keda_counts_unacked_jobs_and_scales_down_slowly(self):
        so = one(self.docs, "ScaledObject")
        self.assertEqual(so["spec"]["scaleTargetRef"]["name"], self.deploy["metadata"]["name"])
        (trigger,) = so["spec"]["triggers"]
        self.assertEqual(trigger["type"], "rabbitmq")
        meta = trigger["metadata"]
        self.assertEqual(meta["protocol"], "http")
        self.assertEqual(meta["mode"], "QueueLength")
        self.assertEqual(meta["queueName"], self.config["data"]["REBOUND_QUEUE"])
        self.assertGreater(int(meta["value"]), 0)
        auth = one(self.docs, "TriggerAuthentication")
        self.assertEqual(trigger["authenticationRef"]["name"], auth["metadata"]["name"])
        (target,) = auth["spec"]["secretTargetRef"]
        secret = one(self.docs, "Secret")
        self.assertEqual(target["name"], secret["metadata"]["name"])
        self.assertTrue(secret["stringData"][target["key"]].startswith("http"))
        down = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        # at most one pod per period, and a period no shorter than a drain
        grace_s = self.pod["terminationGracePeriodSeconds"]
        for policy in down["policies"]:
            self.assertEqual(policy["type"], "Pods")
            self.assertEqual(policy["value"], 1)
            self.assertGreaterEqual(policy["periodSeconds"], grace_s)
        self.assertGreaterEqual(down["stabilizationWindowSeconds"], grace_s)


if __name__ == "__main__":
    run_case(ManifestTest)
