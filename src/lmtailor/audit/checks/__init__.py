"""The audit checks. Each module holds one `Check` subclass; `registry()` lists those the audit can run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmtailor.audit.check import Check


def registry() -> dict[str, type[Check]]:
    """Check name -> class, in the order the audit runs and reports them."""
    from lmtailor.audit.checks.agreement import Agreement
    from lmtailor.audit.checks.balance import Balance
    from lmtailor.audit.checks.broken import BrokenFields
    from lmtailor.audit.checks.claims import Claims
    from lmtailor.audit.checks.correctness.check import Correctness
    from lmtailor.audit.checks.diversity import Diversity
    from lmtailor.audit.checks.duplicates import Duplicates
    from lmtailor.audit.checks.formats import FormatConsistency
    from lmtailor.audit.checks.grounding import Grounding

    classes = (
        BrokenFields,
        Balance,
        Claims,
        Grounding,
        FormatConsistency,
        Correctness,
        Duplicates,
        Diversity,
        Agreement,
    )
    return {c.name: c for c in classes}


def build_checks(names: Sequence[str] | None, expect: dict[str, float], eval_paths: Sequence[Path]) -> list[Check]:
    """The checks to run, with the command line's expectations and evaluation sets passed to those that use them."""
    available = registry()
    chosen = [n.strip() for n in names if n.strip()] if names else list(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    checks: list[Check] = []
    for name in chosen:
        settings: dict = {}
        if name == "balance" and expect:
            settings["expect"] = expect
        if name == "duplicates" and eval_paths:
            settings["eval"] = [{"path": p} for p in eval_paths]
        checks.append(available[name](**settings))
    return checks
