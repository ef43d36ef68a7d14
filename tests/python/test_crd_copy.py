"""The chart's crds/ holds the generated CRDs unchanged (`make crd` writes both copies)."""

from __future__ import annotations

import yaml

from conftest import CHART, CRD_FILES, chart


def test_chart_crds_are_identical_to_config_crd() -> None:
    for crd_file in CRD_FILES:
        chart_copy = CHART / "crds" / crd_file.name
        assert chart_copy.read_bytes() == crd_file.read_bytes(), (
            f"{chart_copy.relative_to(CHART.parents[2])} differs from {crd_file.relative_to(CHART.parents[2])}: "
            "run `make crd` and commit both"
        )


def test_chart_ships_only_those_crds() -> None:
    names = sorted(f.name for f in CRD_FILES)
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == names
    assert sorted(c["filename"] for c in chart().crds) == [f"avi-autoscaler/crds/{n}" for n in names]


def test_config_crd_kustomization_lists_the_crds() -> None:
    kustomization = yaml.safe_load((CRD_FILES[0].parent / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [f.name for f in CRD_FILES]
