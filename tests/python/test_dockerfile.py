"""The Dockerfile: linted by hadolint, and read for what an image build here cannot show (no
container engine runs on these machines): static binaries, a distroless non-root runtime, and
agreement with Cargo.toml and the chart."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from conftest import ROOT, one, render_chart
from test_e2e_kind import tool

DOCKERFILE = ROOT / "Dockerfile"


def stages() -> list[dict]:
    """The stages in order: {"base", "name", "lines"}; ARG lines before the first FROM are left out."""
    result: list[dict] = []
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", line)
        if match:
            result.append({"base": match.group(1), "name": match.group(2), "lines": []})
        elif result:
            result[-1]["lines"].append(line)
    return result


def instruction(stage: dict, keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in stage["lines"] if line.startswith(keyword + " ")]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_toolchain_is_the_workspace_rust_version() -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    default = re.search(r"^ARG RUST_VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    assert default == cargo["workspace"]["package"]["rust-version"]
    assert stages()[0]["base"] == "rust:${RUST_VERSION}-alpine"


def test_build_stage_builds_static_release_binaries() -> None:
    build = stages()[0]
    run = "\n".join(build["lines"])
    assert "cargo build --release --locked --bin avi-autoscaler --bin avi-sim" in run
    # musl on Alpine links statically; the build fails if a binary asks for a dynamic loader.
    assert "readelf --program-headers" in run and "INTERP" in run
    assert 'SHELL ["/bin/ash", "-eo", "pipefail", "-c"]' in run


def test_operator_image_is_the_default_target_distroless_and_non_root() -> None:
    final = stages()[-1]
    assert final["name"] == "avi-autoscaler"
    assert final["base"] == "gcr.io/distroless/static-debian13:nonroot"
    assert ":debug" not in final["base"], "the operator image carries no shell"
    assert instruction(final, "COPY") == ["--from=build /out/avi-autoscaler /avi-autoscaler"]
    assert instruction(final, "ENTRYPOINT") == ['["/avi-autoscaler"]']
    assert instruction(final, "CMD") == ['["run"]']
    (user,) = instruction(final, "USER")
    uid, gid = user.split(":")
    # A numeric user lets the kubelet check runAsNonRoot; the chart runs as the same user.
    pod = one(render_chart(), "Deployment")["spec"]["template"]["spec"]
    assert int(uid) == pod["securityContext"]["runAsUser"] != 0
    assert int(gid) == pod["securityContext"]["runAsGroup"]
    assert instruction(final, "EXPOSE") == ["8080 8081"]


def test_avi_sim_image_is_a_separate_target() -> None:
    (sim,) = [s for s in stages() if s["name"] == "avi-sim"]
    assert sim["base"].startswith("gcr.io/distroless/static-debian13:")
    assert instruction(sim, "ENTRYPOINT") == ['["/avi-sim"]']
    assert instruction(sim, "USER") == ["65532:65532"]


def test_operator_binary_name_matches_its_crate() -> None:
    cargo = tomllib.loads((ROOT / "crates" / "operator" / "Cargo.toml").read_text())
    assert [b["name"] for b in cargo["bin"]] == ["avi-autoscaler"]


def test_avi_sim_binary_name_matches_its_crate() -> None:
    manifest = ROOT / "crates" / "avi-sim" / "Cargo.toml"
    if not manifest.exists():
        pytest.skip("crates/avi-sim is not in this tree yet; the Dockerfile builds its binary avi-sim (DESIGN.md)")
    cargo = tomllib.loads(manifest.read_text())
    names = [b["name"] for b in cargo.get("bin", [])] or [cargo["package"]["name"]]
    assert "avi-sim" in names


def test_dockerignore_keeps_build_output_and_tools_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "target"} <= ignored
    # What the build needs stays in.
    assert not ignored & {"crates", "Cargo.toml", "Cargo.lock", "*"}
