"""The docs: the CRD references are current, and every relative link in README.md and docs/
resolves to a file and, for `#anchor`s, to a heading of that file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

import crd_reference

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and [text]: target, ignoring images' and links' titles.
INLINE = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")


def test_crd_reference_pages_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "crd_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_crd_reference_lists_every_field():
    # Independent of the page's layout: every property path of the schema appears as a row.
    import yaml

    for path, text in crd_reference.pages().items():
        crd_file = next(
            f
            for f in crd_reference.CRD_DIR.glob("*.yaml")
            if (yaml.safe_load(f.read_text()) or {}).get("spec", {}).get("names", {}).get(
                "singular"
            )
            == path.stem
        )
        schema = yaml.safe_load(crd_file.read_text())["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
        for field in field_paths(schema["properties"]["spec"], "spec"):
            assert f"| `{field}` |" in text, f"{path.name} lacks {field}"


def field_paths(schema: dict, path: str):
    yield path
    while schema.get("type") == "array":
        schema = schema.get("items", {})
        path += "[]"
    for name, child in schema.get("properties", {}).items():
        yield from field_paths(child, f"{path}.{name}")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`|\*|_(?=\w)|(?<=\w)_", "", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, numbered as GitHub numbers repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    text = FENCE.sub("", page.read_text())
    for line in text.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        out.add(anchor if count == 0 else f"{anchor}-{count}")
        seen[anchor] = count + 1
    for explicit in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text):
        out.add(explicit)
    return out


def links(page: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", page.read_text()))
    return INLINE.findall(text) + REFERENCE.findall(text)


def test_anchor_rule_matches_github():
    assert github_anchor("Dashboards and alerts") == "dashboards-and-alerts"
    assert github_anchor("Value or AverageValue?") == "value-or-averagevalue"
    assert github_anchor("What `make demo` shows") == "what-make-demo-shows"
    assert github_anchor("AviController reference") == "avicontroller-reference"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    dead = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.exists():
            dead.append(f"{target} (no file {resolved.relative_to(ROOT)})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            dead.append(f"{target} (no heading #{anchor} in {resolved.relative_to(ROOT)})")
    assert not dead, f"dead links in {page.relative_to(ROOT)}: " + "; ".join(dead)


def linked_pages(page: Path) -> set[Path]:
    """The Markdown files a page links to (existing ones; dead links fail their own test)."""
    out = set()
    for target in links(page):
        file_part = target.partition("#")[0]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or not file_part:
            continue
        resolved = (page.parent / file_part).resolve()
        if resolved.is_dir():
            resolved = resolved / "README.md"
        if resolved.suffix == ".md" and resolved.exists():
            out.add(resolved)
    return out


def test_every_docs_page_is_reachable_from_the_readme():
    # Followed link by link from README.md, as a reader would (most pages through docs/README.md).
    seen = {(ROOT / "README.md").resolve()}
    todo = list(seen)
    while todo:
        for target in linked_pages(todo.pop()) - seen:
            seen.add(target)
            todo.append(target)
    unreachable = [
        str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md") if p.resolve() not in seen
    ]
    assert not unreachable, f"docs pages no link from README.md leads to: {unreachable}"
