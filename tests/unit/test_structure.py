"""The code's structure: no module of rights/ imports another inside a function to dodge a
cycle, and the settings module's list of backends matches the registry."""

from __future__ import annotations

import ast
from pathlib import Path

from rights.removal import KNOWN_BACKENDS
from rights.removal.registry import BACKENDS

RIGHTS = Path(__file__).resolve().parents[2] / "rights"
# Django's own pattern: system checks register when the app is ready.
ALLOWED = {("apps.py", "ready")}


def _imports_in_functions(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if (path.name, function.name) in ALLOWED:
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(f"{path.relative_to(RIGHTS.parent)}:{node.lineno} in {function.name}")
    return found


def test_no_module_imports_inside_a_function() -> None:
    offenders = [
        hit
        for path in sorted(RIGHTS.rglob("*.py"))
        if "migrations" not in path.parts
        for hit in _imports_in_functions(path)
    ]
    assert offenders == []


def test_settings_know_every_backend_the_registry_builds() -> None:
    assert set(KNOWN_BACKENDS) == set(BACKENDS)
