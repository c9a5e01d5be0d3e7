"""findings: act on an audit's findings inside curate — drop or quarantine flagged records, by check and severity.

This is how `lmtailor audit --fix RECIPE` sends flagged records through curation: every decision lands in
the ledger like any other step's, and quarantined records are kept aside in `quarantine.jsonl` for review.

An audit's findings.jsonl (a file of that name beside a summary.json or a run folder's lock) is read only if
that audit finished: summary.json present, and the file the one it vouches for. A killed audit leaves no
summary.json, and a later audit may have replaced the findings; acting on either would drop the wrong
records. A findings file anywhere else (written by hand, or by another tool) is taken as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from lmtailor.audit.finding import SEVERITIES, Severity
from lmtailor.core import rundir
from lmtailor.core.io import read_jsonl
from lmtailor.core.records import Example
from lmtailor.curate.step import RecordStep, StepContext


class Rule(BaseModel):
    """Records with a finding of `check` (or any check, "*") at `min_severity` or worse get `action`."""

    model_config = ConfigDict(extra="forbid")
    check: str = "*"
    min_severity: Severity = "high"
    action: Literal["drop", "quarantine"] = "drop"

    def matches(self, finding: dict) -> bool:
        rank = SEVERITIES.index
        return self.check in ("*", finding["check"]) and rank(finding["severity"]) >= rank(self.min_severity)


class Findings(RecordStep):
    """The first matching rule decides; drop beats quarantine when several findings match."""

    step: Literal["findings"] = "findings"
    path: Path | None = Field(None, description="findings.jsonl of an audit; `audit --fix` fills it in")
    rules: list[Rule] = Field(default_factory=lambda: [Rule()], min_length=1)
    _decided: dict[str, tuple[str, dict]] = PrivateAttr(default_factory=dict)

    def decisions(self) -> dict[str, tuple[str, dict]]:
        """Record id -> (action, the finding that decided it)."""
        if self.path is None:
            raise ValueError("the findings step needs `path` (a findings.jsonl), or run it through `audit --fix`")
        _require_finished_audit(self.path)
        decided: dict[str, tuple[str, dict]] = {}
        for f in read_jsonl(self.path):
            if f["index"] < 0:
                continue
            rule = next((r for r in self.rules if r.matches(f)), None)
            if rule is None:
                continue
            current = decided.get(f["id"])
            if current is None or (current[0] == "quarantine" and rule.action == "drop"):
                decided[f["id"]] = (rule.action, f)
        return decided

    def setup(self, ctx: StepContext) -> None:
        self._decided = self.decisions()

    def process(self, ex: Example, ctx: StepContext) -> Example | None:
        verdict = self._decided.get(ex.id)
        if verdict is None:
            return ex
        action, f = verdict
        detail = f"{f['severity']} {f['check']} finding: {f['message']}"
        if action == "drop":
            ctx.drop(ex, f"audit:{f['check']}", detail)
        else:
            ctx.quarantine(ex, detail)
        return None


def _require_finished_audit(path: Path) -> None:
    """Refuse an audit's findings.jsonl unless the audit that wrote it finished (see the module's docstring)."""
    audit = rundir.AuditFolder(path.parent)
    if path.name == audit.FINDINGS and (audit.index.exists() or (audit.path / rundir.LOCK).exists()):
        audit.require_complete()
