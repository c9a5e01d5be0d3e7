"""Shared fixtures: the real datasets beside the repository."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import typer.testing
from _pytest.mark.expression import Expression

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


# typer's test runner rebuilds the click command tree from the verbs' signatures on every call (0.1 s, a third of a
# small curate); the tree never changes within a session, so it is built once.
typer.testing._get_command = functools.cache(typer.testing._get_command)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A file whose every test loads a model is not imported when the run's -m deselects model tests (the fast
    tier): importing torch and transformers for tests it deselects would cost 10 s."""
    if collection_path.suffix != ".py" or not config.option.markexpr:
        return None
    keeps_model_tests = Expression.compile(config.option.markexpr).evaluate(lambda name, **_: name == "model")
    return (not keeps_model_tests and "\npytestmark = pytest.mark.model" in collection_path.read_text()) or None
