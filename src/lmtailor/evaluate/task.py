"""The target task scored on held-out examples: what the model learned, and what each answer cost.

Each example is put to the model by a Prompter (the training Template, so a tuned model is scored on the very
text shape it was trained on; few-shot shots; retrieved passages), answered greedily through any backend, so a
score does not change from one run to the next, and compared with its reference answer, the example's last
assistant turn:

- `exact_match`: equal once whitespace runs are collapsed (also reported ignoring case);
- `sql`: equal once both are canonical SQL (as the normalize step writes it), or, where the example names a
  database that can be found, returning the same rows (as multisets; in order only when the gold query has an
  ORDER BY). A predicted query that fails or runs too long is wrong; an example whose gold query fails is left
  out and reported. Databases are looked up only inside `databases`: a name that would lead out of it (a path,
  or a symlink to a file elsewhere) is refused, and its example scored by form alone and reported.
- `squad`: extractive QA, SQuAD's normalisation, exact match and token F1 (the score) against the reference
  and any further gold answers in the example's `answers` field;
- `choice`: classification and multiple choice, scored by the log-likelihood of each label after the prompt
  (nothing generated: the right way to ask a base model, which rambles), the likeliest label the answer.

Every score comes with a 95% bootstrap interval, and every run with its cost per query: prompt tokens,
completion tokens and seconds (p50/p95). Where a prompter injected context (retrieval), the share of examples
whose gold answer was in it is reported too (answer-in-context).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmtailor.core.records import Example, RecordError
from lmtailor.evaluate.metrics import bootstrap_ci, contains_answer, spread, squad_scores
from lmtailor.llm.client import LLM
from lmtailor.llm.types import GenParams, Prompt
from lmtailor.prompting.prompter import Asked, Prompter
from lmtailor.sql.databases import SqliteDatabase, sqlite_from_postgres
from lmtailor.sql.match import (
    QueryError,
    canonical_match,
    execute,
    extract_sql,
    gold_variants,
    is_ordered,
    same_result,
)

TaskMetric = Literal["exact_match", "sql", "squad", "choice"]
# Metadata fields read as an example's category and database, first found wins (Dolly and Defog name them so).
CATEGORY_FIELDS = ("category", "query_category")
DB_FIELDS = ("db_name", "db_id")
_SHOWN = 5  # examples kept in the summary for the report
_PROMPT_TAIL = 200


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: TaskMetric = "exact_match"
    max_new_tokens: int = Field(256, ge=1)
    stop: list[str] = []  # cut an answer at the first of these (end-of-turn ids always end it)
    # Prompts generated together where a run wraps its model in memory (train): a wider batch of prompts of
    # similar length keeps CPU cores busier.
    batch_size: int = Field(32, ge=1)
    sql_dialect: str = "sqlite"  # the dialect references and predictions are written in (Defog: postgres)
    # A folder of <db>.sqlite files, or of <db>/<db>.sql PostgreSQL dumps as Defog ships them (built into SQLite
    # once); None: SQL is scored by canonical form only.
    databases: Path | None = None
    db_field: str | None = None  # the metadata field naming an example's database; None: db_name or db_id
    sql_timeout_s: float = Field(5.0, gt=0)
    # choice: the labels every example chooses among (empty: the distinct references of the examples), or a
    # metadata field holding each example's own options (multiple choice); each is scored as label_prefix+label.
    labels: list[str] = []
    choices_field: str | None = None
    label_prefix: str = " "
    answers_field: str = "answers"  # squad: a metadata field with further gold answers


@dataclass
class TaskResult:
    summary: dict[str, Any]  # small: goes into the run's manifest
    predictions: list[dict[str, Any]]  # one row per example, for a JSONL file
    prompts: list[Prompt] = field(default_factory=list)  # what each example was asked, where it was asked


def score_task(llm: LLM, prompter: Prompter, examples: Sequence[Example], cfg: TaskConfig | None = None) -> TaskResult:
    """Answer every example greedily (or choose its likeliest label) and score the answers with `cfg.metric`."""
    cfg = cfg or TaskConfig()
    asked = [prompter.ask(ex) for ex in examples]
    prompts = [a.prompt for a in asked]
    if cfg.metric == "choice":
        answers, costs = _choose(llm, examples, prompts, cfg)
    else:
        params = GenParams(max_tokens=cfg.max_new_tokens, temperature=0.0, stop=tuple(s for s in cfg.stop if s))
        completions = llm.generate(prompts, params, "generate")
        answers = [c.text.strip() if cfg.metric == "squad" else c.text for c in completions]
        costs = [_Cost(c.prompt_tokens, c.completion_tokens, c.seconds, c.cached) for c in completions]
    result = score_answers(examples, answers, cfg, prompts)
    result.prompts = prompts
    for row, cost, a in zip(result.predictions, costs, asked, strict=True):
        row.update({**a.notes, **cost.row()})  # the backend's token count is the one the model was fed
    result.summary["cost"] = _cost_summary(costs)
    in_context = _answer_in_context(examples, asked, cfg)
    if in_context is not None:
        result.summary["answer_in_context"] = in_context
        for row, found in zip(result.predictions, in_context.pop("rows"), strict=True):
            row["answer_in_context"] = found
    return result


def score_answers(
    examples: Sequence[Example],
    answers: Sequence[str],
    cfg: TaskConfig | None = None,
    prompts: Sequence[Prompt] | None = None,
) -> TaskResult:
    """Score answers however they were produced; each example's reference is its last assistant turn.
    `prompts` only feed the examples shown in the summary."""
    cfg = cfg or TaskConfig()
    references = [ex.contents("assistant")[-1] for ex in examples]
    triples = zip(examples, answers, references, strict=True)
    if cfg.metric == "sql":
        scorer = _SqlScorer(cfg)
        rows = [scorer.score(ex, answer, reference) for ex, answer, reference in triples]
        summary = scorer.summary(rows)
    elif cfg.metric == "squad":
        rows = [_squad(ex, answer, reference, cfg) for ex, answer, reference in triples]
        summary = {"metric": "squad", "n": len(rows), "score": _mean([r["f1"] for r in rows]),
                   "exact_match": _mean([r["exact"] for r in rows])}  # fmt: skip
    else:
        rows = [_exact(ex, answer, reference) for ex, answer, reference in triples]
        summary = {
            "metric": cfg.metric,
            "n": len(rows),
            "score": _mean([r["correct"] for r in rows]),
            "score_ignoring_case": _mean([r["correct_ignoring_case"] for r in rows]),
        }
    summary["ci95"] = _interval(rows, cfg.metric)
    categories = [_metadata(ex, CATEGORY_FIELDS) for ex in examples]
    if any(c is not None for c in categories):
        summary["per_category"] = _per_category(rows, categories)
    summary["examples"] = _shown(rows, prompts)
    return TaskResult(summary, rows)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / (len(values) or 1)


def _interval(rows: list[dict[str, Any]], metric: str) -> list[float]:
    """The score's 95% bootstrap interval over the scored examples (F1 for squad, right or wrong otherwise)."""
    values = [r["f1"] for r in rows] if metric == "squad" else [r["correct"] for r in rows if r["correct"] is not None]
    lo, hi = bootstrap_ci(values)
    return [round(lo, 4), round(hi, 4)]


@dataclass
class _Cost:
    prompt_tokens: int
    completion_tokens: int
    seconds: float | None
    cached: bool

    def row(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "seconds": None if self.seconds is None else round(self.seconds, 4), "cached": self.cached}  # fmt: skip


def _cost_summary(costs: Sequence[_Cost]) -> dict[str, Any]:
    """What serving the system cost per query. Seconds are each answer's cost when it was computed (a cached
    answer keeps its first), shared among a batch's queries where the backend answers a batch at once."""
    seconds = [c.seconds for c in costs if c.seconds is not None]
    completion = [c.completion_tokens for c in costs]
    return {
        "prompt_tokens": spread([c.prompt_tokens for c in costs]),
        "completion_tokens": {"total": sum(completion), **(spread(completion) or {})},
        "seconds_per_query": spread(seconds),
        "seconds": round(sum(seconds), 3),
        "cached": sum(c.cached for c in costs),
    }


def _choose(
    llm: LLM, examples: Sequence[Example], prompts: Sequence[Prompt], cfg: TaskConfig
) -> tuple[list[str], list[_Cost]]:
    """Each example's likeliest label: log P(label_prefix + label | prompt), summed over the label's tokens."""
    shared = cfg.labels or sorted({ex.contents("assistant")[-1].strip() for ex in examples})
    options = [_options(ex, shared, cfg) for ex in examples]
    contexts = [llm.backend.render(p) for p in prompts]
    pairs = [(ctx, cfg.label_prefix + label) for ctx, labels in zip(contexts, options, strict=True) for label in labels]
    scored = iter(llm.loglikelihood(pairs, "choose"))
    answers, costs = [], []
    for ctx, labels in zip(contexts, options, strict=True):
        found = [next(scored) for _ in labels]
        best = max(range(len(labels)), key=lambda i: found[i].logprob)
        answers.append(labels[best])
        seconds = [f.seconds for f in found if f.seconds is not None]
        costs.append(_Cost(llm.count_tokens(ctx), 0, sum(seconds) if seconds else None, False))
    return answers, costs


def _options(ex: Example, shared: list[str], cfg: TaskConfig) -> list[str]:
    labels = ex.meta(cfg.choices_field) if cfg.choices_field else shared
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
        where = f"its {cfg.choices_field!r} field" if cfg.choices_field else "the labels"
        raise RecordError(f"{ex.id}: choice needs at least two non-empty labels; {where} gave {labels!r}")
    reference = ex.contents("assistant")[-1].strip()
    if reference not in labels:
        raise RecordError(f"{ex.id}: its answer {reference!r} is not one of the labels {labels}")
    return labels


def _squad(ex: Example, prediction: str, reference: str, cfg: TaskConfig) -> dict[str, Any]:
    extra = ex.meta(cfg.answers_field)
    golds = [reference, *(a for a in extra if isinstance(a, str))] if isinstance(extra, list) else [reference]
    exact, f1 = squad_scores(prediction, golds)
    return {"id": ex.id, "prediction": prediction, "reference": reference, "exact": exact, "f1": f1,
            "correct": bool(exact)}  # fmt: skip


def _answer_in_context(examples: Sequence[Example], asked: Sequence[Asked], cfg: TaskConfig) -> dict[str, Any] | None:
    """Where a prompter injected context: whether each example's gold answer is in it (None where there was no
    context at all). For choice the labels say nothing about the context, so it is not measured there."""
    if cfg.metric == "choice" or not any("context" in a.notes for a in asked):
        return None
    found = [
        contains_answer(str(a.notes["context"]), [ex.contents("assistant")[-1]]) if "context" in a.notes else None
        for ex, a in zip(examples, asked, strict=True)
    ]
    known = [f for f in found if f is not None]
    return {"n": len(known), "share": _mean(known), "rows": found}


def _exact(ex: Example, prediction: str, reference: str) -> dict[str, Any]:
    a, b = " ".join(prediction.split()), " ".join(reference.split())
    return {
        "id": ex.id,
        "prediction": prediction,
        "reference": reference,
        "correct": a == b,
        "correct_ignoring_case": a.casefold() == b.casefold(),
    }


class _Refused(ValueError):
    """A database name that would lead the lookup out of the `databases` folder; the message says why."""


class _SqlScorer:
    """Scores SQL answers; finds (and builds, for PostgreSQL dumps) each database once."""

    def __init__(self, cfg: TaskConfig):
        self.cfg = cfg
        self.built: dict[str, SqliteDatabase] = {}
        self.paths: dict[str, Path | None] = {}

    def score(self, ex: Example, answer: str, reference: str) -> dict[str, Any]:
        dialect = self.cfg.sql_dialect
        query = extract_sql(answer)
        variants = gold_variants(reference)
        exact = canonical_match(query, variants, dialect)
        row = {"id": ex.id, "prediction": answer, "reference": reference, "query": query, "exact": exact}
        name = _metadata(ex, (self.cfg.db_field,) if self.cfg.db_field else DB_FIELDS)
        try:
            db = self._database(str(name)) if name is not None else None
        except _Refused as e:
            return {**row, "correct": exact, "execution": None, "db_error": str(e)}
        if db is None:
            return {**row, "correct": exact, "execution": None}
        golds, gold_errors = [], []
        for variant in variants:
            try:
                golds.append((execute(db, variant, dialect, self.cfg.sql_timeout_s), is_ordered(variant, dialect)))
            except QueryError as e:
                gold_errors.append(str(e))
        if not golds:
            return {**row, "correct": None, "execution": None, "gold_error": gold_errors[0]}
        try:
            result = execute(db, query, dialect, self.cfg.sql_timeout_s)
        except QueryError as e:
            return {**row, "correct": exact, "execution": False, "error": str(e)}
        execution = any(same_result(gold, result, ordered) for gold, ordered in golds)
        return {**row, "correct": exact or execution, "execution": execution}

    def _database(self, name: str) -> Path | None:
        if name not in self.paths:
            self.paths[name] = self._find(name)
        return self.paths[name]

    def _find(self, name: str) -> Path | None:
        """The database file `name` stands for inside `databases`; the names come from the data, so one that
        is a path (`../x`, `/x`, `a/b`) or resolves outside the folder (a symlink) is refused, never opened."""
        folder = self.cfg.databases
        if folder is None:
            return None
        root = folder.resolve()
        if not name.strip():
            raise _Refused(f"db_id {name!r} is blank: it names no database in {root}")
        as_path = Path(name)
        if name == ".." or as_path.anchor or len(as_path.parts) != 1 or "\\" in name:
            raise _Refused(f"db_id {name!r} is a path, not the name of a database in {root}")
        for path in (folder / f"{name}.sqlite", folder / f"{name}.db", folder / name / f"{name}.sqlite"):
            if path.is_file():
                return _inside(path, root, name)
        dump = folder / name / f"{name}.sql"
        if not dump.is_file():
            return None
        self.built[name] = sqlite_from_postgres(_inside(dump, root, name))
        return self.built[name].path

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [r for r in rows if r["correct"] is not None]
        executed = [r for r in kept if r["execution"] is not None]
        excluded = [r for r in rows if r["correct"] is None]
        out: dict[str, Any] = {
            "metric": "sql",
            "n": len(kept),
            "score": sum(r["correct"] for r in kept) / (len(kept) or 1),
            "exact_match": sum(r["exact"] for r in kept) / (len(kept) or 1),
            "execution": {"n": len(executed), "score": sum(r["execution"] for r in executed) / (len(executed) or 1)},
            "without_database": len(kept) - len(executed),
        }
        if excluded:
            out["gold_errors"] = {
                "n": len(excluded),
                "examples": [{"id": r["id"], "error": r["gold_error"]} for r in excluded[:_SHOWN]],
            }
        refused = [r for r in rows if "db_error" in r]
        if refused:
            out["database_errors"] = {
                "n": len(refused),
                "examples": [{"id": r["id"], "error": r["db_error"]} for r in refused[:_SHOWN]],
            }
        if self.built:
            out["databases"] = {
                name: {"tables": len(db.rows), "rows": sum(db.rows.values()), "failed_statements": len(db.failed)}
                for name, db in sorted(self.built.items())
            }
        return out


def _inside(path: Path, root: Path, name: str) -> Path:
    """`path` resolved, if it stays inside the resolved folder `root`: symlinks are followed before judging."""
    real = path.resolve()
    if not real.is_relative_to(root):
        raise _Refused(f"db_id {name!r}: {path} leads to {real}, outside {root}")
    return real


def _metadata(ex: Example, names: Sequence[str]) -> Any:
    """The first of `names` the example's metadata (or the source fields it kept) holds."""
    return next((value for value in map(ex.meta, names) if value is not None), None)


def _per_category(rows: list[dict[str, Any]], categories: list[Any]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for row, category in zip(rows, categories, strict=True):
        if row["correct"] is not None:
            groups[str(category)].append(row["correct"])
    return {c: {"n": len(v), "score": sum(v) / len(v)} for c, v in sorted(groups.items())}


def _shown(rows: list[dict[str, Any]], prompts: Sequence[Prompt] | None) -> list[dict[str, Any]]:
    """A few examples for the report: wrong answers first (they say most), then right ones. A chat prompt is
    shown by its last turn."""
    wrong = [i for i, r in enumerate(rows) if r["correct"] is False]
    right = [i for i, r in enumerate(rows) if r["correct"] is True]
    picked = wrong[: _SHOWN - min(2, len(right))] + right
    texts = [p if isinstance(p, str) else p[-1]["content"] for p in prompts] if prompts is not None else None
    return [
        {
            "prompt_tail": texts[i][-_PROMPT_TAIL:] if texts is not None else None,
            "reference": rows[i]["reference"],
            "prediction": rows[i]["prediction"],
            "correct": rows[i]["correct"],
        }
        for i in picked[:_SHOWN]
    ]
