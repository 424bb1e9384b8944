"""Every link between the repository's documents reaches a file that exists, and a heading in it.

The README links into docs/ and docs/ links back; a chapter that moves or a heading that is
renamed must not leave a dead link behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import ROOT

DOCUMENTS = sorted([ROOT / "README.md", ROOT / "kinde" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", document.read_text()).splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(document: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", document.read_text()))


def test_the_documents_link_to_each_other() -> None:
    readme = links(ROOT / "README.md")
    for chapter in ("LOCAL.md", "DASHBOARD.md", "DEPLOYING.md", "OPERATIONS.md", "KINDE.md"):
        assert f"docs/{chapter}" in readme, chapter


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_internal_link_resolves(document: Path) -> None:
    dead = []
    for target in links(document):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)):
            dead.append(target)
    assert not dead, f"{document.relative_to(ROOT)}: dead links {dead}"
