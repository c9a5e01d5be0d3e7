"""Learning and forgetting: the task metrics (exact match, SQL by canonical form and by execution on Defog's
real databases built into SQLite), the forgetting probes (general-text cross-entropy, MMLU) asked through the
transformers backend, and the before/after report, on the embedded Gemma 3 270M and the real datasets."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from pydantic import ValidationError
from rich.console import Console
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmtailor.core.io import ReadOptions, read_examples
from lmtailor.core.records import Example
from lmtailor.evaluate.forgetting import (
    general_texts,
    mmlu_accuracy,
    mmlu_prompt,
    mmlu_rows,
    text_cross_entropy,
)
from lmtailor.evaluate.report import EvalConfig, ForgettingConfig, compare, measure, render_table
from lmtailor.evaluate.task import TaskConfig, score_answers, score_task
from lmtailor.llm.client import LLM
from lmtailor.llm.convert import embedded_hf_dir
from lmtailor.llm.transformers_backend import TransformersBackend
from lmtailor.llm.types import GenParams
from lmtailor.prompting.template import Template, turns
from lmtailor.sql.canonical import canonical_sql
from lmtailor.sql.databases import (
    DatabaseBuildError,
    cache_dir,
    defog_database,
    spider_schema,
    sqlite_from_postgres,
)
from lmtailor.sql.match import (
    QueryError,
    canonical_match,
    execute,
    extract_sql,
    gold_variants,
    is_ordered,
    same_result,
)

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

DEFOG_DBS = ("academic", "advising", "atis", "broker", "car_dealership", "derm_treatment", "ewallet", "geography",
             "restaurants", "scholar", "yelp")  # fmt: skip


@pytest.fixture(scope="module")
def lm() -> tuple[Any, Any]:
    d = embedded_hf_dir()
    return AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32), AutoTokenizer.from_pretrained(d)


def asked(model: Any, tok: Any, score_batch_size: int = 8) -> LLM:
    """The client evaluation asks through: the transformers backend around the model in memory."""
    return LLM(TransformersBackend.wrap(model, tok, "embedded", score_batch_size=score_batch_size))


@pytest.fixture(scope="module")
def dolly(shared_data: Path) -> list[Example]:
    """The first Dolly records as Examples (instruction -> response), read the way a user's file is read."""
    path = shared_data / "dolly" / "dolly_first6400.jsonl"
    return list(itertools.islice(read_examples(path, ReadOptions(columns={"response": "output"})), 6))


@pytest.fixture(scope="module")
def defog(shared_data: Path) -> Path:
    return shared_data / "text2sql" / "defog"


def defog_examples(defog: Path, name: str) -> list[Example]:
    """A Defog question file as Examples: the question is the prompt, the gold query the answer."""
    return list(read_examples(defog / name, ReadOptions(columns={"question": "prompt", "query": "completion"})))


def publications_per_year(defog: Path) -> Example:
    question = "What is the total number of publications published in each year?"
    return next(ex for ex in defog_examples(defog, "questions_gen_postgres.csv") if ex.contents("user") == [question])


# ---------------------------------------------------------------- the task


def test_the_task_is_asked_greedily_in_the_training_text_shape(lm: tuple[Any, Any], dolly: list[Example]) -> None:
    model, tok = lm
    llm, template = asked(model, tok), Template(tok)
    free = score_task(llm, template, dolly[:2], TaskConfig(max_new_tokens=6))
    stopped = score_task(llm, template, dolly[:2], TaskConfig(max_new_tokens=6, stop=["", "e"]))
    for f, s in zip(free.predictions, stopped.predictions, strict=True):
        assert s["prediction"] == f["prediction"].split("e")[0]  # cut where the stop first appears; "" is no stop
        assert "<end_of_turn>" not in f["prediction"]
    # The prompt is the training text up to the answer, less the BOS the backend adds: the same tokens.
    for ex in dolly[:2]:
        text = tok.apply_chat_template(turns(ex)[:-1], tokenize=False, add_generation_prompt=True)
        assert tok(template.prompt(ex)).input_ids == tok(text, add_special_tokens=False).input_ids
    tails = {template.prompt(ex)[-200:] for ex in dolly[:2]}
    assert {e["prompt_tail"] for e in free.summary["examples"]} <= tails


# ---------------------------------------------------------------- forgetting probes


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    return general_texts(3, seed=3, data_root=shared_data)


def test_general_texts_are_half_lima_half_dolly_and_deterministic(shared_data: Path) -> None:
    picked = general_texts(6, seed=1, data_root=shared_data)
    assert picked == general_texts(6, seed=1, data_root=shared_data)
    assert picked != general_texts(6, seed=2, data_root=shared_data)
    lima = {r["output"] for r in json.loads((shared_data / "lima" / "lima.json").read_text())}
    assert sum(t in lima for t in picked) == 3
    assert all(len(t.split()) >= 20 for t in picked)


def test_cross_entropy_is_lower_on_real_text_than_on_shuffled_words(lm: tuple[Any, Any], texts: list[str]) -> None:
    llm = asked(*lm)
    rng = random.Random(0)
    shuffled = [" ".join(rng.sample(t.split(), len(t.split()))) for t in texts]
    real = text_cross_entropy(llm, texts, max_tokens=40)
    assert 0 < real < text_cross_entropy(llm, shuffled, max_tokens=40) - 1.0


def test_cross_entropy_equals_the_full_logits_computation(lm: tuple[Any, Any], texts: list[str]) -> None:
    model, tok = lm
    texts = [texts[0], texts[1][:80]]  # of different lengths: the batch is padded
    ours = text_cross_entropy(asked(model, tok), texts, max_tokens=40)
    nll, count = 0.0, 0
    with torch.inference_mode():
        for t in texts:
            ids = torch.tensor([([tok.bos_token_id, *tok(t, add_special_tokens=False).input_ids])[:40]])
            logits = model(input_ids=ids).logits[0]
            nll += float(F.cross_entropy(logits[:-1], ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    assert ours == pytest.approx(nll / count, abs=1e-4)


def test_mmlu_rows_are_deterministic_and_well_formed(shared_data: Path) -> None:
    rows = mmlu_rows(10, seed=5, data_root=shared_data)
    assert rows == mmlu_rows(10, seed=5, data_root=shared_data)
    assert all(len(r["choices"]) == 4 and r["answer"] in range(4) for r in rows)
    astronomy = mmlu_rows(3, seed=0, subjects=["astronomy"], data_root=shared_data)
    assert {r["subject"] for r in astronomy} == {"astronomy"}
    assert mmlu_prompt(astronomy[0]).endswith("\nD. " + astronomy[0]["choices"][3] + "\nAnswer:")
    with pytest.raises(ValueError, match="no MMLU subject"):
        mmlu_rows(1, subjects=["astrology"], data_root=shared_data)


def shortest_mmlu(shared_data: Path, n: int) -> list[dict[str, Any]]:
    """The n shortest of 60 sampled questions: a 270M model on 2 CPU cores reads them fast."""
    return sorted(mmlu_rows(60, seed=0, data_root=shared_data), key=lambda r: len(mmlu_prompt(r)))[:n]


def test_mmlu_accuracy_equals_the_per_choice_computation(lm: tuple[Any, Any], shared_data: Path) -> None:
    model, tok = lm
    rows = shortest_mmlu(shared_data, 12)
    letters = [tok(f" {letter}", add_special_tokens=False).input_ids[0] for letter in "ABCD"]
    right = 0
    with torch.inference_mode():
        for row in rows:  # the model's own forward, one unpadded question at a time
            ids = torch.tensor([[tok.bos_token_id, *tok(mmlu_prompt(row), add_special_tokens=False).input_ids]])
            logprobs = torch.log_softmax(model(input_ids=ids, logits_to_keep=1).logits[0, -1], dim=-1)
            scores = [float(logprobs[i]) for i in letters]  # log P(" A" | prompt), … for each choice
            right += scores.index(max(scores)) == row["answer"]
    accuracy = mmlu_accuracy(asked(model, tok, score_batch_size=4), rows)  # batches of questions of different lengths
    assert 0 <= accuracy <= 1
    assert accuracy == right / len(rows)


# ---------------------------------------------------------------- SQL matching


def test_sql_canonical_match_ignores_formatting_not_meaning(defog: Path) -> None:
    years = publications_per_year(defog)
    variants = gold_variants(years.contents("assistant")[-1])
    reformatted = """select publication.year,
       count(distinct publication.pid) as total_publications
  from publication
 group by publication.year
 order by publication.year ;"""
    assert canonical_match(reformatted, variants, "postgres")
    assert canonical_match(extract_sql(f"Here it is:\n```sql\n{reformatted}\n```\nDone."), variants, "postgres")
    assert not canonical_match(reformatted.replace("publication.year ;", "publication.year DESC"), variants, "postgres")
    assert not canonical_match("SELECT FROM WHERE", variants, "postgres")
    assert extract_sql("SELECT ';' FROM t; -- this query selects a semicolon") == "SELECT ';' FROM t"


def test_sql_nested_past_the_parser_is_a_wrong_answer_not_a_crash(tmp_path: Path) -> None:
    """A tuned model once answered with a run of opening brackets: sqlglot recursed out, killing the evaluation."""
    deep = "SELECT " + "(" * 100 + "1" + ")" * 100
    assert not canonical_match(deep, ["SELECT 1"], "sqlite")
    assert not is_ordered(deep + " ORDER BY 1", "sqlite")
    with pytest.raises(QueryError, match="nested too deeply"):
        execute(tmp_path / "never_opened.sqlite", deep, "sqlite")


def test_sql_canonical_form_folds_unquoted_names_not_quoted_ones() -> None:
    """Spider's gold writes one table as CARS_DATA and cars_data, one alias as T2 and t2: SQLite reads them alike."""
    gold = 'SELECT T2.id FROM CARS_DATA AS T1 JOIN ship AS t2 ON T1.x = t2.id WHERE T1.c = "Asia"'
    folded = 'SELECT t2.id FROM cars_data AS t1 JOIN ship AS t2 ON t1.x = t2.id WHERE t1.c = "Asia"'
    assert canonical_sql(gold, "sqlite") == folded
    assert canonical_match(folded.replace("cars_data", "Cars_Data").replace("t2.id", "T2.ID"), [gold], "sqlite")
    assert not canonical_match(gold.replace('"Asia"', '"asia"'), [gold], "sqlite")  # in SQLite it may be a string
    assert canonical_sql('SELECT "Mixed" FROM t', "postgres") == 'SELECT "Mixed" FROM t'


def test_gold_variants_expand_defogs_column_choices() -> None:
    gold = "SELECT {a.x, a.y}, COUNT(*) AS n FROM a GROUP BY {};SELECT a.x, COUNT(*) AS n FROM a GROUP BY a.x"
    assert gold_variants(gold) == [
        "SELECT a.x, COUNT(*) AS n FROM a GROUP BY a.x",
        "SELECT a.y, COUNT(*) AS n FROM a GROUP BY a.y",
        "SELECT a.x, a.y, COUNT(*) AS n FROM a GROUP BY a.x, a.y",
        "SELECT a.x, COUNT(*) AS n FROM a GROUP BY a.x",
    ]
    assert gold_variants("SELECT ';' FROM t;") == ["SELECT ';' FROM t"]


def test_same_result_compares_multisets_unless_ordered() -> None:
    gold = [(1, "a"), (2, "b"), (2, "b")]
    assert same_result(gold, [(2, "b"), (1, "a"), (2, "b")], ordered=False)
    assert not same_result(gold, [(2, "b"), (1, "a"), (2, "b")], ordered=True)
    assert not same_result(gold, [(1, "a"), (2, "b")], ordered=False)  # a multiset, not a set
    assert same_result(gold, [("a", 1), ("b", 2), ("b", 2)], ordered=True)  # columns in another order
    assert same_result([(0.1 + 0.1 + 0.1,)], [(0.3,)], ordered=False)  # floats compared rounded
    assert not same_result([(1, "a")], [(1, "a", 0)], ordered=False)


# ---------------------------------------------------------------- Defog databases


def test_every_defog_database_builds_with_all_its_rows(defog: Path) -> None:
    for name in DEFOG_DBS:
        db = defog_database(name, defog / "databases")
        assert db.failed == [], (name, db.failed[:3])
        assert all(n > 0 for n in db.rows.values()), (name, db.rows)
    academic = defog_database("academic", defog / "databases")
    assert len(academic.rows) == 15 and academic.rows["author"] == 5
    assert sqlite3.connect(academic.path).execute("SELECT name FROM author WHERE aid = 2").fetchone() == (
        "Ashish Vaswani",
    )
    broker = defog_database("broker", defog / "databases")
    con = sqlite3.connect(broker.path)
    # sbDpDate is a DATE column filled with CURRENT_DATE - INTERVAL '…': dates relative to the build day
    today = con.execute("SELECT COUNT(*) FROM sbDailyPrice WHERE sbDpDate = DATE('now')").fetchone()[0]
    assert today > 0
    assert con.execute("SELECT COUNT(*) FROM sbDailyPrice WHERE LENGTH(sbDpDate) != 10").fetchone()[0] == 0


def test_a_cached_defog_database_is_not_rebuilt(defog: Path) -> None:
    first = defog_database("restaurants", defog / "databases")
    stamp = first.path.stat().st_mtime_ns
    again = defog_database("restaurants", defog / "databases")
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp and again.rows == first.rows


def test_a_row_that_does_not_convert_is_reported_and_the_rest_kept(defog: Path, tmp_path: Path) -> None:
    source = (defog / "databases" / "restaurants" / "restaurants.sql").read_text()
    dump = tmp_path / "restaurants_extra.sql"
    dump.write_text(source + "\nINSERT INTO public.restaurant (id, name) VALUES (900, 'ok'), (901, AGE(NOW()));\n")
    db = sqlite_from_postgres(dump)
    original = defog_database("restaurants", defog / "databases")
    assert db.rows["restaurant"] == original.rows["restaurant"] + 1
    assert len(db.failed) == 1 and "901" in db.failed[0]["statement"] and "AGE" in db.failed[0]["error"].upper()


def test_a_table_that_cannot_be_created_fails_the_build(defog: Path, tmp_path: Path) -> None:
    source = (defog / "databases" / "restaurants" / "restaurants.sql").read_text()
    dump = tmp_path / "restaurants_twice.sql"
    dump.write_text(source + "\nCREATE TABLE public.restaurant (id bigint);\n")
    with pytest.raises(DatabaseBuildError, match="'restaurant' cannot be created"):
        sqlite_from_postgres(dump)
    assert not list(cache_dir().glob("restaurants_twice*"))  # nothing half-built is left behind


def test_execute_is_read_only_and_bounded(defog: Path) -> None:
    path = defog_database("academic", defog / "databases").path
    with pytest.raises(QueryError, match="SQLite"):
        execute(path, "DROP TABLE author", "postgres")
    with pytest.raises(QueryError, match="timed out"):
        endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
        execute(path, endless, "sqlite", timeout_s=0.2)
    assert execute(path, "SELECT COUNT(*) FROM public.author", "postgres") == [(5,)]


def test_sql_execution_accuracy_on_a_real_defog_database(defog: Path) -> None:
    examples = defog_examples(defog, "questions_gen_postgres.csv")
    years = publications_per_year(defog)
    assert is_ordered(years.contents("assistant")[-1], "postgres")
    gold_fails = next(ex for ex in examples if "to_date(" in ex.contents("assistant")[-1])  # no TO_DATE in SQLite
    cases = [
        (years, "SELECT year, COUNT(*) AS n FROM publication GROUP BY year ORDER BY year", True),  # same rows
        (years, "SELECT COUNT(*), year FROM publication GROUP BY year ORDER BY year", True),  # columns swapped
        (years, "SELECT year, COUNT(*) FROM publication GROUP BY year ORDER BY year DESC", False),  # order matters
        (years, "SELECT year, COUNT(*) FROM publication WHERE year > 2020 GROUP BY year ORDER BY year", False),
        (years, "SELECT year, COUNT(*) FROM publications GROUP BY year", False),  # no such table
        (gold_fails, "SELECT 1", None),  # the gold query fails: left out, reported
    ]
    cfg = TaskConfig(metric="sql", sql_dialect="postgres", databases=defog / "databases")
    result = score_answers([ex for ex, _, _ in cases], [answer for _, answer, _ in cases], cfg)
    assert [p["correct"] for p in result.predictions] == [expected for _, _, expected in cases]
    assert [p["exact"] for p in result.predictions[:2]] == [False, False]  # right by execution, not by form
    assert "no such table" in result.predictions[4]["error"]
    summary = result.summary
    assert summary["n"] == 5 and summary["score"] == pytest.approx(2 / 5)
    assert summary["execution"] == {"n": 5, "score": pytest.approx(2 / 5)}
    assert summary["gold_errors"]["n"] == 1 and summary["gold_errors"]["examples"][0]["id"] == gold_fails.id
    assert summary["databases"]["academic"]["failed_statements"] == 0
    assert summary["per_category"] == {"group_by": {"n": 5, "score": pytest.approx(2 / 5)}}
    assert len(summary["examples"]) == 5 and summary["examples"][0]["correct"] is False


def test_sql_without_a_database_is_scored_by_canonical_form(defog: Path) -> None:
    ex = publications_per_year(defog)
    gold = ex.contents("assistant")[-1]
    result = score_answers([ex, ex], [gold.lower(), "SELECT 1"], TaskConfig(metric="sql", sql_dialect="postgres"))
    assert [p["correct"] for p in result.predictions] == [True, False]
    assert result.summary["without_database"] == 2 and result.summary["execution"]["n"] == 0


def test_spider_schema_lists_tables_and_foreign_keys(shared_data: Path) -> None:
    schema = spider_schema("concert_singer", shared_data).splitlines()
    assert "singer(Singer_ID, Name, Country, Song_Name, Song_release_year, Age, Is_male)" in schema
    assert "-- concert.Stadium_ID = stadium.Stadium_ID" in schema
    with pytest.raises(KeyError):
        spider_schema("no_such_db", shared_data)


# ---------------------------------------------------------------- task and report


def test_exact_match_collapses_whitespace_and_reports_case(dolly: list[Example]) -> None:
    ex = dolly[0]
    reference = ex.contents("assistant")[-1]
    answers = ["  " + reference.replace(" ", "\n "), reference.upper(), "no"]
    result = score_answers([ex] * 3, answers)
    assert [p["correct"] for p in result.predictions] == [True, False, False]
    assert result.summary["score_ignoring_case"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def measured(lm: tuple[Any, Any], dolly: list[Example], shared_data: Path) -> dict[str, Any]:
    model, tok = lm
    cfg = EvalConfig(
        task=TaskConfig(max_new_tokens=6, stop=["\n\n"]),
        forgetting=ForgettingConfig(general_texts=2, max_tokens=32, mmlu=3, data_root=shared_data),
    )
    return measure(asked(model, tok), Template(tok), dolly[:2], cfg)


def test_measure_gives_learning_and_forgetting(dolly: list[Example], measured: dict[str, Any]) -> None:
    assert measured["task"]["metric"] == "exact_match" and measured["task"]["n"] == 2
    assert [p["id"] for p in measured["task"]["predictions"]] == [ex.id for ex in dolly[:2]]
    assert measured["general_ce"] > 0 and 0 <= measured["mmlu_accuracy"] <= 1
    assert set(measured["seconds"]) == {"task", "general_ce", "mmlu"}


def test_compare_and_table(measured: dict[str, Any]) -> None:
    same = compare(measured, measured)
    assert same["task"]["change"] == 0 and same["general_ce"]["change"] == 0
    after = {**measured, "general_ce": measured["general_ce"] + 0.5, "mmlu_accuracy": None}
    changes = compare(measured, after)
    assert changes["general_ce"]["change"] == pytest.approx(0.5)  # positive: forgot
    assert changes["mmlu_accuracy"] == {"before": measured["mmlu_accuracy"], "after": None, "change": None}
    console = Console(record=True, width=160)
    console.print(render_table(measured, after))
    text = console.export_text()
    assert "general text CE" in text and "+0.500" in text and "MMLU" in text
    assert "held-out answer CE" not in text  # no validation loss measured: no row for it
    trained = compare({**measured, "eval_loss": 2.0}, {**after, "eval_loss": 1.25})
    assert trained["eval_loss"] == {"before": 2.0, "after": 1.25, "change": -0.75}  # negative: learned
    console.print(render_table({**measured, "eval_loss": 2.0}, {**after, "eval_loss": 1.25}))
    text = console.export_text()
    assert "held-out answer CE" in text and "-0.750" in text


def test_eval_config_defaults_and_refuses_unknown_fields() -> None:
    cfg = EvalConfig()
    assert cfg.forgetting.general_texts == 64 and cfg.forgetting.mmlu == 100 and cfg.task.metric == "exact_match"
    assert cfg.forgetting.data_root is None  # the library reads no folder it was not given
    with pytest.raises(ValidationError):
        EvalConfig.model_validate({"task": {"metric": "bleu"}})
    with pytest.raises(ValidationError):
        EvalConfig.model_validate({"forgetting": {"mmlu_n": 5}})


def test_probes_need_their_data_folder(lm: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match=r"evaluate\.forgetting\.data_root"):
        measure(asked(*lm), Template(lm[1]), [], EvalConfig(forgetting=ForgettingConfig(general_texts=1, mmlu=0)))


def test_probes_run_on_a_lora_wrapped_model(lm: tuple[Any, Any], texts: list[str], shared_data: Path) -> None:
    """The trainer measures a PEFT model: a fresh adapter (B = 0) must give the base model's numbers."""
    model, tok = lm
    rows = shortest_mmlu(shared_data, 2)
    prompt = "The capital of France is"

    def probes(m: Any) -> list[Any]:
        llm = asked(m, tok)
        ce = text_cross_entropy(llm, texts[:1], max_tokens=24)
        return [ce, mmlu_accuracy(llm, rows), llm.generate([prompt], GenParams(max_tokens=3))[0].text]

    base = probes(model)
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    try:
        wrapped.train()
        ours = probes(wrapped)
        assert wrapped.training
    finally:
        wrapped.unload()  # the module's model, without the adapter again
    assert ours[0] == pytest.approx(base[0], abs=1e-5) and ours[1:] == base[1:]
