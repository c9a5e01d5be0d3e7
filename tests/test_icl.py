"""In-context learning on real data: Spider questions over their schemas and PubMedQA's yes/no/maybe abstracts.

The tests assert mechanics and accounting (which shots, in which order, how many tokens, what is refused),
never what a model writes. Those marked `model` embed texts (all-MiniLM-L6-v2) or load llama.cpp.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.config import ConfigError
from lmtailor.core.inputs import InputSpec
from lmtailor.core.io import DataError, write_jsonl
from lmtailor.core.records import Example, RecordError
from lmtailor.prompting.few_shot import CompletionTemplate, FewShot
from lmtailor.prompting.icl import (
    IclConfig,
    PromptSet,
    build_prompt_set,
    gguf_tokens,
    icl_prompter,
    write_prompt_set,
)
from lmtailor.prompting.shots import BalancedShots, DiverseShots, MmrShots, NearestShots
from lmtailor.sql.databases import spider_schema

INSTRUCTION = "Write one SQLite query that answers the question.\n\nDatabase schema:\n{schema}\n\nQuestion: {question}"
MARKER = "Question: "
SQL = CompletionTemplate(answer="\nSQL: {answer}")
DATABASES = ("concert_singer", "pets_1")


def words(prompt: str | list[dict[str, str]]) -> int:
    """A tokenizer for the budget's accounting: whitespace words (the model's own is tested with the CLI)."""
    text = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
    return len(text.split())


@cache
def _spider(root: Path) -> tuple[Example, ...]:
    """Spider dev questions of two databases, each after its schema, as `spider:INDEX` examples."""
    path = root / "text2sql" / "spider" / "dev.json"
    out = []
    for i, row in enumerate(json.loads(path.read_text())):
        if row["db_id"] in DATABASES:
            question = INSTRUCTION.format(schema=spider_schema(row["db_id"], root), question=row["question"])
            turns = [{"role": "user", "content": question}, {"role": "assistant", "content": row["query"]}]
            out.append(Example(f"spider:{i}", turns, metadata={"source": str(path), "index": i,
                                                                 "extra": {"db_id": row["db_id"]}}))  # fmt: skip
    return tuple(out)


@pytest.fixture
def spider(shared_data: Path) -> tuple[list[Example], list[Example]]:
    """(pool, queries): every other question of each database."""
    examples = _spider(shared_data)
    return list(examples[::2]), list(examples[1::2])


@cache
def _pubmedqa(root: Path, n: int = 60) -> tuple[dict[str, str], ...]:
    data = json.loads((root / "rag" / "pubmedqa" / "ori_pqal.json").read_text())
    return tuple({"instruction": f"Question: {r['QUESTION']}", "input": " ".join(r["CONTEXTS"]),
                  "output": r["final_decision"], "id": pmid} for pmid, r in list(data.items())[:n])  # fmt: skip


@pytest.fixture
def pubmedqa(shared_data: Path, tmp_path: Path) -> Path:
    """60 PubMedQA records (question, abstract, yes/no/maybe) as an alpaca file, pubmedqa.jsonl."""
    path = tmp_path / "pubmedqa.jsonl"
    write_jsonl(path, _pubmedqa(shared_data))
    return path


def shots_of(prompter: FewShot, query: Example) -> list[str]:
    return prompter.ask(query).notes["shot_ids"]


# ---------------------------------------------------------------- the strategies


def test_random_shots_come_from_each_querys_own_stream(spider: tuple[list[Example], list[Example]]) -> None:
    pool, queries = spider
    prompter = FewShot(pool, 3, seed=1, same="db_id")
    first = [shots_of(prompter, q) for q in queries]
    assert [shots_of(prompter, q) for q in reversed(queries)] == first[::-1]  # whatever is asked before
    assert [shots_of(FewShot(pool, 3, seed=1, same="db_id"), q) for q in queries] == first
    assert [shots_of(FewShot(pool, 3, seed=2, same="db_id"), q) for q in queries] != first
    db = {ex.id: ex.meta("db_id") for ex in pool}
    for query, ids in zip(queries, first, strict=True):
        assert len(set(ids)) == 3 and {db[i] for i in ids} == {query.meta("db_id")}


def test_a_query_is_never_its_own_shot_by_id_or_by_question(spider: tuple[list[Example], list[Example]]) -> None:
    pool, queries = spider
    query = queries[0]
    twin = Example("elsewhere:0", query.messages, metadata=query.metadata)  # the same question under another id
    group = [ex for ex in [*pool, *queries] if ex.meta("db_id") == query.meta("db_id")]
    prompter = FewShot([*group, twin], len(group) + 1, same="db_id")
    shown = shots_of(prompter, query)
    assert query.id not in shown and twin.id not in shown and len(shown) == len(group) - 1  # all the others


def test_balanced_shots_cover_every_label(pubmedqa: Path) -> None:
    pool = list(InputSpec(path=pubmedqa).read())
    for k in (3, 6):
        prompter = FewShot(pool, k, selector=BalancedShots(None))
        answer = {ex.id: ex.contents("assistant")[-1] for ex in pool}
        for query in pool[:10]:
            labels = sorted(answer[i] for i in shots_of(prompter, query))
            assert labels == sorted(["maybe", "no", "yes"] * (k // 3))


def test_fixed_shots_keep_the_order_named_less_the_query_itself(pubmedqa: Path) -> None:
    queries = list(InputSpec(path=pubmedqa).read())
    own = queries[7]  # named by the record's own id (a PubMed id), the others by their pool ids
    cfg = IclConfig(pool=InputSpec(path=pubmedqa), strategy="fixed", ids=["pubmedqa:5", "pubmedqa:2", own.meta("id")])
    prompter = icl_prompter(cfg, words)
    assert shots_of(prompter, queries[9]) == ["pubmedqa:5", "pubmedqa:2", own.id]
    assert shots_of(prompter, queries[2]) == ["pubmedqa:5", own.id]


# ---------------------------------------------------------------- the forms and the shared context


def test_the_completion_form_states_the_schema_once_and_ends_where_the_answer_begins(
    spider: tuple[list[Example], list[Example]],
) -> None:
    pool, queries = spider
    prompter = FewShot(pool, 3, same="db_id", later_turns_from=MARKER, form="completion", template=SQL)
    query = queries[0]
    asked = prompter.ask(query)
    prompt = asked.prompt
    assert isinstance(prompt, str) and prompt.count("Database schema:") == 1
    blocks = prompt.split("\n\n")
    by_id = {ex.id: ex for ex in pool}
    for shot_id in asked.notes["shot_ids"]:
        shot = by_id[shot_id]
        question = shot.messages[0]["content"]
        assert f"{question[question.rfind(MARKER) :]}\nSQL: {shot.messages[1]['content']}" in blocks
    asked_question = query.messages[0]["content"]
    assert prompt.endswith(f"{asked_question[asked_question.rfind(MARKER) :]}\nSQL:")
    assert prompter.stop == ("\n\n",) and prompter.delimiter == " "  # the answer starts with the space left off


def test_shots_of_other_context_keep_theirs(spider: tuple[list[Example], list[Example]]) -> None:
    """Without `same`, a shot over another schema is given with that schema: only a repeated context goes."""
    pool, queries = spider
    prompter = FewShot(pool, 6, seed=3, later_turns_from=MARKER, form="completion", template=SQL)
    db = {ex.id: ex.meta("db_id") for ex in pool}
    for query in queries[:5]:
        asked = prompter.ask(query)
        schemas = {db[i] for i in asked.notes["shot_ids"]} | {query.meta("db_id")}
        assert asked.prompt.count("Database schema:") == len(schemas)


def test_the_chat_form_gives_the_shots_as_earlier_turns(spider: tuple[list[Example], list[Example]]) -> None:
    pool, queries = spider
    system = {"role": "system", "content": "You write SQL."}
    query = Example("q", [system, *queries[0].messages], metadata=queries[0].metadata)
    prompter = FewShot(pool, 2, same="db_id", later_turns_from=MARKER)
    turns = prompter.prompt(query)
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert turns[1]["content"].count("Database schema:") == 1
    assert all(t["content"].startswith(MARKER) for t in turns[3::2])
    assert prompter.stop == () and prompter.delimiter == ""


# ---------------------------------------------------------------- the token budget


def test_the_budget_keeps_whole_shots_the_preferred_first(spider: tuple[list[Example], list[Example]]) -> None:
    pool, queries = spider
    free = FewShot(pool, 4, same="db_id", later_turns_from=MARKER, form="completion", template=SQL, count_tokens=words)
    by_id = {ex.id: ex for ex in pool}
    for query in queries[:8]:
        everything = free.ask(query)
        budget = everything.notes["prompt_tokens"] - 1
        tight = FewShot(pool, 4, same="db_id", later_turns_from=MARKER, form="completion", template=SQL,
                        budget=budget, count_tokens=words).ask(query)  # fmt: skip
        kept = tight.notes["shot_ids"]
        assert tight.notes["prompt_tokens"] == words(tight.prompt) <= budget and not tight.notes["overflow"]
        assert len(kept) < 4 and tight.notes["shots_dropped"] == 4 - len(kept)
        assert kept == [i for i in everything.notes["shot_ids"] if i in kept]  # the order kept
        for shot_id in kept:  # each shot whole
            assert f"\nSQL: {by_id[shot_id].messages[1]['content']}" in tight.prompt


def test_a_query_too_long_for_the_budget_is_asked_without_shots_and_reported(
    spider: tuple[list[Example], list[Example]],
) -> None:
    pool, queries = spider
    zero = FewShot(pool, 0, form="completion", template=SQL, count_tokens=words).ask(queries[0])
    over = FewShot(pool, 3, form="completion", template=SQL, budget=zero.notes["prompt_tokens"] - 1,
                   count_tokens=words).ask(queries[0])  # fmt: skip
    assert over.prompt == zero.prompt and over.notes["shot_ids"] == [] and over.notes["overflow"]
    assert over.notes["shots_dropped"] == 3


def test_a_budget_that_holds_no_shot_for_any_query_is_refused(spider: tuple[list[Example], list[Example]]) -> None:
    pool, queries = spider
    prompter = FewShot(pool, 2, same="db_id", form="completion", budget=20, count_tokens=words)
    with pytest.raises(ConfigError, match=r"budget_tokens 20 holds no shot for any of the \d+ queries; the shortest"):
        build_prompt_set(prompter, queries, "queries.jsonl")


# ---------------------------------------------------------------- the prompt set


def test_the_prompt_set_serves_the_prompts_it_was_built_with(pubmedqa: Path, tmp_path: Path) -> None:
    cfg = IclConfig(pool=InputSpec(path=pubmedqa), strategy="balanced", k=3, budget_tokens=900, seed=4)
    manifest = write_prompt_set(cfg, InputSpec(path=pubmedqa), tmp_path / "run", words)
    rows = [json.loads(line) for line in (tmp_path / "run" / "prompts.jsonl").open()]
    assert len(rows) == manifest["counts"]["prompts"] == 60
    assert set(rows[0]) == {"id", "prompt", "reference", "shot_ids", "prompt_tokens", "budget_tokens",
                            "shots_dropped", "overflow"}  # fmt: skip
    assert all(r["prompt_tokens"] == words(r["prompt"]) and r["id"] not in r["shot_ids"] for r in rows)
    assert manifest["counts"]["overflow"] == sum(r["overflow"] for r in rows)
    assert manifest["prompt_tokens"]["p95"] <= max(r["prompt_tokens"] for r in rows) == manifest["prompt_tokens"]["max"]
    assert manifest["form"] == "completion" and manifest["stop"] == ["\n\n"] and manifest["delimiter"] == " "
    served = PromptSet.load(tmp_path / "run")
    queries = list(InputSpec(path=pubmedqa).read())
    prompter = icl_prompter(cfg, words)
    assert [served.ask(q) for q in queries] == [prompter.ask(q) for q in queries]
    assert served.stop == ("\n\n",) and served.references[queries[0].id] == queries[0].contents("assistant")[-1]
    with pytest.raises(RecordError, match=r"other:1: has no prompt in .*prompts.jsonl"):
        served.prompt(Example("other:1", queries[0].messages))


# ---------------------------------------------------------------- bad input


def test_a_pool_without_answers_names_the_file_and_record(tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    write_jsonl(questions, [{"instruction": "Is water wet?"}])
    problem = r"questions.jsonl: record 0 \(line 1\): matches none .*\(a shot needs its question and its answer\)"
    with pytest.raises(DataError, match=problem):
        icl_prompter(IclConfig(pool=InputSpec(path=questions)), words)
    blank = tmp_path / "blank.jsonl"
    write_jsonl(blank, [{"instruction": "Is water wet?", "output": "yes"}, {"instruction": "And ice?", "output": " "}])
    with pytest.raises(DataError, match=r"blank.jsonl: record 1: has an empty answer: a shot must show one"):
        icl_prompter(IclConfig(pool=InputSpec(path=blank)), words)


def test_a_fixed_id_not_in_the_pool_is_named(pubmedqa: Path) -> None:
    with pytest.raises(DataError, match=r"pubmedqa.jsonl: holds no example with id 'pubmedqa:60' \(its ids are such"):
        icl_prompter(IclConfig(pool=InputSpec(path=pubmedqa), strategy="fixed", ids=["pubmedqa:60"]), words)


def test_a_query_without_shots_to_draw_names_the_query_file_and_record(
    spider: tuple[list[Example], list[Example]],
) -> None:
    pool, queries = spider
    lonely = Example("spider:9999", queries[0].messages, metadata={"index": 9999, "extra": {"db_id": "farm"}})
    prompter = FewShot(pool, 2, same="db_id", form="completion", count_tokens=words)
    with pytest.raises(DataError, match=r"test.jsonl: record 9999: spider:9999: 2 shots asked for, 0 to draw from "
                                        r"with db_id 'farm'"):  # fmt: skip
        build_prompt_set(prompter, [*queries[:2], lonely], "test.jsonl")


def test_settings_of_another_strategy_are_refused_naming_the_file(pubmedqa: Path, tmp_path: Path) -> None:
    for text, problem in (("strategy: fixed", "strategy fixed shows the shots `ids` names"),
                          ("strategy: knn\nids: [a]", "ids is a setting of strategy fixed, not knn"),
                          ("strategy: random\nmmr_lambda: 0.3", "mmr_lambda is a setting of strategy mmr"),
                          ("strategy: fixed\nids: [a]\nk: 2", "k: strategy fixed shows the shots its ids name"),
                          ("strategy: nearest", "strategy: Input should be 'random', 'knn'")):  # fmt: skip
        path = tmp_path / "icl.yaml"
        path.write_text(f"pool: {{path: {pubmedqa}}}\n{text}\n")
        with pytest.raises(ConfigError, match=f"icl.yaml is not a valid icl config:\n.*{problem}"):
            IclConfig.load(path)


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([{"question": "Is water wet?", "label": "yes"}], r"queries.jsonl: record 0 \(line 1\): matches none of the"),
        ([], r"queries.jsonl: the file is empty"),
    ],
)
def test_a_query_file_in_no_known_shape_is_named_by_the_cli(
    pubmedqa: Path, tmp_path: Path, records: list[dict[str, str]], problem: str
) -> None:
    queries = tmp_path / "queries.jsonl"
    write_jsonl(queries, records)
    result = CliRunner().invoke(app, ["icl", str(pubmedqa), str(queries), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and re.search(problem, result.output)


def test_an_empty_pool_is_named_by_the_cli(pubmedqa: Path, tmp_path: Path) -> None:
    empty = tmp_path / "pool.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(app, ["icl", str(empty), str(pubmedqa), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and f"error: {empty}: the file is empty: it holds no records" in result.output


# ---------------------------------------------------------------- strategies that compare texts (embeddings)


def _cosine(texts: list[str]) -> np.ndarray:
    from lmtailor.text.embeddings import embed

    vectors = embed(texts)
    return vectors @ vectors.T


@pytest.mark.model
def test_knn_picks_the_nearest_question_and_puts_the_nearest_last(
    spider: tuple[list[Example], list[Example]],
) -> None:
    pool, queries = spider
    prompter = FewShot(pool, 3, same="db_id", later_turns_from=MARKER, selector=NearestShots(), order="similar_last")
    prompter.prepare(queries)
    questions = {ex.id: ex.messages[0]["content"] for ex in [*pool, *queries]}
    for query in queries[:6]:
        candidates = [ex.id for ex in pool if ex.meta("db_id") == query.meta("db_id")]
        texts = [questions[i][questions[i].rfind(MARKER) :] for i in [query.id, *candidates]]
        similarity = _cosine(texts)[0, 1:]
        nearest = [candidates[j] for j in np.argsort(-similarity, kind="stable")[:3]]
        assert shots_of(prompter, query) == nearest[::-1]  # the nearest last


@pytest.mark.model
def test_mmr_with_lambda_one_is_knn_and_lower_lambda_spreads_the_shots(
    spider: tuple[list[Example], list[Example]],
) -> None:
    pool, queries = spider
    knn = FewShot(pool, 4, same="db_id", later_turns_from=MARKER, selector=NearestShots())
    knn.prepare(queries)  # every question embedded in one call
    mmr = FewShot(pool, 4, same="db_id", later_turns_from=MARKER, selector=MmrShots(1.0))
    assert [shots_of(mmr, q) for q in queries] == [shots_of(knn, q) for q in queries]
    spread = FewShot(pool, 4, same="db_id", later_turns_from=MARKER, selector=MmrShots(0.3))
    index = {ex.id: i for i, ex in enumerate(pool)}
    similarity = _cosine([ex.messages[0]["content"][ex.messages[0]["content"].rfind(MARKER) :] for ex in pool])

    def closeness(ids: list[str]) -> float:  # mean similarity between the shots of one prompt
        rows = [index[i] for i in ids]
        block = similarity[np.ix_(rows, rows)]
        return float((block.sum() - np.trace(block)) / (len(rows) * (len(rows) - 1)))

    assert np.mean([closeness(shots_of(spread, q)) for q in queries]) < np.mean(
        [closeness(shots_of(knn, q)) for q in queries]
    )


@pytest.mark.model
def test_diverse_shots_are_chosen_once_for_all_queries(spider: tuple[list[Example], list[Example]]) -> None:
    pool, queries = spider
    prompter = FewShot(pool, 3, later_turns_from=MARKER, selector=DiverseShots())
    prompter.prepare(queries)
    chosen = {tuple(shots_of(prompter, q)) for q in queries}
    assert len(chosen) == 1 and len(next(iter(chosen))) == 3
    (shown,) = chosen
    member = next(ex for ex in pool if ex.id == shown[0])  # a query that is one of them gets the next instead
    assert member.id not in shots_of(prompter, member) and set(shown[1:]) <= set(shots_of(prompter, member))
    per_db = FewShot(pool, 2, same="db_id", later_turns_from=MARKER, selector=DiverseShots())
    by_db = {(q.meta("db_id"), tuple(shots_of(per_db, q))) for q in queries}
    assert len(by_db) == len(DATABASES)


@pytest.mark.model
def test_the_cli_writes_the_prompt_set_counted_with_the_models_tokenizer(
    spider: tuple[list[Example], list[Example]], tmp_path: Path
) -> None:
    from lmtailor.core.records import from_example
    from lmtailor.llm.llamacpp import LlamaCppBackend

    pool, queries = spider
    for name, part in (("train", pool), ("test", queries)):
        write_jsonl(
            tmp_path / f"{name}.jsonl", [{**from_example(ex, "alpaca"), "db_id": ex.meta("db_id")} for ex in part]
        )
    (tmp_path / "icl.yaml").write_text(
        "pool: {path: train.jsonl}\nsame: db_id\ncontext_marker: 'Question: '\n"
        'completion: {answer: "\\nSQL: {answer}"}\n'
    )
    out = tmp_path / "run"
    args = ["icl", str(tmp_path / "train.jsonl"), str(tmp_path / "test.jsonl"), "--out", str(out),
            "--config", str(tmp_path / "icl.yaml"), "--strategy", "mmr", "--k", "3", "--budget", "420"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(queries)} completion prompts, mmr shots" in result.output and "of a 420-token budget" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [json.loads(line) for line in (out / "prompts.jsonl").open()]
    assert manifest["config"]["strategy"] == "mmr" and manifest["config"]["same"] == "db_id"
    assert manifest["counts"]["prompts"] == len(rows) == len(queries)
    assert manifest["counts"]["overflow"] == sum(r["overflow"] for r in rows)
    backend = LlamaCppBackend(n_ctx=512)
    try:
        assert all(r["prompt_tokens"] == backend.count_tokens(r["prompt"]) for r in rows[:10])
    finally:
        backend.close()
    assert all(r["prompt_tokens"] <= 420 or (r["overflow"] and not r["shot_ids"]) for r in rows)
    assert gguf_tokens()(rows[0]["prompt"]) == rows[0]["prompt_tokens"]
    assert [r["reference"] for r in rows] == [q.contents("assistant")[-1] for q in queries]
