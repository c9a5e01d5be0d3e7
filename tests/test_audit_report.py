"""report.html opens offline in a real browser, shows every section, escapes record text and filters examples."""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmtailor.audit.checks.diversity import MAP_POINTS
from lmtailor.audit.report import REPORT_EXAMPLES, write_report

pytestmark = pytest.mark.browser  # drives Chromium: not in the fast tier
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = "<script>alert(1)</script>"
CHECKS = ("broken_fields", "balance", "claims", "grounding", "diversity", "format")


def _finding(i: int, check: str, severity: str, score: float, message: str, **evidence: Any) -> dict[str, Any]:
    return {
        "id": f"train:{i}",
        "source": "data/train.jsonl",
        "index": i,
        "check": check,
        "severity": severity,
        "score": score,
        "message": message,
        "evidence": evidence,
    }


def _full() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """An audit where every check ran and recorded every metric the report draws."""
    rng = random.Random(0)
    sev = ("info", "low", "medium", "high")
    findings = [
        _finding(
            i,
            CHECKS[i % len(CHECKS)],
            sev[i % 4],
            rng.random(),
            f"problem {i} & <b>friends</b>",
            matched='I can\'t "help" with that',
            spans=[[0, 4], [9, 12]],
        )
        for i in range(240)
    ]
    findings.append(_finding(3, "claims", "high", 2.0, "claims to schedule a meeting", phrase=XSS))
    findings.append(_finding(5, "grounding", "medium", 1.5, "uses facts absent from the input", unsupported="x" * 900))
    records = {
        f"train:{i}": {
            "instruction": f"Question {i}: is 2 < 3 & 'b' > \"a\"?",
            "input": "",
            "output": ("long answer " * 60) if i % 7 == 0 else f"Answer {i}",
        }
        for i in range(240)
    }
    records["train:3"] = {"instruction": "Book a meeting", "input": XSS, "output": f"Done. {XSS}"}
    n = 3000  # more than the report draws, so it must sample
    cluster = [i % 6 - 1 for i in range(n)]
    xs = [3 * math.cos(c) + rng.gauss(0, 0.8) if c >= 0 else rng.uniform(-5, 5) for c in cluster]
    ys = [3 * math.sin(c) + rng.gauss(0, 0.8) if c >= 0 else rng.uniform(-5, 5) for c in cluster]
    clusters = [
        {"id": c, "size": 600 - 50 * c, "share": (600 - 50 * c) / n, "label": f"topic {c} <i>"} for c in range(5)
    ] + [{"id": -1, "size": 100, "share": 100 / n, "label": "noise"}]
    metrics = {
        "balance": {
            "refusals": 1800,
            "refusal_rate": 0.6,
            "expected": {"refusal": 0.05, "positive": 0.5, "negative": 0.4},
            "labels": {"positive": 700, "negative": 250, "neutral": 50},
        },
        "diversity": {
            "lengths": {
                "instruction": {"bins": list(range(0, 220, 20)), "counts": [5, 40, 120, 300, 200, 90, 40, 12, 6, 2]},
                "output": {"bins": list(range(0, 1000, 100)), "counts": [400, 280, 150, 80, 40, 20, 10, 5, 2, 1]},
            },
            "map": {"x": xs, "y": ys, "cluster": cluster, "id": [f"train:{i}" for i in range(n)]},
            "clusters": clusters,
        },
        "format": {"formats": {"plain": 820, "markdown list": 120, "json": 40, "sql": 20}},
    }
    dataset_findings = {
        "balance": [
            {
                "id": "*",
                "source": "data/train.jsonl",
                "index": -1,
                "check": "balance",
                "severity": "high",
                "score": 0.6,
                "message": "60% of answers are refusals; about 5% is expected",
                "evidence": {"refusal_rate": 0.6, "expected": 0.05},
            }
        ],
        "diversity": [
            {
                "id": "*",
                "source": "data/train.jsonl",
                "index": -1,
                "check": "diversity",
                "severity": "medium",
                "score": 0.2,
                "message": "one cluster holds 20% of records",
                "evidence": {"cluster": 0, "label": "topic 0 <i>"},
            }
        ],
    }
    checks = {}
    for name in CHECKS:
        mine = [f for f in findings if f["check"] == name]
        checks[name] = {
            "findings": len(mine),
            "by_severity": {s: sum(f["severity"] == s for f in mine) for s in sev},
            "records_flagged": len(mine),
            "rate": len(mine) / 3000,
            "dataset_findings": dataset_findings.get(name, []),
            "seconds": 0.5,
            "metrics": metrics.get(name, {}),
        }
    summary = {
        "dataset": {"sources": ["data/train.jsonl"], "records": 3000},
        "flagged": {"at_or_above": "low", "records": 180, "share": 0.06},
        "severity_totals": {s: sum(f["severity"] == s for f in findings) for s in sev},
        "checks": checks,
    }
    return summary, findings, records


def _sparse() -> dict[str, Any]:
    """An audit where only two checks ran and neither recorded metrics."""
    blank = {
        "findings": 0,
        "by_severity": {},
        "records_flagged": 0,
        "rate": 0.0,
        "dataset_findings": [],
        "seconds": 0.1,
        "metrics": {},
    }
    return {
        "dataset": {"sources": ["a.jsonl"], "records": 10},
        "flagged": {"at_or_above": "low", "records": 0, "share": 0.0},
        "severity_totals": {},
        "checks": {"diversity": blank, "claims": blank},
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: run `make test` (it installs it) or `apt-get install -y chromium`"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str]]:
    """A page showing `path`, and the list that collects console errors, page errors and any network request."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    page.on("request", lambda r: r.url.startswith(("file://", "data:")) or problems.append(f"request: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_full_report_renders_offline_escapes_and_filters(browser: Any, tmp_path: Path) -> None:
    summary, findings, records = _full()
    path = tmp_path / "report.html"
    write_report(summary, findings, records, path)
    html = path.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(html) < 1_000_000

    page, problems = _open(browser, path)
    headings = page.locator("h2").all_inner_texts()
    for h in ("Overview", "Checks", "Dataset-level findings", "Plots", "Worst examples"):
        assert h in headings
    assert page.locator("svg.plot").count() >= 8  # meter, checks, refusals, labels, 2 histograms, map, formats
    assert page.locator("#plot-map circle").count() == MAP_POINTS
    assert page.locator(".callout").count() == 2
    assert "Needs cleaning" in page.locator(".verdict").inner_text()

    rows = page.locator("#examples tbody tr")
    visible = page.locator("#examples tbody tr:visible")
    total = rows.count()
    assert total == len(CHECKS) * REPORT_EXAMPLES  # the worst of each check
    assert visible.count() == total
    assert page.locator("#examples").get_by_text(XSS).count() >= 2  # the record text, shown as text

    page.fill("#f-text", "alert(1)")
    assert visible.count() == 1 and "claims to schedule" in visible.first.inner_text()
    page.fill("#f-text", "")
    page.select_option("#f-check", "grounding")
    assert 0 < visible.count() < total
    assert all(c == "grounding" for c in visible.evaluate_all("rs => rs.map(r => r.dataset.check)"))
    page.select_option("#f-severity", "high")
    assert set(visible.evaluate_all("rs => rs.map(r => r.dataset.severity)")) == {"high"}
    page.select_option("#f-check", "")
    page.select_option("#f-severity", "info")
    page.click("#checks button[data-filter-check='format']")
    assert page.locator("#f-check").input_value() == "format"
    assert f"{REPORT_EXAMPLES} of {total} shown" in page.locator("#f-count").inner_text()
    page.select_option("#f-check", "")
    page.fill("#f-text", "alert(1)")  # one row left, so the screenshot shows every section at a readable height

    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    shutil.copy(tmp_path / "report.png", "/tmp/audit_report.png")
    assert problems == []
    page.close()


def test_report_with_missing_metrics_degrades_to_notes(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(_sparse(), [], {}, path)
    page, problems = _open(browser, path)
    notes = " ".join(page.locator(".note").all_inner_texts())
    for text in (
        "balance check did not run",
        "diversity check recorded no metrics",
        "format check did not run",
        "No record was flagged",
        "No check reported a problem",
        "No check flagged a record",
    ):
        assert text in notes
    assert "Looks usable" in page.locator(".verdict").inner_text()
    page.screenshot(path=str(tmp_path / "sparse.png"), full_page=True)
    assert problems == []
    page.close()
