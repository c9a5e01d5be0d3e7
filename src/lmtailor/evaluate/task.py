"""The target task scored on held-out examples: what the model learned.

Each example is put to the model by a Prompter (the training Template, so a tuned model is scored on the very
text shape it was trained on; or few-shot turns), answered greedily through any backend, so a score does not
change from one run to the next, and compared with its reference answer, the example's last assistant turn:

- `exact_match`: equal once whitespace runs are collapsed (also reported ignoring case);
- `sql`: equal once both are canonical SQL (as the normalize step writes it), or, where the example names a
  database that can be found, returning the same rows (as multisets; in order only when the gold query has an
  ORDER BY). A predicted query that fails or runs too long is wrong; an example whose gold query fails is left
  out and reported. Databases are looked up only inside `databases`: a name that would lead out of it (a path,
  or a symlink to a file elsewhere) is refused, and its example scored by form alone and reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmtailor.core.records import Example
from lmtailor.llm.client import LLM
from lmtailor.llm.types import GenParams, Prompt
from lmtailor.prompting.prompter import Prompter
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

TaskMetric = Literal["exact_match", "sql"]
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


@dataclass
class TaskResult:
    summary: dict[str, Any]  # small: goes into the run's manifest
    predictions: list[dict[str, Any]]  # one row per example, for a JSONL file


def score_task(llm: LLM, prompter: Prompter, examples: Sequence[Example], cfg: TaskConfig | None = None) -> TaskResult:
    """Answer every example greedily and score the answers with `cfg.metric`."""
    cfg = cfg or TaskConfig()
    prompts = [prompter.prompt(ex) for ex in examples]
    params = GenParams(max_tokens=cfg.max_new_tokens, temperature=0.0, stop=tuple(s for s in cfg.stop if s))
    answers = llm.generate(prompts, params, "generate")
    return score_answers(examples, [a.text for a in answers], cfg, prompts)


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
    else:
        rows = [_exact(ex, answer, reference) for ex, answer, reference in triples]
        scored = len(rows) or 1
        summary = {
            "metric": "exact_match",
            "n": len(rows),
            "score": sum(r["correct"] for r in rows) / scored,
            "score_ignoring_case": sum(r["correct_ignoring_case"] for r in rows) / scored,
        }
    categories = [_metadata(ex, CATEGORY_FIELDS) for ex in examples]
    if any(c is not None for c in categories):
        summary["per_category"] = _per_category(rows, categories)
    summary["examples"] = _shown(rows, prompts)
    return TaskResult(summary, rows)


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
