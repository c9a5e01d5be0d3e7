"""The audit checks. Each module holds one `Check` subclass; `registry()` lists those the audit can run: the one
place a check is registered (audit recipes and the report take the checks from it)."""

from __future__ import annotations

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
