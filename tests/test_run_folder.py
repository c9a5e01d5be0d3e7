"""A run folder is one unit: one writer at a time, committed at once, never overwriting its own inputs.

The kill tests SIGKILL a real `lmtailor curate` child at the final-write points (just after the earlier
run's manifest is withdrawn, and just before the new one is written), over a folder holding an earlier,
different run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.config import ConfigError
from lmtailor.core.io import DataError
from lmtailor.curate.pipeline import curate
from lmtailor.curate.recipe import Recipe

runner = CliRunner()
ENV = {**os.environ, "LMTAILOR_NO_PROGRESS": "1"}
# Runs the real CLI, SIGKILLing itself when the run reaches `rundir.<point>` (after it for begin, before commit).
KILLED_AT = """
import os, signal, sys
from lmtailor.core import rundir
point = sys.argv[1]
real = getattr(rundir, point)
def die(*args, **kwargs):
    if point == "begin":
        real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(rundir, point, die)
from lmtailor.cli import app
app(sys.argv[2:], prog_name="lmtailor")
"""


def records(path: Path, instructions: list[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"instruction": i, "input": "", "output": f"{i} done"}) + "\n" for i in instructions)
    )
    return path


def curate_cli(*args: str | Path):
    return runner.invoke(app, ["curate", *map(str, args), "--no-progress"])


@pytest.mark.parametrize(
    "output", ["", ".", "..", "../x.jsonl", "sub/x.jsonl", ".hidden.jsonl", "ledger.jsonl", "x.txt"]
)
def test_output_must_be_a_file_name_inside_the_run_folder(tmp_path: Path, output: str) -> None:
    data = records(tmp_path / "in.jsonl", ["a", "b"])
    run = tmp_path / "run"
    assert curate_cli(data, "--out", run).exit_code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = curate_cli(data, "--out", run, "--output", output)
    assert result.exit_code == 2 and "output" in result.output and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # the earlier run is whole
    assert (tmp_path / "in.jsonl").exists() and not (tmp_path / "x.jsonl").exists()


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path: Path, monkeypatch) -> None:
    data = records(tmp_path / "same.jsonl", ["a", "a", "b"])
    raw = data.read_bytes()
    monkeypatch.chdir(tmp_path)
    result = curate_cli("same.jsonl", "--out", ".", "--output", "same.jsonl")
    assert result.exit_code == 2 and "would be overwritten" in result.output
    assert data.read_bytes() == raw
    ledger = records(tmp_path / "ledger.jsonl", ["c"])  # an input named like one of the run's own files
    assert curate_cli("ledger.jsonl", "--out", ".").exit_code == 2
    assert ledger.read_text().startswith('{"instruction": "c"')


def test_a_run_folder_inside_an_input_folder_is_refused(tmp_path: Path) -> None:
    data = records(tmp_path / "in.jsonl", ["a", "b"])
    folder = tmp_path / "ds"
    assert runner.invoke(app, ["convert", str(data), str(folder), "--to", "alpaca"]).exit_code == 0
    with pytest.raises(DataError, match="cannot lie inside it"):
        curate(Recipe.parse({"inputs": [str(folder)]}), folder / "run", progress=False)


def test_the_run_folder_must_be_a_folder(tmp_path: Path) -> None:
    data = records(tmp_path / "in.jsonl", ["a"])
    for out in (data, data / "under"):
        result = curate_cli(data, "--out", out)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert data.read_text().count("\n") == 1


@pytest.mark.parametrize("point", ["begin", "commit"])
def test_a_run_killed_at_its_final_write_is_unfinished_not_the_earlier_run(tmp_path: Path, point: str) -> None:
    run = tmp_path / "run"
    earlier = records(tmp_path / "earlier.jsonl", [f"old task {i}" for i in range(30)])
    assert curate_cli(earlier, "--out", run).exit_code == 0
    new = records(tmp_path / "new.jsonl", [f"new task {i}" for i in range(12)])
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AT, point, "curate", str(new), "--out", str(run)], env=ENV, capture_output=True
    )
    assert child.returncode == -9, child.stderr.decode()
    assert not (run / "manifest.json").exists()  # withdrawn before any file of the earlier run was replaced
    shown = runner.invoke(app, ["explain", "earlier:3", "--run", str(run)])
    assert shown.exit_code != 0 and "not a finished curate run" in shown.output

    manifest = json.loads((run / "manifest.json").read_text()) if curate_cli(new, "--out", run).exit_code == 0 else {}
    assert manifest["counts"]["input"] == 12 and manifest["counts"]["accounted"]
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]  # the killed run's temporaries are gone
    assert curate_cli(new, "--out", tmp_path / "fresh").exit_code == 0
    for name in ("curated.jsonl", "ledger.jsonl", "rejects.jsonl", "clusters.jsonl"):
        assert (run / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    assert runner.invoke(app, ["explain", "new:3", "--run", str(run)]).exit_code == 0


def test_a_changed_file_no_longer_matches_its_manifest(tmp_path: Path) -> None:
    data = records(tmp_path / "in.jsonl", ["a", "b"])
    run = tmp_path / "run"
    assert curate_cli(data, "--out", run).exit_code == 0
    (run / "ledger.jsonl").write_text('{"id": "in:0", "action": "drop"}\n')  # an older run's ledger, say
    shown = runner.invoke(app, ["explain", "in:0", "--run", str(run)])
    assert shown.exit_code != 0 and "ledger.jsonl does not match manifest.json" in shown.output


def test_a_second_run_into_a_busy_folder_is_refused_and_a_killed_one_frees_it(
    tmp_path: Path, shared_data: Path
) -> None:
    run = tmp_path / "run"
    alpaca = shared_data / "alpaca" / "alpaca_data_52k.jsonl"
    first = subprocess.Popen(
        [sys.executable, "-m", "lmtailor", "curate", str(alpaca), "--out", str(run), "--steps", "normalize,filter"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = run / ".lock"
        deadline = time.time() + 60
        while not (lock.exists() and lock.read_text() == str(first.pid)) and time.time() < deadline:
            time.sleep(0.05)
        assert lock.read_text() == str(first.pid), "the first run never took the lock"
        small = records(tmp_path / "small.jsonl", ["a", "b"])
        second = curate_cli(small, "--out", run)
        assert second.exit_code == 2 and "another lmtailor run" in second.output and str(first.pid) in second.output
        assert not (run / ".work" / "staged" / "ledger.jsonl").exists()  # the second wrote nothing
    finally:
        first.kill()
        first.wait()
    assert curate_cli(records(tmp_path / "small.jsonl", ["a", "b"]), "--out", run).exit_code == 0  # lock freed


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path: Path) -> None:
    data = records(tmp_path / "in.jsonl", ["a"])
    run = tmp_path / "run"
    run.mkdir()
    (run / ".curated.jsonl.tmp4242").write_text("half a file")
    assert curate_cli(data, "--out", run).exit_code == 0
    assert not (run / ".curated.jsonl.tmp4242").exists()


def test_recipe_output_names_are_checked_where_recipes_are_parsed() -> None:
    with pytest.raises(ConfigError, match="output is a file name inside the run folder"):
        Recipe.parse({"inputs": ["x.jsonl"], "output": ""})


@pytest.mark.parametrize("content", [b"not parquet at all", b"PAR1\x00\x00truncated"])
def test_a_file_named_parquet_that_is_not_is_a_clean_error(tmp_path: Path, content: bytes) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(content)
    result = curate_cli(fake, "--out", tmp_path / "run")
    assert result.exit_code == 2 and "not a readable Parquet file" in result.output, result.output
