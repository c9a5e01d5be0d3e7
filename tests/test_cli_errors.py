"""The command line's failures are one clear line and exit 2, never a traceback: bad option values refused
before any work, run folders and targets that cannot be written, and user text printed as written (square
brackets in paths and records are not rich markup)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def data(tmp_path: Path, shared_data: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join((shared_data / "alpaca" / "alpaca_data_52k.jsonl").open().readlines()[:40]))
    return path


def refused(args: list[str], message: str) -> None:
    """The command exits 2 with `message` on one line, and nothing else."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {message}"]


# ------------------------------------------------------------------ user text is not markup


def test_a_run_folder_with_brackets_is_printed_exactly(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "data[v2]"
    result = runner.invoke(app, ["curate", str(data), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}/curated.jsonl (alpaca)" in flat(result.output)
    assert f"lmtailor explain ID --run {out}" in flat(result.output)


def test_markup_in_a_record_is_printed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    turns = [{"from": "[/b]", "value": "Hello there"}, {"from": "gpt", "value": "Hello! How can I help?"}]
    path.write_text(json.dumps({"conversations": turns}) + "\n")
    result = runner.invoke(app, ["curate", str(path), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert f"error: {path}: record 0 (line 1): not a valid sharegpt record:" in flat(result.output)
    assert "unknown from '[/b]'" in result.output


def test_a_path_with_brackets_in_an_error_is_printed_as_written(tmp_path: Path) -> None:
    source = tmp_path / "x[/b].jsonl"  # the folder `x[` and the file `b].jsonl`, which does not exist
    refused(["convert", str(source), str(tmp_path / "out.jsonl")], f"{source}: no such file or directory")


# ------------------------------------------------------------------ option values, refused before any work


FORMATS = "alpaca, sharegpt, openai, prompt_completion"
MB = "a size in MB above 0 and at most 1,048,576"
CHECKS = "broken_fields, balance, claims, grounding, format, correctness, duplicates, diversity, agreement"
SCORE = ["score", "IN", "--out", "OUT", "--classifier", "--good", "IN", "--bad", "IN"]
EXPECT = "--expect takes NAME=RATE with a rate from 0 to 1, e.g. refusal=0.05"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "IN", "OUT/x.jsonl", "--on-error", "bogus"], "--on-error takes fail, skip; got 'bogus'"),
        (["convert", "IN", "OUT/x.jsonl", "--to", "bogus"], f"--to takes {FORMATS}; got 'bogus'"),
        (["convert", "IN", "OUT/x.jsonl", "--format", "bogus"], f"--format takes {FORMATS}; got 'bogus'"),
        (["curate", "IN", "--out", "OUT", "--format", "bogus"], f"--format takes {FORMATS}; got 'bogus'"),
        (["curate", "IN", "--out", "OUT", "--output-format", "bogus"], f"--output-format takes {FORMATS}; got 'bogus'"),
        (["curate", "IN", "--out", "OUT", "--on-error", "bogus"], "--on-error takes fail, skip; got 'bogus'"),
        (["curate", "IN", "--out", "OUT", "--max-record-mb", "0"], f"--max-record-mb takes {MB}; got 0"),
        (["curate", "IN", "--out", "OUT", "--max-record-mb", "-1"], f"--max-record-mb takes {MB}; got -1"),
        (["curate", "IN", "--out", "OUT", "--max-record-mb", "inf"], f"--max-record-mb takes {MB}; got inf"),
        (["curate", "IN", "--out", "OUT", "--steps", ","], "--steps takes comma-separated names; got ','"),
        ([*SCORE, "--on-error", "bogus"], "--on-error takes fail, skip; got 'bogus'"),
        ([*SCORE, "--fields", " , "], "--fields takes comma-separated names; got ' , '"),
        (["audit", "IN", "--out", "OUT", "--checks", "nosuch"], f"unknown check(s) nosuch; choose from {CHECKS}"),
        (["audit", "IN", "--out", "OUT", "--checks", ","], "--checks takes comma-separated names; got ','"),
        (
            ["audit", "IN", "--out", "OUT", "--fail-on", "bogus"],
            "--fail-on takes info, low, medium, high, never; got 'bogus'",
        ),
        (["audit", "IN", "--out", "OUT", "--format", "bogus"], f"--format takes {FORMATS}; got 'bogus'"),
        (["audit", "IN", "--out", "OUT", "--expect", "refusal=2"], f"{EXPECT}; got 'refusal=2'"),
        (["audit", "IN", "--out", "OUT", "--expect", "refusal=nan"], f"{EXPECT}; got 'refusal=nan'"),
        (
            ["audit", "IN", "--out", "OUT", "--columns", "response"],
            "--columns takes SOURCE=FIELD, e.g. response=output; got 'response'",
        ),
        (
            ["judge", "IN", "--out", "OUT", "--backend", "bogus"],
            "--backend takes llamacpp, openai, transformers; got 'bogus'",
        ),
        (["judge", "IN", "--out", "OUT", "--rubric", ","], "--rubric takes comma-separated names; got ','"),
        (["synth", "paraphrase", "IN", "--out", "OUT", "--format", "bogus"], f"--format takes {FORMATS}; got 'bogus'"),
        (
            ["train", "IN", "--out", "OUT", "--method", "bogus"],
            "method: Input should be 'lora', 'qlora', 'dora' or 'full'",
        ),
    ],
)
def test_bad_option_values_are_refused_up_front(tmp_path: Path, data: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    refused([str(data) if a == "IN" else a.replace("OUT", str(out)) for a in args], message)
    assert not out.exists()  # refused before anything was written


# ------------------------------------------------------------------ run folders and targets that cannot be written


@pytest.mark.parametrize(
    "args",
    [
        ["curate", "IN"],
        ["audit", "IN", "--checks", "broken_fields"],
        ["score", "IN", "--classifier", "--good", "IN", "--bad", "IN"],
        ["judge", "IN"],
        ["synth", "backtranslate", "IN"],
        ["synth", "self-instruct", "SEEDS"],
        ["train", "IN"],
        ["demo"],
    ],
)
def test_an_out_that_is_a_file_is_refused(tmp_path: Path, shared_data: Path, data: Path, args: list[str]) -> None:
    """Self-instruct's seed file is converted into the run folder before the run starts, and demo writes its
    data there: both must meet the refusal first, like the verbs that run through curate."""
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder\n")
    places = {"IN": str(data), "SEEDS": str(shared_data / "alpaca" / "seed_tasks.jsonl")}
    command = [*(places.get(a, a) for a in args), "--out", str(taken), "--no-progress"]
    refused(command, f"{taken}: exists and is not a folder; give a folder for the run")
    assert taken.read_text() == "not a folder\n"


@pytest.mark.parametrize("verb", ["curate", "audit", "judge", "train", "demo"])
def test_an_empty_out_is_refused_not_taken_for_the_current_folder(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    """`--out "$DIR"` with DIR unset: the current folder's files (here a curated.jsonl of the user's) stay."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "curated.jsonl").write_text("mine\n")
    args = [verb] if verb == "demo" else [verb, str(data)]
    refused(
        [*args, "--out", "", "--no-progress"],
        "--out takes a folder; got an empty path (to write into the current folder, say `--out .`)",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curated.jsonl", "in.jsonl"]
    assert (tmp_path / "curated.jsonl").read_text() == "mine\n"


@pytest.mark.parametrize("target", ["", ".", "..", "/"])
def test_convert_refuses_a_target_that_names_no_file(data: Path, target: str) -> None:
    shown = repr(str(Path(target)))
    refused(["convert", str(data), target], f"{shown}: names no output; give the converted file a name, e.g. out.jsonl")


def test_convert_refuses_a_target_under_a_file(data: Path) -> None:
    target = data / "under.jsonl"
    refused(["convert", str(data), str(target)], f"{target}: cannot be written: {data} is a file, not a folder")


def test_convert_reports_a_folder_it_cannot_create() -> None:
    """sysfs refuses a new folder even to root, so the write's OSError is met whoever runs the tests."""
    target = "/sys/lmtailor-test/out.jsonl"
    refused(["convert", str(Path(__file__)), target], "/sys/lmtailor-test: Operation not permitted")


def test_convert_refuses_to_replace_a_folder_of_other_files(tmp_path: Path, data: Path) -> None:
    """A target without a suffix is a `datasets` folder, written in place of what is there."""
    target = tmp_path / "notes"
    (target / "todo.txt").parent.mkdir()
    (target / "todo.txt").write_text("keep me\n")
    refused(
        ["convert", str(data), str(target)],
        f"{target}: is a folder but not a saved `datasets` one; converting would replace it and all it holds",
    )
    assert (target / "todo.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("how", ["same path", "hard link", "folder holding it"])
def test_convert_refuses_to_overwrite_its_source(tmp_path: Path, data: Path, how: str) -> None:
    before = data.read_bytes()
    if how == "same path":
        target = data
    elif how == "hard link":
        target = tmp_path / "linked.jsonl"
        os.link(data, target)
    else:
        target = tmp_path  # no suffix: a `datasets` folder put in place of the folder the source is in
    message = f"{target}: would overwrite the source {data}; write the conversion to another path"
    refused(["convert", str(data), str(target), "--to", "sharegpt"], message)
    assert data.read_bytes() == before


def test_an_unwritable_audit_file_is_reported_with_its_path(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "audit"
    (out / "report.html").mkdir(parents=True)  # the report cannot replace a folder: IsADirectoryError
    result = runner.invoke(app, ["audit", str(data), "--out", str(out), "--checks", "broken_fields", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert f"{out / 'report.html'}: Is a directory" in flat(result.output)
    assert not (out / "summary.json").exists()  # the audit is not taken for finished


def test_recipe_and_config_limits_refuse_what_would_overflow(tmp_path: Path) -> None:
    from lmtailor.core.config import ConfigError
    from lmtailor.curate.recipe import Recipe
    from lmtailor.train.config import TrainConfig

    with pytest.raises(ConfigError, match="max_record_mb"):
        Recipe.parse({"inputs": ["x.jsonl"], "max_record_mb": float("inf")})
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig.model_validate({"train": [{"path": "x.jsonl"}], "max_steps": 0})


def test_a_hand_written_findings_file_with_a_bad_line_is_named(tmp_path: Path) -> None:
    from lmtailor.core.io import DataError, read_jsonl

    bad = tmp_path / "findings.jsonl"
    bad.write_text('{"id": "x:0"}\n{"id": \n')
    with pytest.raises(DataError, match=r"findings\.jsonl: line 2 is not JSON"):
        list(read_jsonl(bad))


def test_each_backend_kind_takes_its_own_settings(tmp_path: Path, data: Path) -> None:
    """A recipe's backend block and the backend flags reach the kind's config, which refuses a setting of another
    kind (a llama.cpp run would ignore a server URL) before any model loads or any request goes out."""
    from lmtailor.core.config import ConfigError
    from lmtailor.curate.recipe import Recipe
    from lmtailor.llm.config import LlamaCppConfig, OpenAIConfig

    def backend(block: object) -> object:
        recipe = Recipe.parse({"inputs": ["x.jsonl"], "steps": [{"step": "judge", "backend": block}]})
        return recipe.steps[0].backend  # type: ignore[attr-defined]

    assert backend({}) == LlamaCppConfig() and backend({"model": "m.gguf"}) == LlamaCppConfig(model="m.gguf")
    assert backend({"kind": "openai", "base_url": "http://h/v1", "model": "m"}) == OpenAIConfig(
        base_url="http://h/v1", model="m"
    )
    for block, problem in [
        ({"kind": "llamacpp", "base_url": "http://h/v1"}, "backend.llamacpp.base_url: Extra inputs are not permitted"),
        ({"kind": "transformers", "n_ctx": 4096}, "backend.transformers.n_ctx: Extra inputs are not permitted"),
        ({"kind": "vllm"}, "steps.0.judge.backend: kind should be 'llamacpp', 'openai' or 'transformers'"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(problem)):
            backend(block)
    args = ["judge", str(data), "--out", str(tmp_path / "run"), "--no-progress"]
    for flags, problem in [
        (["--backend", "openai", "--model", "m"], "the openai backend needs base_url and model"),
        (["--backend", "openai", "--base-url", "http://h/v1", "--model", "m", "--lora", "a.gguf"],
         "lora takes a GGUF adapter for the llamacpp backend, not openai; serve a merged model"),
        (["--concurrency", "8"], "steps.0.judge.backend.llamacpp.concurrency: Extra inputs are not permitted"),
    ]:  # fmt: skip
        result = runner.invoke(app, [*args, *flags])
        assert result.exit_code == 2 and "error: command line is not a valid recipe:" in result.output
        assert problem in result.output
    assert not (tmp_path / "run").exists()
