"""Every manifest a user can install passes schema validation for a current Kubernetes:
kubernetes-validate's strict schemas for built-in kinds and for the CRD (as an
apiextensions.k8s.io/v1 object), the Prometheus Operator's fields for the ServiceMonitor, and
the CRD's own schema for the sample AviAutoscalers."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest

from conftest import KUBE_VERSIONS, VALUE_SETS, chart_crds, kustomize, one, render_chart, validate_object

KUSTOMIZE_DIRS = [
    "config/default",
    "config/namespaced",
    "config/inline-controllers",
    "config/crd",
    "config/rbac",
    "config/manager",
    "config/samples",
]


def label(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_chart_validates(name: str, version: str) -> None:
    objects = render_chart(VALUE_SETS[name])
    assert objects
    for obj in objects:
        try:
            validate_object(obj, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
            pytest.fail(f"{name}: {label(obj)} is invalid for Kubernetes {version}: {e.message} at {list(e.absolute_path)}")


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_chart_crd_validates_as_apiextensions_v1(version: str) -> None:
    crds = chart_crds()
    assert [c["metadata"]["name"] for c in crds] == ["aviautoscalers.autoscaling.avi.dev", "avicontrollers.autoscaling.avi.dev"]
    for crd in crds:
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        validate_object(crd, version)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS)
def test_kustomize_output_validates(directory: str, version: str) -> None:
    objects = kustomize(directory)
    assert objects
    for obj in objects:
        try:
            validate_object(obj, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
            pytest.fail(f"{directory}: {label(obj)} is invalid for Kubernetes {version}: {e.message} at {list(e.absolute_path)}")


# The validators above must be able to fail: each bad object below is refused.


def test_validation_refuses_a_bad_deployment() -> None:
    deployment = copy.deepcopy(one(render_chart(), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"name": "health"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(deployment, KUBE_VERSIONS[-1])
    deployment = copy.deepcopy(one(render_chart(), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True  # misplaced
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(deployment, KUBE_VERSIONS[-1])


def test_validation_refuses_a_bad_servicemonitor() -> None:
    monitor = one(render_chart(VALUE_SETS["servicemonitor-on"]), "ServiceMonitor")
    for change in (
        lambda m: m["spec"]["endpoints"][0].update(interval="15 seconds"),
        lambda m: m["spec"]["endpoints"][0].update(targetPort=8080, bogus=True),
        lambda m: m["spec"].update(selector={"matchLabels": {"a": 1}}),
        lambda m: m["metadata"].update(labels={"release": None, "x": 5}),
        lambda m: m.update(apiVersion="monitoring.coreos.com/v2"),
    ):
        bad = copy.deepcopy(monitor)
        change(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_object(bad, KUBE_VERSIONS[-1])


def test_validation_refuses_a_bad_aviautoscaler() -> None:
    sample = one(kustomize("config/samples"), "AviAutoscaler")
    for change in (
        lambda a: a["spec"].pop("maxReplicas"),
        lambda a: a["spec"]["metrics"][0]["target"].update(type="Utilization"),
        lambda a: a["spec"].update(minReplicas="one"),
    ):
        bad = copy.deepcopy(sample)
        change(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_object(bad, KUBE_VERSIONS[-1])
