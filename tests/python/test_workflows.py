"""The GitHub Actions workflows: linted by actionlint (which runs shellcheck on every `run:`
step), and read for what a release must do, since no workflow can run here."""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from conftest import CHART, ROOT
from test_e2e_kind import VENV_BIN, tool

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(workflow: dict) -> list[dict]:
    return [s for job in workflow["jobs"].values() for s in job["steps"]]


def test_actionlint_finds_nothing() -> None:
    # shellcheck from the venv, so that actionlint checks the run: scripts too.
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yaml"))
    assert {os.path.basename(f) for f in files} >= {"ci.yaml", "release.yaml", "e2e-kind.yaml"}
    result = subprocess.run([tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *files], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_are_pinned_to_releases() -> None:
    for path in WORKFLOWS.glob("*.yaml"):
        for step in steps(yaml.safe_load(path.read_text())):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), f"{path.name}: {step['uses']}"


def test_ci_runs_make_test_on_pull_requests() -> None:
    workflow = load("ci.yaml")
    assert "pull_request" in triggers(workflow)
    assert workflow["permissions"] == {"contents": "read"}
    assert [s["run"].strip() for s in steps(workflow) if "run" in s] == ["make test"]


def test_release_builds_pushes_and_attests_the_image() -> None:
    workflow = load("release.yaml")
    assert triggers(workflow) == {"push": {"tags": ["v*"]}}
    image = workflow["jobs"]["image"]
    assert image["permissions"]["id-token"] == "write" and image["permissions"]["attestations"] == "write"
    (build,) = [s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action@")]
    options = build["with"]
    assert options["platforms"] == "linux/amd64,linux/arm64"
    assert options["target"] == "avi-autoscaler" and options["push"] is True
    assert options["sbom"] is True and options["provenance"] == "mode=max"
    assert "AVI_AUTOSCALER_GIT_SHA=" in options["build-args"] and "SOURCE_DATE_EPOCH=" in options["build-args"]
    assert image["env"]["IMAGE"].startswith("ghcr.io/") and image["env"]["IMAGE"].endswith("/avi-autoscaler")
    assert options["tags"] == "${{ env.IMAGE }}:${{ needs.version.outputs.version }}"
    (attest,) = [s for s in image["steps"] if s.get("uses", "").startswith("actions/attest-build-provenance@")]
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"


def test_release_ships_the_chart_install_yaml_and_binaries() -> None:
    workflow = load("release.yaml")
    jobs = workflow["jobs"]
    chart_run = "\n".join(s.get("run", "") for s in jobs["chart"]["steps"])
    assert 'helm package config/helm/avi-autoscaler --version "$VERSION" --app-version "$VERSION"' in chart_run
    assert 'helm push "dist/avi-autoscaler-${VERSION}.tgz" "oci://ghcr.io/${OWNER}/charts"' in chart_run
    assert "- ../config/default" in chart_run and "dist/install.yaml" in chart_run
    binaries_run = "\n".join(s.get("run", "") for s in jobs["binaries"]["steps"])
    assert "--target binaries --platform linux/amd64,linux/arm64" in binaries_run
    assert set(jobs["release"]["needs"]) == {"version", "image", "binaries", "chart"}
    assert "gh release create" in jobs["release"]["steps"][-1]["run"]
    # The binaries stage exists in the Dockerfile.
    assert re.search(r"^FROM scratch AS binaries$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)


def test_release_version_has_one_source() -> None:
    """The tag must equal Cargo.toml's version, which Chart.yaml repeats; the chart's image tag
    defaults to its appVersion."""
    check = load("release.yaml")["jobs"]["version"]["steps"][-1]["run"]
    assert "Cargo.toml" in check and "Chart.yaml" in check and "exit 1" in check
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert "(default .Chart.AppVersion .Values.image.tag)" in helpers
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert not values["image"]["tag"]
