"""`lmtailor explain` over a real curate run: each fate, ids that name no record, damaged and half-written runs,
and text from the data printed as it is, never read as rich markup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app

runner = CliRunner()
STEM = "data[red]"  # ids carry the file's stem: its brackets reach every line explain prints


@pytest.fixture
def run(tmp_path: Path, shared_data: Path) -> Path:
    """A curate run over 30 real Alpaca records, an exact copy of record 3 (index 30), and a record whose
    instruction holds markup-like text and a trailing space, which normalize strips (index 31)."""
    lines = (shared_data / "alpaca" / "alpaca_data_52k.jsonl").read_text().splitlines()[:30]
    marked = {
        "instruction": "Explain what the tags [red] and [/b] do in the rich console markup. ",
        "input": "",
        "output": "In the rich console markup, [red] starts red text and [/b] closes an open bold tag; a closing "
        "tag that matches no open one is an error.",
    }
    lines += [lines[3], json.dumps(marked)]
    data = tmp_path / f"{STEM}.jsonl"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["curate", str(data), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def explain(example_id: str, run: Path):
    return runner.invoke(app, ["explain", example_id, "--run", str(run)])


def flat(text: str) -> str:
    return " ".join(text.split())


def test_fates_are_explained_with_the_data_text_printed_literally(run: Path) -> None:
    dropped = explain(f"{STEM}:30", run)
    assert dropped.exit_code == 0, dropped.output
    text = flat(dropped.output)
    assert f"{STEM}:30 source:" in text and "exact_dedup drop exact_duplicate" in text
    assert "fate: dropped by exact_dedup: exact_duplicate — same" in text and f"(kept instead: {STEM}:3)" in text

    kept = explain(f"{STEM}:3", run)
    assert kept.exit_code == 0, kept.output
    assert f"kept in place of 1 duplicate(s): {STEM}:30" in flat(kept.output) and "fate: kept" in kept.output

    changed = explain(f"{STEM}:31", run)
    assert changed.exit_code == 0, changed.output
    text = flat(changed.output)
    assert "instruction: 'Explain what the tags [red] and [/b] do in the rich console markup. ' ->" in text
    assert "fate: kept" in text


@pytest.mark.parametrize(
    ("example_id", "why"),
    [
        (f"{STEM}:99999999", "holds 32 records (0 to 31)"),
        (f"{STEM}:32", "holds 32 records (0 to 31)"),
        (f"{STEM}:-1", "'-1' is not a record index"),
        (f"{STEM}:abc", "'abc' is not a record index"),
        (f"{STEM}:03", "'03' is not a record index"),  # the run's id for record 3 is data[red]:3
        (f"{STEM}:", "'' is not a record index"),
        ("other:3", f"the inputs are {STEM}"),
        (STEM, f"the inputs are {STEM}"),
    ],
)
def test_an_id_that_names_no_record_is_said_to_be_none(run: Path, example_id: str, why: str) -> None:
    result = explain(example_id, run)
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert f"fate: unknown: {example_id} is not a record of this run:" in text and why in text
    assert "fate: kept" not in text


def test_a_half_written_run_is_refused(run: Path) -> None:
    (run / "manifest.json").unlink()  # killed after withdrawing the earlier manifest, before the new one
    result = explain(f"{STEM}:3", run)
    assert result.exit_code == 2, result.output
    assert "is not a finished curate run: no manifest.json" in flat(result.output)


def test_a_file_changed_since_the_run_is_refused(run: Path) -> None:
    ledger = run / "ledger.jsonl"
    ledger.write_text(ledger.read_text()[:-10])
    result = explain(f"{STEM}:3", run)
    assert result.exit_code == 2, result.output
    assert "ledger.jsonl does not match manifest.json" in flat(result.output)


def test_a_corrupt_manifest_names_the_file(run: Path) -> None:
    (run / "manifest.json").write_text('{"recipe": {"inputs": [')
    result = explain(f"{STEM}:3", run)
    assert result.exit_code == 2, result.output
    assert f"{run / 'manifest.json'}: is corrupt:" in flat(result.output) and "column 24" in result.output


def test_an_index_of_5000_digits_is_no_record_index(run: Path) -> None:
    """Past what int() reads (4,300 digits): once a ValueError traceback."""
    result = explain(f"{STEM}:{'9' * 5000}", run)
    assert result.exit_code == 1, result.output
    assert "'9999999999999999999999999999999999999999... (5,000 characters)' is not a record index" in flat(
        result.output
    )


def tamper(run: Path, change: str) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    if change == "nested":
        text = json.dumps(manifest)[:-1] + ', "extra": ' + "[" * 10_000 + "]" * 10_000 + "}"
        (run / "manifest.json").write_text(text)
        return
    where, _, value = change.partition("=")
    if where == "files":
        manifest["files"] = json.loads(value)
    else:
        manifest["recipe"][where] = json.loads(value)
    (run / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("nested", "is corrupt: nested deeper than"),
        ("files=[1]", "is corrupt: its files are not a mapping"),
        ('files={"../../etc/passwd": {}}', "is corrupt: its files are not a mapping"),
        ("steps=[5]", "is not a curate manifest: its recipe is not a valid recipe"),
        ("inputs=[5]", "is not a curate manifest: its recipe is not a valid recipe"),
        ('max_record_mb="x"', "is not a curate manifest: its recipe is not a valid recipe"),
    ],
)
def test_a_tampered_manifest_is_refused_naming_it(run: Path, change: str, problem: str) -> None:
    tamper(run, change)
    result = explain(f"{STEM}:3", run)
    assert result.exit_code == 2, result.output
    assert f"{run / 'manifest.json'}: {problem}" in flat(result.output)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ('{"id": "data[red]:3", "step"', "line 2 is corrupt"),
        ('["not", "an", "entry"]', "line 2 is not an entry"),
        ('{"id": ' + "[" * 10_000 + "]" * 10_000 + "}", "line 2 is corrupt (nested deeper than"),
        # a drop whose step is not a name: read as no event, record 30 would be said to be kept
        ('{"id": "data[red]:30", "step": 5, "action": "drop", "reason": "x"}', "line 2 is not an entry"),
    ],
)
def test_a_corrupt_ledger_names_the_file_and_line(run: Path, damage: str, problem: str) -> None:
    """A run whose manifest lists no file digests (written before they were kept) is read on trust, so a
    damaged ledger line must be reported where it is, not as a JSONDecodeError traceback."""
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["files"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    ledger = run / "ledger.jsonl"
    first = ledger.read_text().splitlines()[0]
    ledger.write_text(f"{first}\n{damage}\n")
    result = explain(f"{STEM}:3", run)
    assert result.exit_code == 2, result.output
    assert f"{ledger}: {problem}" in flat(result.output)
