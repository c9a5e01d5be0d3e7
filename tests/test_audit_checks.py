"""The check contract across all checks: each is registered once under the name it declares, and checks build
only on core/, text/ and sql/ (and the audit's own contract), never on a step or a model client."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import lmtailor.audit.checks as checks_package
from lmtailor.audit.check import Check
from lmtailor.audit.checks import registry

CHECKS = Path(checks_package.__file__).parent
# what a check may import from lmtailor: the lower layers, the check contract and the report's drawing kit
ALLOWED = ("lmtailor.core", "lmtailor.text", "lmtailor.sql", "lmtailor.audit.check", "lmtailor.audit.checks")
ALLOWED += ("lmtailor.audit.finding", "lmtailor.audit.charts")


def test_every_check_is_registered_under_the_name_it_declares() -> None:
    defined = set()
    for info in pkgutil.walk_packages([str(CHECKS)], "lmtailor.audit.checks."):
        module = importlib.import_module(info.name)
        defined |= {
            c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, Check) and c is not Check
        }
    found = registry()
    assert set(found.values()) == defined
    assert all(name == c.name == c().check for name, c in found.items())


def test_checks_import_only_from_core_text_sql_and_the_check_contract() -> None:
    outside = []
    for path in sorted(CHECKS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("lmtailor") and not name.startswith(ALLOWED):
                    outside.append(f"{path.relative_to(CHECKS)} imports {name}")
    assert outside == []
