"""The `findings` curate step: audit findings decide drops and quarantine, all in the ledger."""

from __future__ import annotations

import json
from pathlib import Path

from lmtailor.core.io import read_jsonl
from lmtailor.curate.pipeline import curate
from lmtailor.curate.recipe import Recipe


def test_rules_drop_and_quarantine_by_check_and_severity(tmp_path: Path, shared_data: Path) -> None:
    src = tmp_path / "alpaca.jsonl"
    src.write_text("".join((shared_data / "alpaca" / "alpaca_data_52k.jsonl").open().readlines()[:20]))
    findings = [
        {
            "id": "alpaca:3",
            "source": str(src),
            "index": 3,
            "check": "correctness",
            "severity": "high",
            "score": 1.0,
            "message": "17 * 23 is 391, not 401",
            "evidence": {},
        },
        {
            "id": "alpaca:5",
            "source": str(src),
            "index": 5,
            "check": "claims",
            "severity": "high",
            "score": 0.9,
            "message": "claims to have sent an e-mail",
            "evidence": {},
        },
        {
            "id": "alpaca:5",
            "source": str(src),
            "index": 5,
            "check": "broken_fields",
            "severity": "low",
            "score": 0.2,
            "message": "trailing space",
            "evidence": {},
        },
        {
            "id": "alpaca:7",
            "source": str(src),
            "index": 7,
            "check": "claims",
            "severity": "low",
            "score": 0.2,
            "message": "mild",
            "evidence": {},
        },
        {
            "id": "*",
            "source": str(src),
            "index": -1,
            "check": "balance",
            "severity": "high",
            "score": 1.0,
            "message": "dataset-level findings never drop records",
            "evidence": {},
        },
    ]
    path = tmp_path / "findings.jsonl"
    path.write_text("".join(json.dumps(f) + "\n" for f in findings))
    recipe = Recipe.parse(
        {
            "inputs": [str(src)],
            "steps": [
                {
                    "step": "findings",
                    "path": str(path),
                    "rules": [
                        {"check": "correctness", "min_severity": "high", "action": "drop"},
                        {"check": "claims", "min_severity": "medium", "action": "quarantine"},
                    ],
                }
            ],
        }
    )
    manifest = curate(recipe, tmp_path / "run", progress=False)
    assert manifest.counts.kept == 18 and manifest.counts.accounted
    ledger = {e["id"]: e for e in read_jsonl(tmp_path / "run" / "ledger.jsonl")}
    assert ledger["alpaca:3"]["reason"] == "audit:correctness" and "391" in ledger["alpaca:3"]["detail"]
    assert ledger["alpaca:5"]["reason"] == "quarantine" and "alpaca:7" not in ledger
    quarantined = list(read_jsonl(tmp_path / "run" / "quarantine.jsonl"))
    assert [q["id"] for q in quarantined] == ["alpaca:5"]
    assert quarantined[0]["metadata"]["index"] == 5
