"""docs/architecture.md's crate table must match the workspace: every member listed, and each
one's workspace dependencies (normal, not dev or build) exactly as the table says."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"
ROW = re.compile(r"^\| `(?P<dir>(?:crates/)?[a-z0-9-]+)` \(`(?P<package>[a-z0-9-]+)`\) \|.*\| (?P<deps>[^|]*) \|$")


def documented() -> dict[str, set[str]]:
    """package → the workspace packages the table says it depends on."""
    rows = [m for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    assert rows, f"no crate rows found in {DOC}"
    short = {m["dir"].rsplit("/", 1)[-1]: m["package"] for m in rows}
    table = {}
    for m in rows:
        names = re.findall(r"`([a-z0-9-]+)`", m["deps"])
        unknown = [n for n in names if n not in short]
        assert not unknown, f"{m['package']}: {unknown} are not crates of the table"
        table[m["package"]] = {short[n] for n in names}
    return table


def actual() -> dict[str, set[str]]:
    """package → the workspace packages it depends on, from cargo metadata."""
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = {p["name"] for p in meta["packages"]}
    return {
        p["name"]: {d["name"] for d in p["dependencies"] if d["name"] in members and d["kind"] is None}
        for p in meta["packages"]
    }


def test_every_workspace_crate_is_in_the_table():
    assert sorted(documented()) == sorted(actual())


def test_the_table_shows_each_crates_dependencies():
    doc, real = documented(), actual()
    wrong = {p: {"documented": sorted(doc[p]), "Cargo.toml": sorted(real[p])} for p in real if doc.get(p) != real[p]}
    assert not wrong, f"docs/architecture.md disagrees with the workspace: {wrong}"
