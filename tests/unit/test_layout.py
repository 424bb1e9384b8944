"""The test tree says where each test runs: its folder is its marker (tests/__init__.py), applied
in one place (tests/conftest.py) and never by hand, so ``-m unit`` and ``tests/unit`` are the same
tests, and so are the other kinds."""

from __future__ import annotations

import ast
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import KINDS, ROOT, TESTS, kind_of


def python_files() -> Iterator[Path]:
    for path in sorted(TESTS.rglob("*.py")):
        if "node_modules" not in path.parts:
            yield path


def test_every_test_file_sits_in_a_kind_folder() -> None:
    test_files = [path for path in python_files() if path.name.startswith("test_")]
    assert len(test_files) > 20
    outside = [str(path.relative_to(ROOT)) for path in test_files if kind_of(path) is None]
    assert outside == [], f"move these under tests/{{{','.join(KINDS)}}}/"


def _hand_markers(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        # pytest.mark.unit, mark.fuzz, ... (pytestmark, decorators, pytest.param(marks=...))
        if isinstance(node, ast.Attribute) and node.attr in KINDS:
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
                isinstance(owner, ast.Name) and owner.id == "mark"
            ):
                yield node.lineno, f"mark.{node.attr}"
        # item.add_marker("integration"), pytest.Mark("fuzz", ...)
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value in KINDS:
                name = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                if name in ("add_marker", "Mark", "MarkDecorator"):
                    yield node.lineno, f"{name}({first.value!r})"


def test_no_kind_marker_is_applied_by_hand() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in python_files()
        for line, what in _hand_markers(ast.parse(path.read_text(), str(path)))
    ]
    assert found == [], "the folder is the marker (tests/conftest.py applies it); drop these"


def test_the_hand_marker_check_can_fail() -> None:
    source = (
        "import pytest\n"
        "from pytest import mark\n"
        "pytestmark = pytest.mark.integration\n"
        "@mark.fuzz\n"
        "def test_x(request): request.node.add_marker('unit')\n"
        "@pytest.mark.parametrize('x', [pytest.param(1, marks=pytest.mark.browser)])\n"
        "def test_y(x): ...\n"
        "@pytest.mark.timeout(5)\n"
        "def test_z(): ...\n"
    )
    found = [what for _line, what in _hand_markers(ast.parse(source))]
    assert sorted(found) == ["add_marker('unit')", "mark.browser", "mark.fuzz", "mark.integration"]


def test_each_collected_test_carries_exactly_its_folder_marker(request: pytest.FixtureRequest) -> None:
    """Over whatever this run collected (all of it under ``make test``)."""
    items = request.session.items
    assert request.node in items
    wrong = {
        item.nodeid: kinds
        for item in items
        if (kinds := [m.name for m in item.iter_markers() if m.name in KINDS]) != [kind_of(item.path)]
    }
    assert wrong == {}


def test_the_markers_registered_are_the_kinds() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert [marker.split(":", 1)[0] for marker in options["markers"]] == list(KINDS)
    assert "--strict-markers" in options["addopts"]
    assert [kind for kind in KINDS if not (TESTS / kind).is_dir()] == []


def test_only_tests_init_defines_root() -> None:
    """One ROOT for the tests, imported from tests/__init__.py."""
    defined = [
        str(path.relative_to(ROOT))
        for path in python_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assign)
        and any(isinstance(target, ast.Name) and target.id == "ROOT" for target in node.targets)
    ]
    assert defined == ["tests/__init__.py"]


def test_unit_tests_cannot_reach_the_network() -> None:
    """tests/unit/conftest.py's guard is on: a server or a request here fails the test."""
    message = "unit tests use no network"
    with socket.socket() as sock, pytest.raises(AssertionError, match=message):
        sock.bind(("127.0.0.1", 0))
    with socket.socket() as sock, pytest.raises(AssertionError, match=message):
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(AssertionError, match=message):
        socket.getaddrinfo("planguard.kinde.com", 443)
