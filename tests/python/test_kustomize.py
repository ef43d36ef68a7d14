"""`kubectl kustomize config/default` installs what the chart's default install does, and
config/namespaced what the chart does with `watchNamespaces: [routing-ns1]`."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import CRD_FILES, NAMESPACE, chart, kustomize, one, operator_container, render_chart

# Labels that only say which tool installed an object.
TOOL_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by"}


def normalized(objects: list[dict]) -> dict[tuple[str, str, str], dict]:
    """Objects by (kind, namespace, name), without the tool labels."""
    result = {}
    for obj in objects:
        obj = copy.deepcopy(obj)
        labels = obj["metadata"].get("labels", {})
        for key in TOOL_LABELS:
            labels.pop(key, None)
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        assert key not in result, f"{key} appears twice"
        result[key] = obj
    return result


def without(objects: dict, kinds: set[str]) -> dict:
    return {k: v for k, v in objects.items() if k[0] not in kinds}


@pytest.mark.parametrize(
    ("directory", "values"),
    [
        ("config/default", {}),
        ("config/namespaced", {"watchNamespaces": ["routing-ns1"]}),
        ("config/inline-controllers", {"inlineControllers": {"enabled": True}}),
    ],
)
def test_kustomize_equals_the_chart(directory: str, values: dict) -> None:
    # The Namespace and the CRD are not chart templates (helm --create-namespace, crds/).
    from_kustomize = without(normalized(kustomize(directory)), {"Namespace", "CustomResourceDefinition"})
    from_chart = normalized(render_chart(values))
    assert sorted(from_kustomize) == sorted(from_chart), "kinds, namespaces and names differ"
    for key, obj in from_chart.items():
        assert from_kustomize[key] == obj, f"{key} differs:\n--- chart\n{yaml.safe_dump(obj)}\n--- kustomize\n{yaml.safe_dump(from_kustomize[key])}"


def test_kustomize_managed_by_label() -> None:
    for obj in kustomize("config/default"):
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize", obj["metadata"]["name"]


def test_kustomize_default_installs_the_crds_and_a_restricted_namespace() -> None:
    objects = kustomize("config/default")
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert len(crds) == len(CRD_FILES)
    for crd, crd_file in zip(crds, CRD_FILES, strict=True):
        checked_in = yaml.safe_load(crd_file.read_text())
        crd["metadata"]["labels"] = {k: v for k, v in crd["metadata"]["labels"].items() if k not in TOOL_LABELS | {"app.kubernetes.io/version"}}
        if not crd["metadata"]["labels"]:
            del crd["metadata"]["labels"]
        assert crd == checked_in
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kustomize_image_and_version_follow_the_chart() -> None:
    app_version = chart().metadata["appVersion"]
    objects = kustomize("config/default")
    assert operator_container(objects)["image"] == f"ghcr.io/avi-autoscaler/avi-autoscaler:{app_version}"
    for obj in objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/version"] == app_version


def test_namespaced_overlay_grants_only_cluster_scoped_kinds_cluster_wide() -> None:
    objects = kustomize("config/namespaced")
    # AviControllers and Namespaces have no namespace a Role could grant them in.
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"] == ["avi-autoscaler-avicontrollers"]
    cluster_rules = one(objects, "ClusterRole", "avi-autoscaler-avicontrollers")["rules"]
    assert {r for rule in cluster_rules for r in rule["resources"]} == {"avicontrollers", "avicontrollers/status", "namespaces"}
    assert one(objects, "Role", "avi-autoscaler", "routing-ns1")["rules"] == one(kustomize("config/rbac"), "ClusterRole", "avi-autoscaler")["rules"]


def test_samples_reference_each_other() -> None:
    objects = kustomize("config/samples")
    secret = one(objects, "Secret")
    autoscaler = one(objects, "AviAutoscaler")
    assert autoscaler["spec"]["controller"]["credentialsSecretRef"]["name"] == secret["metadata"]["name"]
    assert set(secret["stringData"]) == {"username", "password"}


def test_kustomize_default_reads_secrets_in_the_operator_namespace_only() -> None:
    def secret_roles(objects: list[dict]) -> list[tuple[str, str, str]]:
        return sorted(
            (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
            for o in objects
            if o["kind"] in {"Role", "ClusterRole"} and any("secrets" in r["resources"] for r in o["rules"])
        )

    assert secret_roles(kustomize("config/default")) == [("Role", NAMESPACE, "avi-autoscaler-secrets")]
    assert secret_roles(kustomize("config/namespaced")) == [("Role", NAMESPACE, "avi-autoscaler-secrets")]
    # The inline-controllers component is what adds a cluster-wide Secret read.
    assert secret_roles(kustomize("config/inline-controllers")) == [
        ("ClusterRole", "", "avi-autoscaler"),
        ("Role", NAMESPACE, "avi-autoscaler-secrets"),
    ]
