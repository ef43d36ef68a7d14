"""The Dockerfile: linted by hadolint, and read for what an image build here cannot show (no
container engine runs on these machines): static binaries, a distroless non-root runtime, and
agreement with Cargo.toml and the chart."""

from __future__ import annotations

import re
import subprocess
import tomllib


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


DIGEST = r"@sha256:[0-9a-f]{64}"


def base_tag(stage: dict) -> str:
    """A stage's base image without its digest; the digest must be there."""
    match = re.fullmatch(rf"(\S+?){DIGEST}", stage["base"])
    assert match, f"{stage['base']}: pin the base image by digest"
    return match.group(1)


def test_toolchain_is_the_workspace_rust_version() -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    version = cargo["workspace"]["package"]["rust-version"]
    assert base_tag(stages()[0]) == f"rust:{version}-alpine"


def test_base_images_are_pinned_by_digest_with_the_tag_readable() -> None:
    text = DOCKERFILE.read_text()
    for stage in stages():
        if stage["base"] == "scratch" or stage["base"] in {s["name"] for s in stages()}:
            continue
        tag = base_tag(stage)
        # The tag is readable next to the pin (for reviewers and updater bots).
        assert f"# {tag}" in text, f"no comment naming {tag}"


def test_build_is_reproducible_and_names_its_commit() -> None:
    run = "\n".join(stages()[0]["lines"])
    assert "ARG AVI_AUTOSCALER_GIT_SHA" in run and 'AVI_AUTOSCALER_GIT_SHA="$AVI_AUTOSCALER_GIT_SHA"' in run
    assert "ARG SOURCE_DATE_EPOCH" in run and "--remap-path-prefix=/src=." in run
    (binaries,) = [s for s in stages() if s["name"] == "binaries"]
    assert binaries["base"] == "scratch"
    assert instruction(binaries, "COPY") == ["--from=build /out/ /"]


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
    assert base_tag(final) == "gcr.io/distroless/static-debian13:nonroot"
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
    assert base_tag(sim).startswith("gcr.io/distroless/static-debian13:")
    assert instruction(sim, "ENTRYPOINT") == ['["/avi-sim"]']
    assert instruction(sim, "USER") == ["65532:65532"]


def test_operator_binary_name_matches_its_crate() -> None:
    cargo = tomllib.loads((ROOT / "crates" / "operator" / "Cargo.toml").read_text())
    assert [b["name"] for b in cargo["bin"]] == ["avi-autoscaler"]


def test_avi_sim_binary_name_matches_its_crate() -> None:
    manifest = ROOT / "crates" / "avi-sim" / "Cargo.toml"
    cargo = tomllib.loads(manifest.read_text())
    names = [b["name"] for b in cargo.get("bin", [])] or [cargo["package"]["name"]]
    assert "avi-sim" in names


def test_dockerignore_keeps_build_output_and_tools_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "target"} <= ignored
    # What the build needs stays in.
    assert not ignored & {"crates", "Cargo.toml", "Cargo.lock", "*"}
