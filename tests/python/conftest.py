"""Shared helpers for the checks of the deployables: render the Helm chart with Helm's own
library, render the kustomize directories with kubectl, validate objects against the
Kubernetes schemas."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "config" / "helm" / "avi-autoscaler"
CRD_FILE = ROOT / "config" / "crd" / "aviautoscalers.autoscaling.avi.dev.yaml"
AVICONTROLLER_CRD_FILE = ROOT / "config" / "crd" / "avicontrollers.autoscaling.avi.dev.yaml"
# Every generated CRD, in the order `avi-autoscaler crd` prints them.
CRD_FILES = [CRD_FILE, AVICONTROLLER_CRD_FILE]
SCHEMAS = Path(__file__).resolve().parent / "schemas"

sys.path.insert(0, str(ROOT / "hack"))

# The release the kustomize default is equivalent to: `helm install avi-autoscaler <chart>
# --namespace avi-autoscaler`.
RELEASE = "avi-autoscaler"
NAMESPACE = "avi-autoscaler"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), two the platforms Avi runs
# on commonly trail at (1.30) or have reached (1.33, also k8s-openapi's compile-time version),
# and the newest kubernetes-validate knows.
OLDEST_KUBE_VERSION = "1.28"
KUBE_VERSIONS = list(
    dict.fromkeys(
        [
            OLDEST_KUBE_VERSION,
            "1.30",
            "1.33",
            kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version()),
        ]
    )
)

# A PEM-shaped CA bundle for the AviController values (the chart only copies it into a Secret).
TEST_CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

# The value sets every check renders. Each is a user's realistic choice.
VALUE_SETS: dict[str, dict] = {
    "default": {},
    "single-namespace": {"watchNamespaces": ["routing-ns1"]},
    "namespace-list": {"watchNamespaces": ["routing-ns1", "routing-ns2", "shop"]},
    "metrics-off": {"metrics": {"enabled": False}},
    "servicemonitor-on": {
        "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kube-prometheus-stack"}}}
    },
    "pdb-on": {"podDisruptionBudget": {"enabled": True}},
    "sharded": {"sharding": {"shards": 3}, "labelSelector": "team in (web,shop)", "podDisruptionBudget": {"enabled": True}},
    "single-replica-no-leader-election": {"replicaCount": 1, "leaderElection": {"enabled": False}},
    "custom-scale-targets": {
        "rbac": {"extraScaleTargets": [{"apiGroup": "argoproj.io", "resources": ["rollouts"]}]}
    },
    "existing-service-account": {"serviceAccount": {"create": False, "name": "platform-operator"}},
    "no-rbac-no-user-roles": {"rbac": {"create": False, "aggregateToUserRoles": False}},
    "inline-controllers": {
        "inlineControllers": {"enabled": True, "allowedEndpoints": ["*.avi.example.com", "10.20.0.0/16"]}
    },
    "avi-controllers": {
        "aviControllers": [
            {
                "name": "prod-avi",
                "endpoints": ["https://avi-1.example.com", "https://avi-2.example.com"],
                "apiVersion": "22.1.3",
                "credentials": {"username": "autoscaler", "password": "s3cret"},
                "tls": {"ca": TEST_CA},
                "namespaceSelector": {"matchLabels": {"avi-autoscaling": "enabled"}},
            },
            {
                "name": "lab-avi",
                "endpoints": ["https://10.30.0.10"],
                "tenant": "lab",
                "authMode": "basic",
                "timeoutSeconds": 5,
                "credentialsSecretRef": {"name": "lab-avi-credentials"},
                "tls": {"caSecretRef": {"name": "lab-avi-ca", "key": "bundle.pem"}},
            },
        ]
    },
    "network-policy": {
        "networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.96.0.1/32", "172.18.0.2/32"]}, "aviCIDRs": ["10.10.0.0/24"]}
    },
    "everything": {
        "image": {"repository": "registry.example.com/avi-autoscaler", "tag": "0.1.0-rc1", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "fullnameOverride": "aas",
        "replicaCount": 3,
        "watchNamespaces": ["routing-ns1"],
        "logLevel": "info,avi_autoscaler=debug",
        "logFormat": "text",
        "metrics": {
            "port": 9090,
            "service": {"type": "ClusterIP", "annotations": {"prometheus.io/scrape": "true"}},
            "serviceMonitor": {"enabled": True, "interval": "1m", "scrapeTimeout": "20s"},
        },
        "health": {"port": 9091},
        "serviceAccount": {"annotations": {"example.com/owner": "platform"}},
        "rbac": {"extraScaleTargets": [{"apiGroup": "", "resources": ["replicationcontrollers"]}]},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"team": "platform"},
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "avi-autoscaler"}},
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "avi-autoscaler"}},
            }
        ],
        "aviControllers": [
            {
                "name": "prod-avi",
                "endpoints": ["https://10.40.0.10:8443", "https://[fd00:40::10]"],
                "tenant": "prod",
                "apiVersion": "30.2.1",
                "authMode": "session",
                "timeoutSeconds": 20,
                "credentials": {"username": "autoscaler", "password": "s3cret"},
                "tls": {"ca": TEST_CA},
                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["shop"]}]},
            },
            {
                "name": "lab-avi",
                "endpoints": ["https://avi-lab.example.com"],
                "credentialsSecretRef": {"name": "lab-avi-credentials"},
                "tls": {"insecureSkipVerify": True},
            },
        ],
        "inlineControllers": {"enabled": True, "allowedEndpoints": ["avi.example.com", "10.20.0.0/16"], "allowInsecure": True},
        "networkPolicy": {
            "enabled": True,
            "apiServer": {"cidrs": ["10.96.0.1/32"], "ports": [443]},
            "aviCIDRs": ["192.0.2.0/24"],
            "aviPort": 8443,
            "dns": {"namespace": "dns", "podLabels": {"app": "coredns"}},
        },
    },
}


@lru_cache(maxsize=1)
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render_templates(values: dict | None = None, release: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    """Render the chart as `helm install` would (templates only; CRDs come from crds/)."""
    return chart().render(copy.deepcopy(values or {}), name=release, namespace=namespace, is_install=True)


def render_chart(values: dict | None = None, release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict]:
    """The objects of a release, without the CRD and without NOTES.txt."""
    objects = []
    for path, text in sorted(render_templates(values, release, namespace).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def render_notes(values: dict | None = None) -> str:
    rendered = render_templates(values)
    return next(text for path, text in rendered.items() if path.endswith("templates/NOTES.txt"))


def chart_crds() -> list[dict]:
    return [doc for crd in chart().crds for doc in yaml.safe_load_all(crd["data"]) if doc]


@lru_cache(maxsize=None)
def _kustomize_text(directory: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed: it renders config/ with `kubectl kustomize` (apt-get install kubectl)")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / directory)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def kustomize(directory: str) -> list[dict]:
    """`kubectl kustomize <directory>` as objects."""
    return [doc for doc in yaml.safe_load_all(_kustomize_text(directory)) if doc]


def find(objects: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name)
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]


def one(objects: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> dict:
    found = find(objects, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}: {[o['metadata'] for o in found]}"
    return found[0]


def operator_container(objects: list[dict]) -> dict:
    deployment = one(objects, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "operator")


# ---------------------------------------------------------------------------------------------
# Validation

# kubernetes-validate reads and parses a schema file (the definitions are megabytes) on every
# call; the files never change during a run, and the parsed schemas are only read.
kubernetes_validate.utils.schema_contents = lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)


def _definitions_resource(version: str) -> Resource:
    schema_dir = f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json"
    definitions = kubernetes_validate.utils.schema_contents(schema_dir, version)
    return Resource.from_contents(definitions)


@lru_cache(maxsize=None)
def _servicemonitor_validator(version: str) -> jsonschema.Validator:
    schema = json.loads((SCHEMAS / "servicemonitor-monitoring-v1.json").read_text())
    registry = Registry().with_resources(
        [
            ("https://kubernetes.io/api/_definitions.json", _definitions_resource(version)),
            (schema["$id"], Resource.from_contents(schema)),
        ]
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _openapi_v3_to_json_schema(schema: dict) -> dict:
    """A CRD's structural schema as plain JSON Schema: `nullable: true` becomes a "null" type;
    x-kubernetes-* keywords (CEL rules, list types) are left for the API server, and ignored."""
    if isinstance(schema, list):
        return [_openapi_v3_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_v3_to_json_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
    out.pop("nullable", None)
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    return out


@lru_cache(maxsize=None)
def _custom_resource_validator(kind: str) -> jsonschema.Validator:
    for path in CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return jsonschema.Draft7Validator(_openapi_v3_to_json_schema(schema))
    raise AssertionError(f"no CRD in config/crd defines kind {kind}")


def validate_object(obj: dict, version: str) -> None:
    """Validate one object for a Kubernetes version; raises with the failing field on error.

    Built-in kinds and CRDs (as apiextensions.k8s.io/v1 objects) use kubernetes-validate's
    strict schemas; a ServiceMonitor uses tests/python/schemas; our kinds their own CRDs."""
    if obj.get("kind") == "ServiceMonitor":
        _servicemonitor_validator(version).validate(obj)
    elif obj.get("apiVersion", "").startswith("autoscaling.avi.dev/"):
        _custom_resource_validator(obj["kind"]).validate(obj)
    else:
        kubernetes_validate.validate(obj, version, strict=True)
