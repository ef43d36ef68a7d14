"""The Grafana dashboard and the PrometheusRule: the chart ships the same files as config/ (when
grafanaDashboard.enabled / prometheusRule.enabled, both off by default), and the dashboard has
the variables and views operators rely on."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import CHART, KUBE_VERSIONS, ROOT, find, one, render_chart, validate_object

DASHBOARD = ROOT / "config" / "grafana" / "avi-autoscaler.json"
ALERTS = ROOT / "config" / "prometheus" / "alerts.yaml"
COPIES = {DASHBOARD: CHART / "files" / DASHBOARD.name, ALERTS: CHART / "files" / ALERTS.name}

MONITORING_ON = {
    "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Kubernetes"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def expressions(d: dict) -> list[str]:
    return [t["expr"] for p in d["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("source", COPIES, ids=lambda p: p.name)
def test_chart_copy_is_identical(source) -> None:
    copy = COPIES[source]
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from {source.relative_to(ROOT)}: "
        f"cp {source.relative_to(ROOT)} {copy.relative_to(ROOT)}"
    )


def test_off_by_default() -> None:
    objects = render_chart()
    assert find(objects, "PrometheusRule") == []
    assert [o for o in find(objects, "ConfigMap") if "grafana_dashboard" in o["metadata"].get("labels", {})] == []


def test_dashboard_configmap_carries_the_dashboard() -> None:
    config_map = one(render_chart(MONITORING_ON), "ConfigMap", "avi-autoscaler-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Kubernetes"}
    assert config_map["metadata"]["namespace"] == "avi-autoscaler"
    assert config_map["data"]["avi-autoscaler.json"] == DASHBOARD.read_text().rstrip("\n")
    for version in KUBE_VERSIONS:
        validate_object(config_map, version)


def test_dashboard_configmap_goes_where_the_sidecar_looks() -> None:
    values = {"grafanaDashboard": {"enabled": True, "namespace": "monitoring", "labels": {"team": "platform"}}}
    config_map = one(render_chart(values), "ConfigMap", "avi-autoscaler-dashboard")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["team"] == "platform"


def test_prometheus_rule_is_the_one_in_config() -> None:
    rule = one(render_chart(MONITORING_ON), "PrometheusRule")
    source = yaml.safe_load(ALERTS.read_text())
    assert rule["apiVersion"] == source["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == source["spec"]
    assert rule["metadata"]["namespace"] == "avi-autoscaler"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/name"] == "avi-autoscaler"


def test_dashboard_has_namespace_and_autoscaler_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert {"datasource", "namespace", "autoscaler"} <= variables.keys()
    assert "$namespace" in variables["autoscaler"]["query"]["query"]
    for expr in expressions(dashboard()):
        if re.search(r"avi_autoscaler_(ready|condition|metric_value|metric_target|\w+_replicas|scale_events)\b", expr):
            assert 'namespace=~"$namespace"' in expr and 'name=~"$autoscaler"' in expr, expr


def test_dashboard_covers_the_autoscalers_the_controllers_and_the_operator() -> None:
    queried = " ".join(expressions(dashboard()))
    for metric in [
        "avi_autoscaler_metric_value",
        "avi_autoscaler_metric_target",
        "avi_autoscaler_desired_replicas",
        "avi_autoscaler_current_replicas",
        "avi_autoscaler_ready_replicas",
        "avi_autoscaler_scale_events_total",
        "avi_autoscaler_condition",
        "avi_autoscaler_avi_requests_total",
        "avi_autoscaler_avi_request_duration_seconds_bucket",
        "avi_autoscaler_avi_circuit_open",
        "avi_autoscaler_reconciliations_total",
        "avi_autoscaler_reconcile_failures_total",
        "avi_autoscaler_reconciles_in_flight",
        "avi_autoscaler_resident_memory_bytes",
    ]:
        assert re.search(rf"\b{metric}\b", queried), metric
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard()["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
