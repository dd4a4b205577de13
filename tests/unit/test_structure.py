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


def test_every_log_handler_that_django_writes_through_redacts_secret_links() -> None:
    """Status and confirmation links are keys: the development server's request lines and
    Django's 4xx/5xx lines go through handlers that redact them, like everything else."""
    import logging

    from rights.web.logs import RedactSecretLinks

    for name in ("", "django", "django.server", "django.request", "rights"):
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            for handler in logger.handlers:
                if type(handler).__module__.startswith("_pytest"):
                    continue  # pytest's own capture, not the service's
                assert any(isinstance(f, RedactSecretLinks) for f in handler.filters), (
                    name,
                    handler,
                )
            logger = logger.parent if logger.propagate else None
