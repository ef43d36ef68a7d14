"""The chart's crds/ holds the generated CRD unchanged (`make crd` writes both copies)."""

from __future__ import annotations

import yaml

from conftest import CHART, CHART_CRD_FILE, CRD_FILE, chart


def test_chart_crd_is_identical_to_config_crd() -> None:
    assert CHART_CRD_FILE.read_bytes() == CRD_FILE.read_bytes(), (
        f"{CHART_CRD_FILE.relative_to(CHART.parents[2])} differs from {CRD_FILE.relative_to(CHART.parents[2])}: "
        "run `make crd` and commit both"
    )


def test_chart_ships_only_that_crd() -> None:
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [CRD_FILE.name]
    assert [c["filename"] for c in chart().crds] == [f"avi-autoscaler/crds/{CRD_FILE.name}"]


def test_config_crd_kustomization_lists_the_crd() -> None:
    kustomization = yaml.safe_load((CRD_FILE.parent / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [CRD_FILE.name]
