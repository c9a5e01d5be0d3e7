"""The packages form layers: a module imports only from its own package or a lower one, so the tree can be read
(and each package tested) from the bottom up."""

from __future__ import annotations

import ast
from pathlib import Path

import lmtailor

# Lowest first. audit sits below curate: the findings step reads an audit's output, no check runs a step.
LAYERS = ["core", "text", "sql", "llm", "prompting", "audit", "curate", "score", "synth", "evaluate", "train"]
LAYERS += ["plan", "demo", "cli"]  # plan reads what evaluate and train measured
SRC = Path(lmtailor.__file__).parent


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "lmtailor" and len(parts) > 1 else None


def _imports(path: Path) -> set[str]:
    """Every lmtailor package the module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "lmtailor" else [f"lmtailor.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {p for p in map(_package, names) if p and p in LAYERS}
    return found


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - {"recipes"}
    assert packages == set(LAYERS)


def test_no_module_imports_from_a_higher_package() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        own = rel.parts[0] if len(rel.parts) > 1 else "cli"  # __init__ and __main__ sit on top
        for imported in _imports(path):
            if LAYERS.index(imported) > LAYERS.index(own):
                upward.append(f"{rel} imports lmtailor.{imported}")
    assert upward == []
