"""Run audit checks over a dataset and write findings.jsonl, summary.json and report.html.

The folder is a run folder (`lmtailor.core.rundir`): one audit writes it at a time, and summary.json is its index,
written last with the digests of findings.jsonl and report.html, so a reader never pairs one audit's findings
with another's summary, or takes a killed audit's files for a finished one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.checks.broken import BrokenFields
from lmtailor.audit.finding import SEVERITIES, Finding, Severity
from lmtailor.audit.report import REPORT_EXAMPLES, write_report
from lmtailor.core import rundir
from lmtailor.core.io import ReadOptions, Reject, read_examples, write_jsonl
from lmtailor.core.progress import make_progress
from lmtailor.core.records import Example


def load(paths: Sequence[Path], options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Every readable example, and a finding for each record that could not be read."""
    unreadable: list[Finding] = []

    def reject(r: Reject) -> None:
        unreadable.append(
            Finding(
                f"{Path(r.source).stem}:{r.index}",
                r.source,
                r.index,
                BrokenFields.name,
                "high",
                1.0,
                f"unreadable record: {r.reason}",
                {"raw": r.raw[:500]},
            )
        )

    opts = ReadOptions(options.format, options.columns, "skip", options.max_record_mb)
    examples = [ex for p in paths for ex in read_examples(p, opts, reject)]
    return examples, unreadable


def summarize(
    total: int,
    findings: Sequence[Finding],
    metrics: dict[str, Any],
    seconds: dict[str, float],
    sources: Sequence[str],
    flag_at: Severity = "low",
) -> dict[str, Any]:
    """Counts per check and severity, and the share of the `total` records flagged at or above `flag_at`."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    checks: dict[str, Any] = {}
    flagged_all: set[str] = set()
    for name in seconds:
        mine = [f for f in findings if f.check == name and f.index >= 0]
        flagged = {f.id for f in mine if rank[f.severity] >= rank[flag_at]}
        flagged_all |= flagged
        checks[name] = {
            "findings": len(mine),
            "by_severity": {s: sum(f.severity == s for f in mine) for s in SEVERITIES},
            "records_flagged": len(flagged),
            "rate": round(len(flagged) / total, 5) if total else 0.0,
            "dataset_findings": [f.to_json() for f in findings if f.check == name and f.index < 0],
            "seconds": round(seconds[name], 3),
            "metrics": metrics.get(name, {}),
        }
    return {
        "dataset": {"sources": list(sources), "records": total},
        "flagged": {
            "at_or_above": flag_at,
            "records": len(flagged_all),
            "share": round(len(flagged_all) / total, 5) if total else 0.0,
        },
        "severity_totals": dict(Counter(f.severity for f in findings if f.index >= 0)),
        "checks": checks,
    }


def audit(
    paths: Sequence[Path],
    checks: Sequence[Check],
    out_dir: Path,
    options: ReadOptions | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `checks` over the datasets at `paths`; write the three outputs to `out_dir`; return the summary.

    The folder is held for the whole audit, so a second audit into it is refused (RunFolderError). An earlier
    audit's files stay whole while the checks run; they are withdrawn only once this one's are ready.
    """
    folder = rundir.AuditFolder(out_dir)
    with folder.locked():
        examples, unreadable = load(paths, options or ReadOptions())
        findings = list(unreadable)
        metrics: dict[str, Any] = {}
        # unreadable records are broken_fields findings made while reading, before any check ran
        seconds: dict[str, float] = {BrokenFields.name: 0.0} if unreadable else {}
        with make_progress(progress) as bar:
            task = bar.add_task("audit", total=len(checks))
            for check in checks:
                t0 = time.perf_counter()
                ctx = CheckContext(check.name)
                findings.extend(check.run(examples, ctx))
                metrics[check.name] = ctx.metrics
                seconds[check.name] = seconds.get(check.name, 0.0) + time.perf_counter() - t0
                bar.advance(task)
        order = {name: i for i, name in enumerate(seconds)}
        findings.sort(key=lambda f: (order[f.check], f.source, f.index, -f.score))
        summary = summarize(len(examples) + len(unreadable), findings, metrics, seconds, [str(p) for p in paths])
        rows = [f.to_json() for f in findings]
        folder.begin()
        write_jsonl(folder.findings, rows)
        write_report(summary, rows, _worst_records(examples, findings), folder.report)
        return folder.commit(summary, folder.VOUCHED)


def _worst_records(
    examples: Sequence[Example], findings: Sequence[Finding], per_check: int = REPORT_EXAMPLES
) -> dict[str, dict[str, str]]:
    """The text of the records the report shows: the highest-scoring findings of each check."""
    best: dict[str, list[Finding]] = {}
    for f in findings:
        if f.index >= 0:
            best.setdefault(f.check, []).append(f)
    wanted = {f.id for fs in best.values() for f in sorted(fs, key=lambda f: -f.score)[:per_check]}
    return {ex.id: {k: ex.field(k) for k in ("instruction", "input", "output")} for ex in examples if ex.id in wanted}


def worst_at_or_above(summary: dict[str, Any], threshold: Severity) -> Severity | None:
    """The worst severity among an audit's findings when it is `threshold` or worse (`audit --fail-on`), else
    None. Dataset-wide findings count too: a skewed balance fails an audit as a broken record does."""
    results = summary["checks"].values()
    present = {s for c in results for s, n in c["by_severity"].items() if n}
    present |= {f["severity"] for c in results for f in c["dataset_findings"]}
    worst = max(present, key=SEVERITIES.index, default=None)
    return worst if worst is not None and SEVERITIES.index(worst) >= SEVERITIES.index(threshold) else None
