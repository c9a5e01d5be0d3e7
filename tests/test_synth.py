"""`lmtailor synth`: the four generating modes end to end on the embedded model, through the CLI and curate.

What a 270M base model writes differs from machine to machine (llama.cpp is built for the CPU it runs on), so
the runs on the model assert only what holds whatever it writes: every record accounted for in the manifest's
sums, a ledger reason for every drop, provenance on every new record, each rejection the filters' own verdict
on the candidate's text, and a rerun replayed from the response cache. The filters themselves (novelty,
copies, lengths, decontamination) are tested on fixed texts, without the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rouge_score import rouge_scorer
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.io import ReadOptions, read_examples, read_jsonl
from lmtailor.core.records import Example
from lmtailor.synth.backtranslate import Backtranslate
from lmtailor.synth.candidates import question_of
from lmtailor.synth.failures import FailureTargets, _parse
from lmtailor.synth.novelty import RougeIndex, folded
from lmtailor.synth.paraphrase import Paraphrase
from lmtailor.synth.self_instruct import TASKS, SelfInstruct, _continued, _instance, convert_seed_tasks

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

runner = CliRunner()
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
PROVENANCE_KEYS = {"step", "backend", "model", "template", "params", "seed_ids"}
LENGTH = {"empty", "too_short", "too_long"}
# Every reason a step may give a rejected candidate.
REASONS = {
    "self_instruct": LENGTH | {"needs_unseen_media", "bad_start", "ambiguous_program", "not_novel", "truncated",
                               "no_output", "degenerate_output", "over_target"},
    "backtranslate": LENGTH | {"truncated", "copied_demo", "copied_document"},
    "paraphrase": LENGTH | {"truncated", "duplicate", "near_duplicate", "meaning_drift"},
    "failure_targets": LENGTH | {"no_answer", "truncated", "too_close_to_eval_case", "near_duplicate"},
}  # fmt: skip


def _rouge(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def _lines(path: Path, n: int, start: int = 0) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for i, line in enumerate(f) if start <= i < start + n]


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _case(i: int, question: str, answer: str, input: str = "") -> Example:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return Example(f"cases:{i}", messages, input, {"source": "cases.jsonl", "index": i, "format": "alpaca"})


def _synth(args: list[str], out: Path) -> tuple[dict[str, Any], list[Example], list[dict[str, Any]], str]:
    """Run `lmtailor synth ...`; return the manifest, the output records, the ledger and the printed text."""
    result = runner.invoke(app, ["synth", *args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    records = list(read_examples(out / manifest["output"]["path"])) if manifest["output"]["records"] else []
    return manifest, records, list(read_jsonl(out / "ledger.jsonl")), result.output


# The id a step gave a new record (written files renumber records), from its provenance.
NEW_ID = {
    "backtranslate": lambda o: f"{o['seed_ids'][0]}~bt",
    "paraphrase": lambda o: f"{o['seed_ids'][0]}~para{o['rewording']}",
    "failure_targets": lambda o: f"{o['seed_ids'][0]}~fail{o['variant']}",
}


def _check_run(
    manifest: dict[str, Any], records: list[Example], ledger: list[dict[str, Any]], step: str, inputs: int
) -> dict[str, Example]:
    """What every synth run must show, whatever the model wrote; returns the generated records by the ids the
    step gave them (in the ledger), in the order they were written."""
    c = manifest["counts"]
    adds = [e for e in ledger if e["action"] == "add"]
    drops = [e for e in ledger if e["action"] == "drop"]
    assert c["accounted"] and c["input"] == inputs and c["rejected"] == 0
    assert c["input"] == c["kept"] + c["dropped"] + c["rejected"] - c["added"]
    assert (c["kept"], c["added"], c["dropped"]) == (len(records), len(adds), len(drops))
    assert all(e["reason"] and e["detail"] for e in drops)
    rejected = [e for e in drops if "candidate" in e]
    assert {e["reason"] for e in rejected} <= REASONS[step]
    # every candidate is added once, then either written out or dropped with its text
    rejected_ids = {e["id"] for e in rejected}
    assert len({e["id"] for e in adds}) == len(adds) and rejected_ids <= {e["id"] for e in adds}
    accepted = [e["id"] for e in adds if e["id"] not in rejected_ids]
    made = [r for r in records if "provenance" in r.metadata.get("extra", {})]
    for r in made:
        origin = r.metadata["extra"]["provenance"]
        assert origin.keys() >= PROVENANCE_KEYS and origin["step"] == step
        assert origin["backend"] == "llamacpp" and origin["model"] == "gemma-3-270m" and origin["seed_ids"]
        assert "@" in origin["template"] and origin["params"]["max_tokens"] > 0
    if step == "self_instruct":  # written in the order they were accepted
        assert len(made) == len(accepted)
        ids = accepted
    else:
        ids = [NEW_ID[step](r.metadata["extra"]["provenance"]) for r in made]
        assert sorted(ids) == sorted(accepted)
        if step != "paraphrase":  # paraphrase writes each original's rewordings after it
            assert ids == accepted
    metrics = manifest["steps"][-1]["metrics"]
    assert metrics.get("candidates", 0) == len(adds) and metrics.get("accepted", 0) == len(made)
    return dict(zip(ids, made, strict=True))


def _replayed(first: dict[str, Any], again: dict[str, Any]) -> None:
    """The first run paid for its calls; the rerun was answered from the cache alone."""
    assert first["steps"][-1]["metrics"]["usage"]["calls"] > 0
    usage = again["steps"][-1]["metrics"]["usage"]
    assert usage["calls"] == 0 and usage["cached_calls"] > 0


def _candidates(made: dict[str, Example], ledger: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None]]:
    """(id, instruction, output, reason the candidate was dropped or None if kept) for every candidate, in the
    order the step generated them."""
    dropped = {e["id"]: e for e in ledger if e["action"] == "drop" and "candidate" in e}
    out = []
    for add in (e for e in ledger if e["action"] == "add"):
        if add["id"] in made:
            r = made[add["id"]]
            out.append((add["id"], r.contents("user")[-1], r.contents("assistant")[-1], None))
        else:
            e = dropped[add["id"]]
            out.append((e["id"], e["candidate"]["instruction"], e["candidate"]["output"], e["reason"]))
    return out


# ---------------------------------------------------------------- filters, without the model


def test_rouge_index_gives_rouge_scores_exactly(shared_data: Path) -> None:
    """The bag-of-tokens bound only skips work: every match equals a brute-force rouge-score search."""
    texts = [r["instruction"] for r in _lines(shared_data / "alpaca" / "alpaca_data_52k.jsonl", 460)]
    kept, queries = texts[:400], texts[400:]
    queries += [" ".join(t.split()[:-1]) for t in kept[:30]]  # near copies: the last word gone
    index = RougeIndex(0.7)
    for i, t in enumerate(kept):
        index.add(str(i), t)
    for q in queries:
        best = max((_rouge(t, q), str(i)) for i, t in enumerate(kept))
        match = index.closest(q)
        if best[0] >= 0.7:
            assert match is not None and match.score == pytest.approx(best[0])
        else:
            assert match is None
    assert index.closest(kept[5].upper() + "!!").exact  # the same text once folded


def test_self_instruct_filter_drops_a_near_copy_of_a_seed(shared_data: Path) -> None:
    seeds = _lines(shared_data / "alpaca" / "seed_tasks.jsonl", 175)
    held = RougeIndex(0.7)
    for s in seeds:
        held.add(s["id"], s["instruction"])
    cfg = SelfInstruct()

    def reason(instruction: str) -> str | None:
        problem = cfg.instruction_problem(instruction, [held])
        return problem[0] if problem else None

    seed = seeds[1]["instruction"]  # "What is the relation between the given pairs?"
    near = seed.replace("given", "following")
    assert reason(near) == "not_novel" and seeds[1]["id"] in cfg.instruction_problem(near, [held])[1]  # type: ignore[index]
    assert reason(seed.upper()) == "not_novel"
    assert reason("Describe the picture of the beach at dawn.") == "needs_unseen_media"
    assert reason("Sort it.") == "too_short"
    assert reason("- List three uses of copper wire.") == "bad_start"
    assert reason("Write a program that sorts a list of names.") == "ambiguous_program"
    assert reason("") == "empty" and reason(" ".join(["word"] * 151)) == "too_long"
    new = "List three everyday uses of copper wire in a home."
    assert reason(new) is None
    # An instruction that passed is held too: a later near copy of it is not novel.
    held.add("self_instruct:0.0.0", new)
    assert reason("List three everyday uses of copper wire in the home.") == "not_novel"
    held.add("the prompt's own header", TASKS)  # as a run holds it: a base model sometimes echoes it
    assert reason("Come up with a series of tasks:") == "not_novel"


def test_self_instruct_parses_continued_lists_and_instances() -> None:
    """What the model's task lists and instances are read as, before any filter."""
    text = " Name three rivers in Europe.\n10. Sort these numbers: 3, 1, 2\n11 ) Write a haiku about"
    assert _continued(text, cut=False) == [
        ("Name three rivers in Europe.", False),
        ("Sort these numbers: 3, 1, 2", False),
        ("Write a haiku about", False),
    ]
    assert _continued(text, cut=True)[-1] == ("Write a haiku about", True)  # only the last task can be cut
    assert _continued("", cut=False) == [] and _continued("\n\n", cut=True) == []
    assert _instance(" None\nOutput: Paris is the capital.\nOutput: another") == ("", "Paris is the capital.")
    assert _instance(" 3, 1, 2\nOutput: 1, 2, 3") == ("3, 1, 2", "1, 2, 3")
    assert _instance(" 3, 1, 2 and no output") == ("", "")  # dropped later as no_output


def test_backtranslate_filter_drops_copies_and_bad_lengths() -> None:
    cfg = Backtranslate()
    demos = cfg.demo_index()
    doc = "Copper conducts heat well. Pans made of copper heat evenly and cool quickly when taken off the stove."

    def reason(instruction: str, finish: str = "stop") -> str | None:
        problem = cfg.instruction_problem(instruction, doc, finish, demos)
        return problem[0] if problem else None

    assert reason("") == "empty" and reason("Copper pans?") == "too_short"
    assert reason(" ".join(["word"] * 61)) == "too_long"
    assert reason("Why are copper pans popular with cooks?", finish="length") == "truncated"
    assert reason("How tall is the Eiffel Tower?") == "copied_demo"  # the first demonstration's instruction
    assert reason("How tall is the Eiffel Tower in Paris?") == "copied_demo"  # ROUGE-L 0.86
    assert reason("Pans made of copper heat evenly.") == "copied_document"  # a passage of the document
    assert reason("Why are copper pans popular with cooks?") is None


def test_backtranslate_drops_short_documents_before_any_model_call(tmp_path: Path) -> None:
    rows = [{"instruction": "Hi", "input": "", "output": "Hello!"}, {"instruction": "Q", "output": "Four short words."}]
    docs = _write(tmp_path / "short.jsonl", rows)
    manifest, records, ledger, _ = _synth(["backtranslate", str(docs), "--field", "output"], tmp_path / "bt")
    assert records == [] and manifest["counts"]["accounted"] and manifest["counts"]["dropped"] == 2
    assert [(e["id"], e["reason"]) for e in ledger] == [(f"short:{i}", "document_too_short") for i in (0, 1)]
    metrics = manifest["steps"][-1]["metrics"]
    assert metrics["documents_too_short"] == 2 and "usage" not in metrics  # the model was never opened


def test_paraphrase_filter_drops_copies_of_the_original() -> None:
    held = RougeIndex(0.8)
    held.add("a:0", "Give three tips for staying healthy.")

    def reason(text: str, similarity: float = 1.0, finish: str = "stop") -> str | None:
        original = "Give three tips for staying healthy."
        problem = Paraphrase().rewording_problem(text, original, finish, held, similarity)
        return problem[0] if problem else None

    assert reason("give three tips for staying healthy") == "duplicate"
    assert reason("Give three tips for staying really healthy.") == "near_duplicate"
    assert reason("What should I do to keep fit and well?") is None
    assert reason("How to prevent falls?", similarity=0.29) == "meaning_drift"
    assert reason("What should I do to keep fit and well?", finish="length") == "truncated"
    assert reason("") == "empty" and reason(" ".join(["word"] * 23)) == "too_long"  # over 2 x 6 words + 10
    # A rewording kept is held too: a later copy of it goes.
    held.add("a:0~para1", "What should I do to keep fit and well?")
    assert reason("What should I do to keep fit and well ?") == "duplicate"
    assert reason("What should I do to stay fit and well?") == "near_duplicate"


def test_failure_filter_drops_eval_case_leaks_and_copies() -> None:
    """Decontamination on fixed questions: a case's question is its instruction with its input."""
    cases = [
        _case(0, "Which is a species of fish? Tope or Rope", "Tope"),
        _case(1, "Summarize the passage.", "It flows east.", "The Danube flows through Vienna and Budapest."),
    ]
    default, strict = FailureTargets(), FailureTargets(max_rouge=0.05)
    kept = RougeIndex(default.max_rouge)
    kept.add("cases:0~fail1", "Which bird can swim under water for minutes?")

    def reason(
        question: str, reply: str = "An answer.", ended: bool = True, finish: str = "stop", cfg=default
    ) -> str | None:
        problem = cfg.question_problem(question, reply, ended, finish, cfg.leak_index(cases), kept)
        return problem[0] if problem else None

    assert reason("Which is a species of fish: Tope or Rope?") == "too_close_to_eval_case"  # the same, folded
    assert reason("Which is a species of bird? Tope or Robin") == "too_close_to_eval_case"  # ROUGE-L 0.78
    assert reason("The Danube flows through Vienna and Budapest.") == "too_close_to_eval_case"  # the input
    assert reason("Which bird can swim under water for many minutes?") == "near_duplicate"
    assert reason("Fish?") == "too_short" and reason("Which mammal lays eggs?", reply="") == "no_answer"
    assert reason("Which mammal lays eggs?", ended=False, finish="length") == "truncated"
    assert reason("Which mammal lays eggs?", ended=True, finish="length") is None  # its answer ended first
    assert reason("Which mammal lays eggs?") is None
    # A strict threshold: one shared word ("which") is a leak; no shared word is none.
    assert reason("Which mammal lays eggs?", cfg=strict) == "too_close_to_eval_case"
    assert reason("Name three mammals that lay eggs.", cfg=strict) is None


def test_failure_answers_are_parsed_without_a_copied_wrong_answer() -> None:
    parsed = _parse(" Which fish lives in rivers?\nWrong answer: A tree\nAnswer: The trout.\n")
    assert parsed == ("Which fish lives in rivers?", "The trout.", False)
    assert _parse(" Name a fish.\nAnswer: a. Tope\nAnswer: a. a.\nAnswer:") == ("Name a fish.", "a. Tope", True)
    assert _parse(" a question with no answer") == ("a question with no answer", "", False)


def test_seed_tasks_conversion_names_a_broken_record(tmp_path: Path, shared_data: Path) -> None:
    target = tmp_path / "seeds.jsonl"
    assert convert_seed_tasks(shared_data / "alpaca" / "seed_tasks.jsonl", target) == 175
    first = next(read_examples(target))
    assert first.id == "seeds:0" and first.metadata["extra"]["id"] == "seed_task_0"
    bad = _write(tmp_path / "bad.jsonl", [{"instruction": "Do it.", "instances": []}])
    result = runner.invoke(app, ["synth", "self-instruct", str(bad), "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 2 and "bad.jsonl: record 0" in result.output and "instances" in result.output


# ---------------------------------------------------------------- the four modes on the embedded model


def test_self_instruct_from_seed_tasks_then_rerun_from_cache(tmp_path: Path, shared_data: Path) -> None:
    seeds = shared_data / "alpaca" / "seed_tasks.jsonl"
    args = ["self-instruct", str(seeds), "--n", "2", "--max-rounds", "2", "--prompts-per-round", "2",
            "--max-tokens", "80", "--output-tokens", "48"]  # fmt: skip
    manifest, records, ledger, printed = _synth(args, tmp_path / "si")
    made = _check_run(manifest, records, ledger, "self_instruct", 175)
    assert "generated" in printed and "tok/s" in printed and "every record accounted for" in printed
    inputs = [e for e in ledger if e["action"] == "drop" and "candidate" not in e]
    assert [e["reason"] for e in inputs] == ["input_not_kept"] * 175
    metrics = manifest["steps"][-1]["metrics"]
    assert len(made) <= 2 and 1 <= metrics["rounds"] <= 2
    assert len(made) == 2 or metrics["stopped"].startswith("max_rounds (2) spent")
    seed_ids, made_ids = {e["id"] for e in inputs}, set(made)
    held = [s["instruction"] for s in _lines(seeds, 175)]
    for r in made.values():
        instruction, origin = r.contents("user")[-1], r.metadata["extra"]["provenance"]
        assert all(_rouge(h, instruction) < 0.7 for h in held)  # novel against every seed and earlier example
        assert len(origin["seed_ids"]) == 8 and set(origin["seed_ids"]) <= seed_ids | made_ids  # the k shown
        assert len(origin["instance_demos"]) == 3 and set(origin["instance_demos"]) <= seed_ids
        assert r.contents("assistant")[-1].strip()  # an output, or it would have gone as no_output
        held.append(instruction)

    again, _, ledger2, _ = _synth(args, tmp_path / "si2")
    _replayed(manifest, again)
    written = manifest["output"]["path"]  # the same bytes: records read back would differ by their source path
    assert (tmp_path / "si2" / written).read_bytes() == (tmp_path / "si" / written).read_bytes()
    assert ledger2 == ledger


def test_backtranslate_documents(tmp_path: Path, shared_data: Path) -> None:
    lima = json.loads((shared_data / "lima" / "lima.json").read_text())
    picked = [r for r in lima if 30 < len(r["output"].split()) < 90][:3]
    docs = _write(tmp_path / "docs.jsonl", [*picked, {"instruction": "Hi", "input": "", "output": "Hello!"}])
    manifest, records, ledger, _ = _synth(["backtranslate", str(docs), "--field", "output"], tmp_path / "bt")
    made = _check_run(manifest, records, ledger, "backtranslate", 4)
    assert manifest["steps"][-1]["metrics"]["usage"]["calls"] == 3  # one instruction per usable document
    inputs = [(e["id"], e["reason"]) for e in ledger if e["action"] == "drop" and "candidate" not in e]
    assert sorted(inputs) == [("docs:0", "input_not_kept"), ("docs:1", "input_not_kept"),
                              ("docs:2", "input_not_kept"), ("docs:3", "document_too_short")]  # fmt: skip
    documents = {f"docs:{i}": r["output"].strip() for i, r in enumerate(picked)}
    cfg = Backtranslate()
    demos = cfg.demo_index()
    candidates = _candidates(made, ledger)
    assert [c[0] for c in candidates] == [f"{i}~bt" for i in documents]  # one candidate per usable document
    for new_id, instruction, output, reason in candidates:
        assert output == documents[new_id.removesuffix("~bt")]  # the document is the answer, whole
        # kept or dropped, it is what the filters say of its text (cut short only when max_tokens was hit)
        problem = cfg.instruction_problem(instruction, output, "length" if reason == "truncated" else "stop", demos)
        assert (problem and problem[0]) == reason, (instruction, problem)
    for new_id, r in made.items():
        assert r.metadata["extra"]["provenance"]["seed_ids"] == [new_id.removesuffix("~bt")]


def test_paraphrase_rewordings_never_copy_an_original(tmp_path: Path, shared_data: Path) -> None:
    data = _write(tmp_path / "al.jsonl", _lines(shared_data / "alpaca" / "alpaca_data_52k.jsonl", 3))
    manifest, records, ledger, _ = _synth(["paraphrase", str(data), "--n", "2", "--max-tokens", "40"], tmp_path / "pp")
    made = _check_run(manifest, records, ledger, "paraphrase", 3)
    assert manifest["steps"][-1]["metrics"]["usage"]["calls"] == 6  # 2 rewordings asked for each of 3
    assert sorted(c[0] for c in _candidates(made, ledger)) == [f"al:{i}~para{j}" for i in range(3) for j in (1, 2)]
    rows = _lines(shared_data / "alpaca" / "alpaca_data_52k.jsonl", 3)
    originals = [r for r in records if "provenance" not in r.metadata.get("extra", {})]
    assert [o.contents("user")[-1] for o in originals] == [r["instruction"] for r in rows]  # kept by default
    by_id = {f"al:{i}": o for i, o in enumerate(originals)}
    texts = [o.contents("user")[-1] for o in originals]
    current, ids = None, iter(made)
    for r in records:  # each original followed by its own rewordings
        if "provenance" not in r.metadata.get("extra", {}):
            current = next(k for k, o in by_id.items() if o is r)
            continue
        source_id = r.metadata["extra"]["provenance"]["seed_ids"][0]
        assert source_id == current and next(ids).startswith(f"{current}~para")
        source = by_id[source_id]
        assert r.input == source.input and r.contents("assistant") == source.contents("assistant")  # they stay
    for r in made.values():
        new = r.contents("user")[-1]
        assert all(folded(new) != folded(t) and _rouge(t, new) < 0.8 for t in texts)  # ROUGE-L is symmetric
        texts.append(new)


def _rederive(
    cfg: FailureTargets, cases: list[Example], made: dict[str, Example], ledger: list[dict[str, Any]]
) -> None:
    """Every candidate kept or dropped as the step's filters judge its text, in the order it was generated."""
    leaks, kept = cfg.leak_index(cases), RougeIndex(cfg.max_rouge)
    for new_id, question, reply, reason in _candidates(made, ledger):
        finish, ended = ("length", False) if reason == "truncated" else ("stop", True)
        problem = cfg.question_problem(question, reply, ended, finish, leaks, kept)
        assert (problem and problem[0]) == reason, (question, problem)
        if problem is None:
            kept.add(new_id, question)


def test_failure_targets_leave_out_the_eval_cases(tmp_path: Path, shared_data: Path) -> None:
    """Dolly's first rows with flan-t5-base's wrong answers as the failed evaluation cases."""
    cases_path = _write(tmp_path / "cases.jsonl", _lines(shared_data / "dolly" / "dolly_first6400.jsonl", 2))
    cases = list(read_examples(cases_path, ReadOptions(columns={"response": "output"})))
    args = ["failures", str(cases_path), "--per-case", "2", "--max-tokens", "80", "--columns", "response=output",
            "--wrong-field", "flan_t5_base_output"]  # fmt: skip
    manifest, records, ledger, _ = _synth(args, tmp_path / "fail")
    made = _check_run(manifest, records, ledger, "failure_targets", 2)
    assert manifest["steps"][-1]["metrics"]["usage"]["calls"] == 4  # 2 examples asked for per case
    assert [e["reason"] for e in ledger if e["action"] == "drop" and "candidate" not in e] == ["eval_case"] * 2
    assert sorted(c[0] for c in _candidates(made, ledger)) == [f"cases:{i}~fail{j}" for i in (0, 1) for j in (1, 2)]
    _rederive(FailureTargets(), cases, made, ledger)
    for r in made.values():
        assert all(_rouge(question_of(c), r.contents("user")[-1]) < 0.7 for c in cases)

    # Decontamination with a strict threshold; the same prompts and seeds make this rerun free, so it judges the
    # very same candidates, and a question sharing a word with a case goes.
    strict, records2, ledger2, _ = _synth([*args, "--max-rouge", "0.05"], tmp_path / "strict")
    made2 = _check_run(strict, records2, ledger2, "failure_targets", 2)
    _replayed(manifest, strict)
    texts = {c[0]: c[1:3] for c in _candidates(made, ledger)}
    assert {c[0]: c[1:3] for c in _candidates(made2, ledger2)} == texts
    _rederive(FailureTargets(max_rouge=0.05), cases, made2, ledger2)
    for r in records2:
        assert all(_rouge(question_of(c), r.contents("user")[-1]) < 0.05 for c in cases)
