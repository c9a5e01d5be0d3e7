"""Shared fixtures: the real datasets beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real datasets are expected at {SHARED_DATA} (../shared/data beside the repository)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One embedding cache for the session, away from the user's own."""
    import os

    os.environ.setdefault("LMTAILOR_CACHE", str(tmp_path_factory.mktemp("lmtailor-cache")))


def _build_cli_once() -> None:
    """typer's test runner rebuilds the click command tree from the signatures on every call (0.1 s, a third of
    a small curate); the tree never changes within a session, so it is built once."""
    import functools

    import typer.testing

    typer.testing._get_command = functools.cache(typer.testing._get_command)


_build_cli_once()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fast tier does not import a file whose every test loads a model: importing torch and transformers for
    tests it deselects would cost it 10 s."""
    if collection_path.suffix == ".py" and "not model" in (config.option.markexpr or ""):
        return "\npytestmark = pytest.mark.model" in collection_path.read_text() or None
    return None
