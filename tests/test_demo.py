"""`make demo`: every defect injected into the generated text-to-SQL set is caught; no clean record lost."""

import json
import sqlite3
from contextlib import closing

from lmtailor.core.io import read_jsonl
from lmtailor.demo.shop import generate, run_demo

KINDS = {"exact_duplicate", "paraphrased_duplicate", "sql_format", "empty_answer", "placeholder_input", "eval_leak"}


def test_demo_catches_every_injected_defect(tmp_path):
    assert run_demo(tmp_path, progress=False)

    data = tmp_path / "data"
    defects = json.loads((data / "defects.json").read_text())
    assert {d["defect"] for d in defects} == KINDS
    assert {d["expect_step"] for d in defects if d["defect"] == "paraphrased_duplicate"} == {
        "near_dedup",
        "semantic_dedup",
    }

    injected = {d["id"] for d in defects}
    train = list(read_jsonl(data / "train.jsonl"))
    clean = [r for i, r in enumerate(train) if f"train:{i}" not in injected]
    assert len(clean) >= 250
    with closing(sqlite3.connect(data / "shop.db")) as db:
        for r in clean:
            assert db.execute(r["output"]).fetchall(), r["output"]

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["counts"]["accounted"]
    repaired = sum(d["expect_step"] == "normalize" for d in defects)
    assert manifest["counts"]["kept"] == len(clean) + repaired
    curated = list(read_jsonl(tmp_path / "run" / "curated.jsonl"))
    assert all(r in curated for r in clean)


def test_generate_is_reproducible(tmp_path):
    first, second = generate(tmp_path / "a"), generate(tmp_path / "b")
    for name in ("train.jsonl", "eval.jsonl", "defects.json"):
        assert (first.dir / name).read_bytes() == (second.dir / name).read_bytes()
    assert first.clean == second.clean
