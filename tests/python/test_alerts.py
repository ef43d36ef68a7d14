"""The alert rules in config/prometheus/alerts.yaml: promtool checks them and runs a unit test for
every alert (fixtures/alerts_test.yaml), firing and not firing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

ALERTS = ROOT / "config" / "prometheus" / "alerts.yaml"
UNIT_TESTS = Path(__file__).resolve().parent / "fixtures" / "alerts_test.yaml"


def promtool() -> str:
    """promtool from PATH (Debian's `prometheus` package; .ci/run installs it). Outside CI a
    missing promtool skips; in CI it fails, so the rules are never left unchecked."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing: install Debian's `prometheus` package (.ci/run does)"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def rule_spec() -> dict:
    rule = yaml.safe_load(ALERTS.read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    return rule["spec"]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The PrometheusRule's spec as a plain rules file, beside the unit tests: one source."""
    (tmp_path / "alerts.rules.yaml").write_text(yaml.safe_dump(rule_spec()))
    shutil.copy(UNIT_TESTS, tmp_path / "alerts_test.yaml")
    return tmp_path


def run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def test_promtool_checks_the_rules(rules_dir: Path) -> None:
    run([promtool(), "check", "rules", "alerts.rules.yaml"], rules_dir)


def test_promtool_unit_tests_pass(rules_dir: Path) -> None:
    run([promtool(), "test", "rules", "alerts_test.yaml"], rules_dir)


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in rule_spec()["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case.get("alert_rule_test", [])}
    assert alerts == tested
    # Each alert is checked both quiet and firing.
    for alert in alerts:
        outcomes = {
            bool(t["exp_alerts"])
            for case in tests
            for t in case.get("alert_rule_test", [])
            if t["alertname"] == alert
        }
        assert outcomes == {True, False}, alert


def test_the_expected_alerts_exist() -> None:
    alerts = {r["alert"] for g in rule_spec()["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {
        "AviAutoscalerNotReady",
        "AviControllerNotReady",
        "AviAutoscalerAtMaxReplicas",
        "AviAutoscalerReconcileErrors",
        "AviAutoscalerNoLeader",
    }
