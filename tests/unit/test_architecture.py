"""docs/ARCHITECTURE.md names real code: every ``path:name`` it cites is a file of the repository
that defines that function, class or method (Python by its syntax tree, the workflow's TypeScript
by its declaration)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests import ROOT

MAP = ROOT / "docs" / "ARCHITECTURE.md"
CITATION = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|ts)):([A-Za-z_][\w.]*)`")


def citations() -> list[tuple[str, str]]:
    return sorted(set(CITATION.findall(MAP.read_text())))


def python_defines(path: Path, dotted: str) -> bool:
    """``name`` or ``Class.method`` (at any depth) is defined in the module at ``path``."""
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for part in dotted.split("."):
        found = next((n for n in scope if isinstance(n, definitions) and n.name == part), None)
        if found is None:
            return False
        scope = found.body
    return True


def typescript_defines(path: Path, name: str) -> bool:
    declaration = rf"\b(?:function|const|let|class|interface|type)\s+{re.escape(name)}\b"
    return re.search(declaration, path.read_text()) is not None


def test_the_map_cites_code_for_every_question() -> None:
    cited = citations()
    files = {path for path, _ in cited}
    assert len(cited) >= 40, cited
    assert any(path.startswith("kinde/") for path in files), "where the rule runs in production"
    assert any(path.startswith("layers/common/planguard/") for path in files)


@pytest.mark.parametrize(("path", "name"), citations())
def test_every_cited_function_exists(path: str, name: str) -> None:
    source = ROOT / path
    assert source.is_file(), f"{path} is not a file of the repository"
    defines = python_defines if path.endswith(".py") else typescript_defines
    assert defines(source, name), f"{path} defines no {name}"
