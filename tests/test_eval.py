"""`lmtailor eval` and the figures it reports: SQuAD's F1/EM, label log-likelihood choice, bootstrap intervals,
per-query cost, the run folder, and the errors bad input gets."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from support import alpaca
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.io import read_examples
from lmtailor.core.records import RecordError
from lmtailor.evaluate.metrics import bootstrap_ci, contains_answer, spread, squad_normalize, squad_scores, token_f1
from lmtailor.evaluate.task import TaskConfig, score_answers, score_task
from lmtailor.llm.config import LlamaCppConfig, open_llm
from lmtailor.prompting.retrieval import open_index
from lmtailor.prompting.template import Turns

runner = CliRunner()


def test_squad_normalisation_and_f1_follow_the_official_script() -> None:
    assert squad_normalize("The  Cat, sat!") == "cat sat"
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(2 * (2 / 2) * (2 / 3) / (1 + 2 / 3))
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    assert squad_scores("Mother-to-child transmission", ["mother to child", "mother-to-child transmission."]) == (
        1.0,
        1.0,
    )
    assert contains_answer("... is the main cause (MTCT) of HIV-1 ...", ["the Main cause"])
    assert not contains_answer("maincause", ["main cause"])


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0] * 30 + [0.0] * 70
    lo, hi = bootstrap_ci(values)
    assert lo < 0.3 < hi and (lo, hi) == bootstrap_ci(values)
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)
    assert spread([1, 2, 3, 4]) == {"p50": 2.5, "p95": 3.85} and spread([]) is None


def test_squad_metric_takes_the_best_of_the_gold_answers() -> None:
    ex = alpaca("Who?", "Ada Lovelace", i=0)
    ex.metadata["answers"] = ["Lovelace"]
    result = score_answers([ex, alpaca("When?", "1843", i=1)], ["lovelace", "in 1843"], TaskConfig(metric="squad"))
    first, second = result.predictions
    assert first["exact"] == 1.0 and first["correct"]
    assert second["exact"] == 0.0 and second["f1"] == pytest.approx(2 / 3)
    assert result.summary["score"] == pytest.approx((1 + 2 / 3) / 2)
    assert result.summary["exact_match"] == 0.5


def _pubmedqa(shared_data: Path, n: int) -> list[dict[str, Any]]:
    """The first `n` PubMedQA questions with their abstract, as alpaca records answered yes, no or maybe."""
    data = json.loads((shared_data / "rag" / "pubmedqa" / "ori_pqal.json").read_text())
    rows = []
    for pmid, item in list(data.items())[:n]:
        abstract = " ".join(item["CONTEXTS"])
        rows.append({"instruction": f"{abstract}\n\nQuestion: {item['QUESTION']}\nAnswer yes, no or maybe.",
                     "input": "", "output": item["final_decision"], "pmid": pmid})  # fmt: skip
    return rows


@pytest.mark.model
def test_choice_picks_the_likeliest_label_and_reports_its_cost(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "pqa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _pubmedqa(shared_data, 4)))
    examples = list(read_examples(path))
    llm = open_llm(LlamaCppConfig(cache=False))
    cfg = TaskConfig(metric="choice", labels=["yes", "no", "maybe"])
    result = score_task(llm, Turns(), examples, cfg)
    for ex, row, prompt in zip(examples, result.predictions, result.prompts, strict=True):
        context = llm.backend.render(prompt)
        scores = [x.logprob for x in llm.loglikelihood([(context, f" {label}") for label in cfg.labels])]
        assert row["prediction"] == cfg.labels[scores.index(max(scores))]
        assert row["correct"] == (row["prediction"] == ex.contents("assistant")[-1])
        assert row["prompt_tokens"] == llm.count_tokens(context) and row["completion_tokens"] == 0
        assert row["seconds"] > 0
    summary = result.summary
    assert summary["n"] == 4 and summary["ci95"][0] <= summary["score"] <= summary["ci95"][1]
    assert summary["cost"]["completion_tokens"]["total"] == 0


def test_choice_refuses_an_answer_outside_the_labels(tmp_path: Path) -> None:
    ex = alpaca("Is it?", "perhaps")
    with pytest.raises(RecordError, match=r"t:0: its answer 'perhaps' is not one of the labels"):
        score_task(None, Turns(), [ex], TaskConfig(metric="choice", labels=["yes", "no"]))  # type: ignore[arg-type]


@pytest.mark.model
def test_eval_cli_writes_predictions_and_manifest_and_reuses_answers(shared_data: Path, tmp_path: Path) -> None:
    spider = json.loads((shared_data / "text2sql" / "spider" / "dev.json").read_text())
    rows = [{"instruction": f"Write one SQLite query.\n\nQuestion: {r['question']}", "input": "",
             "output": r["query"], "db_id": r["db_id"]} for r in random.Random(0).sample(spider, 3)]  # fmt: skip
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    args = ["eval", str(data), "--metric", "sql", "--max-new-tokens", "24", "--stop", "\\n\\n", "--out", str(out),
            "--no-progress"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "sql:" in first.output and "prompt tokens p50" in first.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"config.json", "predictions.jsonl"}
    task = manifest["task"]
    assert task["n"] == 3 and task["ci95"][0] <= task["score"] <= task["ci95"][1]
    assert task["cost"]["completion_tokens"]["total"] <= 3 * 24
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert [p["reference"] for p in predictions] == [r["output"] for r in rows]
    assert all(p["prompt"].endswith("<start_of_turn>model\n") or "### Response" in p["prompt"] for p in predictions)
    assert manifest["system"]["backend"]["kind"] == "llamacpp" and manifest["system"]["prompter"] == "Template"

    again = runner.invoke(app, args)  # the response cache answers every query: a killed run goes on from here
    assert again.exit_code == 0, again.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"]["cost"]["cached"] == 3 and manifest["usage"]["calls"] == 0
    assert [json.loads(line)["prediction"] for line in (out / "predictions.jsonl").open()] == [
        p["prediction"] for p in predictions
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "bleu"], "--metric takes exact_match, sql, squad, choice; got 'bleu'"),
        ([], "give --out"),
        (["--out", "{tmp}/o", "--labels", ","], "--labels takes comma-separated names"),
        (["--out", "{tmp}/o", "--limit", "0"], "limit: Input should be greater than or equal to 1"),
    ],
)
def test_eval_cli_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    result = runner.invoke(app, ["eval", str(data), *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_eval_cli_names_the_bad_record(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n{broken\n")
    result = runner.invoke(app, ["eval", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and f"{data}" in result.output and "line 2" in result.output, result.output
    assert not (tmp_path / "o" / "manifest.json").exists()


def _covid(shared_data: Path, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The first COVID-QA article as a SQuAD file, and its questions as alpaca records (the answer the output)."""
    data = json.loads((shared_data / "rag" / "covid_qa" / "200423_covidQA.json").read_text())
    article = {"data": data["data"][:1]}
    docs = tmp_path / "covid.json"
    docs.write_text(json.dumps(article))
    rows = [{"instruction": f"Question: {qa['question']}", "input": "", "output": qa["answers"][0]["text"].strip(),
             "question": qa["question"]} for p in article["data"][0]["paragraphs"] for qa in p["qas"]]  # fmt: skip
    return docs, rows


@pytest.mark.model
def test_eval_with_shots_and_passages_keeps_both_in_each_row(shared_data: Path, tmp_path: Path) -> None:
    docs, rows = _covid(shared_data, tmp_path)
    pool, queries = tmp_path / "pool.jsonl", tmp_path / "queries.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows[2:]))
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (tmp_path / "icl.yaml").write_text("pool: {path: pool.jsonl}\nstrategy: knn\nk: 2\nbudget_tokens: 600\n")
    index = tmp_path / "index"
    built = runner.invoke(app, ["rag", "index", str(docs), "--out", str(index), "--no-progress"])
    assert built.exit_code == 0, built.output
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", str(queries), "--metric", "squad", "--icl", str(tmp_path / "icl.yaml"),
                                 "--rag", str(index), "--rag-k", "3", "--rag-budget", "250",
                                 "--max-new-tokens", "8", "--out", str(out), "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    pool_ids = {f"pool:{i}" for i in range(len(rows) - 2)}
    chunks = set(open_index(index).chunks.ids)
    for row in map(json.loads, (out / "predictions.jsonl").open()):
        assert row["shot_ids"] and set(row["shot_ids"]) <= pool_ids  # knn shots, never the query itself
        assert 1 <= len(row["citations"]) <= 3 and row["context_tokens"] <= 250
        assert set(row["citations"]) <= chunks
        assert row["context"] in row["prompt"]  # the passages sit before the query's question
        assert row["answer_in_context"] == contains_answer(row["context"], [row["reference"]])
        assert row["prompt"].rstrip().endswith("Answer:")  # the completion form ends where the answer begins
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["system"]["prompter"] == "RetrievalPrompter" and manifest["system"]["rag"]["search"]["k"] == 3
    assert manifest["task"]["answer_in_context"]["n"] == 2


def test_eval_refuses_passages_for_a_finished_prompt_set(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    (tmp_path / "set").mkdir()
    result = runner.invoke(app, ["eval", str(data), "--icl", str(tmp_path / "set"), "--rag", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "a prompt set holds finished prompts" in " ".join(result.output.split())


def test_labelled_retrieval_questions_become_scorable_examples(shared_data: Path) -> None:
    from lmtailor.evaluate.qa import qa_examples
    from lmtailor.prompting.retrieval.queries import read_queries

    covid = list(read_queries(shared_data / "rag" / "covid_qa" / "200423_covidQA.json"))
    examples, task = qa_examples(covid[:5])
    assert task.metric == "squad" and len(examples) == 5
    assert examples[0].contents("assistant")[-1] == covid[0].gold.answers[0].strip()
    assert examples[0].meta("question") == covid[0].text and covid[0].text in examples[0].contents("user")[0]

    pubmed = list(read_queries(shared_data / "rag" / "pubmedqa" / "ori_pqal.json"))
    examples, task = qa_examples(pubmed[:5])
    assert task.metric == "choice" and task.labels == ["yes", "no", "maybe"]
    assert [ex.contents("assistant")[-1] for ex in examples] == [q.record["final_decision"] for q in pubmed[:5]]


def test_the_cli_spells_the_search_modes_the_library_has() -> None:
    from lmtailor.cli.rag import MODES
    from lmtailor.prompting.retrieval.search import MODES as LIBRARY

    assert MODES == LIBRARY
